//! The screen-lock watcher against a real, private D-Bus session bus
//! (dbus-daemon) and real signals (dbus-send): `ActiveChanged(true)` from
//! either screensaver counts, `ActiveChanged(false)` and other signals do
//! not.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use polykey_desktop::screen_lock::person_leaving;

struct Bus {
    address: String,
    daemon: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("unix:path={}", dir.path().join("bus").display());
        let daemon = Command::new("dbus-daemon")
            .args([
                "--session",
                "--nofork",
                "--nopidfile",
                "--address",
                &address,
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("dbus-daemon (apt-get install dbus)");
        for _ in 0..100 {
            if dir.path().join("bus").exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            address,
            daemon,
            _dir: dir,
        }
    }

    fn signal(&self, path: &str, member: &str, value: bool) {
        let status = Command::new("dbus-send")
            .args([
                &format!("--bus={}", self.address),
                "--type=signal",
                path,
                member,
                &format!("boolean:{value}"),
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

#[tokio::test]
async fn a_screen_lock_signal_is_seen_and_an_unlock_is_not() {
    let bus = Bus::start();
    let connection = zbus::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .build()
        .await
        .unwrap();
    let mut leaving = person_leaving(Some(&connection), None).await.unwrap();

    // Unlocking the screen, and an unrelated signal, are not leaving.
    bus.signal(
        "/org/freedesktop/ScreenSaver",
        "org.freedesktop.ScreenSaver.ActiveChanged",
        false,
    );
    bus.signal("/org/example", "org.example.Other.ActiveChanged", true);
    assert!(
        tokio::time::timeout(Duration::from_secs(2), leaving.next())
            .await
            .is_err(),
        "saw a lock that was not one"
    );

    // Locking it is, from either screensaver.
    bus.signal(
        "/org/freedesktop/ScreenSaver",
        "org.freedesktop.ScreenSaver.ActiveChanged",
        true,
    );
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(2), leaving.next())
            .await
            .unwrap(),
        Some(())
    );
    bus.signal(
        "/org/gnome/ScreenSaver",
        "org.gnome.ScreenSaver.ActiveChanged",
        true,
    );
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(2), leaving.next())
            .await
            .unwrap(),
        Some(())
    );
}

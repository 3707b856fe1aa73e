//! The screen-lock watcher against real, private D-Bus buses (dbus-daemon):
//! real signals from dbus-send on the "session" bus, and on the "system"
//! bus a fake logind written with zbus's server API, which hands out real
//! file descriptors (one end of a socket pair) as sleep inhibitors.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polykey_desktop::screen_lock::Watcher;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use zbus::zvariant::{OwnedFd, OwnedObjectPath};
use zbus::Connection;

/// This process's session, as the fake logind reports it.
const OUR_SESSION: &str = "/org/freedesktop/login1/session/_1";
/// Another session on the same machine (another user, another seat).
const OTHER_SESSION: &str = "/org/freedesktop/login1/session/_2";
/// Long enough for a signal to arrive if it is going to.
const QUIET: Duration = Duration::from_secs(1);
/// Long enough for anything that must happen.
const PATIENCE: Duration = Duration::from_secs(10);

struct Bus {
    address: String,
    daemon: std::process::Child,
    /// Kept open: the daemon may write again.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
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
                "--print-address",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (apt-get install dbus)");
        // It prints its address once it listens. (Waiting for the socket
        // file was not enough: under load a connection came between the
        // file's creation and the listen, and was refused.)
        let mut daemon = daemon;
        let mut printed = String::new();
        let mut stdout = std::io::BufReader::new(daemon.stdout.take().expect("piped"));
        {
            use std::io::BufRead;
            let _ = stdout.read_line(&mut printed);
        }
        assert!(printed.starts_with("unix:"), "dbus-daemon did not start");
        Self {
            _stdout: stdout,
            address,
            daemon,
            _dir: dir,
        }
    }

    async fn connect(&self) -> Connection {
        zbus::connection::Builder::address(self.address.as_str())
            .unwrap()
            .build()
            .await
            .unwrap()
    }

    /// A signal with one boolean, sent by dbus-send (not by logind).
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

/// One `Inhibit` call the fake logind answered.
struct Inhibited {
    what: String,
    who: String,
    mode: String,
    /// Our end of the socket pair: it reads EOF once the caller has closed
    /// the end it was given.
    held: UnixStream,
}

impl Inhibited {
    /// Whether the caller closed its inhibitor within `wait`.
    fn released_within(&mut self, wait: Duration) -> bool {
        self.held.set_read_timeout(Some(wait)).unwrap();
        matches!(self.held.read(&mut [0; 1]), Ok(0))
    }
}

/// The parts of logind's Manager the watcher uses.
struct FakeManager {
    inhibited: UnboundedSender<Inhibited>,
    /// Whether this process is in a logind session (an app started in a
    /// systemd user scope is not).
    in_session: bool,
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl FakeManager {
    async fn inhibit(
        &self,
        what: String,
        who: String,
        _why: String,
        mode: String,
    ) -> zbus::fdo::Result<OwnedFd> {
        let (held, given) =
            UnixStream::pair().map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        let _ = self.inhibited.send(Inhibited {
            what,
            who,
            mode,
            held,
        });
        Ok(std::os::fd::OwnedFd::from(given).into())
    }

    #[zbus(name = "GetSessionByPID")]
    async fn get_session_by_pid(&self, pid: u32) -> zbus::fdo::Result<OwnedObjectPath> {
        if self.in_session && pid == std::process::id() {
            Ok(OwnedObjectPath::try_from(OUR_SESSION).unwrap())
        } else {
            Err(zbus::fdo::Error::Failed(format!("no session for {pid}")))
        }
    }
}

/// The user running this process, as logind's `user/self` shows it.
struct FakeUser;

#[zbus::interface(name = "org.freedesktop.login1.User")]
impl FakeUser {
    /// The user's graphical session.
    #[zbus(property)]
    async fn display(&self) -> (String, OwnedObjectPath) {
        (
            "1".to_owned(),
            OwnedObjectPath::try_from(OUR_SESSION).unwrap(),
        )
    }
}

/// A fake logind owning org.freedesktop.login1 on `bus`.
struct Logind {
    connection: Connection,
    inhibited: UnboundedReceiver<Inhibited>,
}

impl Logind {
    async fn start(bus: &Bus) -> Self {
        Self::start_with(bus, true).await
    }

    async fn start_with(bus: &Bus, in_session: bool) -> Self {
        let (sender, inhibited) = unbounded_channel();
        let connection = zbus::connection::Builder::address(bus.address.as_str())
            .unwrap()
            .name("org.freedesktop.login1")
            .unwrap()
            .serve_at(
                "/org/freedesktop/login1",
                FakeManager {
                    inhibited: sender,
                    in_session,
                },
            )
            .unwrap()
            .serve_at("/org/freedesktop/login1/user/self", FakeUser)
            .unwrap()
            .build()
            .await
            .unwrap();
        Self {
            connection,
            inhibited,
        }
    }

    async fn next_inhibit(&mut self) -> Inhibited {
        tokio::time::timeout(PATIENCE, self.inhibited.recv())
            .await
            .expect("no Inhibit call")
            .unwrap()
    }

    async fn prepare_for_sleep(&self, sleeping: bool) {
        self.connection
            .emit_signal(
                None::<&str>,
                "/org/freedesktop/login1",
                "org.freedesktop.login1.Manager",
                "PrepareForSleep",
                &(sleeping,),
            )
            .await
            .unwrap();
    }

    async fn lock_session(&self, path: &str) {
        self.connection
            .emit_signal(
                None::<&str>,
                path,
                "org.freedesktop.login1.Session",
                "Lock",
                &(),
            )
            .await
            .unwrap();
    }
}

/// Run `watcher` with a lock action that only reports each lock.
fn run_counting(watcher: Watcher) -> UnboundedReceiver<()> {
    let (sender, locks) = unbounded_channel();
    tokio::spawn(watcher.run(move || {
        let sender = sender.clone();
        async move {
            let _ = sender.send(());
        }
    }));
    locks
}

async fn assert_locks(locks: &mut UnboundedReceiver<()>) {
    assert_eq!(
        tokio::time::timeout(PATIENCE, locks.recv())
            .await
            .expect("no lock"),
        Some(())
    );
}

async fn assert_no_lock(locks: &mut UnboundedReceiver<()>, why: &str) {
    assert!(
        tokio::time::timeout(QUIET, locks.recv()).await.is_err(),
        "locked on {why}"
    );
}

#[tokio::test]
async fn a_screen_lock_signal_is_seen_and_an_unlock_is_not() {
    let bus = Bus::start();
    let session = bus.connect().await;
    let mut locks = run_counting(Watcher::start(Some(&session), None).await);

    // Unlocking the screen, and an unrelated signal, are not leaving.
    bus.signal(
        "/org/freedesktop/ScreenSaver",
        "org.freedesktop.ScreenSaver.ActiveChanged",
        false,
    );
    bus.signal("/org/example", "org.example.Other.ActiveChanged", true);
    assert_no_lock(&mut locks, "a signal that was not a lock").await;

    // Locking it is, from any of the screensavers.
    for (path, member) in [
        (
            "/org/freedesktop/ScreenSaver",
            "org.freedesktop.ScreenSaver.ActiveChanged",
        ),
        (
            "/org/gnome/ScreenSaver",
            "org.gnome.ScreenSaver.ActiveChanged",
        ),
        (
            "/org/xfce/ScreenSaver",
            "org.xfce.ScreenSaver.ActiveChanged",
        ),
    ] {
        bus.signal(path, member, true);
        assert_locks(&mut locks).await;
    }
}

#[tokio::test]
async fn a_delay_inhibitor_for_sleep_is_taken_at_start() {
    let system_bus = Bus::start();
    let mut logind = Logind::start(&system_bus).await;
    let system = system_bus.connect().await;
    let watcher = Watcher::start(None, Some(&system)).await;

    let inhibited = logind.next_inhibit().await;
    assert_eq!(inhibited.what, "sleep");
    assert_eq!(inhibited.who, "Polykey");
    assert_eq!(inhibited.mode, "delay");
    assert!(watcher.holds_inhibitor());
    assert_eq!(watcher.session_path(), Some(OUR_SESSION));
}

#[tokio::test]
async fn sleep_waits_for_the_lock_and_a_resume_takes_a_new_inhibitor() {
    let system_bus = Bus::start();
    let mut logind = Logind::start(&system_bus).await;
    let system = system_bus.connect().await;
    let watcher = Watcher::start(None, Some(&system)).await;
    let mut inhibited = logind.next_inhibit().await;

    // A lock that takes a while, recording when it started and finished.
    let order: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let in_lock = order.clone();
    tokio::spawn(watcher.run(move || {
        let order = in_lock.clone();
        async move {
            order.lock().unwrap().push("lock started");
            tokio::time::sleep(Duration::from_millis(500)).await;
            order.lock().unwrap().push("lock finished");
        }
    }));
    let released = {
        let order = order.clone();
        tokio::task::spawn_blocking(move || {
            let released = inhibited.released_within(PATIENCE);
            order.lock().unwrap().push("inhibitor closed");
            released
        })
    };

    logind.prepare_for_sleep(true).await;
    assert!(released.await.unwrap(), "the inhibitor was never closed");
    assert_eq!(
        *order.lock().unwrap(),
        ["lock started", "lock finished", "inhibitor closed"]
    );

    // Awake again: the next sleep is held back too.
    logind.prepare_for_sleep(false).await;
    let again = logind.next_inhibit().await;
    assert_eq!(
        (again.what.as_str(), again.mode.as_str()),
        ("sleep", "delay")
    );
}

#[tokio::test]
async fn a_sleep_signal_not_from_logind_changes_nothing() {
    let system_bus = Bus::start();
    let mut logind = Logind::start(&system_bus).await;
    let system = system_bus.connect().await;
    let mut locks = run_counting(Watcher::start(None, Some(&system)).await);

    // Anyone may broadcast on the system bus; a forged sleep must not make
    // the watcher give up the inhibitor before the real one.
    system_bus.signal(
        "/org/freedesktop/login1",
        "org.freedesktop.login1.Manager.PrepareForSleep",
        true,
    );
    assert_no_lock(&mut locks, "a forged PrepareForSleep").await;
    let mut inhibited = logind.next_inhibit().await;
    assert!(!inhibited.released_within(QUIET));
}

#[tokio::test]
async fn only_our_own_logind_session_locking_locks() {
    let system_bus = Bus::start();
    let logind = Logind::start(&system_bus).await;
    let system = system_bus.connect().await;
    let mut locks = run_counting(Watcher::start(None, Some(&system)).await);

    logind.lock_session(OTHER_SESSION).await;
    assert_no_lock(&mut locks, "another session's Lock").await;

    logind.lock_session(OUR_SESSION).await;
    assert_locks(&mut locks).await;
}

#[tokio::test]
async fn outside_a_session_the_users_graphical_session_is_watched() {
    let system_bus = Bus::start();
    let logind = Logind::start_with(&system_bus, false).await;
    let system = system_bus.connect().await;
    let watcher = Watcher::start(None, Some(&system)).await;
    assert_eq!(watcher.session_path(), Some(OUR_SESSION));
    let mut locks = run_counting(watcher);

    logind.lock_session(OTHER_SESSION).await;
    assert_no_lock(&mut locks, "another session's Lock").await;
    logind.lock_session(OUR_SESSION).await;
    assert_locks(&mut locks).await;
}

#[tokio::test]
async fn without_logind_the_screensaver_still_locks() {
    let session_bus = Bus::start();
    let system_bus = Bus::start();
    let session = session_bus.connect().await;
    let system = system_bus.connect().await;
    let watcher = Watcher::start(Some(&session), Some(&system)).await;
    assert!(!watcher.holds_inhibitor());
    assert_eq!(watcher.session_path(), None);
    let mut locks = run_counting(watcher);

    session_bus.signal(
        "/org/gnome/ScreenSaver",
        "org.gnome.ScreenSaver.ActiveChanged",
        true,
    );
    assert_locks(&mut locks).await;
}

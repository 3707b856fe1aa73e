//! The Debian package: `scripts/package.sh --debug` builds it with the Tauri
//! bundler; `dpkg -i` installs it on this machine (the test needs root, as
//! CI has); the installed app starts under Xvfb to its first-run screen and
//! the installed CLI answers; `dpkg --purge` takes every file away again.

use std::path::{Path, PathBuf};
use std::process::Command;

use polykey_tests::gui::Driver;

const PACKAGE: &str = "polykey";
const INSTALLED: [&str; 4] = [
    "/usr/bin/polykey-desktop",
    "/usr/bin/polykey",
    "/usr/share/applications/Polykey.desktop",
    "/usr/share/icons/hicolor/128x128/apps/polykey-desktop.png",
];

fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// Purges the package when the test ends, however it ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", PACKAGE]);
    }
}

fn is_root() -> bool {
    String::from_utf8_lossy(&run("id", &["-u"]).stdout).trim() == "0"
}

#[tokio::test]
async fn the_deb_installs_starts_and_removes_cleanly() {
    if !is_root() {
        // dpkg -i changes the machine: only where the tests run as root (CI).
        eprintln!("skipped: installing a package needs root");
        return;
    }
    // A run killed part way through `dpkg -i` (a timeout) leaves the
    // package half installed, which nothing could be using: that is taken
    // away; a working install is left alone.
    let status = String::from_utf8_lossy(&run("dpkg", &["-s", PACKAGE]).stdout).into_owned();
    if status
        .lines()
        .any(|l| l.starts_with("Status:") && (l.contains("half-") || l.contains("reinstreq")))
    {
        let _ = run("dpkg", &["--purge", "--force-remove-reinstreq", PACKAGE]);
    }
    assert!(
        !run("dpkg", &["-s", PACKAGE]).status.success(),
        "a {PACKAGE} package is installed already; remove it first (dpkg --purge {PACKAGE})"
    );
    // The GUI's turn first, for the whole test: the bundler patches
    // target/debug/polykey-desktop in place, which must not happen while
    // another test (in this process, under plain `cargo test`) starts it.
    let node_dir = tempfile::tempdir().unwrap();
    let driver = Driver::start(node_dir.path()).await;
    let root = polykey_tests::workspace_root();
    let built = run(
        root.join("scripts/package.sh").to_str().unwrap(),
        &["--debug"],
    );
    assert!(
        built.status.success(),
        "scripts/package.sh failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let deb = PathBuf::from(String::from_utf8_lossy(&built.stdout).trim().to_owned());
    assert!(
        deb.extension().is_some_and(|e| e == "deb") && deb.exists(),
        "{deb:?}"
    );

    let installed = Installed;
    let out = run("dpkg", &["-i", deb.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "dpkg -i: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for path in INSTALLED {
        assert!(Path::new(path).exists(), "{path} was not installed");
    }
    let entry = std::fs::read_to_string(INSTALLED[2]).unwrap();
    assert!(
        entry.contains("Exec=polykey-desktop") && entry.contains("Icon=polykey-desktop"),
        "{entry}"
    );
    let version = run("/usr/bin/polykey", &["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("polykey {}", env!("CARGO_PKG_VERSION"))
    );

    // The installed app, not the one in target/: its first-run screen.
    let app = driver
        .launch_binary(Path::new("/usr/bin/polykey-desktop"))
        .await;
    app.find("welcome-create").await;
    app.screenshot("90-installed-app").await;
    app.quit().await;

    drop(installed);
    assert!(
        !run("dpkg", &["-s", PACKAGE]).status.success(),
        "still installed"
    );
    for path in INSTALLED {
        assert!(!Path::new(path).exists(), "{path} was left behind");
    }
}

//! One app per user session, and a window that keeps its size: a second
//! launch hands over to the running app and exits (it used to fail on the
//! node directory before the single-instance check could run); after a
//! restart, even one that followed a killed process, the window has the size
//! the user left it at.

use std::time::Duration;

use polykey_tests::gui::{desktop_binary, Driver, KeyringSession};

#[tokio::test]
async fn a_second_launch_hands_over_and_the_window_keeps_its_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node_dir = dir.path().join("node");
    // Single instance is found over the D-Bus session bus: give it one.
    let bus = KeyringSession::start().await;
    let driver =
        Driver::start_with_env(&node_dir, &[("DBUS_SESSION_BUS_ADDRESS", bus.address())]).await;
    let app = driver.launch().await;
    app.find("welcome-create").await;
    app.set_window_size(900, 640).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A second launch with the same environment exits at once, successfully,
    // instead of failing on the node directory the first one holds.
    let second = tokio::process::Command::new(desktop_binary())
        .env("DISPLAY", driver.display_name())
        .env("DBUS_SESSION_BUS_ADDRESS", bus.address())
        .env(polykey_node::NODE_PATH_ENV, &node_dir)
        .env("XDG_CONFIG_HOME", node_dir.with_extension("config"))
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(Duration::from_secs(30), second)
        .await
        .expect("the second launch is still running after 30 s")
        .expect("run the second launch");
    assert!(status.success(), "second launch: {status}");
    // The first one carries on.
    app.click("welcome-create").await;
    app.find("create-password").await;
    // Ended by WebDriver, not by a clean quit: the size was saved already.
    app.quit().await;

    // Restarted, the window has the size it was left at.
    let app = driver.launch().await;
    app.find("welcome-create").await;
    assert_eq!(app.window_size().await, (900, 640));
    app.quit().await;
}

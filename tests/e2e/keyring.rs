//! Keyring unlock against the real Secret Service (gnome-keyring on a
//! private D-Bus session), the password changed from Settings with keyring
//! unlock on, and the app's behaviour when there is no keyring.

use polykey_tests::gui::{Driver, KeyringSession};

use crate::create_node;

const PASSWORD: &str = "violet-anchor-orbit-58";
const NEW_PASSWORD: &str = "copper-lantern-fjord-91";

#[tokio::test]
async fn keyring_unlock_on_off_and_unavailable() {
    let node_dir = tempfile::tempdir().expect("temp dir");
    let keyring = KeyringSession::start().await;
    let driver = Driver::start_with_env(
        node_dir.path(),
        &[
            ("DBUS_SESSION_BUS_ADDRESS", keyring.address()),
            ("POLYKEY_AUTO_LOCK_SECS", "600"),
        ],
    )
    .await;

    // Turn it on: a wrong password is refused, the right one stores the key.
    let app = driver.launch().await;
    create_node(&app, PASSWORD, false).await;
    app.click("settings-button").await;
    app.click("keyring-on").await;
    app.type_into("keyring-password", "not my password").await;
    app.click("keyring-confirm").await;
    app.wait_for_text("keyring-error", "Wrong password.").await;
    app.type_into("keyring-password", PASSWORD).await;
    app.click("keyring-confirm").await;
    app.find("keyring-off").await;
    app.screenshot("20-keyring-on").await;

    // Change the password in Settings: the current one is checked first.
    app.click("change-password-open").await;
    app.type_into("password-current", "not my password").await;
    app.type_into("password-new", NEW_PASSWORD).await;
    app.type_into("password-again", NEW_PASSWORD).await;
    app.click("password-submit").await;
    app.wait_for_text(
        "password-error",
        "The current password is wrong. Try again.",
    )
    .await;
    app.type_into("password-current", PASSWORD).await;
    app.click("password-submit").await;
    app.find("password-changed").await;
    app.screenshot("21-password-changed").await;
    // About: the version and where this node keeps its files.
    app.wait_for_text(
        "about-version",
        &format!("Polykey {}", env!("CARGO_PKG_VERSION")),
    )
    .await;
    app.wait_for_text(
        "about-data-dir",
        node_dir.path().to_str().expect("a UTF-8 path"),
    )
    .await;
    app.quit().await;

    // Next launch: one click unlocks, no password typed (the keyring's key
    // followed the password change).
    let app = driver.launch().await;
    app.click("unlock-keyring").await;
    app.find("node-id").await;
    // The screen locks, and so does the app.
    keyring.emit_screen_locked().await;
    app.click("unlock-keyring").await;
    app.find("node-id").await;
    // Turn it off: the entry is deleted, the next launch asks for the password.
    app.click("settings-button").await;
    app.click("keyring-off").await;
    app.find("keyring-on").await;
    app.quit().await;
    let app = driver.launch().await;
    app.find("unlock-password").await;
    assert_eq!(
        app.count("unlock-keyring").await,
        0,
        "keyring unlock is off"
    );
    // The old password no longer unlocks.
    app.type_into("unlock-password", PASSWORD).await;
    app.click("unlock-submit").await;
    app.wait_for_text("unlock-error", "Wrong password. Try again.")
        .await;
    app.quit().await;
    drop(driver);

    // No Secret Service at all: the setting says so and the password works.
    let driver = Driver::start_with_env(
        node_dir.path(),
        &[(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/polykey-test-bus",
        )],
    )
    .await;
    let app = driver.launch().await;
    app.type_into("unlock-password", NEW_PASSWORD).await;
    app.click("unlock-submit").await;
    app.find("node-id").await;
    app.click("settings-button").await;
    let said = app.text("keyring-unavailable").await;
    assert!(
        said.starts_with("This system's keyring is not available")
            && !said.contains("Secret Service:"),
        "a sentence, not the keyring's error text: {said}"
    );
    app.quit().await;
}

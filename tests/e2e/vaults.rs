//! A password manager's daily use, in the real window: a vault, logins,
//! search, copy with clipboard auto-clear, edit, history, restore, lock.

use std::time::Duration;

use polykey_tests::gui::Driver;

use crate::{create_node, create_vault};

const PASSWORD: &str = "maple-comet-ladder-93";
const FIRST: &str = "first-Passw0rd!";
const SECOND: &str = "second-Passw0rd!";

#[tokio::test]
async fn vault_login_search_copy_edit_history_restore_lock() {
    let node_dir = tempfile::tempdir().expect("temp dir");
    // A short clipboard timeout so the test can watch it clear.
    let driver =
        Driver::start_with_env(node_dir.path(), &[("POLYKEY_CLIPBOARD_CLEAR_SECS", "3")]).await;
    let app = driver.launch().await;
    create_node(&app, PASSWORD, false).await;

    // A new node starts with a vault.
    app.wait_for_text("vault-item", "Personal").await;

    // Two logins.
    for (folder, title, password) in [("bank", "Bank", FIRST), ("email", "Work mail", "mail-pw-1")]
    {
        app.click("new-secret").await;
        app.select("item-type", "login").await;
        app.type_into("edit-folder", folder).await;
        app.type_into("edit-title", title).await;
        app.type_into("edit-username", "alice").await;
        app.type_into("edit-password", password).await;
        app.type_into("edit-url", "https://example.com").await;
        if folder == "bank" {
            app.screenshot("10-new-login").await;
        }
        app.click("save-secret").await;
        app.wait_for_text("secret-title", title).await;
    }
    assert_eq!(app.count("secret-item").await, 2);

    // Find it by search.
    app.type_into("search", "bank").await;
    for _ in 0..50 {
        if app.count("secret-item").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.count("secret-item").await, 1);
    app.click("secret-item").await;
    app.wait_for_text("secret-title", "Bank").await;
    app.click("reveal-password").await;
    app.wait_for_text("field-password", FIRST).await;
    app.screenshot("11-login-view").await;

    // Copy: the real clipboard holds it, then it is cleared.
    app.click("copy-password").await;
    app.find("notice").await;
    app.screenshot("11-copied").await;
    let edit_at = app.find("edit-secret").await.rectangle().await.unwrap();
    let mut copied = None;
    for _ in 0..20 {
        copied = driver.clipboard_text();
        if copied.as_deref() == Some(FIRST) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        copied.as_deref(),
        Some(FIRST),
        "the password is on the clipboard"
    );
    let mut cleared = false;
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if driver.clipboard_text().as_deref() != Some(FIRST) {
            cleared = true;
            break;
        }
    }
    assert!(
        cleared,
        "the clipboard still holds the password after its timeout"
    );
    // The "Copied" notice goes by itself and moves nothing under it: a
    // click aimed while it went used to land beside its button.
    for _ in 0..100 {
        if app.count("notice").await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.count("notice").await, 0, "the notice never went");
    assert_eq!(
        app.find("edit-secret").await.rectangle().await.unwrap(),
        edit_at,
        "the page moved when the notice went"
    );

    // Edit it: a second version.
    app.click("edit-secret").await;
    app.type_into("edit-password", SECOND).await;
    app.click("save-secret").await;
    app.wait_for_text("secret-title", "Bank").await;
    app.click("reveal-password").await;
    app.wait_for_text("field-password", SECOND).await;

    // History shows both versions; restore the first.
    app.click("show-history").await;
    app.find("history-version").await;
    assert_eq!(app.count("history-version").await, 2);
    // The two versions side by side: only the password changed.
    app.click("compare").await;
    app.find("changed-field").await;
    assert_eq!(app.count("changed-field").await, 1);
    assert!(app.text("changed-field").await.contains("Password"));
    app.screenshot("12-history").await;
    app.click("restore-from-history").await;
    app.wait_for_text("secret-title", "Bank").await;
    app.click("reveal-password").await;
    app.wait_for_text("field-password", FIRST).await;

    // Copied, then locked at once: the clipboard is cleared by the lock,
    // well before its 3 s timeout.
    app.click("copy-password").await;
    let mut on_clipboard = None;
    for _ in 0..20 {
        if driver.clipboard_text().as_deref() == Some(FIRST) {
            on_clipboard = Some(std::time::Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let on_clipboard = on_clipboard.expect("the password is on the clipboard");
    app.click("lock-button").await;
    app.find("unlock-password").await;
    let mut cleared_by_lock = false;
    while on_clipboard.elapsed() < Duration::from_millis(1800) {
        if driver.clipboard_text().as_deref() != Some(FIRST) {
            cleared_by_lock = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        cleared_by_lock,
        "the password stayed on the clipboard after the lock"
    );

    // Unlock: the vault and the restored login are there.
    app.type_into("unlock-password", PASSWORD).await;
    app.click("unlock-submit").await;
    app.wait_for_text("vault-item", "Personal").await;
    assert_eq!(app.count("secret-item").await, 2);
    app.quit().await;
}

#[tokio::test]
async fn locks_itself_after_a_short_idle_time() {
    let node_dir = tempfile::tempdir().expect("temp dir");
    let driver = Driver::start_with_env(node_dir.path(), &[("POLYKEY_AUTO_LOCK_SECS", "3")]).await;
    let app = driver.launch().await;
    create_node(&app, PASSWORD, false).await;
    create_vault(&app, "Idle").await;

    // Hands off: within a few seconds the window is back at the unlock
    // screen and the vault list is gone from the page.
    let started = std::time::Instant::now();
    app.find("unlock-password").await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "locked after {:?}",
        started.elapsed()
    );
    assert_eq!(app.count("vault-item").await, 0);

    app.type_into("unlock-password", PASSWORD).await;
    app.click("unlock-submit").await;
    crate::devices::until(
        &app,
        "Idle is listed",
        &crate::devices::shows("vault-item", "Idle"),
    )
    .await;
    app.quit().await;
}

//! Finding and copying fast, in the real app: search by user name, a
//! favourite and its filter, preferences, and the quick-access palette
//! opened by its global shortcut (a real X key press) copying a password.

use std::time::Duration;

use polykey_tests::gui::{App, Driver};

use crate::create_node;

const PASSWORD: &str = "orchid-lantern-pebble-58";

async fn add_login(app: &App, title: &str, username: &str, password: &str, url: &str) {
    app.click("new-secret").await;
    app.select("item-type", "login").await;
    app.type_into("edit-title", title).await;
    app.type_into("edit-username", username).await;
    app.type_into("edit-password", password).await;
    app.type_into("edit-url", url).await;
    app.click("save-secret").await;
    app.wait_for_text("secret-title", title).await;
}

async fn wait_for_count(app: &App, test_id: &str, expected: usize) {
    for _ in 0..50 {
        if app.count(test_id).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.count(test_id).await,
        expected,
        "[data-testid={test_id}]"
    );
}

#[tokio::test]
async fn favourites_preferences_and_the_quick_access_palette() {
    let node_dir = tempfile::tempdir().expect("temp dir");
    let driver = Driver::start(node_dir.path()).await;
    let app = driver.launch().await;
    create_node(&app, PASSWORD, false).await;

    // A new node's first vault.
    app.wait_for_text("vault-item", "Personal").await;
    add_login(
        &app,
        "Bank",
        "alice",
        "bank-Passw0rd!",
        "https://bank.example",
    )
    .await;
    add_login(
        &app,
        "Forum",
        "bob",
        "forum-Passw0rd!",
        "https://forum.example",
    )
    .await;
    add_login(
        &app,
        "Mail",
        "carol",
        "mail-Passw0rd!",
        "https://mail.example",
    )
    .await;

    // Search matches user names and websites, not just names.
    app.type_into("search", "bob").await;
    wait_for_count(&app, "secret-item", 1).await;
    app.type_into("search", "mail.example").await;
    wait_for_count(&app, "secret-item", 1).await;
    app.type_into("search", "example").await;
    wait_for_count(&app, "secret-item", 3).await;

    // Star one; the favourites filter shows just it.
    app.click("secret-item").await;
    app.wait_for_text("secret-title", "Bank").await;
    app.click("favourite").await;
    app.wait_for_text("favourite", "★").await;
    app.click("filter-favourites").await;
    wait_for_count(&app, "secret-item", 1).await;
    app.screenshot("20-favourites").await;
    app.click("filter-all").await;

    // Preferences, in Settings: record a shortcut for quick access by
    // pressing it (Alt+Shift+K), then save it.
    app.click("settings-button").await;
    app.click("record-shortcut").await;
    app.press("shortcut", "\u{E00A}\u{E008}k\u{E000}").await;
    app.wait_for_text("record-shortcut", "Record").await;
    assert_eq!(
        app.execute(
            "return document.querySelector('[data-testid=\"shortcut\"]').value;",
            Vec::new()
        )
        .await,
        "Alt+Shift+K"
    );
    app.click("save-shortcut").await;
    app.find("preferences-saved").await;
    app.select("clipboard-clear", "10").await;
    app.find("preferences-saved").await;
    app.screenshot("21-settings").await;

    // The shortcut, pressed on the X keyboard, opens the palette window.
    driver.press_keys("alt+shift+k").await;
    app.switch_to_window_with("palette").await;
    wait_for_count(&app, "palette-item", 3).await;
    app.type_into("palette-search", "bob").await;
    wait_for_count(&app, "palette-item", 1).await;
    // A freshly shown window may paint a frame late.
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.screenshot("22-quick-access").await;
    // The palette may call only the four commands it uses: reading a
    // whole secret, or changing the password, is refused from it.
    for (command, args) in [
        (
            "read_secret",
            serde_json::json!({ "vault": "Personal", "path": "forum" }),
        ),
        (
            "change_password",
            serde_json::json!({ "old": "x", "new": "y" }),
        ),
    ] {
        let answer = app
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1])
                   .then(() => done('allowed'), (e) => done(typeof e === 'string' ? e : JSON.stringify(e)));",
                vec![command.into(), args],
            )
            .await;
        let answer = answer.as_str().unwrap_or_default().to_owned();
        assert!(
            answer.contains("not allowed"),
            "{command} from the palette: {answer}"
        );
    }
    app.press("palette-search", "\u{E007}").await;
    let mut copied = None;
    for _ in 0..50 {
        copied = driver.clipboard_text();
        if copied.as_deref() == Some("forum-Passw0rd!") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(copied.as_deref(), Some("forum-Passw0rd!"));

    // Started again, the app grabs the saved shortcut by itself (after its
    // first page has loaded, off the start's path): no visit to Settings.
    app.quit().await;
    let app = driver.launch().await;
    app.type_into("unlock-password", PASSWORD).await;
    app.click("unlock-submit").await;
    app.find("vault-item").await;
    driver.press_keys("alt+shift+k").await;
    app.switch_to_window_with("palette").await;
    wait_for_count(&app, "palette-item", 3).await;
    app.quit().await;
}

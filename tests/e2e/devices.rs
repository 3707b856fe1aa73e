//! Two app instances, each with its own node directory, on one display:
//! the second joins the first on its first run by pasting the pairing code;
//! both show the same digits (the joiner first, the inviter once the joiner
//! confirmed) and neither records the other until the person confirmed on
//! both; then each shows the other's secrets, a vault deleted
//! on one is restored from its "Recently deleted" and comes back on the
//! other, and removing the second device through its dialog takes it off the
//! first one's list.

use std::time::Duration;

use polykey_tests::gui::{App, Driver};

use crate::{create_node_with, FirstRun};

const PASSWORD_A: &str = "cedar-lantern-river-58";
const PASSWORD_B: &str = "pebble-sonnet-quartz-26";

/// Wait until the script returns true (bounded).
pub(crate) async fn until(app: &App, what: &str, script: &str) {
    for _ in 0..300 {
        if app.execute(script, Vec::new()).await == serde_json::Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

pub(crate) fn shows(test_id: &str, text: &str) -> String {
    format!(
        "return [...document.querySelectorAll('[data-testid=\"{test_id}\"]')].some(e => e.textContent.includes({text:?}));"
    )
}

pub(crate) fn count_is(test_id: &str, n: usize) -> String {
    format!("return document.querySelectorAll('[data-testid=\"{test_id}\"]').length === {n};")
}

/// Click the element with `data-testid` that shows `text`.
pub(crate) async fn click_with_text(app: &App, test_id: &str, text: &str) {
    let script = format!(
        "const e = [...document.querySelectorAll('[data-testid=\"{test_id}\"]')].find(e => e.textContent.includes({text:?}));
         if (e) e.click(); return !!e;"
    );
    until(app, &format!("{test_id} {text:?} is clicked"), &script).await;
}

/// How many devices the app's node lists, asked through its own IPC (for a
/// screen that shows no device list, such as the first-run join).
async fn node_device_count(app: &App) -> i64 {
    let script = "const done = arguments[arguments.length - 1];
        window.__TAURI_INTERNALS__.invoke('devices').then((d) => done(d.length), (e) => done(String(e.message ?? e)));";
    let answer = app.execute_async(script, Vec::new()).await;
    answer
        .as_i64()
        .unwrap_or_else(|| panic!("listing devices failed: {answer}"))
}

/// A login titled `title` in `folder`.
pub(crate) async fn add_login(app: &App, folder: &str, title: &str) {
    app.click("new-secret").await;
    app.select("item-type", "login").await;
    app.type_into("edit-folder", folder).await;
    app.type_into("edit-title", title).await;
    app.type_into("edit-username", "alice").await;
    app.type_into("edit-password", "pw-for-tests-1").await;
    app.click("save-secret").await;
    app.wait_for_text("secret-title", title).await;
}

#[tokio::test]
async fn two_devices_pair_after_both_confirm_the_digits_restore_a_deleted_vault_and_one_removes_the_other(
) {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let driver_a = Driver::start(dir_a.path()).await;
    let driver_b = Driver::start(dir_b.path()).await;

    // Device A: a node (with its first vault, "Personal"), a login.
    let a = driver_a.launch().await;
    create_node_with(&a, PASSWORD_A, FirstRun::Create, false).await;
    a.wait_for_text("vault-item", "Personal").await;
    add_login(&a, "github", "GitHub").await;

    // A is named at setup after the computer; renamed "Laptop A" here.
    let suggested = polykey_node::names::suggested_name();
    a.click("devices-button").await;
    until(&a, "A is named at setup", &shows("device-name", &suggested)).await;
    a.click("rename-device").await;
    a.type_into("device-name-input", "Laptop A").await;
    a.click("device-name-save").await;
    until(&a, "A is renamed", &shows("device-name", "Laptop A")).await;

    // A shows an invitation: QR code, code, words, time left.
    a.click("add-device").await;
    a.find("invitation").await;
    let code = a
        .execute(
            "return document.querySelector('[data-testid=\"invitation-code\"]').value;",
            Vec::new(),
        )
        .await;
    let code = code.as_str().expect("the code is text").to_owned();
    assert!(code.starts_with("polykey-pair:"), "{code}");
    assert_eq!(a.text("invitation-words").await.split(' ').count(), 4);
    // "Copy code" copies it like a password (kept out of clipboard history,
    // cleared later): it is on the clipboard until the pairing ends.
    a.click("invitation-copy").await;
    let mut copied = None;
    for _ in 0..50 {
        copied = driver_a.clipboard_text();
        if copied.as_deref() == Some(code.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        copied.as_deref(),
        Some(code.as_str()),
        "the code was not copied"
    );
    a.screenshot("20-add-device").await;

    // Device B, first run: "Join my other device", make its node, paste.
    let b = driver_b.launch().await;
    create_node_with(&b, PASSWORD_B, FirstRun::Join, false).await;
    b.type_into("join-code", &code).await;
    b.click("join-submit").await;

    // B shows six digits; nothing is recorded on either device yet.
    let fingerprint = b.text("join-fingerprint").await;
    assert_eq!(fingerprint.len(), 7, "{fingerprint}");
    b.screenshot("21-join-compare-digits").await;
    assert_eq!(
        a.count("device-row").await,
        1,
        "A lists B before any confirmation"
    );
    assert_eq!(
        node_device_count(&b).await,
        1,
        "B lists A before any confirmation"
    );

    // B says they match: A shows the same digits and asks; B waits for A,
    // and still neither lists the other.
    b.click("join-match").await;
    b.find("join-waiting").await;
    a.wait_for_text("pairing-fingerprint", &fingerprint).await;
    assert_eq!(
        b.text("join-fingerprint").await,
        fingerprint,
        "B still shows the digits"
    );
    a.screenshot("21-invite-compare-digits").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        a.count("device-row").await,
        1,
        "A lists B before A confirmed"
    );
    assert_eq!(
        node_device_count(&b).await,
        1,
        "B lists A before A confirmed"
    );
    assert_eq!(
        b.count("join-done").await,
        0,
        "B finished before A confirmed"
    );

    // A says they match: the pairing is recorded on both.
    a.click("pairing-match").await;
    a.find("invitation-paired").await;
    b.find("join-done").await;
    // The used code leaves A's clipboard once the pairing is over.
    let mut left = false;
    for _ in 0..50 {
        if driver_a.clipboard_text().as_deref() != Some(code.as_str()) {
            left = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left, "the used pairing code is still on the clipboard");
    until(&a, "A lists B", &count_is("device-row", 2)).await;

    // B opens its vaults: A's vault and login are there.
    b.click("join-continue").await;
    b.wait_for_text("vault-item", "Personal").await;
    until(&b, "B lists A's login", &shows("secret-item", "GitHub")).await;

    // A secret made on B shows on A, without reloading anything.
    add_login(&b, "email", "Mail from B").await;
    a.click("vault-item").await;
    until(
        &a,
        "A lists B's login",
        &shows("secret-item", "Mail from B"),
    )
    .await;

    // The `polykey` command talks to the running app (its client socket),
    // which holds the node directory, and sees the synced vault.
    let cli = polykey_tests::workspace_root().join("target/debug/polykey");
    assert!(
        cli.exists(),
        "build the CLI first: cargo build -p polykey-cli"
    );
    {
        let password_file = dir_a.path().join("password");
        std::fs::write(&password_file, format!("{PASSWORD_A}\n")).unwrap();
        let out = std::process::Command::new(&cli)
            .args(["secrets", "ls", "Personal"])
            .env(polykey_node::NODE_PATH_ENV, dir_a.path())
            .env("POLYKEY_PASSWORD_FILE", &password_file)
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            listed.contains("github") && listed.contains("email"),
            "{listed}"
        );
    }

    // Names, not ids: B's history of A's login says it was made on
    // "Laptop A", and A's of B's on B's (the computer's name, offered at
    // B's setup).
    click_with_text(&b, "secret-item", "GitHub").await;
    b.click("show-history").await;
    until(
        &b,
        "B's history names A",
        &shows("version-author", "on Laptop A"),
    )
    .await;
    b.screenshot("22-history-device-name").await;
    click_with_text(&a, "secret-item", "Mail from B").await;
    let on_b = format!("on {suggested}");
    a.click("show-history").await;
    until(&a, "A's history names B", &shows("version-author", &on_b)).await;

    // B lists A, by name, as an online device and says it is synced.
    b.click("devices-button").await;
    until(&b, "B shows two devices", &count_is("device-row", 2)).await;
    until(&b, "B lists A by name", &shows("device-name", "Laptop A")).await;
    until(
        &b,
        "B says it is synced",
        &shows("sync-indicator", "Synced with Laptop A"),
    )
    .await;
    b.screenshot("22-devices").await;

    // A deletes the vault: the dialog says where it goes; it leaves B too.
    a.click("delete-vault").await;
    let dialog = a.text("delete-vault-dialog").await;
    assert!(dialog.contains("Recently deleted"), "{dialog}");
    a.click("delete-vault-dialog-confirm").await;
    until(
        &a,
        "A no longer lists the vault",
        &count_is("vault-item", 0),
    )
    .await;
    until(
        &b,
        "B no longer lists the vault",
        &count_is("vault-item", 0),
    )
    .await;

    // A's Recently deleted has it, deleted by this device, 30 days left.
    a.click("recently-deleted").await;
    a.wait_for_text("deleted-vault-name", "Personal").await;
    let row = a.text("deleted-vault").await;
    assert!(row.contains("by this device"), "{row}");
    assert_eq!(a.text("deleted-vault-days-left").await, "30 days left");
    a.screenshot("23-recently-deleted").await;

    // Restored on A, it is back on A and on B, with its secrets.
    a.click("restore-vault").await;
    a.wait_for_text("vault-item", "Personal").await;
    until(
        &b,
        "B lists the restored vault",
        &shows("vault-item", "Personal"),
    )
    .await;
    b.click("vault-item").await;
    until(
        &b,
        "B lists the restored login",
        &shows("secret-item", "GitHub"),
    )
    .await;

    // A removes B through the dialog, which says what removing does.
    a.click("devices-button").await;
    until(&a, "A shows two devices", &count_is("device-row", 2)).await;
    a.click("remove-device").await;
    let dialog = a.text("remove-device-dialog").await;
    assert!(
        dialog.contains("will be removed from all your devices and refused from now on"),
        "{dialog}"
    );
    a.screenshot("24-remove-device").await;
    // Remove waits until the app knows what removing B changes.
    until(
        &a,
        "Remove is enabled",
        "return !document.querySelector('[data-testid=\"remove-device-dialog-confirm\"]').disabled;",
    )
    .await;
    a.click("remove-device-dialog-confirm").await;
    until(&a, "B is off A's list", &count_is("device-row", 1)).await;
    until(
        &a,
        "the dialog closed",
        &count_is("remove-device-dialog", 0),
    )
    .await;
    a.quit().await;
    b.quit().await;
}

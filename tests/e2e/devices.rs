//! Two app instances, each with its own node directory, on one display:
//! the second joins the first on its first run by pasting the pairing code,
//! both show the same fingerprint, and each then shows the other's secrets.

use std::time::Duration;

use polykey_tests::gui::{App, Driver};

use crate::{create_node_with, FirstRun};

const PASSWORD_A: &str = "cedar-lantern-river-58";
const PASSWORD_B: &str = "pebble-sonnet-quartz-26";

/// Wait until the script returns true (bounded).
async fn until(app: &App, what: &str, script: &str) {
    for _ in 0..200 {
        if app.execute(script, Vec::new()).await == serde_json::Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

fn shows(test_id: &str, text: &str) -> String {
    format!(
        "return [...document.querySelectorAll('[data-testid=\"{test_id}\"]')].some(e => e.textContent.includes({text:?}));"
    )
}

async fn add_login(app: &App, path: &str, title: &str) {
    app.click("new-secret").await;
    app.select("item-type", "login").await;
    app.type_into("edit-path", path).await;
    app.type_into("edit-title", title).await;
    app.type_into("edit-username", "alice").await;
    app.type_into("edit-password", "pw-for-tests-1").await;
    app.click("save-secret").await;
    app.wait_for_text("secret-title", title).await;
}

#[tokio::test]
async fn a_second_device_joins_by_pasting_the_code_and_both_show_each_others_secrets() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let driver_a = Driver::start(dir_a.path()).await;
    let driver_b = Driver::start(dir_b.path()).await;

    // Device A: a node, a vault, a login.
    let a = driver_a.launch().await;
    create_node_with(&a, PASSWORD_A, FirstRun::Create, false).await;
    a.click("new-vault").await;
    a.type_into("new-vault-name", "Personal").await;
    a.click("new-vault-create").await;
    a.wait_for_text("vault-item", "Personal").await;
    add_login(&a, "github", "GitHub").await;

    // A shows an invitation: QR code, code, words, time left.
    a.click("devices-button").await;
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
    a.screenshot("20-add-device").await;

    // Device B, first run: "Join my other device", make its node, paste.
    let b = driver_b.launch().await;
    create_node_with(&b, PASSWORD_B, FirstRun::Join, false).await;
    b.type_into("join-code", &code).await;
    b.click("join-submit").await;
    let fingerprint = b.text("join-fingerprint").await;
    assert_eq!(fingerprint.len(), 7, "{fingerprint}");
    b.screenshot("21-joined").await;

    // Both screens show the same digits.
    a.wait_for_text("invitation-fingerprint", &fingerprint)
        .await;

    // B opens its vaults: A's vault and login are there.
    b.click("join-continue").await;
    b.wait_for_text("vault-item", "Personal").await;
    until(&b, "B lists A's login", &shows("secret-item", "GitHub")).await;

    // A secret made on B shows on A, without reloading anything.
    add_login(&b, "email", "Mail from B").await;
    until(&a, "A lists B's login", &shows("vault-item", "Personal")).await;
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

    // Each lists the other as an online device.
    b.click("devices-button").await;
    until(
        &b,
        "B shows two devices",
        "return document.querySelectorAll('[data-testid=\"device-row\"]').length === 2;",
    )
    .await;
    until(
        &b,
        "B says it is synced",
        &shows("sync-indicator", "Synced with 1 device"),
    )
    .await;
    b.screenshot("22-devices").await;
    a.quit().await;
    b.quit().await;
}

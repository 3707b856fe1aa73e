//! Moving in and out in the real app: a CSV another program wrote
//! imported through the wizard's mapping step; backups set up from
//! Settings (a folder and a passphrase, the first written at once),
//! restored from Settings and opened by another node with the passphrase.

use polykey_node::{KdfProfile, Node, NodeOptions};
use polykey_tests::gui::Driver;
use zeroize::Zeroizing;

use crate::devices::{shows, until};

const PASSWORD: &str = "amber-lantern-violin-36";
const PASSPHRASE: &str = "harbour kettle meadow ninety";

fn options() -> NodeOptions {
    NodeOptions {
        kdf: KdfProfile::FastForTests,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_csv_is_imported_through_the_wizard_and_a_backup_made_from_settings_restores_elsewhere() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node_dir = dir.path().join("node");
    let usb = dir.path().join("usb");
    std::fs::create_dir(&usb).expect("folder");
    {
        let node = Node::open(&node_dir, options()).await.expect("open");
        node.create(PASSWORD.into()).await.expect("create");
        node.create_vault("Personal".into()).await.expect("vault");
        node.write_secret(
            "Personal".into(),
            "bank/pin".into(),
            Zeroizing::new(b"kiwi-4711".to_vec()),
        )
        .await
        .expect("write");
    }

    let driver = Driver::start(&node_dir).await;
    let app = driver.launch().await;
    app.type_into("unlock-password", PASSWORD).await;
    app.click("unlock-submit").await;
    app.wait_for_text("vault-item", "Personal").await;

    // A CSV whose columns no known export has: the wizard asks which
    // holds what, shows what comes in, and imports it as one version.
    let csv = dir.path().join("other.csv");
    std::fs::write(
        &csv,
        "Site,Login,Secret,Address\nForum,me,hunter2,https://forum.example\nShop,you,pw-2,\n",
    )
    .expect("csv");
    app.click("import-open").await;
    app.type_into("import-file", csv.to_str().expect("path"))
        .await;
    app.click("import-next").await;
    until(
        &app,
        "the mapping step",
        &shows("import-mapping-why", "columns"),
    )
    .await;
    // Columns are chosen by place (the options read as their names).
    app.select("import-map-title", "#1").await;
    app.select("import-map-username", "#2").await;
    app.select("import-map-password", "#3").await;
    app.select("import-map-url", "#4").await;
    app.screenshot("23-import-mapping").await;
    app.click("import-map-next").await;
    until(
        &app,
        "the preview",
        &shows("import-summary", "2 items from a CSV export"),
    )
    .await;
    let preview = app.text("import-dialog").await;
    assert!(preview.contains("2 logins"), "{preview}");
    assert!(preview.contains("https://forum.example"), "{preview}");
    app.type_into("import-folder", "Imported").await;
    app.screenshot("24-import-preview").await;
    app.click("import-submit").await;
    until(
        &app,
        "the report",
        &shows("import-report", "Imported 2 items"),
    )
    .await;
    app.click("import-close").await;
    until(
        &app,
        "the imported logins listed",
        &shows("secret-item", "Forum"),
    )
    .await;
    until(&app, "both", &shows("secret-item", "Shop")).await;

    app.click("settings-button").await;
    app.click("backup-setup").await;
    app.type_into("backup-folder", usb.to_str().expect("path"))
        .await;
    app.select("backup-every", "168").await;
    app.type_into("backup-keep", "5").await;
    app.type_into("backup-passphrase", PASSPHRASE).await;
    app.type_into("backup-passphrase-again", "harbour kettle meadow")
        .await;
    app.click("backup-save").await;
    app.wait_for_text("backup-error", "The two passphrases differ.")
        .await;
    app.type_into("backup-passphrase", PASSPHRASE).await;
    app.type_into("backup-passphrase-again", PASSPHRASE).await;
    app.click("backup-save").await;
    until(
        &app,
        "the schedule shows",
        &shows("backup-status", "Every week"),
    )
    .await;
    until(
        &app,
        "the first backup shows",
        &shows("backup-last", "polykey-"),
    )
    .await;
    assert!(app
        .text("backup-status")
        .await
        .contains("keeping the newest 5"));
    app.screenshot("22-backups").await;

    let files: Vec<_> = std::fs::read_dir(&usb)
        .expect("read folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let file = files[0].clone();

    // Restored from Settings: the vault is here unchanged.
    app.click("backup-restore-open").await;
    app.type_into("backup-restore-file", file.to_str().expect("path"))
        .await;
    app.type_into("backup-restore-passphrase", "not the passphrase")
        .await;
    app.click("backup-restore-submit").await;
    until(
        &app,
        "a wrong passphrase is told",
        &shows("backup-restore-error", "Wrong passphrase"),
    )
    .await;
    app.type_into("backup-restore-passphrase", PASSPHRASE).await;
    app.click("backup-restore-submit").await;
    until(
        &app,
        "the restore reports",
        &shows("backup-restored", "Personal: here already, unchanged"),
    )
    .await;
    app.quit().await;
    drop(driver);

    // Another node opens it with the passphrase alone.
    let other = Node::open(&dir.path().join("other"), options())
        .await
        .expect("open");
    other.create(PASSWORD.into()).await.expect("create");
    other
        .restore_backup(file, PASSPHRASE.into())
        .await
        .expect("restore");
    let pin = other
        .get_secret("Personal".into(), "bank/pin".into(), None)
        .await
        .expect("restored secret");
    assert_eq!(pin.as_slice(), b"kiwi-4711");
}

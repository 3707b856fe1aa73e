//! Files in the real app, through the system's file dialogs (driven with
//! real X key presses): a binary secret saved byte for byte, readable only
//! by its owner; a file attached to an identity with a custom field, then
//! saved back out of it.

use std::time::Duration;

use polykey_node::{KdfProfile, Node, NodeOptions};
use polykey_tests::gui::Driver;
use zeroize::Zeroizing;

const PASSWORD: &str = "quartz-meadow-rocket-71";

/// Answer the GTK file dialog titled `title`: focus it, type the full
/// path (Ctrl+L opens its location field), press Enter.
async fn fill_file_dialog(driver: &Driver, title: &str, path: &std::path::Path) {
    let mut focused = false;
    for _ in 0..100 {
        if driver
            .xdotool(&["search", "--name", title, "windowfocus", "--sync"])
            .await
        {
            focused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(focused, "the dialog \"{title}\" never appeared");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(driver.xdotool(&["key", "ctrl+l"]).await);
    assert!(driver.xdotool(&["key", "ctrl+a"]).await);
    assert!(
        driver
            .xdotool(&["type", "--delay", "20", &path.display().to_string()])
            .await
    );
    assert!(driver.xdotool(&["key", "Return"]).await);
    // The first Enter may only take the location field's completion: Enter
    // again while the dialog is still there (focused first, so a key never
    // reaches the app).
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let open = driver
            .xdotool(&["search", "--name", title, "windowfocus", "--sync"])
            .await;
        if !open {
            return;
        }
        assert!(driver.xdotool(&["key", "Return"]).await);
    }
}

/// The file at `path` once it holds `len` bytes (within 10 s).
async fn file_of_len(path: &std::path::Path, len: usize) -> Option<Vec<u8>> {
    for _ in 0..100 {
        if let Ok(contents) = std::fs::read(path) {
            if contents.len() == len {
                return Some(contents);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test]
async fn a_binary_secret_is_saved_as_a_file_and_the_window_stays_on_the_app() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node_dir = dir.path().join("node");
    // Not UTF-8: every byte value, twice.
    let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    {
        let node = Node::open(
            &node_dir,
            NodeOptions {
                kdf: KdfProfile::FastForTests,
                ..Default::default()
            },
        )
        .await
        .expect("open");
        node.create(PASSWORD.into()).await.expect("create");
        node.create_vault("Files".into()).await.expect("vault");
        node.write_secret(
            "Files".into(),
            "keys/backup.bin".into(),
            Zeroizing::new(bytes.clone()),
        )
        .await
        .expect("write");
    }

    let driver = Driver::start(&node_dir).await;
    let app = driver.launch().await;
    app.type_into("unlock-password", PASSWORD).await;
    app.click("unlock-submit").await;
    app.wait_for_text("vault-item", "Files").await;
    app.click("secret-item").await;
    app.wait_for_text("secret-title", "backup.bin").await;
    assert!(app.text("binary-size").await.contains("512 bytes"));
    app.click("save-file").await;

    let target = dir.path().join("saved-backup.bin");
    fill_file_dialog(&driver, "Save secret as file", &target).await;

    let saved = file_of_len(&target, bytes.len()).await;
    assert_eq!(
        saved.as_deref(),
        Some(bytes.as_slice()),
        "the file holds the secret"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&target)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the file is private: {mode:o}");
    }
    app.find("notice").await;
    assert!(app.text("notice").await.contains("saved-backup.bin"));

    // The window never leaves the app's pages: a page (here on loopback,
    // which would see the request) is refused before anything is asked.
    let site = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    site.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/polykey-locked", site.local_addr().expect("addr"));
    app.execute(
        "window.location.href = arguments[0]",
        vec![serde_json::Value::String(url)],
    )
    .await;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(site.accept().is_err(), "the window went to another site");
    }
    assert!(app.text("secret-title").await.contains("backup.bin"));
    app.quit().await;
}

#[tokio::test]
async fn a_file_attached_to_an_identity_is_saved_with_it_and_saved_back_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node_dir = dir.path().join("node");
    {
        let node = Node::open(
            &node_dir,
            NodeOptions {
                kdf: KdfProfile::FastForTests,
                ..Default::default()
            },
        )
        .await
        .expect("open");
        node.create(PASSWORD.into()).await.expect("create");
        node.create_vault("Personal".into()).await.expect("vault");
    }
    // A scan to attach: not text, 100 KB.
    let scan: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let source = dir.path().join("passport-scan.pdf");
    std::fs::write(&source, &scan).expect("scan");

    let driver = Driver::start(&node_dir).await;
    let app = driver.launch().await;
    app.type_into("unlock-password", PASSWORD).await;
    app.click("unlock-submit").await;
    app.wait_for_text("vault-item", "Personal").await;
    app.click("new-secret").await;
    app.select("item-type", "identity").await;
    app.type_into("edit-title", "Passport").await;
    app.type_into("edit-full-name", "Ada Lovelace").await;
    app.type_into("edit-id-number", "X1234567").await;
    app.click("add-field").await;
    app.type_into("field-name", "Issuing office").await;
    app.type_into("field-value", "London").await;
    app.click("attach-file").await;
    fill_file_dialog(&driver, "Attach a file", &source).await;
    app.wait_for_text("attachment-name", "passport-scan.pdf")
        .await;
    app.screenshot("40-identity-with-field-and-attachment")
        .await;
    app.click("save-secret").await;

    app.wait_for_text("secret-title", "Passport").await;
    assert_eq!(app.text("field-custom-0").await, "London");
    assert!(app.text("field-id-number").await.contains("••••"));
    app.wait_for_text("attachment", "passport-scan.pdf").await;
    // One item in the list: the file is part of it.
    assert_eq!(app.count("secret-item").await, 1);
    app.screenshot("41-identity-view").await;

    app.click("save-attachment").await;
    let target = dir.path().join("out").join("scan-copy.pdf");
    std::fs::create_dir_all(target.parent().expect("parent")).expect("out dir");
    fill_file_dialog(&driver, "Save attachment", &target).await;
    assert_eq!(
        file_of_len(&target, scan.len()).await.as_deref(),
        Some(scan.as_slice()),
        "the saved file is the attached one"
    );
    app.quit().await;
}

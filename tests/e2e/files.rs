//! A binary secret in the real app: shown as a file, saved through the
//! system's save dialog (driven with real X key presses) byte for byte,
//! readable only by its owner.

use std::time::Duration;

use polykey_node::{KdfProfile, Node, NodeOptions};
use polykey_tests::gui::Driver;
use zeroize::Zeroizing;

const PASSWORD: &str = "quartz-meadow-rocket-71";

#[tokio::test]
async fn a_binary_secret_is_saved_as_a_file() {
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

    // The GTK save dialog: focus it, type a full path, press Enter.
    let target = dir.path().join("saved-backup.bin");
    let mut focused = false;
    for _ in 0..100 {
        if driver
            .xdotool(&[
                "search",
                "--name",
                "Save secret as file",
                "windowfocus",
                "--sync",
            ])
            .await
        {
            focused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(focused, "the save dialog never appeared");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(driver.xdotool(&["key", "ctrl+a"]).await);
    assert!(
        driver
            .xdotool(&["type", "--delay", "20", &target.display().to_string()])
            .await
    );
    assert!(driver.xdotool(&["key", "Return"]).await);

    let mut saved = None;
    for _ in 0..100 {
        if let Ok(contents) = std::fs::read(&target) {
            if contents.len() == bytes.len() {
                saved = Some(contents);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    app.quit().await;
}

//! Everything in the node directory is private from the moment it exists:
//! files 0600, directories 0700, whatever the umask, and the atomic write
//! of the key file never follows a symlink planted in the directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::{open, PASSWORD};

/// Every entry under `root` (and `root` itself) with its permission bits.
fn modes(root: &Path) -> Vec<(String, bool, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        out.push((
            path.display().to_string(),
            meta.is_dir(),
            meta.permissions().mode() & 0o777,
        ));
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        }
    }
    out
}

fn assert_private(root: &Path) {
    for (path, is_dir, mode) in modes(root) {
        let want = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{path} is {mode:o}");
    }
}

#[tokio::test]
async fn every_file_in_a_fresh_node_directory_is_private() {
    let parent = tempfile::tempdir().unwrap();
    // The umask the test runs under (022 by default) would leave files
    // 0644; note it so a failure is read right.
    let probe = parent.path().join("probe");
    std::fs::File::create(&probe).unwrap();
    let ambient = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
    std::fs::remove_file(&probe).unwrap();

    let path = parent.path().join("nested").join("node");
    let node = open(&path).await;
    node.create(PASSWORD.into()).await.unwrap();
    node.create_vault("Personal".into()).await.unwrap();
    node.write_secret(
        "Personal".into(),
        "bank/pin".into(),
        Zeroizing::new(b"kiwi-4711-pear".to_vec()),
    )
    .await
    .unwrap();
    node.set_preferences(node.preferences()).await.unwrap();
    node.lock().await.unwrap();
    node.unlock(PASSWORD.into()).await.unwrap();
    node.change_password(PASSWORD.into(), "a new password 2".into())
        .await
        .unwrap();
    node.lock().await.unwrap();
    assert!(path.join("root_key.json").exists());
    assert!(path.join("db.redb").exists());
    assert_private(&path);
    // The parents created for it are private too.
    assert_eq!(
        std::fs::metadata(parent.path().join("nested"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700,
        "(ambient umask gives {ambient:o})"
    );
}

#[tokio::test]
async fn an_existing_open_directory_is_made_private() {
    let parent = tempfile::tempdir().unwrap();
    let path = parent.path().join("node");
    std::fs::create_dir(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let node = open(&path).await;
    node.create(PASSWORD.into()).await.unwrap();
    node.lock().await.unwrap();
    assert_private(&path);

    // Files an older version left readable by others are made private
    // when the directory is taken again.
    drop(node);
    for name in ["db.redb", "root_key.json", "node.lock"] {
        std::fs::set_permissions(path.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let node = open(&path).await;
    assert_private(&path);
    node.unlock(PASSWORD.into()).await.unwrap();
}

#[tokio::test]
async fn a_symlink_at_the_temporary_key_file_name_is_not_followed() {
    let parent = tempfile::tempdir().unwrap();
    let path = parent.path().join("node");
    std::fs::create_dir(&path).unwrap();
    let victim = parent.path().join("victim");
    std::fs::write(&victim, b"untouched").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The name the key file was written through before, and a dangling
    // link that would create a file elsewhere.
    std::os::unix::fs::symlink(&victim, path.join("root_key.json.tmp")).unwrap();
    let elsewhere = parent.path().join("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, path.join(".root_key.json.tmp")).unwrap();

    let node = open(&path).await;
    node.create(PASSWORD.into()).await.unwrap();
    node.change_password(PASSWORD.into(), "a new password 2".into())
        .await
        .unwrap();
    node.lock().await.unwrap();

    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    assert_eq!(
        std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert!(!elsewhere.exists());
    let key = std::fs::symlink_metadata(path.join("root_key.json")).unwrap();
    assert!(key.file_type().is_file());
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    // The node opens with the key it wrote.
    drop(node);
    let node = open(&path).await;
    node.unlock("a new password 2".into()).await.unwrap();
}

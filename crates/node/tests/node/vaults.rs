use polykey_node::{NodeError, VaultError};
use zeroize::Zeroizing;

use crate::{open_with_vault, snapshot, PASSWORD};

#[tokio::test]
async fn vaults_through_the_node_follow_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_with_vault(dir.path(), "Personal").await;
    node.write_secret(
        "Personal".into(),
        "bank/pin".into(),
        Zeroizing::new(b"kiwi-4711-pear".to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(
        node.list_secrets("Personal".into(), None).await.unwrap(),
        ["bank/pin"]
    );

    node.lock().await.unwrap();
    assert!(matches!(
        node.get_secret("Personal".into(), "bank/pin".into(), None)
            .await,
        Err(NodeError::Locked)
    ));
    node.unlock(PASSWORD.into()).await.unwrap();
    let value = node
        .get_secret("Personal".into(), "bank/pin".into(), None)
        .await
        .unwrap();
    assert_eq!(value.as_slice(), b"kiwi-4711-pear");

    let err = node
        .write_secret(
            "Personal".into(),
            "../escape".into(),
            Zeroizing::new(b"x".to_vec()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, NodeError::Vault(VaultError::InvalidPath(_))));
    assert_eq!(err.code(), polykey_node::api::ErrorCode::InvalidPath);
    let err = node.list_secrets("Nope".into(), None).await.unwrap_err();
    assert_eq!(err.code(), polykey_node::api::ErrorCode::UnknownVault);
    assert_eq!(
        node.vault_log("Personal".into(), None).await.unwrap().len(),
        2
    );

    drop(node);
    for (path, bytes) in snapshot(dir.path()) {
        for needle in ["Personal", "bank/pin", "kiwi-4711-pear"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds {needle}",
                path.display()
            );
        }
    }
}

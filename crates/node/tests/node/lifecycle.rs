use polykey_node::{NodeError, NodeState, Password};

use crate::{open, open_with_vault, snapshot, DEVICE_NAME, PASSWORD};

#[tokio::test]
async fn create_lock_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    assert_eq!(node.status().state, NodeState::Uninitialised);
    assert!(matches!(
        node.unlock(PASSWORD.into()).await,
        Err(NodeError::NotInitialised)
    ));

    let created = node.create(PASSWORD.into()).await.unwrap();
    assert_eq!(created.recovery_code.expose_secret().split(' ').count(), 24);
    let status = node.status();
    assert_eq!(status.state, NodeState::Unlocked);
    assert_eq!(status.node_id, Some(created.node_id));
    node.set_device_name(DEVICE_NAME.into()).await.unwrap();

    node.lock().await.unwrap();
    assert_eq!(node.status().state, NodeState::Locked);
    assert_eq!(
        node.status().node_id,
        Some(created.node_id),
        "id is known while locked"
    );
    assert!(matches!(node.device_name().await, Err(NodeError::Locked)));

    node.unlock(PASSWORD.into()).await.unwrap();
    assert_eq!(
        node.device_name().await.unwrap().as_deref(),
        Some(DEVICE_NAME)
    );

    // A later process sees the same node, locked.
    drop(node);
    let node = open(dir.path()).await;
    assert_eq!(node.status().state, NodeState::Locked);
    assert_eq!(node.status().node_id, Some(created.node_id));
    node.unlock(PASSWORD.into()).await.unwrap();
    assert_eq!(
        node.device_name().await.unwrap().as_deref(),
        Some(DEVICE_NAME)
    );
}

#[tokio::test]
async fn creating_over_an_existing_node_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let created = node.create(PASSWORD.into()).await.unwrap();
    assert!(matches!(
        node.create(PASSWORD.into()).await,
        Err(NodeError::AlreadyExists)
    ));
    drop(node);
    let before = snapshot(dir.path());
    let node = open(dir.path()).await;
    assert!(matches!(
        node.create("another password".into()).await,
        Err(NodeError::AlreadyExists)
    ));
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(node.status().node_id, Some(created.node_id));
}

#[tokio::test]
async fn a_creation_cut_off_before_its_key_file_does_not_block_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    node.create(PASSWORD.into()).await.unwrap();
    drop(node);
    // A crash between the store and the key file leaves the store and the
    // mark of a creation under way, no key file.
    std::fs::remove_file(dir.path().join("root_key.json")).unwrap();
    std::fs::write(dir.path().join("creating"), b"").unwrap();
    let node = open(dir.path()).await;
    assert_eq!(node.status().state, NodeState::Uninitialised);
    let created = node.create(PASSWORD.into()).await.unwrap();
    assert_eq!(node.status().state, NodeState::Unlocked);
    assert!(!dir.path().join("creating").exists());
    drop(node);
    let node = open(dir.path()).await;
    node.unlock(PASSWORD.into()).await.unwrap();
    assert_eq!(node.status().node_id, Some(created.node_id));
}

#[tokio::test]
async fn a_store_whose_key_file_was_lost_is_kept_for_the_recovery_code() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let created = node.create(PASSWORD.into()).await.unwrap();
    node.set_device_name(DEVICE_NAME.into()).await.unwrap();
    drop(node);
    // A creation's mark left behind (its removal failed) goes at the
    // next open, while the key file is there.
    std::fs::write(dir.path().join("creating"), b"").unwrap();
    drop(open(dir.path()).await);
    assert!(!dir.path().join("creating").exists());
    std::fs::remove_file(dir.path().join("root_key.json")).unwrap();
    let before = snapshot(dir.path());
    let node = open(dir.path()).await;
    assert!(matches!(
        node.create(PASSWORD.into()).await,
        Err(NodeError::AlreadyExists)
    ));
    assert_eq!(snapshot(dir.path()), before);
    let code = created.recovery_code.expose_secret();
    node.recover(&code, "a new password".into()).await.unwrap();
    assert_eq!(
        node.device_name().await.unwrap().as_deref(),
        Some(DEVICE_NAME)
    );
}

#[tokio::test]
async fn wrong_password_is_refused_and_changes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    node.create(PASSWORD.into()).await.unwrap();
    node.set_device_name(DEVICE_NAME.into()).await.unwrap();
    drop(node);

    let before = snapshot(dir.path());
    let node = open(dir.path()).await;
    let err = node.unlock("not the password".into()).await.unwrap_err();
    assert!(matches!(err, NodeError::WrongPassword), "{err:?}");
    assert_eq!(err.to_string(), "wrong password");
    assert_eq!(err.code(), polykey_node::api::ErrorCode::WrongPassword);
    assert_eq!(node.status().state, NodeState::Locked);
    drop(node);
    assert_eq!(snapshot(dir.path()), before, "every file is byte-identical");
}

#[tokio::test]
async fn recover_with_code_and_new_password_reaches_same_id_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let created = node.create(PASSWORD.into()).await.unwrap();
    node.set_device_name(DEVICE_NAME.into()).await.unwrap();
    node.lock().await.unwrap();

    let code = created.recovery_code.expose_secret();
    assert!(matches!(
        node.recover(&code, "short".into()).await,
        Err(NodeError::PasswordTooShort { min: 8 })
    ));
    node.recover(&code, "a brand new password".into())
        .await
        .unwrap();
    assert_eq!(node.status().node_id, Some(created.node_id));
    assert_eq!(
        node.device_name().await.unwrap().as_deref(),
        Some(DEVICE_NAME)
    );

    node.lock().await.unwrap();
    assert!(matches!(
        node.unlock(PASSWORD.into()).await,
        Err(NodeError::WrongPassword)
    ));
    node.unlock("a brand new password".into()).await.unwrap();
}

#[tokio::test]
async fn recover_on_a_new_device_restores_the_identity() {
    let first = tempfile::tempdir().unwrap();
    let node = open(first.path()).await;
    let created = node.create(PASSWORD.into()).await.unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let other = open(fresh.path()).await;
    other
        .recover(&created.recovery_code.expose_secret(), PASSWORD.into())
        .await
        .unwrap();
    assert_eq!(other.status().node_id, Some(created.node_id));
}

#[tokio::test]
async fn recovery_code_of_another_node_is_refused_and_changes_nothing() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let node_a = open(a.path()).await;
    node_a.create(PASSWORD.into()).await.unwrap();
    node_a.lock().await.unwrap();
    let node_b = open(b.path()).await;
    let code_b = node_b.create(PASSWORD.into()).await.unwrap().recovery_code;
    let before = snapshot(a.path());
    assert!(matches!(
        node_a
            .recover(&code_b.expose_secret(), "new password!".into())
            .await,
        Err(NodeError::RecoveryCodeMismatch)
    ));
    assert!(matches!(
        node_a.recover("abandon art", "new password!".into()).await,
        Err(NodeError::InvalidRecoveryCode(_))
    ));
    assert_eq!(snapshot(a.path()), before);
}

#[tokio::test]
async fn change_password_old_fails_new_works() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    node.create(PASSWORD.into()).await.unwrap();
    assert!(matches!(
        node.change_password("wrong one!".into(), "next password".into())
            .await,
        Err(NodeError::WrongPassword)
    ));
    node.change_password(PASSWORD.into(), "next password".into())
        .await
        .unwrap();
    node.lock().await.unwrap();
    assert!(matches!(
        node.unlock(PASSWORD.into()).await,
        Err(NodeError::WrongPassword)
    ));
    node.unlock(Password::from("next password")).await.unwrap();
    // And it survives a restart.
    drop(node);
    let node = open(dir.path()).await;
    node.unlock("next password".into()).await.unwrap();
}

#[tokio::test]
async fn damaged_key_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    node.create(PASSWORD.into()).await.unwrap();
    drop(node);
    std::fs::write(dir.path().join("root_key.json"), b"{ not json").unwrap();
    assert!(matches!(
        polykey_node::Node::open(dir.path(), crate::options()).await,
        Err(NodeError::KeyFileCorrupt)
    ));
}

#[tokio::test]
async fn a_store_changed_while_locked_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_with_vault(dir.path(), "Personal").await;
    node.lock().await.unwrap();
    drop(node);
    // Edited with plain redb while locked: the binding to the root secret
    // removed (as a store planted without the password would lack it).
    {
        let db = redb::Database::open(dir.path().join("db.redb")).unwrap();
        let meta: redb::TableDefinition<'_, &str, &[u8]> =
            redb::TableDefinition::new("polykey_meta");
        let txn = db.begin_write().unwrap();
        txn.open_table(meta).unwrap().remove("binding").unwrap();
        txn.commit().unwrap();
    }
    let node = open(dir.path()).await;
    let refused = node.unlock(PASSWORD.into()).await.unwrap_err();
    assert!(matches!(refused, NodeError::StoreTampered), "{refused:?}");
    assert_eq!(refused.code(), polykey_node::api::ErrorCode::Tampered);
    let message = refused.to_string();
    assert!(
        message.contains("changed while Polykey was locked") && message.contains("recover"),
        "{message}"
    );
    assert_eq!(node.status().state, polykey_node::NodeState::Locked);
}

#[tokio::test]
async fn auto_lock_waits_for_idleness_and_drops_the_session() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    node.create(PASSWORD.into()).await.unwrap();
    node.set_device_name("x".into()).await.unwrap();
    // Just used: not idle yet.
    assert!(!node.lock_if_idle(Duration::from_secs(60)).await.unwrap());
    assert_eq!(node.status().state, NodeState::Unlocked);
    tokio::time::sleep(Duration::from_millis(200)).await;
    node.touch();
    assert!(!node.lock_if_idle(Duration::from_millis(150)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(node.lock_if_idle(Duration::from_millis(150)).await.unwrap());
    assert_eq!(node.status().state, NodeState::Locked);
    assert!(matches!(node.device_name().await, Err(NodeError::Locked)));
    // Locked already: nothing more to do.
    assert!(!node.lock_if_idle(Duration::ZERO).await.unwrap());
}

#[tokio::test]
async fn key_encryption_key_unlocks_until_the_password_changes() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    node.create(PASSWORD.into()).await.unwrap();
    assert!(matches!(
        node.key_encryption_key("wrong password".into()).await,
        Err(NodeError::WrongPassword)
    ));
    let kek = node.key_encryption_key(PASSWORD.into()).await.unwrap();
    node.lock().await.unwrap();
    node.unlock_with_key(kek.clone()).await.unwrap();
    assert_eq!(node.status().state, NodeState::Unlocked);

    node.change_password(PASSWORD.into(), "a different one".into())
        .await
        .unwrap();
    node.lock().await.unwrap();
    assert!(matches!(
        node.unlock_with_key(kek).await,
        Err(NodeError::StaleKey)
    ));
    assert_eq!(node.status().state, NodeState::Locked);
}

#[tokio::test]
async fn a_device_name_is_one_trimmed_line_and_renames_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    node.create(PASSWORD.into()).await.unwrap();
    assert_eq!(node.device_name().await.unwrap(), None);
    for bad in ["", "   ", "two\nlines", &"x".repeat(65)] {
        let refused = node.set_device_name(bad.into()).await;
        assert!(
            matches!(&refused, Err(NodeError::Invalid(m)) if m.contains("1 to 64 characters")),
            "{bad:?}: {refused:?}"
        );
    }
    assert_eq!(node.device_name().await.unwrap(), None, "nothing kept");
    node.set_device_name("  Laptop  ".into()).await.unwrap();
    assert_eq!(node.device_name().await.unwrap().as_deref(), Some("Laptop"));
    // Each rename is a claim every device keeps: at most MAX_RENAMES, and
    // the same name again is no rename.
    for i in 1..polykey_node::names::MAX_RENAMES {
        node.set_device_name(format!("Laptop {i}")).await.unwrap();
    }
    node.set_device_name(format!("Laptop {}", polykey_node::names::MAX_RENAMES - 1))
        .await
        .unwrap();
    let refused = node.set_device_name("One more".into()).await;
    assert!(
        matches!(&refused, Err(NodeError::Invalid(m)) if m.contains("renamed 100 times")),
        "{refused:?}"
    );
    assert_eq!(
        node.device_name().await.unwrap().as_deref(),
        Some("Laptop 99")
    );
}

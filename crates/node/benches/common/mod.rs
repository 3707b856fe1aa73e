//! Helpers the node benches share: devices on loopback, pairing, waiting
//! for a vault's head.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use polykey_node::{KdfProfile, NetworkOptions, Node, NodeOptions};
use tempfile::TempDir;
use zeroize::Zeroizing;

const PASSWORD: &str = "bench password 1";

pub struct Device {
    pub node: Node,
    _dir: TempDir,
}

pub async fn device() -> Device {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = NodeOptions {
        kdf: KdfProfile::Default,
        network: Some(NetworkOptions::loopback()),
    };
    let node = Node::open(&dir.path().join("node"), options)
        .await
        .expect("open");
    node.create(PASSWORD.into()).await.expect("create");
    Device { node, _dir: dir }
}

pub async fn head(node: &Node, vault: &str) -> Option<String> {
    let log = node.vault_log(vault.into(), Some(1)).await.ok()?;
    log.first().map(|c| c.id.clone())
}

/// Poll (bounded) until `node`'s copy of `vault` is at `want`.
pub async fn wait_for_head(node: &Node, vault: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if head(node, vault).await.as_deref() == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the vault never arrived");
}

pub async fn pair(a: &Node, b: &Node) {
    let code = a.invite().await.expect("invite").to_code();
    b.join(&code).await.expect("join");
    // Both people confirm the digits: the joiner first, then the inviter
    // once it shows them.
    let joiner = b.clone();
    let joining = tokio::spawn(async move { joiner.confirm_join(true).await });
    while !matches!(
        a.pairing_state(),
        polykey_node::PairingState::Confirming { .. }
    ) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.confirm_pairing(true).expect("confirm");
    joining.await.expect("task").expect("join confirmed");
}

pub async fn write(node: &Node, vault: &str, path: &str, value: Vec<u8>) -> String {
    node.write_secret(vault.into(), path.into(), Zeroizing::new(value))
        .await
        .expect("write")
}

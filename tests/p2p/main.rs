//! Real nodes on 127.0.0.1, each with its own node directory: pairing with
//! the invitation code, automatic two-way sync, merges and conflicts, a third
//! device, and every refusal a hostile or unpaired peer must meet.
#![allow(clippy::unwrap_used)]

mod attacks;
mod hostile;
mod idle;
mod people;
mod relay;
mod rogue;
mod sharing;
mod sync;

use std::future::Future;
use std::time::Duration;

use polykey_node::{KdfProfile, NetworkOptions, Node, NodeOptions, Password};
use tempfile::TempDir;
use zeroize::Zeroizing;

pub const PASSWORD: &str = "correct horse battery";

/// How long any wait in these tests may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct Device {
    pub node: Node,
    _dir: TempDir,
}

/// A new node, created and unlocked, on the loopback network.
pub async fn device() -> Device {
    device_and_keys().await.0
}

/// A new node as [`device`] makes it, and its root key (from the recovery
/// code shown at creation), for a test that opens its store itself.
pub async fn device_and_keys() -> (Device, polykey_keys::RootKeypair) {
    device_with(NetworkOptions::loopback()).await
}

/// A new node as [`device_and_keys`] makes it, on `network`.
pub async fn device_with(network: NetworkOptions) -> (Device, polykey_keys::RootKeypair) {
    let dir = tempfile::tempdir().unwrap();
    let options = NodeOptions {
        kdf: KdfProfile::FastForTests,
        network: Some(network),
    };
    let node = Node::open(&dir.path().join("node"), options).await.unwrap();
    let created = node.create(Password::new(PASSWORD.into())).await.unwrap();
    let keys = created.recovery_code.root_keypair();
    (Device { node, _dir: dir }, keys)
}

impl Device {
    pub fn id(&self) -> polykey_node::NodeId {
        self.node.status().node_id.unwrap()
    }

    /// Where this node listens on loopback.
    pub async fn loopback_address(&self) -> String {
        self.node
            .addresses()
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.contains("/127.0.0.1/"))
            .unwrap()
    }

    /// Connect to `other` at its loopback address (people find each other
    /// by contact code or the DHT; here, by address).
    pub async fn connect_to(&self, other: &Device) {
        self.node
            .connect(other.id(), other.loopback_address().await)
            .await
            .unwrap();
    }

    /// Create vault `name` holding the secret "wifi" (`value`), share it
    /// with the person `target` names (to write, or read only), and
    /// return its id.
    pub async fn share_new_vault(
        &self,
        name: &str,
        value: &str,
        target: &str,
        write: bool,
    ) -> String {
        let vault = self.node.create_vault(name.into()).await.unwrap();
        self.write(name, "wifi", value).await;
        self.node.share_vault(name, target, write).await.unwrap();
        vault.id.to_string()
    }

    pub async fn write(&self, vault: &str, path: &str, value: &str) -> String {
        self.node
            .write_secret(
                vault.into(),
                path.into(),
                Zeroizing::new(value.as_bytes().to_vec()),
            )
            .await
            .unwrap()
    }

    /// The secret's value, or `None` if absent.
    pub async fn read(&self, vault: &str, path: &str) -> Option<String> {
        let value = self
            .node
            .get_secret(vault.into(), path.into(), None)
            .await
            .ok()?;
        Some(String::from_utf8(value.to_vec()).unwrap())
    }

    pub async fn secrets(&self, vault: &str) -> Vec<String> {
        self.node
            .list_secrets(vault.into(), None)
            .await
            .unwrap_or_default()
    }

    pub async fn head(&self, vault: &str) -> Option<String> {
        let log = self.node.vault_log(vault.into(), Some(1)).await.ok()?;
        log.first().map(|c| c.id.clone())
    }

    /// The NodeIds of the devices this one lists (itself included).
    pub async fn device_ids(&self) -> Vec<polykey_node::NodeId> {
        self.node
            .devices()
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.node_id)
            .collect()
    }

    pub async fn vault_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .node
            .vaults()
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        names.sort();
        names
    }
}

/// Two paired devices: A made vault `name`, and B has received it.
pub async fn paired_with_vault(name: &str) -> (Device, Device) {
    let (a, b) = (device().await, device().await);
    a.node.create_vault(name.into()).await.unwrap();
    pair(&a, &b).await;
    eventually("B has the vault", &[&a, &b], || async {
        b.vault_names().await == [name]
    })
    .await;
    (a, b)
}

/// Pair `joiner` into `inviter`'s gestalt with the invitation code, the
/// person confirming the digits on both devices.
pub async fn pair(inviter: &Device, joiner: &Device) {
    let invitation = inviter.node.invite().await.unwrap();
    let (who, fingerprint) = joiner.node.join(&invitation.to_code()).await.unwrap();
    assert_eq!(who, inviter.id());
    confirm_both(inviter, joiner, &fingerprint).await;
}

/// After `join`: nothing is recorded until both confirm; the joiner
/// confirms first, the inviter shows the same digits, then confirms.
pub async fn confirm_both(inviter: &Device, joiner: &Device, fingerprint: &str) {
    assert!(
        !joiner.device_ids().await.contains(&inviter.id()),
        "nothing recorded yet"
    );
    // Both screens show the digits before either person confirms.
    eventually("the inviter shows the digits", &[inviter], || async {
        matches!(
            inviter.node.pairing_state(),
            polykey_node::PairingState::Confirming { .. }
        )
    })
    .await;
    let joining = {
        let node = joiner.node.clone();
        tokio::spawn(async move { node.confirm_join(true).await })
    };
    eventually("the inviter still shows the digits", &[inviter], || async {
        matches!(
            inviter.node.pairing_state(),
            polykey_node::PairingState::Confirming { .. }
        )
    })
    .await;
    match inviter.node.pairing_state() {
        polykey_node::PairingState::Confirming {
            device,
            fingerprint: theirs,
        } => {
            assert_eq!(device, joiner.id());
            assert_eq!(theirs, fingerprint, "both screens show the same digits");
        }
        other => panic!("the inviter did not show the digits: {other:?}"),
    }
    assert!(
        !inviter.device_ids().await.contains(&joiner.id()),
        "nothing recorded before confirming"
    );
    // An answer given before these digits were on the screen (the CLI
    // read the state while it still waited) accepts nothing.
    assert!(inviter.node.confirm_pairing_of(true, Some("")).is_err());
    assert!(matches!(
        inviter.node.pairing_state(),
        polykey_node::PairingState::Confirming { .. }
    ));
    inviter
        .node
        .confirm_pairing_of(true, Some(fingerprint))
        .unwrap();
    joining.await.unwrap().unwrap();
    eventually("the inviter sees the pairing", &[inviter], || async {
        matches!(
            inviter.node.pairing_state(),
            polykey_node::PairingState::Paired { .. }
        )
    })
    .await;
}

/// Wait until `check` holds, or fail with `what` and the sync status of
/// `devices` (their last error says why).
pub async fn eventually<F, Fut>(what: &str, devices: &[&Device], mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status: Vec<String> = devices
        .iter()
        .map(|d| format!("{:?}", d.node.sync_status()))
        .collect();
    panic!("timed out waiting until {what}; sync status: {status:?}");
}

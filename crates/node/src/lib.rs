//! The Polykey node: one object that owns a node directory and offers every
//! operation a front end needs.
//!
//! [`Node`] ties together the root key ([`polykey_keys`]) and the encrypted
//! store ([`polykey_db`]); the desktop app and the CLI call only this crate.
//! Its methods are async and run key derivation and storage on Tokio's
//! blocking pool. The serializable transport types for IPC live in [`api`].
//!
//! It does not draw windows, parse command lines or talk to the OS keyring;
//! those belong to the front ends.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Transport types that cross IPC: status, created node, error codes.
pub mod api;
/// Files attached to items: staged while editing, saved with the item.
pub mod attachments;
/// Encrypted backups of the node's vaults with their history.
pub mod backup;
/// The local client API for the CLI: a Unix socket, or a named pipe on Windows.
pub mod client_api;
/// Time that passes while the machine sleeps.
mod clock;
/// The node directory: its files, its lock, atomic writes.
pub mod dir;
/// Errors of node operations, each with a stable code.
pub mod error;
/// Moving out: a vault as a Bitwarden-compatible JSON or CSV file.
pub mod export;
/// Password health: weak, reused and old passwords.
mod health;
/// Linked identities: claiming an account, finding others' claims.
pub mod identities;
/// Moving in: other password managers' exports read into typed items.
pub mod import;
/// Secrets as forms: typed items, fields to copy, TOTP, the generator.
pub mod items;
/// Encrypt, decrypt, sign and verify with node keys.
pub mod keyops;
/// Looking another gestalt up: the person trusted here and its identities'
/// claims, checked now.
pub mod lookup;
/// Device names, claimed on each device's chain.
pub mod names;
/// The node itself: create, unlock, lock, recover, change password.
mod node;
/// Signed notifications between the devices of a gestalt.
mod notifications;
/// The node on the network: pairing, devices, sync.
mod peers;
/// Other people's gestalts trusted here, and their permissions.
pub mod people;
/// Preferences: timeouts, the quick-access shortcut, the tray.
pub mod preferences;
/// Search summaries, favourites, recently used secrets, quick copy.
mod quick;
/// Recently deleted vaults and secrets, and restoring them.
mod recently_deleted;
/// Vaults and secrets, through the unlocked node.
mod vaults;
/// JSON whose strings are wiped on drop, for requests and answers that
/// carry passwords and secrets.
pub mod wiped_json;

pub use dir::{default_node_path, NodeDir, NODE_PATH_ENV};
pub use error::NodeError;
pub use node::{Created, KdfProfile, Node, NodeOptions, NodeState, Status, MIN_PASSWORD_LEN};
pub use notifications::{Notification, ShareOffer};
pub use peers::{
    code_from_qr_image, sign_access, sign_shared, Device, DeviceDispute, DeviceNotice,
    NetworkOptions, PairingState, RemovalEffect, RemovedDevice, Shared, SyncStatus, VaultAccess,
    NOT_SHARED, RESYNC_EVERY,
};
pub use polykey_gestalts::pairing::Invitation;
pub use polykey_keys::{NodeId, Password, RecoveryCode};
pub use polykey_vaults::{
    Change, ChangeKind, CommitInfo, EntryKind, MergeConflict, MergeOutcome, SecretStat, VaultError,
    VaultInfo,
};
pub use preferences::Preferences;
pub use vaults::Conflict;

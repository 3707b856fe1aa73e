//! Vaults: git repositories of secrets, stored encrypted in the node's redb file.
//!
//! gix encodes and hashes every blob, tree and commit; the objects and refs
//! live in polykey-db, each sealed with the vault's own key (itself kept in
//! a record sealed by the DB key) under a keyed hash of the object id. A
//! mutation touches only the trees on its path, and its new objects and ref
//! update land in one transaction. Every commit is authored by the NodeId and
//! signed by the node key in the SSH signature format, so an exported
//! repository verifies with `git verify-commit`.
//!
//! This crate does not know about the network, the UI or passwords: callers
//! pass an open [`polykey_db::Db`] and, for mutations, the unlocked
//! [`polykey_keys::RootKeypair`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Collecting what no version of a vault needs.
mod collect;
/// Deleting vaults as signed, dated, reversible records; purging them later.
mod deletion;
/// Trees stored as deltas against an earlier version of the directory.
mod delta;
/// Errors of vault and secret operations.
mod error;
/// Writing a vault out as a plain bare git repository.
mod export;
/// Password and passphrase generation, strength estimates.
pub mod generate;
/// History: log, diff, versions.
mod history;
/// Typed items (login, note, card, SSH key) stored as one file.
pub mod items;
/// Three-way merge of two heads, per secret.
mod merge;
/// Encrypted object and ref storage for one vault.
mod objects;
/// Validated secret paths.
mod path;
/// RFC 6238 time-based one-time passwords.
pub mod totp;
/// Moving objects between copies of a vault, verified.
mod transfer;
/// Editing trees along a path.
mod tree;
/// Undoing what a removed device committed unseen by its remover.
mod undo;
/// Vault records and the operations on vaults and secrets.
mod vault;

#[cfg(test)]
mod testing;

pub use collect::Collected;
pub use deletion::{
    DeletedVault, Deletion, DELETION_SIGNATURE_DOMAIN, MAX_DELETIONS_PAGE, RECOVERY_WINDOW_MS,
    TOMBSTONE_LIFETIME_MS,
};
pub use error::VaultError;
pub use history::{Change, ChangeKind, CommitInfo, DeletedSecret, MAX_DELETED_SCAN_COMMITS};
pub use merge::{conflict_copy_path, conflict_original, MergeConflict, MergeOutcome, Relation};
pub use path::{SecretPath, MAX_PATH_LEN, MAX_SEGMENT_LEN, MAX_TREE_DEPTH};
pub use transfer::{
    kind_of_tag, kind_tag, Incoming, MayAuthor, Page, Part, RawObject, SendPlan, MAX_COMMIT_SIZE,
    MAX_IMPORT_OBJECTS, MAX_PARENTS, MAX_RECEIVE_BYTES, MAX_TREE_SIZE, PAGE_BYTES_PER_OBJECT,
    PART_CHUNKS,
};
pub use tree::{MAX_VERSION_ENTRIES, MAX_VERSION_PATH_BYTES};
pub use undo::{Removed, MAX_UNDONE_PER_COMMIT, REDOES, UNDOES, UNDOES_DEVICE};
pub use vault::{
    EntryKind, SecretStat, Vault, VaultId, VaultInfo, Vaults, MAX_CLOCK_SKEW_MS, MAX_SECRET_SIZE,
    MAX_VAULT_NAME,
};

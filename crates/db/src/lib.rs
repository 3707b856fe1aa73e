//! The node's encrypted store: one redb file per node.
//!
//! A random 256-bit DB key, wrapped to the node's root key, seals every
//! value with XChaCha20-Poly1305; the associated data is the table name and
//! record key, so a record moved to another key or table no longer opens.
//! Record keys are random ids or keyed hashes ([`Db::record_key`]) so no
//! plaintext name reaches the file.
//!
//! This crate knows nothing of vaults, nodes or passwords: callers bring an
//! unlocked [`polykey_keys::RootKeypair`] and their own table definitions.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Opening, creating and the errors of the store.
mod store;
/// Typed tables, record keys and transactions.
mod table;

pub use store::{Db, DbError};
pub use table::{RawTable, ReadTxn, RecordKey, SealedRecord, Table, WriteTxn};

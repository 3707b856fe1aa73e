//! The node's encrypted store: one redb file per node.
//!
//! A random 256-bit DB key, wrapped to the node's root key, seals every
//! value with XChaCha20-Poly1305; the associated data is the table name and
//! record key, so a record moved to another key or table no longer opens.
//! Record keys are random ids or keyed hashes ([`Db::record_key`]) so no
//! plaintext name reaches the file. A table declared with
//! [`Table::authenticated`] has its SET of records authenticated too (a
//! sealed digest of which records it holds), so a record deleted or put
//! back by someone without the password is refused as tampering. Rolling
//! the whole file back to an older copy is not detected.
//!
//! This crate knows nothing of vaults, nodes or passwords: callers bring an
//! unlocked [`polykey_keys::RootKeypair`] and their own table definitions.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Authenticated tables: digests of which records a table holds.
mod digest;
/// Opening, creating and the errors of the store.
mod store;
/// Typed tables, record keys and transactions.
mod table;

pub use store::{Db, DbError, Lease, Space};
pub use table::{RawRead, RawTable, ReadTxn, RecordKey, SealedRecord, Table, Unopened, WriteTxn};

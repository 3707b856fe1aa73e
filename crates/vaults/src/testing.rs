//! What the crate's unit tests share.

use polykey_db::Db;
use polykey_keys::RootKeypair;

/// A new database in a temporary directory (removed when the first value
/// is dropped) and the keys that own it and sign its versions.
pub(crate) fn db() -> (tempfile::TempDir, RootKeypair, Db) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let keys = RootKeypair::from_seed(&[7; 32]);
    let db = Db::create(&dir.path().join("db.redb"), &keys).expect("a db");
    (dir, keys, db)
}

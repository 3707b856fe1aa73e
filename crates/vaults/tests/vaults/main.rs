//! Vaults against a real redb file, checked with the real `git` binary.

// Tests fail loudly on purpose.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod bounds;
mod collect;
mod compact;
mod crash;
mod deletion;
mod export;
mod export_modes;
mod history;
mod merge;
mod merge_props;
mod operations;
mod secrecy;
mod skew;
mod undo;

use polykey_db::Db;
use polykey_keys::RootKeypair;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub db: Db,
    pub keys: RootKeypair,
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let keys = RootKeypair::from_seed(&[42; 32]);
    let db = Db::create(&dir.path().join("db.redb"), &keys).unwrap();
    Fixture { dir, db, keys }
}

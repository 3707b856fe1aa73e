//! Authenticated tables: which records a table holds is authenticated, so a
//! record deleted, or put back, with plain redb (by someone who can write
//! the file but has no password) is tampering.

use std::path::Path;

use polykey_db::{Db, DbError, RecordKey, Table};
use redb::{ReadableDatabase, TableDefinition};

use super::root;

const GUARDED: Table<String> = Table::authenticated("guarded");
const ORDINARY: Table<String> = Table::new("ordinary");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("polykey_meta");

fn def(table: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(table)
}

fn key(name: &str) -> RecordKey {
    let mut bytes = [0u8; 32];
    bytes[..name.len()].copy_from_slice(name.as_bytes());
    RecordKey::from_bytes(bytes)
}

/// Put `names` (each its own value) into `table`, in one transaction.
fn put(db: &Db, table: &Table<String>, names: &[&str]) {
    let mut txn = db.write().unwrap();
    for name in names {
        txn.put(table, &key(name), &(*name).to_owned()).unwrap();
    }
    txn.commit().unwrap();
}

fn delete(db: &Db, table: &Table<String>, names: &[&str]) {
    let mut txn = db.write().unwrap();
    for name in names {
        assert!(txn.delete(table, &key(name)).unwrap());
    }
    txn.commit().unwrap();
}

/// The sealed bytes of one record, read with plain redb.
fn raw_value(path: &Path, table: &str, name: &str) -> Vec<u8> {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(def(table)).unwrap();
    let value = t.get(key(name).as_bytes().as_slice()).unwrap().unwrap();
    value.value().to_vec()
}

/// Change the file with plain redb, as someone without the password can.
fn with_redb(path: &Path, edit: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    edit(&txn);
    txn.commit().unwrap();
}

fn raw_put(path: &Path, table: &str, name: &str, sealed: &[u8]) {
    with_redb(path, |txn| {
        let mut t = txn.open_table(def(table)).unwrap();
        t.insert(key(name).as_bytes().as_slice(), sealed).unwrap();
    });
}

fn raw_remove(path: &Path, table: &str, name: &str) {
    with_redb(path, |txn| {
        let mut t = txn.open_table(def(table)).unwrap();
        assert!(t.remove(key(name).as_bytes().as_slice()).unwrap().is_some());
    });
}

fn assert_tampered<T: std::fmt::Debug>(result: Result<T, DbError>, table: &str) {
    match result {
        Err(DbError::Tampered { table: found }) => assert_eq!(found, table),
        other => panic!("expected tampering in {table}, got {other:?}"),
    }
}

fn names(db: &Db, table: &Table<String>) -> Result<Vec<String>, DbError> {
    Ok(db
        .read()?
        .entries(table)?
        .into_iter()
        .map(|(_, v)| v)
        .collect())
}

#[test]
fn a_row_deleted_from_an_authenticated_table_is_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let db = Db::create(&path, &root(1)).unwrap();
    put(&db, &GUARDED, &["alpha", "beta"]);
    drop(db);
    raw_remove(&path, "guarded", "alpha");
    assert_tampered(Db::open(&path, &root(1)), "guarded");
}

#[test]
fn a_whole_authenticated_table_deleted_is_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let db = Db::create(&path, &root(1)).unwrap();
    put(&db, &GUARDED, &["alpha"]);
    drop(db);
    with_redb(&path, |txn| {
        assert!(txn.delete_table(def("guarded")).unwrap());
    });
    assert_tampered(Db::open(&path, &root(1)), "guarded");
}

#[test]
fn the_digest_record_deleted_is_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let db = Db::create(&path, &root(1)).unwrap();
    put(&db, &GUARDED, &["alpha"]);
    drop(db);
    with_redb(&path, |txn| {
        let mut meta = txn.open_table(META).unwrap();
        assert!(meta.remove("table_digests").unwrap().is_some());
    });
    // Else it would pass for a store that never had an authenticated table.
    assert_tampered(Db::open(&path, &root(1)), "polykey_meta");
}

#[test]
fn the_digest_record_rolled_back_alone_is_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let db = Db::create(&path, &root(1)).unwrap();
    put(&db, &GUARDED, &["alpha"]);
    drop(db);
    let old = {
        let redb = redb::Database::open(&path).unwrap();
        let txn = redb.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        let value = meta.get("table_digests").unwrap().unwrap().value().to_vec();
        value
    };
    let db = Db::open(&path, &root(1)).unwrap();
    put(&db, &GUARDED, &["beta"]);
    drop(db);
    with_redb(&path, |txn| {
        let mut meta = txn.open_table(META).unwrap();
        meta.insert("table_digests", old.as_slice()).unwrap();
    });
    assert_tampered(Db::open(&path, &root(1)), "guarded");
}

#[test]
fn a_deleted_row_put_back_is_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let db = Db::create(&path, &root(1)).unwrap();
    put(&db, &GUARDED, &["alpha", "beta"]);
    drop(db);
    let alpha = raw_value(&path, "guarded", "alpha");
    let db = Db::open(&path, &root(1)).unwrap();
    delete(&db, &GUARDED, &["alpha"]);
    drop(db);
    // Still validly sealed for its table and key: only the set says no.
    raw_put(&path, "guarded", "alpha", &alpha);
    assert_tampered(Db::open(&path, &root(1)), "guarded");
}

#[test]
fn an_older_value_put_back_is_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let db = Db::create(&path, &root(1)).unwrap();
    let k = key("alpha");
    let mut txn = db.write().unwrap();
    txn.put(&GUARDED, &k, &"old".to_owned()).unwrap();
    txn.commit().unwrap();
    drop(db);
    let old = raw_value(&path, "guarded", "alpha");
    let db = Db::open(&path, &root(1)).unwrap();
    let mut txn = db.write().unwrap();
    txn.put(&GUARDED, &k, &"new".to_owned()).unwrap();
    txn.commit().unwrap();
    assert_eq!(names(&db, &GUARDED).unwrap(), ["new"]);
    drop(db);
    raw_put(&path, "guarded", "alpha", &old);
    assert_tampered(Db::open(&path, &root(1)), "guarded");
}

#[test]
fn a_row_copied_from_a_backup_of_the_store_is_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let backup = dir.path().join("backup.redb");
    let db = Db::create(&path, &root(1)).unwrap();
    put(&db, &GUARDED, &["alpha", "beta"]);
    drop(db);
    std::fs::copy(&path, &backup).unwrap();
    let db = Db::open(&path, &root(1)).unwrap();
    delete(&db, &GUARDED, &["beta"]);
    drop(db);
    // Same DB key, same table and key: a row of a backup opens.
    let beta = raw_value(&backup, "guarded", "beta");
    raw_put(&path, "guarded", "beta", &beta);
    assert_tampered(Db::open(&path, &root(1)), "guarded");
}

#[test]
fn a_row_copied_from_another_store_is_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let other = dir.path().join("other.redb");
    let db = Db::create(&path, &root(1)).unwrap();
    put(&db, &GUARDED, &["alpha"]);
    drop(db);
    let db = Db::create(&other, &root(1)).unwrap();
    put(&db, &GUARDED, &["alpha", "gamma"]);
    drop(db);
    let gamma = raw_value(&other, "guarded", "gamma");
    raw_put(&path, "guarded", "gamma", &gamma);
    assert_tampered(Db::open(&path, &root(1)), "guarded");
}

#[test]
fn put_then_remove_returns_the_digest_to_the_empty_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let db = Db::create(&path, &root(1)).unwrap();
    put(&db, &GUARDED, &["alpha"]);
    drop(db);
    let alpha = raw_value(&path, "guarded", "alpha");
    let db = Db::open(&path, &root(1)).unwrap();
    delete(&db, &GUARDED, &["alpha"]);
    assert!(names(&db, &GUARDED).unwrap().is_empty());
    // The digest kept in step through both: a later put, get and delete
    // in one transaction agree with it.
    let mut txn = db.write().unwrap();
    txn.put(&GUARDED, &key("beta"), &"beta".to_owned()).unwrap();
    assert_eq!(txn.get(&GUARDED, &key("alpha")).unwrap(), None);
    assert_eq!(txn.entries(&GUARDED).unwrap().len(), 1);
    assert!(txn.delete(&GUARDED, &key("beta")).unwrap());
    txn.commit().unwrap();
    assert!(names(&db, &GUARDED).unwrap().is_empty());
    drop(db);
    // Back to the empty state: the store opens and the table reads empty.
    let db = Db::open(&path, &root(1)).unwrap();
    assert!(names(&db, &GUARDED).unwrap().is_empty());
    drop(db);
    // The empty state is authenticated too: the removed row put back is
    // refused at unlock.
    raw_put(&path, "guarded", "alpha", &alpha);
    assert_tampered(Db::open(&path, &root(1)), "guarded");
}

#[test]
fn an_ordinary_table_behaves_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let db = Db::create(&path, &root(1)).unwrap();
    put(&db, &ORDINARY, &["alpha", "beta"]);
    drop(db);
    let alpha = raw_value(&path, "ordinary", "alpha");
    raw_remove(&path, "ordinary", "alpha");
    let db = Db::open(&path, &root(1)).unwrap();
    assert_eq!(names(&db, &ORDINARY).unwrap(), ["beta"]);
    drop(db);
    raw_put(&path, "ordinary", "alpha", &alpha);
    let db = Db::open(&path, &root(1)).unwrap();
    assert_eq!(names(&db, &ORDINARY).unwrap(), ["alpha", "beta"]);
}

//! The encrypted store against a real redb file on disk.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod authenticated;
mod memory;

use std::path::Path;

use polykey_db::{Db, DbError, RecordKey, Table};
use polykey_keys::RootKeypair;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Login {
    name: String,
    password: String,
}

const LOGINS: Table<Login> = Table::new("logins");
const KNOWN_NAME: &str = "bank-of-nowhere-login";
const KNOWN_SECRET: &str = "s3cr3t-value-that-must-not-leak";

fn root(seed: u8) -> RootKeypair {
    RootKeypair::from_seed(&[seed; 32])
}

fn store_one(path: &Path) -> RecordKey {
    let db = Db::create(path, &root(1)).unwrap();
    let key = db.record_key("logins", KNOWN_NAME.as_bytes());
    let mut txn = db.write().unwrap();
    txn.put(
        &LOGINS,
        &key,
        &Login {
            name: KNOWN_NAME.into(),
            password: KNOWN_SECRET.into(),
        },
    )
    .unwrap();
    txn.commit().unwrap();
    key
}

/// Rewrite one stored value through redb itself, bypassing our sealing.
fn rewrite_raw(path: &Path, table: &str, edit: impl FnOnce(&mut Vec<(Vec<u8>, Vec<u8>)>)) {
    let db = redb::Database::open(path).unwrap();
    let def: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new(table);
    let mut rows: Vec<(Vec<u8>, Vec<u8>)> = {
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(def).unwrap();
        t.iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value().to_vec(), v.value().to_vec())
            })
            .collect()
    };
    edit(&mut rows);
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(def).unwrap();
        for (k, v) in &rows {
            t.insert(k.as_slice(), v.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

#[test]
fn values_round_trip_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let key = store_one(&path);
    let db = Db::open(&path, &root(1)).unwrap();
    let login = db.read().unwrap().get(&LOGINS, &key).unwrap().unwrap();
    assert_eq!(login.password, KNOWN_SECRET);
    assert_eq!(db.read().unwrap().entries(&LOGINS).unwrap().len(), 1);
}

#[test]
fn uncommitted_transaction_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(&dir.path().join("db.redb"), &root(1)).unwrap();
    let key = RecordKey::random();
    {
        let mut txn = db.write().unwrap();
        let value = Login {
            name: "x".into(),
            password: "y".into(),
        };
        txn.put(&LOGINS, &key, &value).unwrap();
        assert!(txn.get(&LOGINS, &key).unwrap().is_some());
    }
    assert!(db.read().unwrap().get(&LOGINS, &key).unwrap().is_none());
}

#[test]
fn another_root_key_gets_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    store_one(&path);
    assert!(matches!(Db::open(&path, &root(2)), Err(DbError::WrongKey)));
}

#[test]
fn flipped_byte_in_a_record_is_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let key = store_one(&path);
    rewrite_raw(&path, "logins", |rows| {
        let value = &mut rows[0].1;
        let middle = value.len() / 2;
        value[middle] ^= 0x01;
    });
    let db = Db::open(&path, &root(1)).unwrap();
    let err = db.read().unwrap().get(&LOGINS, &key).unwrap_err();
    assert!(
        matches!(err, DbError::Tampered { ref table } if table == "logins"),
        "{err:?}"
    );
    assert!(err.to_string().contains("tampered"));
}

#[test]
fn record_moved_to_another_key_is_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    store_one(&path);
    let moved = RecordKey::random();
    rewrite_raw(&path, "logins", |rows| {
        let value = rows[0].1.clone();
        rows.push((moved.as_bytes().to_vec(), value));
    });
    let db = Db::open(&path, &root(1)).unwrap();
    assert!(matches!(
        db.read().unwrap().get(&LOGINS, &moved),
        Err(DbError::Tampered { .. })
    ));
}

#[test]
fn file_that_is_not_ours_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, vec![0x42u8; 8192]).unwrap();
    let err = Db::open(&garbage, &root(1)).unwrap_err();
    assert!(matches!(err, DbError::NotOurs), "{err:?}");
    assert_eq!(
        std::fs::read(&garbage).unwrap(),
        vec![0x42u8; 8192],
        "left untouched"
    );

    let foreign = dir.path().join("foreign.redb");
    {
        let db = redb::Database::create(&foreign).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(TableDefinition::<'_, u64, u64>::new("other"))
            .unwrap()
            .insert(1, 2)
            .unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(
        Db::open(&foreign, &root(1)),
        Err(DbError::NotOurs)
    ));
    assert!(matches!(
        Db::open(&dir.path().join("missing"), &root(1)),
        Err(DbError::NotFound(_))
    ));
}

#[test]
fn create_refuses_to_overwrite_and_second_open_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let _db = Db::create(&path, &root(1)).unwrap();
    assert!(matches!(
        Db::create(&path, &root(1)),
        Err(DbError::AlreadyExists(_))
    ));
    assert!(matches!(Db::open(&path, &root(1)), Err(DbError::InUse)));
}

#[test]
fn file_holds_neither_names_nor_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    store_one(&path);
    let bytes = std::fs::read(&path).unwrap();
    for needle in [KNOWN_NAME, KNOWN_SECRET] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "found {needle} in the file"
        );
    }
    // The canary proves the scan can fail: the table name is schema, stored
    // in plaintext by design.
    assert!(bytes.windows(6).any(|w| w == b"logins"));
}

/// A store planted by someone who knows only the victim's public NodeId:
/// its DB key sealed to that NodeId (as the store's own envelope is), a key
/// check that opens, and `binding` as given.
fn plant(path: &Path, victim: &RootKeypair, binding: Option<&[u8]>) {
    use polykey_keys::{SealedKey, SymmetricKey};
    let key = SymmetricKey::generate();
    let wrapped = SealedKey::seal(&key, &victim.node_id(), b"polykey-db/db-key/v1").unwrap();
    let wrapped = serde_json::to_vec(&wrapped).unwrap();
    let check = key.seal(b"polykey-db key check", b"polykey_meta\0key_check");
    let db = redb::Database::create(path).unwrap();
    let meta: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("polykey_meta");
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(meta).unwrap();
        t.insert("format", b"polykey-db/1".as_slice()).unwrap();
        t.insert("db_key", wrapped.as_slice()).unwrap();
        t.insert("key_check", check.as_slice()).unwrap();
        if let Some(binding) = binding {
            t.insert("binding", binding).unwrap();
        }
    }
    txn.commit().unwrap();
}

#[test]
fn a_store_written_without_the_root_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let victim = root(1);
    for (name, binding) in [
        ("none", None),
        ("guessed", Some([7u8; 32].as_slice())),
        ("short", Some([7u8; 3].as_slice())),
    ] {
        let path = dir.path().join(name);
        plant(&path, &victim, binding);
        assert!(
            matches!(Db::open(&path, &victim), Err(DbError::Tampered { .. })),
            "a planted store ({name} binding) opened"
        );
    }
    // The binding of a real store does not carry over to a planted one.
    let real = dir.path().join("real");
    drop(Db::create(&real, &victim).unwrap());
    let stolen = {
        let db = redb::Database::open(&real).unwrap();
        let meta: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("polykey_meta");
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(meta).unwrap();
        let value = t.get("binding").unwrap().unwrap().value().to_vec();
        value
    };
    let planted = dir.path().join("planted");
    plant(&planted, &victim, Some(&stolen));
    assert!(matches!(
        Db::open(&planted, &victim),
        Err(DbError::Tampered { .. })
    ));
    // The real store still opens.
    Db::open(&real, &victim).unwrap();
}

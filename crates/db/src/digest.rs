//! Authenticated tables: the SET of records a table holds is authenticated,
//! not only each record.
//!
//! Every record is sealed with its table and key as associated data, so a
//! record cannot be altered or moved; but someone who can write the file can
//! still delete a record, or put back one deleted earlier (still validly
//! sealed). For a table declared with [`crate::Table::authenticated`] the
//! store keeps a digest of which records it holds: the XOR of a keyed BLAKE3
//! hash over (table, record key, hash of the sealed value) of every record,
//! and their count. XOR is order-independent and incremental, so a put or a
//! delete updates it without reading the table; the hash is keyed by a key
//! derived from the DB key, so without it no one can compute what a set of
//! records XORs to. The digests of all authenticated tables live in ONE
//! sealed record of the meta table, written when the store is created and
//! never removed, so they can only be rolled back together and a store
//! without it is refused. A table once written keeps its entry when it is
//! emptied, so [`Db::open`] checks every authenticated table the store has
//! used; each transaction checks a table again at its first access to it.
//!
//! Costs: the first access to an authenticated table in a transaction reads
//! the table once and hashes every sealed value (no decryption); a put or
//! delete then costs nothing extra but an in-memory update (redb hands back
//! the old value), and the digest record is written once at commit. An
//! authenticated table is for small sets that decide security (who is
//! revoked, which notices are pending), not for bulk data.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadableTable, Table as RedbTable};
use serde::{Deserialize, Serialize};

use crate::store::{Db, DbError, META};
use crate::table::RecordKey;

/// The key of the digest record in the meta table.
pub(crate) const DIGESTS_KEY: &str = "table_digests";
/// Its associated data.
const DIGESTS_AD: &[u8] = b"polykey_meta\0table_digests";
/// Context of the key that hashes records into a digest.
pub(crate) const DIGEST_KEY_CONTEXT: &str = "polykey-db table digest v1";
/// Tables named in the meta table's errors.
const META_NAME: &str = "polykey_meta";

/// What one authenticated table holds: the XOR of its records' keyed hashes
/// and their count. An empty table's digest is the default, whether stored
/// (a table emptied) or not (a table never written).
#[derive(Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TableDigest {
    count: u64,
    xor: [u8; 32],
}

impl TableDigest {
    fn toggle(&mut self, element: &[u8; 32]) {
        for (x, e) in self.xor.iter_mut().zip(element) {
            *x ^= e;
        }
    }

    fn add(&mut self, element: &[u8; 32]) -> Result<(), ()> {
        self.count = self.count.checked_add(1).ok_or(())?;
        self.toggle(element);
        Ok(())
    }

    fn remove(&mut self, element: &[u8; 32]) -> Result<(), ()> {
        self.count = self.count.checked_sub(1).ok_or(())?;
        self.toggle(element);
        Ok(())
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The digests of every non-empty authenticated table, as stored.
#[derive(Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Digests(BTreeMap<String, TableDigest>);

/// The sealed digest record of `digests`; [`Db::create`] writes the empty
/// one.
pub(crate) fn seal_digests(
    key: &polykey_keys::SymmetricKey,
    digests: &Digests,
) -> Result<Vec<u8>, DbError> {
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(digests).map_err(DbError::storage)?);
    Ok(key.seal(&plain, DIGESTS_AD))
}

fn tampered(table: &str) -> DbError {
    DbError::Tampered {
        table: table.to_owned(),
    }
}

impl Db {
    /// The keyed hash of one stored record, as it enters its table's digest.
    fn digest_element(&self, table: &str, key: &RecordKey, sealed: &[u8]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.digest_key);
        hasher.update(&(table.len() as u64).to_le_bytes());
        hasher.update(table.as_bytes());
        hasher.update(key.as_bytes());
        hasher.update(blake3::hash(sealed).as_bytes());
        *hasher.finalize().as_bytes()
    }

    /// The digest of the records a redb table holds now.
    fn digest_of(
        &self,
        table: &str,
        rows: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ) -> Result<TableDigest, DbError> {
        let mut digest = TableDigest::default();
        for row in rows.iter().map_err(DbError::storage)? {
            let (k, v) = row.map_err(DbError::storage)?;
            let key = RecordKey::from_bytes(k.value().try_into().map_err(|_| tampered(table))?);
            digest
                .add(&self.digest_element(table, &key, v.value()))
                .map_err(|_| tampered(table))?;
        }
        Ok(digest)
    }

    /// Read and open the digest record of a meta table.
    pub(crate) fn load_digests(
        &self,
        meta: &impl ReadableTable<&'static str, &'static [u8]>,
    ) -> Result<Digests, DbError> {
        // Written by [`Db::create`] and never removed: a store without it
        // had it deleted, which would otherwise pass for "no table was
        // ever authenticated".
        let Some(sealed) = meta.get(DIGESTS_KEY).map_err(DbError::storage)? else {
            return Err(tampered(META_NAME));
        };
        let plain = self
            .key
            .open(sealed.value(), DIGESTS_AD)
            .map_err(|_| tampered(META_NAME))?;
        serde_json::from_slice(&plain).map_err(|_| DbError::Format {
            table: META_NAME.into(),
        })
    }

    /// Write `digests` to the meta table.
    fn store_digests(
        &self,
        meta: &mut RedbTable<'_, &'static str, &'static [u8]>,
        digests: &Digests,
    ) -> Result<(), DbError> {
        let sealed = seal_digests(&self.key, digests)?;
        meta.insert(DIGESTS_KEY, sealed.as_slice())
            .map_err(DbError::storage)?;
        Ok(())
    }

    /// Check that the records `rows` holds are exactly the set `digests`
    /// records for `table` (`rows` is None for a table that does not exist,
    /// which holds nothing).
    fn check_set<T: ReadableTable<&'static [u8], &'static [u8]>>(
        &self,
        table: &str,
        rows: Option<&T>,
        digests: &Digests,
    ) -> Result<(), DbError> {
        let found = match rows {
            Some(rows) => self.digest_of(table, rows)?,
            None => TableDigest::default(),
        };
        let expected = digests.0.get(table).copied().unwrap_or_default();
        // A count mismatch is reported as tampering too; both values derive
        // from the file, so comparing them reveals nothing secret.
        if found == expected {
            Ok(())
        } else {
            Err(tampered(table))
        }
    }

    /// Verify every authenticated table the digest record names, in one
    /// read transaction. [`Db::open`] does this, so a store whose
    /// authenticated tables lost or regained records is refused at unlock.
    pub(crate) fn verify_authenticated(&self, txn: &redb::ReadTransaction) -> Result<(), DbError> {
        let meta = txn.open_table(META).map_err(DbError::storage)?;
        let digests = self.load_digests(&meta)?;
        for table in digests.0.keys() {
            match txn.open_table(crate::table::definition(table)) {
                Ok(rows) => self.check_set(table, Some(&rows), &digests)?,
                Err(redb::TableError::TableDoesNotExist(_)) => {
                    self.check_set::<redb::ReadOnlyTable<&[u8], &[u8]>>(table, None, &digests)?
                }
                Err(e) => return Err(DbError::storage(e)),
            }
        }
        Ok(())
    }
}

/// What a transaction knows of the authenticated tables: the digests (read
/// at the first access) and which tables it has verified. A transaction
/// verifies a table once; its own puts and deletes keep the digest in step.
#[derive(Default)]
pub(crate) struct SetGuard {
    digests: Option<Digests>,
    verified: BTreeSet<String>,
    changed: bool,
}

impl SetGuard {
    /// Make sure `table`'s records in this transaction are the set its
    /// digest records: `meta` gives the digest record, `rows` the table
    /// (None when it does not exist).
    pub(crate) fn verify(
        &mut self,
        db: &Db,
        table: &str,
        meta: impl FnOnce() -> Result<Digests, DbError>,
        rows: Option<&impl ReadableTable<&'static [u8], &'static [u8]>>,
    ) -> Result<(), DbError> {
        if self.verified.contains(table) {
            return Ok(());
        }
        if self.digests.is_none() {
            self.digests = Some(meta()?);
        }
        let digests = self.digests.get_or_insert_with(Digests::default);
        db.check_set(table, rows, digests)?;
        self.verified.insert(table.to_owned());
        Ok(())
    }

    /// Whether the table was verified (and the digests read) already.
    pub(crate) fn is_verified(&self, table: &str) -> bool {
        self.verified.contains(table)
    }

    /// Record that `key` of `table` now holds `new` (None: deleted) instead
    /// of `old` (None: absent). The table must have been verified.
    pub(crate) fn replace(
        &mut self,
        db: &Db,
        table: &str,
        key: &RecordKey,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<(), DbError> {
        let digests = self.digests.get_or_insert_with(Digests::default);
        let mut digest = digests.0.get(table).copied().unwrap_or_default();
        if let Some(old) = old {
            digest
                .remove(&db.digest_element(table, key, old))
                .map_err(|_| tampered(table))?;
        }
        if let Some(new) = new {
            digest
                .add(&db.digest_element(table, key, new))
                .map_err(|_| tampered(table))?;
        }
        // An emptied table keeps its (empty) entry: the table stays known,
        // so a record put back into it is refused at open, not only at the
        // table's next read.
        digests.0.insert(table.to_owned(), digest);
        self.changed = true;
        Ok(())
    }

    /// Whether this transaction changed a digest.
    pub(crate) fn changed(&self) -> bool {
        self.changed
    }

    /// Write the digests back (call if [`SetGuard::changed`]).
    pub(crate) fn store(
        &self,
        db: &Db,
        meta: &mut RedbTable<'_, &'static str, &'static [u8]>,
    ) -> Result<(), DbError> {
        match &self.digests {
            Some(digests) => db.store_digests(meta, digests),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;
    use crate::Table;

    const GUARDED: Table<String> = Table::authenticated("guarded");

    /// The file is locked while the store is open, so tampering shows up at
    /// the next open; but every transaction checks a table again at its
    /// first access, so a change that got past the lock (redb's handle
    /// used directly here) is refused too, by reads and writes alike.
    #[test]
    fn each_transaction_checks_the_set_at_its_first_access() {
        let dir = tempfile::tempdir().unwrap();
        let root = polykey_keys::RootKeypair::from_seed(&[1; 32]);
        let db = Db::create(&dir.path().join("db.redb"), &root).unwrap();
        let key = RecordKey::from_bytes([9; 32]);
        let mut txn = db.write().unwrap();
        txn.put(&GUARDED, &key, &"alpha".to_owned()).unwrap();
        txn.commit().unwrap();
        let (_, raw) = db.redb.begin_write().unwrap();
        {
            let mut t = raw.open_table(crate::table::definition("guarded")).unwrap();
            t.remove(key.as_bytes().as_slice()).unwrap();
        }
        raw.commit().unwrap();
        let is_tampered = |r: Result<(), DbError>| matches!(r, Err(DbError::Tampered { ref table }) if table == "guarded");
        assert!(is_tampered(db.read().unwrap().entries(&GUARDED).map(drop)));
        assert!(is_tampered(
            db.read().unwrap().get(&GUARDED, &key).map(drop)
        ));
        let mut txn = db.write().unwrap();
        assert!(is_tampered(txn.put(&GUARDED, &key, &"again".to_owned())));
        assert!(is_tampered(txn.delete(&GUARDED, &key).map(drop)));
    }

    #[test]
    fn add_then_remove_is_the_empty_digest() {
        let mut digest = TableDigest::default();
        let element = [7u8; 32];
        digest.add(&element).unwrap();
        assert!(!digest.is_empty());
        digest.remove(&element).unwrap();
        assert!(digest.is_empty());
        // Removing from an empty digest is never silently accepted.
        assert!(digest.remove(&element).is_err());
    }
}

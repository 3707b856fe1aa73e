use std::marker::PhantomData;

use polykey_keys::Plain;
use redb::{ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::digest::SetGuard;
use crate::store::{Db, DbError, META};

/// Length of a record key in bytes.
pub const RECORD_KEY_LEN: usize = 32;

/// The key of one record: a random id or a keyed hash, never a plaintext name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct RecordKey([u8; RECORD_KEY_LEN]);

impl RecordKey {
    /// A fresh random record id.
    pub fn random() -> Self {
        let mut bytes = [0u8; RECORD_KEY_LEN];
        polykey_keys::random_bytes(&mut bytes);
        Self(bytes)
    }

    /// A record key computed by the caller: it must be a keyed hash or
    /// random, never a plaintext name.
    pub fn from_bytes(bytes: [u8; RECORD_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; RECORD_KEY_LEN] {
        &self.0
    }
}

/// A table of values of type `V`, stored as sealed JSON.
///
/// Define each table once, as a `const`: a table must always be used with
/// the same kind ([`Table::new`] or [`Table::authenticated`]), or its digest
/// falls out of step and every later read of it is refused as tampered.
pub struct Table<V> {
    name: &'static str,
    authenticated: bool,
    _value: PhantomData<fn() -> V>,
}

impl<V> Table<V> {
    /// Define a table. The name is stored in the file in plaintext, so it
    /// must describe the schema, never user data. Each record is
    /// authenticated, but not which records exist: someone who can write
    /// the file can delete one, or put back one deleted earlier.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            authenticated: false,
            _value: PhantomData,
        }
    }

    /// Define a table whose SET of records is authenticated too: a record
    /// deleted, or put back after it was deleted or replaced, by anyone but
    /// this store is [`DbError::Tampered`] at the next access to the table
    /// (and at [`Db::open`]). For small tables whose presence or absence
    /// of records decides security; each transaction's first access reads
    /// the whole table (see the `digest` module for costs).
    pub const fn authenticated(name: &'static str) -> Self {
        Self {
            name,
            authenticated: true,
            _value: PhantomData,
        }
    }

    /// The table's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the set of records is authenticated.
    pub const fn is_authenticated(&self) -> bool {
        self.authenticated
    }
}

/// A table of opaque byte values (already-encoded objects), stored sealed.
#[derive(Clone, Debug)]
pub struct RawTable {
    name: std::borrow::Cow<'static, str>,
}

impl RawTable {
    /// Define a raw table. The name is stored in plaintext, like [`Table::new`].
    pub const fn new(name: &'static str) -> Self {
        Self {
            name: std::borrow::Cow::Borrowed(name),
        }
    }

    /// A raw table whose name is made at run time (one table per vault, say).
    /// The name must be a random id or schema word, never user data.
    pub fn named(name: String) -> Self {
        Self {
            name: std::borrow::Cow::Owned(name),
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

pub(crate) fn definition(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

fn associated_data(table: &str, key: &RecordKey) -> Vec<u8> {
    [b"polykey-db/v1\0", table.as_bytes(), b"\0", key.as_bytes()].concat()
}

impl Db {
    /// The record key for `name` in `table`: a keyed BLAKE3 hash, so equal
    /// names find the same record but the file reveals nothing of the name.
    pub fn record_key(&self, table: &str, name: &[u8]) -> RecordKey {
        let mut hasher = blake3::Hasher::new_keyed(&self.index_key);
        hasher.update(&(table.len() as u64).to_le_bytes());
        hasher.update(table.as_bytes());
        hasher.update(name);
        RecordKey(*hasher.finalize().as_bytes())
    }

    /// Begin a read transaction: a consistent snapshot.
    pub fn read(&self) -> Result<ReadTxn<'_>, DbError> {
        Ok(ReadTxn {
            db: self,
            txn: self.redb.begin_read()?,
            guard: std::sync::Mutex::new(SetGuard::default()),
        })
    }

    /// Begin a write transaction. Nothing is visible until [`WriteTxn::commit`];
    /// dropping it uncommitted discards every change.
    pub fn write(&self) -> Result<WriteTxn<'_>, DbError> {
        let (handle, txn) = self.redb.begin_write()?;
        Ok(WriteTxn {
            db: self,
            txn,
            handle,
            guard: std::sync::Mutex::new(SetGuard::default()),
        })
    }

    fn open_sealed(
        &self,
        table: &str,
        key: &RecordKey,
        sealed: Vec<u8>,
    ) -> Result<Zeroizing<Vec<u8>>, DbError> {
        Ok(self.open_sealed_plain(table, key, sealed)?.into_vec())
    }

    /// [`Db::open_sealed`], left where it lies (see [`Plain`]).
    fn open_sealed_plain(
        &self,
        table: &str,
        key: &RecordKey,
        sealed: Vec<u8>,
    ) -> Result<Plain, DbError> {
        self.key
            .open_plain(Plain::new(sealed), &associated_data(table, key))
            .map_err(|_| DbError::Tampered {
                table: table.to_owned(),
            })
    }

    /// Open and decode a record read by either kind of transaction.
    fn open_record<V: DeserializeOwned>(
        &self,
        table: &Table<V>,
        key: &RecordKey,
        sealed: Option<Vec<u8>>,
    ) -> Result<Option<V>, DbError> {
        sealed
            .map(|sealed| {
                let plain = self.open_sealed(table.name, key, sealed)?;
                Db::decode(table.name, &plain)
            })
            .transpose()
    }

    /// [`Db::open_raw`], left where it lies (see [`Plain`]).
    fn open_raw_plain(
        &self,
        table: &RawTable,
        key: &RecordKey,
        sealed: Option<Vec<u8>>,
    ) -> Result<Option<Plain>, DbError> {
        sealed
            .map(|sealed| self.open_sealed_plain(table.name(), key, sealed))
            .transpose()
    }

    /// Open a raw record read by either kind of transaction.
    fn open_raw(
        &self,
        table: &RawTable,
        key: &RecordKey,
        sealed: Option<Vec<u8>>,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, DbError> {
        sealed
            .map(|sealed| self.open_sealed(table.name(), key, sealed))
            .transpose()
    }

    /// Open every record of a redb table that holds `table`'s values.
    fn open_all<V: DeserializeOwned>(
        &self,
        table: &Table<V>,
        redb_table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ) -> Result<Vec<(RecordKey, V)>, DbError> {
        let mut out = Vec::new();
        for row in redb_table.iter().map_err(DbError::storage)? {
            let (k, v) = row.map_err(DbError::storage)?;
            let key = RecordKey(k.value().try_into().map_err(|_| DbError::Tampered {
                table: table.name.to_owned(),
            })?);
            let plain = self.open_sealed(table.name, &key, v.value().to_vec())?;
            out.push((key, Db::decode(table.name, &plain)?));
        }
        Ok(out)
    }

    fn decode<V: DeserializeOwned>(table: &str, plain: &[u8]) -> Result<V, DbError> {
        serde_json::from_slice(plain).map_err(|_| DbError::Format {
            table: table.to_owned(),
        })
    }
}

/// A read-only snapshot of the store.
pub struct ReadTxn<'db> {
    db: &'db Db,
    txn: redb::ReadTransaction,
    /// Authenticated tables verified in this snapshot.
    guard: std::sync::Mutex<SetGuard>,
}

type ReadOnly = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// `f` of the sealed bytes of record `key` in `table`, if it is there.
fn value_of<T>(
    db: &Db,
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &RecordKey,
    f: impl FnOnce(&[u8]) -> T,
) -> Result<Option<T>, DbError> {
    Ok(table
        .get(key.as_bytes().as_slice())
        .map_err(|e| db.storage_error(e))?
        .map(|v| f(v.value())))
}

impl ReadTxn<'_> {
    /// The redb table `name`, or None if it was never created.
    fn table(&self, name: &str) -> Result<Option<ReadOnly>, DbError> {
        match self.txn.open_table(definition(name)) {
            Ok(table) => Ok(Some(table)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(DbError::storage(e)),
        }
    }

    /// `rows`, after checking its set of records if `table` is
    /// authenticated (once per snapshot).
    fn checked<V>(&self, table: &Table<V>) -> Result<Option<ReadOnly>, DbError> {
        let rows = self.table(table.name)?;
        if table.authenticated {
            let mut guard = self.guard.lock().unwrap_or_else(|e| e.into_inner());
            let meta = || {
                let meta = self
                    .txn
                    .open_table(META)
                    .map_err(|e| self.db.storage_error(e))?;
                self.db.load_digests(&meta)
            };
            guard.verify(self.db, table.name, meta, rows.as_ref())?;
        }
        Ok(rows)
    }

    /// Read and open one record. In an authenticated table this checks the
    /// whole table's set first (once per snapshot), so a deleted record is
    /// reported as tampering, never as absent.
    pub fn get<V: DeserializeOwned>(
        &self,
        table: &Table<V>,
        key: &RecordKey,
    ) -> Result<Option<V>, DbError> {
        let Some(rows) = self.checked(table)? else {
            return Ok(None);
        };
        let sealed = rows
            .get(key.as_bytes().as_slice())
            .map_err(|e| self.db.storage_error(e))?
            .map(|v| v.value().to_vec());
        self.db.open_record(table, key, sealed)
    }

    /// Every record of a table, opened, in record-key order. For an
    /// authenticated table, fails as [`DbError::Tampered`] unless the
    /// records present are exactly those this store wrote.
    pub fn entries<V: DeserializeOwned>(
        &self,
        table: &Table<V>,
    ) -> Result<Vec<(RecordKey, V)>, DbError> {
        match self.checked(table)? {
            Some(rows) => self.db.open_all(table, &rows),
            None => Ok(Vec::new()),
        }
    }
}

mod private {
    use super::{Db, DbError, RecordKey};

    /// What a transaction gives [`super::RawRead`]: its store, and a
    /// record's sealed bytes as the transaction sees them.
    pub trait Txn {
        fn store(&self) -> &Db;

        /// `f` of a record's sealed bytes, if it is there.
        fn look_up<T>(
            &self,
            table: &str,
            key: &RecordKey,
            f: impl FnOnce(&[u8]) -> T,
        ) -> Result<Option<T>, DbError>;

        fn sealed_bytes(&self, table: &str, key: &RecordKey) -> Result<Option<Vec<u8>>, DbError> {
            self.look_up(table, key, <[u8]>::to_vec)
        }
    }
}

/// Reading raw records, in a read or a write transaction alike (a write
/// transaction sees its own writes).
pub trait RawRead: private::Txn {
    /// Whether a raw record exists, without reading or opening it.
    fn contains_raw(&self, table: &RawTable, key: &RecordKey) -> Result<bool, DbError> {
        Ok(self.look_up(table.name(), key, |_| ())?.is_some())
    }

    /// Read and open one raw record.
    fn get_raw(
        &self,
        table: &RawTable,
        key: &RecordKey,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, DbError> {
        self.store()
            .open_raw(table, key, self.sealed_bytes(table.name(), key)?)
    }

    /// [`RawRead::get_raw`], the plaintext left where it was opened, for a
    /// value sealed again inside (see [`Plain`]).
    fn get_raw_plain(&self, table: &RawTable, key: &RecordKey) -> Result<Option<Plain>, DbError> {
        self.store()
            .open_raw_plain(table, key, self.sealed_bytes(table.name(), key)?)
    }

    /// A raw record read now and opened later, on any thread
    /// ([`Unopened::open_plain`]): the records of a large object are read
    /// one after another in the transaction, and opened side by side.
    fn get_unopened(
        &self,
        table: &RawTable,
        key: &RecordKey,
    ) -> Result<Option<Unopened<'_>>, DbError> {
        Ok(self
            .sealed_bytes(table.name(), key)?
            .map(|sealed| Unopened {
                db: self.store(),
                record: SealedRecord {
                    table: table.name.clone(),
                    key: *key,
                    sealed,
                },
            }))
    }
}

/// A raw record as read, still sealed (see [`RawRead::get_unopened`]).
pub struct Unopened<'db> {
    db: &'db Db,
    record: SealedRecord,
}

impl Unopened<'_> {
    /// Open it as [`RawRead::get_raw_plain`] would have.
    pub fn open_plain(self) -> Result<Plain, DbError> {
        let SealedRecord { table, key, sealed } = self.record;
        self.db.open_sealed_plain(&table, &key, sealed)
    }
}

impl private::Txn for ReadTxn<'_> {
    fn store(&self) -> &Db {
        self.db
    }

    fn look_up<T>(
        &self,
        table: &str,
        key: &RecordKey,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, DbError> {
        match self.table(table)? {
            Some(table) => value_of(self.db, &table, key, f),
            None => Ok(None),
        }
    }
}

impl private::Txn for WriteTxn<'_> {
    fn store(&self) -> &Db {
        self.db
    }

    /// As this transaction sees them (its own writes included).
    fn look_up<T>(
        &self,
        table: &str,
        key: &RecordKey,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, DbError> {
        let t = self
            .txn
            .open_table(definition(table))
            .map_err(|e| self.db.storage_error(e))?;
        value_of(self.db, &t, key, f)
    }
}

impl RawRead for ReadTxn<'_> {}
impl RawRead for WriteTxn<'_> {}

/// A raw record sealed for its table and key by [`Db::seal_raw`] (on any
/// thread), ready for [`WriteTxn::put_records`].
pub struct SealedRecord {
    table: std::borrow::Cow<'static, str>,
    key: RecordKey,
    sealed: Vec<u8>,
}

impl Db {
    /// Seal `bytes` as the record `key` of `table`, outside a transaction,
    /// so that many records can be sealed on several threads.
    pub fn seal_raw(&self, table: &RawTable, key: &RecordKey, bytes: &[u8]) -> SealedRecord {
        SealedRecord {
            table: table.name.clone(),
            key: *key,
            sealed: self.key.seal(bytes, &associated_data(table.name(), key)),
        }
    }

    /// [`Db::seal_raw`] of `buffer[NONCE_LEN..]`, sealed where it lies
    /// (see [`polykey_keys::SymmetricKey::seal_in_place`]): the caller
    /// leaves the first [`polykey_keys::aead::NONCE_LEN`] bytes for the
    /// nonce, and may have sealed the rest under another key already.
    pub fn seal_raw_in_place(
        &self,
        table: &RawTable,
        key: &RecordKey,
        mut buffer: Vec<u8>,
    ) -> SealedRecord {
        self.key
            .seal_in_place(&mut buffer, 0, &associated_data(table.name(), key));
        SealedRecord {
            table: table.name.clone(),
            key: *key,
            sealed: buffer,
        }
    }
}

/// A write transaction: all its changes land together or not at all.
pub struct WriteTxn<'db> {
    db: &'db Db,
    txn: redb::WriteTransaction,
    /// The number of the open handle of the file it is on (see
    /// [`WriteTxn::commit_in_memory`]).
    handle: u64,
    /// Authenticated tables verified in this transaction, and their
    /// digests as its puts and deletes change them.
    guard: std::sync::Mutex<SetGuard>,
}

impl WriteTxn<'_> {
    fn guard(&self) -> std::sync::MutexGuard<'_, SetGuard> {
        self.guard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Check an authenticated table's set of records, once per
    /// transaction: from then on this transaction's own puts and deletes
    /// keep its digest in step.
    fn check(&self, table: &str) -> Result<(), DbError> {
        let mut guard = self.guard();
        if guard.is_verified(table) {
            return Ok(());
        }
        let rows = self
            .txn
            .open_table(definition(table))
            .map_err(|e| self.db.storage_error(e))?;
        let meta = || {
            let meta = self
                .txn
                .open_table(META)
                .map_err(|e| self.db.storage_error(e))?;
            self.db.load_digests(&meta)
        };
        guard.verify(self.db, table, meta, Some(&rows))
    }

    fn put_sealed(
        &mut self,
        table: &str,
        authenticated: bool,
        key: &RecordKey,
        plain: &[u8],
    ) -> Result<(), DbError> {
        if authenticated {
            self.check(table)?;
        }
        let sealed = self.db.key.seal(plain, &associated_data(table, key));
        let mut t = self
            .txn
            .open_table(definition(table))
            .map_err(|e| self.db.storage_error(e))?;
        let old = t
            .insert(key.as_bytes().as_slice(), sealed.as_slice())
            .map_err(|e| self.db.storage_error(e))?
            .map(|v| v.value().to_vec());
        drop(t);
        if authenticated {
            self.guard()
                .replace(self.db, table, key, old.as_deref(), Some(&sealed))?;
        }
        Ok(())
    }

    /// Seal and store `value` under `key`, replacing any previous value.
    pub fn put<V: Serialize>(
        &mut self,
        table: &Table<V>,
        key: &RecordKey,
        value: &V,
    ) -> Result<(), DbError> {
        let plain =
            Zeroizing::new(serde_json::to_vec(value).map_err(|e| self.db.storage_error(e))?);
        self.put_sealed(table.name, table.authenticated, key, &plain)
    }

    /// Seal and store raw bytes under `key`.
    pub fn put_raw(
        &mut self,
        table: &RawTable,
        key: &RecordKey,
        bytes: &[u8],
    ) -> Result<(), DbError> {
        self.put_sealed(table.name(), false, key, bytes)
    }

    /// Store records sealed by [`Db::seal_raw`], replacing any previous
    /// values: in key order, each table opened once (much faster than one
    /// [`WriteTxn::put_raw`] each for thousands of records).
    pub fn put_records(&mut self, mut records: Vec<SealedRecord>) -> Result<(), DbError> {
        records.sort_unstable_by(|a, b| (&a.table, &a.key.0).cmp(&(&b.table, &b.key.0)));
        let mut rest = records.as_slice();
        while let Some(first) = rest.first() {
            let same = rest
                .iter()
                .position(|r| r.table != first.table)
                .unwrap_or(rest.len());
            let (group, after) = rest.split_at(same);
            let mut t = self
                .txn
                .open_table(definition(&first.table))
                .map_err(|e| self.db.storage_error(e))?;
            for record in group {
                t.insert(record.key.as_bytes().as_slice(), record.sealed.as_slice())
                    .map_err(|e| self.db.storage_error(e))?;
            }
            rest = after;
        }
        Ok(())
    }

    /// The database this transaction writes to.
    pub fn db(&self) -> &Db {
        self.db
    }

    /// Every record of a table as this transaction sees it, opened. For an
    /// authenticated table, fails as [`DbError::Tampered`] unless the
    /// records present are exactly those this store wrote.
    pub fn entries<V: DeserializeOwned>(
        &self,
        table: &Table<V>,
    ) -> Result<Vec<(RecordKey, V)>, DbError> {
        if table.authenticated {
            self.check(table.name)?;
        }
        let redb_table = self
            .txn
            .open_table(definition(table.name))
            .map_err(|e| self.db.storage_error(e))?;
        self.db.open_all(table, &redb_table)
    }

    /// Remove a raw record; returns whether it existed.
    pub fn delete_raw(&mut self, table: &RawTable, key: &RecordKey) -> Result<bool, DbError> {
        let mut t = self
            .txn
            .open_table(definition(table.name()))
            .map_err(|e| self.db.storage_error(e))?;
        let removed = t
            .remove(key.as_bytes().as_slice())
            .map_err(|e| self.db.storage_error(e))?
            .is_some();
        Ok(removed)
    }

    /// Remove every raw record of `table` whose key `keep` refuses; returns
    /// how many went and the bytes they held (sealed, keys included).
    pub fn retain_raw(
        &mut self,
        table: &RawTable,
        mut keep: impl FnMut(&RecordKey) -> bool,
    ) -> Result<(usize, u64), DbError> {
        let mut t = self
            .txn
            .open_table(definition(table.name()))
            .map_err(|e| self.db.storage_error(e))?;
        let (mut removed, mut bytes) = (0usize, 0u64);
        t.retain(|key, value| {
            let kept = <[u8; RECORD_KEY_LEN]>::try_from(key)
                .is_ok_and(|key| keep(&RecordKey::from_bytes(key)));
            if !kept {
                removed += 1;
                bytes += (key.len() + value.len()) as u64;
            }
            kept
        })
        .map_err(|e| self.db.storage_error(e))?;
        Ok((removed, bytes))
    }

    /// Drop a whole raw table and every record in it.
    pub fn delete_raw_table(&mut self, table: &RawTable) -> Result<(), DbError> {
        self.txn
            .delete_table(definition(table.name()))
            .map_err(|e| self.db.storage_error(e))?;
        Ok(())
    }

    /// Read one record as this transaction sees it (in an authenticated
    /// table, after checking the table's set, as [`ReadTxn::get`] does).
    pub fn get<V: DeserializeOwned>(
        &self,
        table: &Table<V>,
        key: &RecordKey,
    ) -> Result<Option<V>, DbError> {
        if table.authenticated {
            self.check(table.name)?;
        }
        self.db.open_record(
            table,
            key,
            private::Txn::sealed_bytes(self, table.name, key)?,
        )
    }

    /// Remove a record; returns whether it existed.
    pub fn delete<V>(&mut self, table: &Table<V>, key: &RecordKey) -> Result<bool, DbError> {
        if table.authenticated {
            self.check(table.name)?;
        }
        let mut t = self
            .txn
            .open_table(definition(table.name))
            .map_err(|e| self.db.storage_error(e))?;
        let old = t
            .remove(key.as_bytes().as_slice())
            .map_err(|e| self.db.storage_error(e))?
            .map(|v| v.value().to_vec());
        drop(t);
        let removed = old.is_some();
        if table.authenticated && removed {
            self.guard()
                .replace(self.db, table.name, key, old.as_deref(), None)?;
        }
        Ok(removed)
    }

    /// Make every change of this transaction visible to the transactions
    /// after it, without waiting for the disk: they become durable with
    /// the next [`WriteTxn::commit`] (of any writer) or when the store
    /// closes, and are lost if the process ends first, or if the file is
    /// opened again after a disk error meanwhile (a new handle, see
    /// [`WriteTxn::handle`]). For a run of transactions that only a last,
    /// durable one makes count (the pages of a transfer): each skips the
    /// flush, and the last, begun on the same handle, makes them all
    /// durable. Returns the handle it was committed on.
    pub fn commit_in_memory(mut self) -> Result<u64, DbError> {
        self.txn
            .set_durability(redb::Durability::None)
            .map_err(|e| self.db.storage_error(e))?;
        let handle = self.handle;
        self.commit()?;
        Ok(handle)
    }

    /// The number of the handle of the file this transaction is on. What
    /// a transaction committed with [`WriteTxn::commit_in_memory`] on
    /// handle `n` is still there for one on `n`; one on a later handle may
    /// find it lost.
    pub fn handle(&self) -> u64 {
        self.handle
    }

    /// Make every change of this transaction durable (with the digests of
    /// the authenticated tables it changed).
    pub fn commit(self) -> Result<(), DbError> {
        let guard = self.guard.into_inner().unwrap_or_else(|e| e.into_inner());
        if guard.changed() {
            let mut meta = self
                .txn
                .open_table(META)
                .map_err(|e| self.db.storage_error(e))?;
            guard.store(self.db, &mut meta)?;
        }
        self.txn.commit().map_err(|e| self.db.storage_error(e))?;
        self.db
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if let Some(hook) = self.db.on_commit.get() {
            hook();
        }
        Ok(())
    }
}

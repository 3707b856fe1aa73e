use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use polykey_keys::{RootKeypair, SealedKey, SymmetricKey};
use redb::{ReadableDatabase, TableDefinition};

use crate::table::RecordKey;

/// Plaintext bookkeeping: the format marker, the wrapped DB key and a key
/// check value. None of it is secret.
pub(crate) const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("polykey_meta");
const FORMAT: &[u8] = b"polykey-db/1";
const KEY_CONTEXT: &[u8] = b"polykey-db/db-key/v1";
const KEY_CHECK: &[u8] = b"polykey-db key check";
/// Purpose of the root-derived key that binds the DB key to the root secret.
const BINDING_PURPOSE: &[u8] = b"polykey-db/binding";

/// A tag over the format, the wrapped DB key and the DB key itself, keyed by
/// a key only `root`'s secret yields. The DB key is sealed to the public
/// NodeId, so anyone could write a store that opens; only the holder of the
/// root secret can write one whose binding verifies. Every record is sealed
/// under the DB key, so binding it binds the whole store.
fn binding(root: &RootKeypair, wrapped: &[u8], key: &SymmetricKey) -> blake3::Hash {
    let mac_key = root.derive_key(BINDING_PURPOSE);
    let mut mac = blake3::Hasher::new_keyed(&mac_key);
    mac.update(FORMAT);
    mac.update(&(wrapped.len() as u64).to_le_bytes());
    mac.update(wrapped);
    mac.update(key.expose_secret());
    mac.finalize()
}

/// Why the store could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// There is no database file at the path.
    #[error("no database at {0}")]
    NotFound(PathBuf),
    /// A database already exists where a new one was to be created.
    #[error("a database already exists at {0}")]
    AlreadyExists(PathBuf),
    /// Another process has the file open.
    #[error("the database is already in use by another process")]
    InUse,
    /// The file is not a Polykey database (or is damaged beyond recognition).
    #[error("the file is not a Polykey database")]
    NotOurs,
    /// The database belongs to another root key.
    #[error("the database was sealed for a different key")]
    WrongKey,
    /// The store was changed by someone without its key: a record altered
    /// or moved, or (in an authenticated table) a record removed or put
    /// back.
    #[error(
        "the stored data in table '{table}' has been tampered with (a record altered, moved, removed or put back)"
    )]
    Tampered {
        /// The table the record was read from.
        table: String,
    },
    /// A record authenticated but did not decode; written by a newer version.
    #[error("a stored record in table '{table}' has an unknown format")]
    Format {
        /// The table the record was read from.
        table: String,
    },
    /// The disk is full (or the file may not grow): nothing was written.
    #[error("the disk is full, so this was not saved; free some space and try again")]
    Full,
    /// Reading or writing the file failed.
    #[error("storage error: {0}")]
    Storage(String),
}

impl Db {
    /// A storage error from this store's file; a full disk, or redb
    /// refusing after an earlier failed write, marks the handle for opening
    /// again (see `Engine`).
    pub(crate) fn storage_error(&self, error: impl std::fmt::Display) -> DbError {
        let error = DbError::storage(error);
        let io = match &error {
            DbError::Full => true,
            DbError::Storage(text) => text.contains("Previous I/O error"),
            _ => false,
        };
        if io {
            self.redb.suspect();
        }
        error
    }
}

impl DbError {
    pub(crate) fn storage(error: impl std::fmt::Display) -> Self {
        let text = error.to_string();
        // ENOSPC, or EFBIG past a file size limit: the same to a person.
        if text.contains("(os error 28)") || text.contains("(os error 27)") {
            return Self::Full;
        }
        Self::Storage(text)
    }
}

/// An open, unlocked store.
pub struct Db {
    pub(crate) redb: Engine,
    pub(crate) key: SymmetricKey,
    pub(crate) index_key: [u8; 32],
    /// Keys the hashes that make up authenticated tables' digests.
    pub(crate) digest_key: [u8; 32],
    /// Bumped by every committed write transaction.
    pub(crate) generation: std::sync::atomic::AtomicU64,
    /// Called after every committed write transaction.
    pub(crate) on_commit: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Records some work in progress holds ([`Db::lease`]).
    leases: Arc<Leases>,
}

/// The record keys held ([`Db::lease`]), and whether one was given back
/// since [`Db::leases_given_back`] last looked.
#[derive(Default)]
struct Leases {
    held: Mutex<HashSet<RecordKey>>,
    given_back: std::sync::atomic::AtomicBool,
}

/// A hold on a record key ([`Db::lease`]), given back when dropped.
pub struct Lease {
    key: RecordKey,
    leases: Arc<Leases>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        lock(&self.leases.held).remove(&self.key);
        self.leases
            .given_back
            .store(true, std::sync::atomic::Ordering::Release);
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db(<redacted>)")
    }
}

/// The redb handle. redb can panic on a damaged file, closing it too; the
/// close happens in a drop, where a panic would reach whoever let go of
/// the store (or abort a thread already unwinding), so it is caught here.
/// After a write that failed to reach the disk (out of space, say) redb
/// refuses every later transaction until the file is opened again: the
/// store does that itself at the next write, so space freed lets writing
/// go on without a restart.
pub(crate) struct Engine {
    slot: std::sync::RwLock<Slot>,
    path: PathBuf,
    /// An I/O error was seen: redb may now refuse every read and write
    /// (not always at the start of a transaction), so the next one opens
    /// the file again first.
    suspect: std::sync::atomic::AtomicBool,
}

/// The open handle, if any, and which opening of the file it is.
struct Slot {
    number: u64,
    redb: Option<redb::Database>,
}

/// Most attempts at opening the file again, 10 ms apart, while a
/// transaction of the old handle still holds it.
const REOPEN_TRIES: usize = 500;

/// The most memory redb keeps for pages it read or wrote. Its own default
/// is 1 GiB, so a store's memory grew with its file (reading 64 MiB back
/// left 210 MiB resident); the operating system's page cache keeps the
/// file's hot pages anyway, and every value in it is sealed, so a small
/// cache costs little (clones measured within a few percent of 64 MiB's).
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// How every store opens redb.
fn builder() -> redb::Builder {
    let mut builder = redb::Builder::new();
    builder.set_cache_size(CACHE_BYTES);
    builder
}

fn previous_io<T>(result: &Result<T, redb::TransactionError>) -> bool {
    matches!(
        result,
        Err(redb::TransactionError::Storage(
            redb::StorageError::PreviousIo
        ))
    )
}

/// The number the next handle of a file opened in this process takes:
/// unique in the process, so that a handle of a store opened again (after
/// a disk error, or locked and unlocked) never passes for an earlier one.
static NEXT_HANDLE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_handle() -> u64 {
    NEXT_HANDLE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Engine {
    fn new(redb: redb::Database, path: &Path) -> Self {
        Self {
            slot: std::sync::RwLock::new(Slot {
                number: next_handle(),
                redb: Some(redb),
            }),
            path: path.to_owned(),
            suspect: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Mark the handle as possibly refusing everything (see `suspect`).
    pub(crate) fn suspect(&self) {
        self.suspect
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Open the file again before a transaction when an I/O error was seen.
    fn settle(&self) -> Result<(), DbError> {
        if self
            .suspect
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            let number = self.slot.read().unwrap_or_else(|e| e.into_inner()).number;
            self.reopen(number)?;
        }
        Ok(())
    }

    /// Run `f` on the open handle, with its number; a handle lost to a
    /// failed reopen (the disk still full) is opened again first.
    fn with<T>(&self, f: impl FnOnce(&redb::Database) -> T) -> Result<(u64, T), DbError> {
        let mut f = Some(f);
        let mut tried = false;
        loop {
            let number = {
                let slot = self.slot.read().unwrap_or_else(|e| e.into_inner());
                if let (Some(redb), Some(f)) = (&slot.redb, f.take()) {
                    return Ok((slot.number, f(redb)));
                }
                slot.number
            };
            if tried {
                return Err(DbError::Storage(
                    "the data file could not be opened again".into(),
                ));
            }
            self.reopen(number)?;
            tried = true;
        }
    }

    /// The number of the handle open now (see [`Db::handle`]).
    pub(crate) fn handle(&self) -> u64 {
        self.slot.read().unwrap_or_else(|e| e.into_inner()).number
    }

    pub(crate) fn begin_read(&self) -> Result<redb::ReadTransaction, DbError> {
        Ok(self.begin(redb::Database::begin_read)?.1)
    }

    /// A write transaction, with the number of the handle it is on (see
    /// [`WriteTxn::commit_in_memory`](crate::WriteTxn::commit_in_memory)).
    pub(crate) fn begin_write(&self) -> Result<(u64, redb::WriteTransaction), DbError> {
        self.begin(redb::Database::begin_write)
    }

    /// Start a transaction with `start`, opening the file again first when
    /// an I/O error was seen, or when redb refuses after an earlier one.
    fn begin<T>(
        &self,
        start: impl Fn(&redb::Database) -> Result<T, redb::TransactionError>,
    ) -> Result<(u64, T), DbError> {
        self.settle()?;
        let (number, txn) = self.with(&start)?;
        if previous_io(&txn) {
            self.reopen(number)?;
            let (number, txn) = self.with(&start)?;
            return Ok((number, txn.map_err(DbError::storage)?));
        }
        Ok((number, txn.map_err(DbError::storage)?))
    }

    /// Give the open file a new handle number (see [`Db::renew_handle`]).
    fn renumber(&self) {
        self.slot.write().unwrap_or_else(|e| e.into_inner()).number = next_handle();
    }

    pub(crate) fn compact(&self) -> Result<bool, DbError> {
        let mut slot = self.slot.write().unwrap_or_else(|e| e.into_inner());
        match &mut slot.redb {
            Some(redb) => redb.compact().map_err(DbError::storage),
            None => Ok(false),
        }
    }

    /// Close the file and open it again (redb checks and repairs it),
    /// unless another thread already did since handle `number` failed. On
    /// failure no handle is open, and the next use tries again.
    fn reopen(&self, number: u64) -> Result<(), DbError> {
        let mut slot = self.slot.write().unwrap_or_else(|e| e.into_inner());
        if slot.number != number {
            return Ok(());
        }
        if let Some(old) = slot.redb.take() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(old)));
        }
        for _ in 0..REOPEN_TRIES {
            match builder().open(&self.path) {
                Ok(redb) => {
                    slot.redb = Some(redb);
                    slot.number = next_handle();
                    return Ok(());
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                // Opening repairs the file, which needs room too.
                Err(e) => {
                    return Err(match map_open_error(e) {
                        DbError::Storage(text) => DbError::storage(text),
                        other => other,
                    })
                }
            }
        }
        Err(DbError::InUse)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let slot = self.slot.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(redb) = slot.redb.take() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(redb)));
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.index_key.zeroize();
        self.digest_key.zeroize();
    }
}

fn map_open_error(error: redb::DatabaseError) -> DbError {
    match error {
        redb::DatabaseError::DatabaseAlreadyOpen => DbError::InUse,
        // redb reports a foreign file (bad magic number) as InvalidData.
        redb::DatabaseError::Storage(redb::StorageError::Io(e))
            if e.kind() != std::io::ErrorKind::InvalidData =>
        {
            DbError::Storage(e.to_string())
        }
        // Anything else at open time (bad magic, bad header, wrong version)
        // means the file is not a redb file we can read.
        _ => DbError::NotOurs,
    }
}

/// How a store's file is used ([`Db::space`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    /// Bytes of the records' keys and values (sealed), without the
    /// B-tree's own overhead.
    pub stored_bytes: u64,
    /// Bytes of pages allocated but not holding data: what compaction
    /// could give back.
    pub fragmented_bytes: u64,
    /// Bytes of every page in use or free inside the file.
    pub allocated_bytes: u64,
}

impl Db {
    /// Create a new store at `path`, sealed to `root`. Refuses to overwrite.
    pub fn create(path: &Path, root: &RootKeypair) -> Result<Self, DbError> {
        // The file is created here, empty and 0600, and only then handed to
        // redb: nothing is ever written to it while others could read it,
        // whatever the umask. `create_new` refuses an existing file and
        // never follows a symlink.
        let file = match polykey_os::fs::create_new_private(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(DbError::AlreadyExists(path.to_owned()))
            }
            Err(e) => return Err(DbError::storage(e)),
        };
        let redb = match redb::backends::FileBackend::new(file)
            .and_then(|backend| builder().create_with_backend(backend))
        {
            Ok(redb) => redb,
            Err(e) => {
                // Leave no empty file behind that would block the next try.
                let _ = std::fs::remove_file(path);
                return Err(map_open_error(e));
            }
        };
        let key = SymmetricKey::generate();
        let wrapped =
            SealedKey::seal(&key, &root.node_id(), KEY_CONTEXT).map_err(|_| DbError::WrongKey)?;
        let wrapped = serde_json::to_vec(&wrapped).map_err(DbError::storage)?;
        let check = key.seal(KEY_CHECK, b"polykey_meta\0key_check");
        let bound = binding(root, &wrapped, &key);
        let digests = crate::digest::seal_digests(&key, &Default::default())?;
        let txn = redb.begin_write().map_err(DbError::storage)?;
        {
            let mut meta = txn.open_table(META).map_err(DbError::storage)?;
            meta.insert("format", FORMAT).map_err(DbError::storage)?;
            meta.insert("db_key", wrapped.as_slice())
                .map_err(DbError::storage)?;
            meta.insert("key_check", check.as_slice())
                .map_err(DbError::storage)?;
            meta.insert("binding", bound.as_bytes().as_slice())
                .map_err(DbError::storage)?;
            meta.insert(crate::digest::DIGESTS_KEY, digests.as_slice())
                .map_err(DbError::storage)?;
        }
        txn.commit().map_err(DbError::storage)?;
        Ok(Self::from_parts(redb, path, key))
    }

    /// Open the store at `path` with `root`.
    pub fn open(path: &Path, root: &RootKeypair) -> Result<Self, DbError> {
        if !path.exists() {
            return Err(DbError::NotFound(path.to_owned()));
        }
        let redb = builder().open(path).map_err(map_open_error)?;
        let txn = redb.begin_read().map_err(DbError::storage)?;
        let meta = match txn.open_table(META) {
            Ok(meta) => meta,
            Err(redb::TableError::TableDoesNotExist(_)) => return Err(DbError::NotOurs),
            Err(e) => return Err(DbError::storage(e)),
        };
        let read = |name: &str| -> Result<Vec<u8>, DbError> {
            meta.get(name)
                .map_err(DbError::storage)?
                .map(|v| v.value().to_vec())
                .ok_or(DbError::NotOurs)
        };
        if read("format")? != FORMAT {
            return Err(DbError::NotOurs);
        }
        let wrapped_bytes = read("db_key")?;
        let wrapped: SealedKey =
            serde_json::from_slice(&wrapped_bytes).map_err(|_| DbError::NotOurs)?;
        let key = wrapped
            .open(root, KEY_CONTEXT)
            .map_err(|_| DbError::WrongKey)?;
        let tampered = || DbError::Tampered {
            table: "polykey_meta".into(),
        };
        // A store written without the root secret (planted beside the key
        // file, sealed to the public NodeId) has no binding that verifies:
        // refused before anything in it is read. blake3::Hash compares in
        // constant time.
        let stored = read("binding").map_err(|_| tampered())?;
        let stored: [u8; blake3::OUT_LEN] = stored.as_slice().try_into().map_err(|_| tampered())?;
        if binding(root, &wrapped_bytes, &key) != blake3::Hash::from(stored) {
            return Err(tampered());
        }
        key.open(&read("key_check")?, b"polykey_meta\0key_check")
            .map_err(|_| tampered())?;
        drop(meta);
        let db = Self::from_parts(redb, path, key);
        // Every authenticated table must hold exactly the records this
        // store wrote: one deleted, or put back, is refused here, at
        // unlock, rather than at the table's next read.
        db.verify_authenticated(&txn)?;
        drop(txn);
        Ok(db)
    }

    /// The number of the handle of the file open now, unique in the
    /// process: a transaction begun after this is on this handle or a
    /// later one ([`WriteTxn::handle`](crate::WriteTxn::handle)). Taken
    /// before a read whose answer is kept, it names the oldest handle that
    /// answer may come from.
    pub fn handle(&self) -> u64 {
        self.redb.handle()
    }

    /// A number that changes whenever a write transaction commits: a cheap
    /// way to notice that anything changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// How the file's space is used now. Takes the write lock for a moment.
    pub fn space(&self) -> Result<Space, DbError> {
        let (_, txn) = self.redb.begin_write()?;
        let stats = txn.stats().map_err(DbError::storage)?;
        txn.abort().map_err(DbError::storage)?;
        Ok(Space {
            stored_bytes: stats.stored_bytes(),
            fragmented_bytes: stats.fragmented_bytes(),
            allocated_bytes: stats.allocated_pages() * stats.page_size() as u64,
        })
    }

    /// Give the file open now a new handle number, as if it had been
    /// opened again: what work in progress learnt of the store before
    /// (a transfer's pages, the objects it found stored, see
    /// [`Db::handle`]) no longer counts, and its next transaction is
    /// refused. For a change that deletes records no transaction beside
    /// it expected to go (what no version needs, collected); it needs the
    /// store to itself, so nothing learns of the store between that
    /// change and the new number.
    pub fn renew_handle(&mut self) {
        self.redb.renumber();
    }

    /// Give the file's free space back: move live pages down and shrink
    /// the file. Needs the store to itself (no transaction open); crash
    /// safe like any commit (redb writes the moved pages, then commits).
    pub fn compact(&mut self) -> Result<(), DbError> {
        // Each pass moves what it can; a bounded number of passes.
        for _ in 0..8 {
            if !self.redb.compact()? {
                break;
            }
        }
        Ok(())
    }

    /// Call `hook` after every committed write transaction (set once; a
    /// second hook is ignored). It must be quick: it runs in the writer.
    pub fn on_commit(&self, hook: impl Fn() + Send + Sync + 'static) {
        let _ = self.on_commit.set(Box::new(hook));
    }

    fn from_parts(redb: redb::Database, path: &Path, key: SymmetricKey) -> Self {
        let index_key = blake3::derive_key("polykey-db record keys v1", key.expose_secret());
        let digest_key = blake3::derive_key(crate::digest::DIGEST_KEY_CONTEXT, key.expose_secret());
        Self {
            redb: Engine::new(redb, path),
            key,
            index_key,
            digest_key,
            generation: std::sync::atomic::AtomicU64::new(0),
            on_commit: std::sync::OnceLock::new(),
            leases: Arc::default(),
        }
    }

    /// Hold `key` for work in progress in this process (a record it keeps
    /// up to date while it runs, say): `None` while another holds it.
    /// Nothing is written; the hold ends when the [`Lease`] is dropped, and
    /// with the process.
    pub fn lease(&self, key: RecordKey) -> Option<Lease> {
        lock(&self.leases.held).insert(key).then(|| Lease {
            key,
            leases: Arc::clone(&self.leases),
        })
    }

    /// Whether `key` is held ([`Db::lease`]).
    pub fn leased(&self, key: &RecordKey) -> bool {
        lock(&self.leases.held).contains(key)
    }

    /// Whether a lease was given back since the last call (so the work it
    /// held may have left something to tidy).
    pub fn leases_given_back(&self) -> bool {
        self.leases
            .given_back
            .swap(false, std::sync::atomic::Ordering::AcqRel)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;
    use crate::Table;

    const NOTES: Table<String> = Table::new("notes");

    /// A transaction committed without a flush is seen by the ones after
    /// it on the same handle of the file, and made durable by the next
    /// plain commit; a transaction after the file was opened again (as
    /// after a disk error) is on another handle, which is how a run of
    /// such commits learns it may have lost them.
    #[test]
    fn a_commit_in_memory_is_seen_then_made_durable_and_a_new_handle_shows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let root = RootKeypair::from_seed(&[3; 32]);
        let db = Db::create(&path, &root).unwrap();
        let (first, second) = (
            RecordKey::from_bytes([1; 32]),
            RecordKey::from_bytes([2; 32]),
        );
        let mut txn = db.write().unwrap();
        txn.put(&NOTES, &first, &"in memory".to_owned()).unwrap();
        let handle = txn.commit_in_memory().unwrap();
        assert_eq!(
            db.read().unwrap().get(&NOTES, &first).unwrap().as_deref(),
            Some("in memory")
        );
        let mut txn = db.write().unwrap();
        assert_eq!(txn.handle(), handle);
        txn.put(&NOTES, &second, &"durable".to_owned()).unwrap();
        txn.commit().unwrap();
        // As after an I/O error: the next transaction opens the file again.
        db.redb.suspect();
        let txn = db.write().unwrap();
        assert_ne!(txn.handle(), handle, "the file was opened again");
        drop(txn);
        drop(db);
        let db = Db::open(&path, &root).unwrap();
        // Opened again in the same process: another handle still.
        assert_ne!(db.write().unwrap().handle(), handle);
        let read = db.read().unwrap();
        assert_eq!(
            read.get(&NOTES, &first).unwrap().as_deref(),
            Some("in memory")
        );
        assert_eq!(
            read.get(&NOTES, &second).unwrap().as_deref(),
            Some("durable")
        );
    }
}

//! Collecting what no version of a vault needs.
//!
//! History keeps every version, so an object stored by a write or by a
//! transfer that finished is needed for good. What is not: the objects of
//! transfers that never finished (cut off and let go, refused part way, a
//! lock in the middle), and of another device's version whose merge was
//! refused. A writer of a shared vault could begin transfer after
//! transfer and drop each, up to a gigabyte apiece, and nothing gave that
//! space back.
//!
//! [`Vaults::collect_garbage`] marks, in one write transaction per copy,
//! every record the copy's head reaches (commits, trees with the bases
//! their deltas are built on, blobs with their chunks, the cached shapes
//! and generations beside them, the chunks of blobs half received in
//! parts) and deletes the rest of its table in that same transaction:
//! all or nothing, so a crash in the middle loses nothing. Commits and
//! trees are opened, never rebuilt or hashed; blobs are not opened at all
//! (a tree's file entries name blobs, found with their chunks by key). A
//! delta's entries are its base's and those it inserts when its record
//! says it keeps to whole entries (as every delta written now does); an
//! older record's is shown to by where its base's entries start, or else
//! rebuilt and read whole, since an entry spliced from the base's bytes
//! and the delta's could name what neither holds whole.
//!
//! A transfer under way or set aside holds objects no version names yet,
//! and a version received waits a moment for its merge: a collection
//! takes those too. So it takes the store mutably (no transaction runs
//! beside it) and, when it deleted anything, gives the file a new handle
//! ([`Db::renew_handle`]): a transfer that took in or found objects
//! before is refused at its next transaction and begins again, as after
//! a lock (see `Incoming::relies_on`). The node runs it at a lock, and
//! while unlocked at a quiet moment with no transfer kept (or, put off
//! long, with none going on; see `Node::collect_if_quiet`).

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use gix::hash::ObjectId;
use polykey_db::{Db, DbError, RecordKey, Table, WriteTxn};
use serde::{Deserialize, Serialize};

use crate::delta;
use crate::error::VaultError;
use crate::objects::{Links, ObjectStore};
use crate::vault::{vault_from, Vault, Vaults};

/// Entry starts of trees kept while marking a delta that does not say it
/// keeps to whole entries (one stored before deltas said so), in all;
/// past it the cache begins again.
const MAX_CACHED_STARTS: usize = 4 << 20;

/// The store's bytes after the last collection (see
/// [`Vaults::collect_garbage_after`]).
#[derive(Serialize, Deserialize)]
struct LastCollection {
    stored_bytes: u64,
    /// Stopped part way (a lock waiting): due again whatever the size.
    #[serde(default)]
    pending: bool,
}

const LAST_COLLECTION: Table<LastCollection> = Table::new("vault_collections");

/// What a collection deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Records deleted.
    pub records: usize,
    /// Their bytes (sealed, keys included).
    pub bytes: u64,
    /// Copies left as they were: a record their head reaches is missing
    /// or damaged, so what they need could not be told.
    pub skipped: usize,
    /// Stopped before every copy was gone through (see
    /// [`Vaults::collect_garbage_until`]).
    pub stopped: bool,
}

impl Vaults<'_> {
    /// Delete, in every copy of a vault here, the records its head does
    /// not reach (see the module's documentation). It needs the store to
    /// itself, and when it deleted anything, a transfer under way or set
    /// aside (holding objects no head reaches yet) is refused at its next
    /// transaction. A copy with a missing or damaged record on the way is
    /// left as it is (counted in [`Collected::skipped`]).
    pub fn collect_garbage(db: &mut Db) -> Result<Collected, VaultError> {
        Self::collect_garbage_until(db, &|| false)
    }

    /// [`Vaults::collect_garbage`], stopping before the next copy once
    /// `stop` says so (a lock waiting behind a collection while unlocked:
    /// the lock collects, not the person locking waiting for every vault).
    pub fn collect_garbage_until(
        db: &mut Db,
        stop: &dyn Fn() -> bool,
    ) -> Result<Collected, VaultError> {
        let collected = Self::collect_each(db, stop);
        if collected.as_ref().map_or(true, |c| c.records > 0) {
            // Also after a failure: a copy collected before it may have
            // taken what a transfer counts on.
            db.renew_handle();
        }
        collected
    }

    fn collect_each(db: &Db, stop: &dyn Fn() -> bool) -> Result<Collected, VaultError> {
        let records = Vaults::new(db).records(&db.read()?)?;
        let mut collected = Collected::default();
        for (_, record) in records {
            if stop() {
                collected.stopped = true;
                break;
            }
            let mut txn = db.write()?;
            match vault_from(&record).and_then(|vault| vault.collect_in(&mut txn)) {
                Ok((0, _)) => {}
                Ok((records, bytes)) => {
                    txn.commit()?;
                    collected.records += records;
                    collected.bytes += bytes;
                }
                // The disk full or failing: the others would fail alike.
                Err(VaultError::Db(e @ (DbError::Full | DbError::Storage(_)))) => {
                    return Err(VaultError::Db(e))
                }
                Err(_) => collected.skipped += 1,
            }
        }
        Ok(collected)
    }

    /// [`Vaults::collect_garbage_until`] when it is due
    /// ([`Vaults::collection_due`]); `None` when it is not. Stopped, it is
    /// due still (whatever it deleted before it stopped).
    pub fn collect_garbage_after(
        db: &mut Db,
        at_least: u64,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<Collected>, VaultError> {
        if !Self::collection_due(db, at_least)? {
            return Ok(None);
        }
        let collected = Self::collect_garbage_until(db, stop);
        // Remembered whatever was skipped, and after a failure too (if it
        // can be): a damaged copy or a failing disk is not gone through
        // again at every chance, each time refusing the transfers under
        // way (see `Db::renew_handle`). Stopped, what it deleted may have
        // shrunk the store below the growth that made it due: it stays
        // due however large.
        let pending = collected.as_ref().is_ok_and(|c| c.stopped);
        let remembered = db
            .space()
            .map_err(VaultError::from)
            .and_then(|space| remember_collection(db, space.stored_bytes, pending));
        let collected = collected?;
        remembered?;
        Ok(Some(collected))
    }

    /// Whether the store grew since the last collection by a quarter of
    /// what it held then, and by at least `at_least` bytes (or there was
    /// none). A collection opens every commit and tree (100,000 commits:
    /// about 6 s), so it comes no more often than the store grows by a
    /// quarter: its cost per byte stored stays the same however large the
    /// store, and what no version needs stays under a quarter of it.
    /// Remembered in the store, so a process that begins and ends often
    /// does not go through every vault each time; a store that shrank (a
    /// vault purged) counts its growth from here.
    pub fn collection_due(db: &Db, at_least: u64) -> Result<bool, VaultError> {
        let Some(last) = db.read()?.get(&LAST_COLLECTION, &last_collection_key(db))? else {
            return Ok(true);
        };
        if last.pending {
            return Ok(true);
        }
        // Asked only now: it opens a write transaction.
        let stored = db.space()?.stored_bytes;
        if stored < last.stored_bytes {
            remember_collection(db, stored, false)?;
            return Ok(false);
        }
        let growth = (last.stored_bytes / 4).max(at_least);
        Ok(stored >= last.stored_bytes.saturating_add(growth))
    }
}

fn last_collection_key(db: &Db) -> RecordKey {
    db.record_key(LAST_COLLECTION.name(), b"last")
}

/// Remember the store's bytes after a collection (or a shrink), and
/// whether it was stopped part way.
fn remember_collection(db: &Db, stored_bytes: u64, pending: bool) -> Result<(), VaultError> {
    let mut txn = db.write()?;
    let last = LastCollection {
        stored_bytes,
        pending,
    };
    txn.put(&LAST_COLLECTION, &last_collection_key(db), &last)?;
    Ok(txn.commit()?)
}

impl Vault {
    /// In `txn`, delete the records of this copy its head does not reach;
    /// returns how many and their bytes. A copy without a version (a
    /// transfer's start) is left alone.
    fn collect_in(&self, txn: &mut WriteTxn<'_>) -> Result<(usize, u64), VaultError> {
        let Some(head) = self.store.head(txn)? else {
            return Ok((0, 0));
        };
        let mut keep = Marker::new(&self.store, txn).mark(head)?;
        keep.extend(self.parts_kept(txn)?);
        Ok(txn.retain_raw(self.store.objects_table(), |key| keep.contains(key))?)
    }
}

/// An object a version reaches, of the kind that names it.
enum Reached {
    Commit(ObjectId),
    Tree(ObjectId),
    Blob(ObjectId),
}

/// The walk of what a head reaches. Commits and trees are opened (a
/// commit names its tree and parents, a tree its entries: directories are
/// trees, files blobs); blobs, most of a vault's bytes, are not.
struct Marker<'a, 't> {
    store: &'a ObjectStore,
    txn: &'a WriteTxn<'t>,
    seen: HashSet<ObjectId>,
    keep: HashSet<RecordKey>,
    /// Where the entries of trees met start, by id (see
    /// [`delta::entry_starts`]), and how many starts are kept: only for
    /// deltas that do not say they keep to whole entries.
    starts: HashMap<ObjectId, Rc<Vec<usize>>>,
    cached: usize,
}

impl<'a, 't> Marker<'a, 't> {
    fn new(store: &'a ObjectStore, txn: &'a WriteTxn<'t>) -> Self {
        Self {
            store,
            txn,
            seen: HashSet::new(),
            keep: HashSet::new(),
            starts: HashMap::new(),
            cached: 0,
        }
    }

    /// Every record `head` reaches, by key.
    fn mark(mut self, head: ObjectId) -> Result<HashSet<RecordKey>, VaultError> {
        let mut todo = vec![Reached::Commit(head)];
        while let Some(reached) = todo.pop() {
            let (Reached::Commit(id) | Reached::Tree(id) | Reached::Blob(id)) = reached;
            if !self.seen.insert(id) {
                continue;
            }
            if let Reached::Blob(id) = reached {
                self.keep.extend(self.store.blob_keys(self.txn, &id)?);
                continue;
            }
            let links = self.links(&id)?;
            let commit = matches!(links, Links::Commit { .. });
            if commit != matches!(reached, Reached::Commit(_)) {
                return Err(malformed(&id));
            }
            self.keep.extend(self.store.record_keys(&id, commit));
            match links {
                Links::Commit { tree, parents } => {
                    todo.push(Reached::Tree(tree));
                    todo.extend(parents.into_iter().map(Reached::Commit));
                }
                Links::Tree(data) => {
                    let starts = delta::entry_starts(&data).ok_or_else(|| malformed(&id))?;
                    push_entries(&mut todo, entries(&data, &starts), &id)?;
                }
                Links::Delta { base, ops, aligned } => {
                    todo.push(Reached::Tree(base));
                    if aligned {
                        // Every other entry is one of the base's, whole.
                        let inserted =
                            delta::inserted_entries(&ops).ok_or_else(|| malformed(&id))?;
                        push_entries(&mut todo, inserted.into_iter().map(Some), &id)?;
                    } else {
                        self.unmarked_delta(&mut todo, (&id, &base), &ops)?;
                    }
                }
            }
        }
        Ok(self.keep)
    }

    /// The entries of tree `id`, a delta against `base` whose record does
    /// not say it keeps to whole entries: shown to from where its base's
    /// entries start, else read from the tree rebuilt.
    fn unmarked_delta(
        &mut self,
        todo: &mut Vec<Reached>,
        (id, base): (&ObjectId, &ObjectId),
        ops: &[u8],
    ) -> Result<(), VaultError> {
        let base_starts = self.starts_of(base, 0)?;
        let starts = match delta::spliced_starts(&base_starts, ops) {
            Some(starts) => {
                let inserted = delta::inserted_entries(ops).ok_or_else(|| malformed(id))?;
                push_entries(todo, inserted.into_iter().map(Some), id)?;
                starts
            }
            None => {
                let data = self.store.rebuild_tree(self.txn, id)?;
                let starts = delta::entry_starts(&data).ok_or_else(|| malformed(id))?;
                push_entries(todo, entries(&data, &starts), id)?;
                starts
            }
        };
        self.remember(*id, Rc::new(starts));
        Ok(())
    }

    /// What commit or tree `id`'s record names; a missing record is damage.
    fn links(&self, id: &ObjectId) -> Result<Links, VaultError> {
        self.store
            .stored_links(self.txn, id)?
            .ok_or_else(|| VaultError::corrupt(format!("object {id} is missing")))
    }

    /// Where tree `id`'s entries start, from the cache or worked out from
    /// its base's (`depth` deltas above it so far).
    fn starts_of(&mut self, id: &ObjectId, depth: usize) -> Result<Rc<Vec<usize>>, VaultError> {
        if let Some(starts) = self.starts.get(id) {
            return Ok(Rc::clone(starts));
        }
        if depth > delta::MAX_CHAIN {
            return Err(VaultError::corrupt(format!(
                "object {id} is more than {} deltas from a whole object",
                delta::MAX_CHAIN
            )));
        }
        let starts = match self.links(id)? {
            Links::Tree(data) => delta::entry_starts(&data),
            Links::Delta { base, ops, .. } => {
                let base_starts = self.starts_of(&base, depth + 1)?;
                match delta::spliced_starts(&base_starts, &ops) {
                    Some(starts) => Some(starts),
                    None => delta::entry_starts(&self.store.rebuild_tree(self.txn, id)?),
                }
            }
            Links::Commit { .. } => None,
        }
        .ok_or_else(|| malformed(id))?;
        let starts = Rc::new(starts);
        self.remember(*id, Rc::clone(&starts));
        Ok(starts)
    }

    fn remember(&mut self, id: ObjectId, starts: Rc<Vec<usize>>) {
        if self.cached + starts.len() > MAX_CACHED_STARTS {
            self.starts.clear();
            self.cached = 0;
        }
        self.cached += starts.len();
        self.starts.insert(id, starts);
    }
}

/// The entries of tree `data`, whose entries start at `starts`.
fn entries<'d>(data: &'d [u8], starts: &'d [usize]) -> impl Iterator<Item = Option<&'d [u8]>> {
    starts.windows(2).map(|w| data.get(w[0]..w[1]))
}

/// What each of tree `id`'s `entries` names, to be walked: a directory
/// as a tree, a file as a blob.
fn push_entries<'d>(
    todo: &mut Vec<Reached>,
    entries: impl Iterator<Item = Option<&'d [u8]>>,
    id: &ObjectId,
) -> Result<(), VaultError> {
    for entry in entries {
        // A mode spelled otherwise (`040000`, which gix reads as a
        // directory, in a tree taken in before such were refused) could
        // hide a directory among the files: the copy is left alone.
        let (is_tree, target) = entry
            .filter(|entry| delta::canonical_mode(entry))
            .and_then(delta::entry_target)
            .ok_or_else(|| malformed(id))?;
        todo.push(if is_tree {
            Reached::Tree(target)
        } else {
            Reached::Blob(target)
        });
    }
    Ok(())
}

fn malformed(id: &ObjectId) -> VaultError {
    VaultError::corrupt(format!("object {id} is malformed"))
}

#[cfg(test)]
mod tests {
    use gix::objs::Kind;
    use polykey_db::RawRead;

    use super::*;
    use crate::objects::HASH;

    fn entry(name: &str, id: &ObjectId) -> Vec<u8> {
        [format!("100644 {name}\0").as_bytes(), id.as_bytes()].concat()
    }

    fn key_of(store: &ObjectStore, id: &ObjectId) -> RecordKey {
        store.record_keys(id, false)[0]
    }

    fn blob(store: &ObjectStore, txn: &mut WriteTxn<'_>, data: &[u8]) -> ObjectId {
        store.write_raw(txn, Kind::Blob, data).unwrap()
    }

    fn commit_of(store: &ObjectStore, txn: &mut WriteTxn<'_>, tree: &ObjectId) -> ObjectId {
        let commit = format!("tree {tree}\nauthor a <a> 0 +0000\ncommitter a <a> 0 +0000\n\nx\n");
        store
            .write_raw(txn, Kind::Commit, commit.as_bytes())
            .unwrap()
    }

    /// A tree of `base`'s entry "a" and a new entry "b" naming `target`, as
    /// a delta against `base`, sealed as `seal` seals it.
    #[test]
    fn a_delta_keeps_its_base_and_what_it_inserts_and_no_more() {
        let (_dir, keys, db) = crate::testing::db();
        let vault = Vaults::new(&db).create("v", &keys).unwrap();
        let store = &vault.store;
        let mut txn = db.write().unwrap();
        let (one, two, three) = (
            blob(store, &mut txn, b"one"),
            blob(store, &mut txn, b"two"),
            blob(store, &mut txn, b"three"),
        );
        let stray = blob(store, &mut txn, b"named by no version");
        // The base is named by no version but through the delta (another
        // device's tree a transfer let go left, say).
        let base = [entry("a", &one), entry("b", &two)].concat();
        let base_id = store.write_raw(&mut txn, Kind::Tree, &base).unwrap();
        let target = [entry("a", &one), entry("b", &three)].concat();
        let target_id = gix::objs::compute_hash(HASH, Kind::Tree, &target).unwrap();
        let mut ops = Vec::new();
        delta::put_copy(&mut ops, 0, entry("a", &one).len());
        delta::put_insert(&mut ops, &entry("b", &three));
        let record = store.seal_delta(&db, &target_id, &base_id, &ops);
        txn.put_records(vec![record]).unwrap();
        let commit = commit_of(store, &mut txn, &target_id);

        let keep = Marker::new(store, &txn).mark(commit).unwrap();
        for needed in [commit, target_id, base_id, one, two, three] {
            assert!(keep.contains(&key_of(store, &needed)), "{needed} is kept");
        }
        assert!(!keep.contains(&key_of(store, &stray)));
    }

    #[test]
    fn a_delta_splitting_an_entry_keeps_what_its_rebuilt_tree_names() {
        let (_dir, keys, db) = crate::testing::db();
        let vault = Vaults::new(&db).create("v", &keys).unwrap();
        let store = &vault.store;
        let mut txn = db.write().unwrap();
        let one = blob(store, &mut txn, b"one");
        // Two blobs whose ids begin with the same byte: a delta can copy
        // the base's entry up to and with it, and insert the rest of the
        // other id, so neither names it whole.
        let two = blob(store, &mut txn, b"two");
        let three = (0..)
            .map(|n: u32| format!("three {n}").into_bytes())
            .find(|data| {
                gix::objs::compute_hash(HASH, Kind::Blob, data)
                    .unwrap()
                    .as_bytes()[0]
                    == two.as_bytes()[0]
            })
            .map(|data| blob(store, &mut txn, &data))
            .unwrap();
        let stray = blob(store, &mut txn, b"named by no version");
        let base = [entry("a", &one), entry("b", &two)].concat();
        let target = [entry("a", &one), entry("b", &three)].concat();
        let base_id = store.write_raw(&mut txn, Kind::Tree, &base).unwrap();
        let target_id = gix::objs::compute_hash(HASH, Kind::Tree, &target).unwrap();
        let split = entry("a", &one).len() + "100644 b\0".len() + 1;
        assert_eq!(base[..split], target[..split]);
        let mut ops = Vec::new();
        delta::put_copy(&mut ops, 0, split);
        delta::put_insert(&mut ops, &target[split..]);
        assert!(delta::spliced_starts(&delta::entry_starts(&base).unwrap(), &ops).is_none());
        // No node stores such a delta now; one may have before deltas
        // said whether they keep to whole entries.
        let record = store.seal_unmarked_delta(&db, &target_id, &base_id, &ops);
        txn.put_records(vec![record]).unwrap();
        let commit = commit_of(store, &mut txn, &target_id);
        assert_eq!(
            store.rebuild_tree(&txn, &target_id).unwrap().as_slice(),
            target
        );

        let keep = Marker::new(store, &txn).mark(commit).unwrap();
        for needed in [commit, target_id, base_id, one, three] {
            assert!(keep.contains(&key_of(store, &needed)), "{needed} is kept");
        }
        assert!(!keep.contains(&key_of(store, &stray)));
    }

    #[test]
    fn a_directorys_versions_are_stored_as_deltas_that_say_they_keep_to_whole_entries() {
        let (_dir, keys, db) = crate::testing::db();
        let vault = Vaults::new(&db).create("v", &keys).unwrap();
        let names: Vec<String> = (0..300).map(|i| format!("dir/secret-{i:03}")).collect();
        let pairs: Vec<(&str, &[u8])> = names
            .iter()
            .map(|n| (n.as_str(), b"x".as_slice()))
            .collect();
        vault.write_secrets(&db, &keys, &pairs).unwrap();
        let mut deltas = 0;
        for i in 0..20 {
            vault
                .write_secret(&db, &keys, &names[i * 7], format!("v{i}").as_bytes())
                .unwrap();
            let txn = db.write().unwrap();
            let head = vault.head_of(&txn).unwrap();
            let dir = vault.root_of(&txn, &head).unwrap();
            let dir = vault.store.tree(&txn, &dir).unwrap().entries[0].oid;
            match vault.store.stored_links(&txn, &dir).unwrap().unwrap() {
                Links::Delta { aligned, .. } => {
                    assert!(aligned, "version {i}");
                    deltas += 1;
                }
                Links::Tree(_) => {}
                Links::Commit { .. } => panic!("a commit"),
            }
        }
        assert!(deltas >= 19, "{deltas} of 20 versions were deltas");
    }

    #[test]
    fn a_copy_missing_a_record_is_left_as_it_is_and_the_others_are_collected() {
        let (_dir, keys, mut db) = crate::testing::db();
        let vaults = Vaults::new(&db);
        let damaged = vaults.create("damaged", &keys).unwrap();
        let whole = vaults.create("whole", &keys).unwrap();
        let mut strays = Vec::new();
        for vault in [&damaged, &whole] {
            vault.write_secret(&db, &keys, "s", b"kept").unwrap();
            let mut txn = db.write().unwrap();
            strays.push(blob(&vault.store, &mut txn, b"named by no version"));
            txn.commit().unwrap();
        }
        // The damaged copy's secret is gone.
        let secret = gix::objs::compute_hash(HASH, Kind::Blob, b"kept").unwrap();
        let mut txn = db.write().unwrap();
        let key = key_of(&damaged.store, &secret);
        assert!(txn.delete_raw(damaged.store.objects_table(), &key).unwrap());
        txn.commit().unwrap();

        let collected = Vaults::collect_garbage(&mut db).unwrap();
        assert_eq!((collected.records, collected.skipped), (1, 1));
        let txn = db.read().unwrap();
        let stored = |vault: &Vault, id: &ObjectId| {
            txn.contains_raw(vault.store.objects_table(), &key_of(&vault.store, id))
                .unwrap()
        };
        assert!(
            stored(&damaged, &strays[0]),
            "nothing went from the damaged copy"
        );
        assert!(!stored(&whole, &strays[1]));
        assert_eq!(whole.get(&db, "s").unwrap().as_slice(), b"kept");
    }
}

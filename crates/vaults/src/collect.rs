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
//! all or nothing, so a crash in the middle loses nothing. A record is
//! read, never rebuilt or hashed, except a tree stored as a delta that
//! does not keep to whole entries of its base (none this node makes):
//! its entries are then read from the rebuilt tree, since an entry
//! spliced from the base's bytes and the delta's could name what neither
//! does whole.
//!
//! It must not run while a transfer is under way or set aside (their
//! objects are named by no version yet): the node runs it at a lock,
//! when every transfer has stopped and none is kept to go on with.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use gix::hash::ObjectId;
use polykey_db::{RecordKey, WriteTxn};

use crate::delta;
use crate::error::VaultError;
use crate::objects::{Links, ObjectStore};
use crate::vault::{vault_from, Vault, Vaults};

/// Entry starts of trees kept while marking, in all (a directory's
/// versions share their bases, so most are looked up, not worked out
/// again); past it the cache begins again.
const MAX_CACHED_STARTS: usize = 4 << 20;

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
}

impl Vaults<'_> {
    /// Delete, in every copy of a vault here, the records its head does
    /// not reach (see the module's documentation). Only while no transfer
    /// is under way or set aside: their objects are reached by no head
    /// yet. A copy with a missing or damaged record on the way is left as
    /// it is (counted in [`Collected::skipped`]).
    pub fn collect_garbage(&self) -> Result<Collected, VaultError> {
        let records = self.records(&self.db.read()?)?;
        let mut collected = Collected::default();
        for (_, record) in records {
            let vault = vault_from(&record)?;
            let mut txn = self.db.write()?;
            match vault.collect_in(&mut txn) {
                Ok((0, _)) => {}
                Ok((records, bytes)) => {
                    txn.commit()?;
                    collected.records += records;
                    collected.bytes += bytes;
                }
                Err(VaultError::Corrupt(_)) => collected.skipped += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(collected)
    }
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

/// The walk of what a head reaches.
struct Marker<'a, 't> {
    store: &'a ObjectStore,
    txn: &'a WriteTxn<'t>,
    seen: HashSet<ObjectId>,
    keep: HashSet<RecordKey>,
    /// Where the entries of trees met start, by id (see
    /// [`delta::entry_starts`]), and how many starts are kept.
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
        let mut todo = vec![head];
        while let Some(id) = todo.pop() {
            if !self.seen.insert(id) {
                continue;
            }
            let links = self.links(&id)?;
            self.keep.extend(self.store.record_keys(&id, &links));
            match links {
                Links::Commit { tree, parents } => {
                    todo.push(tree);
                    todo.extend(parents);
                }
                Links::Tree(data) => {
                    let starts = delta::entry_starts(&data).ok_or_else(|| malformed(&id))?;
                    todo.extend(targets(&data, &starts, &id)?);
                    self.remember(id, Rc::new(starts));
                }
                Links::Delta { base, ops } => {
                    todo.push(base);
                    let base_starts = self.starts_of(&base, 0)?;
                    match delta::spliced_starts(&base_starts, &ops) {
                        // Every entry is one of the base's, whole, or one
                        // the delta inserts.
                        Some(starts) => {
                            let inserted =
                                delta::inserted_entries(&ops).ok_or_else(|| malformed(&id))?;
                            for entry in inserted {
                                todo.push(
                                    delta::entry_target(entry).ok_or_else(|| malformed(&id))?.1,
                                );
                            }
                            self.remember(id, Rc::new(starts));
                        }
                        None => {
                            let data = self.store.rebuild_tree(self.txn, &id)?;
                            let starts =
                                delta::entry_starts(&data).ok_or_else(|| malformed(&id))?;
                            todo.extend(targets(&data, &starts, &id)?);
                            self.remember(id, Rc::new(starts));
                        }
                    }
                }
                Links::Blob { .. } => {}
            }
        }
        Ok(self.keep)
    }

    /// What object `id`'s record names; a missing record is damage.
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
            Links::Delta { base, ops } => {
                let base_starts = self.starts_of(&base, depth + 1)?;
                match delta::spliced_starts(&base_starts, &ops) {
                    Some(starts) => Some(starts),
                    None => delta::entry_starts(&self.store.rebuild_tree(self.txn, id)?),
                }
            }
            Links::Commit { .. } | Links::Blob { .. } => None,
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

/// The ids the entries of tree `data` (its entries starting at `starts`)
/// name.
fn targets(data: &[u8], starts: &[usize], id: &ObjectId) -> Result<Vec<ObjectId>, VaultError> {
    starts
        .windows(2)
        .map(|w| {
            data.get(w[0]..w[1])
                .and_then(delta::entry_target)
                .map(|(_, target)| target)
                .ok_or_else(|| malformed(id))
        })
        .collect()
}

fn malformed(id: &ObjectId) -> VaultError {
    VaultError::corrupt(format!("object {id} is malformed"))
}

#[cfg(test)]
mod tests {
    use gix::objs::Kind;

    use super::*;
    use crate::objects::HASH;

    fn entry(name: &str, id: &ObjectId) -> Vec<u8> {
        [format!("100644 {name}\0").as_bytes(), id.as_bytes()].concat()
    }

    fn key_of(store: &ObjectStore, id: &ObjectId) -> RecordKey {
        store.record_keys(id, &Links::Blob { chunks: 0 })[0]
    }

    #[test]
    fn a_delta_splitting_an_entry_keeps_what_its_rebuilt_tree_names() {
        let (_dir, keys, db) = crate::testing::db();
        let vault = Vaults::new(&db).create("v", &keys).unwrap();
        let store = &vault.store;
        let mut txn = db.write().unwrap();
        let blob =
            |txn: &mut WriteTxn<'_>, data: &[u8]| store.write_raw(txn, Kind::Blob, data).unwrap();
        let one = blob(&mut txn, b"one");
        // Two blobs whose ids begin with the same byte: a delta can copy
        // the base's entry up to and with it, and insert the rest of the
        // other id, so neither names it whole.
        let two = blob(&mut txn, b"two");
        let three = (0..)
            .map(|n: u32| format!("three {n}").into_bytes())
            .find(|data| {
                gix::objs::compute_hash(HASH, Kind::Blob, data)
                    .unwrap()
                    .as_bytes()[0]
                    == two.as_bytes()[0]
            })
            .map(|data| blob(&mut txn, &data))
            .unwrap();
        let stray = blob(&mut txn, b"named by no version");
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
        let record = store.seal_delta(&db, &target_id, &base_id, &ops);
        txn.put_records(vec![record]).unwrap();
        let commit =
            format!("tree {target_id}\nauthor a <a> 0 +0000\ncommitter a <a> 0 +0000\n\nsplit\n");
        let commit = store
            .write_raw(&mut txn, Kind::Commit, commit.as_bytes())
            .unwrap();
        assert_eq!(
            store.rebuild_tree(&txn, &target_id).unwrap().as_slice(),
            target
        );

        let keep = Marker::new(store, &txn).mark(commit).unwrap();
        for needed in [commit, target_id, base_id, one, two, three] {
            assert!(keep.contains(&key_of(store, &needed)), "{needed} is kept");
        }
        assert!(!keep.contains(&key_of(store, &stray)));
    }
}

use std::collections::{BinaryHeap, HashMap, HashSet};

use gix::hash::ObjectId;
use polykey_db::Db;
use polykey_keys::Plain;

use gix::objs::Kind;
use zeroize::Zeroizing;

use super::{Page, Part, RawObject, PART_CHUNKS};
use crate::delta;
use crate::error::VaultError;
use crate::merge::work_out_generation;
use crate::objects::{ObjectStore, Source, StoredDelta, ToSend, CHUNK_SIZE, HASH};
use crate::vault::Vault;

impl Vault {
    /// Every object reachable from `from`, skipping what is reachable from
    /// `stop` (objects the other side already has). Iterative.
    pub(crate) fn closure(
        &self,
        src: &impl Source,
        from: &[ObjectId],
        stop: &HashSet<ObjectId>,
    ) -> Result<Vec<ObjectId>, VaultError> {
        let mut seen: HashSet<ObjectId> = stop.clone();
        let mut out = Vec::new();
        let mut trees = Vec::new();
        for head in from {
            if seen.contains(head) {
                continue;
            }
            for (id, commit) in self.commits(src, *head, None)? {
                if seen.insert(id) {
                    out.push(id);
                    trees.push(commit.tree);
                }
            }
        }
        while let Some(tree_id) = trees.pop() {
            if !seen.insert(tree_id) {
                continue;
            }
            out.push(tree_id);
            for entry in self.store.tree(src, &tree_id)?.entries {
                if entry.mode.is_tree() {
                    trees.push(entry.oid);
                } else if seen.insert(entry.oid) {
                    out.push(entry.oid);
                }
            }
        }
        Ok(out)
    }

    /// The objects a copy of this vault whose head is `theirs` lacks to
    /// reach our head. Unknown ids in `theirs` are ignored.
    pub fn objects_for(
        &self,
        db: &Db,
        theirs: &[String],
    ) -> Result<(String, Vec<RawObject>), VaultError> {
        let txn = db.read()?;
        let head = self.head_of(&txn)?;
        let mut stop = HashSet::new();
        for id in theirs {
            let Ok(id) = ObjectId::from_hex(id.as_bytes()) else {
                continue;
            };
            if self.store.read(&txn, &id).is_ok() {
                stop.extend(self.closure(&txn, &[id], &HashSet::new())?);
            }
        }
        let mut objects = Vec::new();
        for id in self.closure(&txn, &[head], &stop)? {
            let (kind, data) = self.store.read(&txn, &id)?;
            objects.push(RawObject {
                base: None,
                kind,
                data: data.to_vec(),
            });
        }
        Ok((head.to_string(), objects))
    }

    /// The objects of version `want` that a copy holding `haves` lacks, in
    /// a stable order (so a transfer can be paged), with their ids. Each
    /// object comes after everything it refers to, as
    /// [`Vault::receive_page`] takes them.
    pub fn objects_between(
        &self,
        db: &Db,
        want: &str,
        haves: &[String],
    ) -> Result<Vec<(String, RawObject)>, VaultError> {
        Ok(self.objects_page(db, want, haves, 0, usize::MAX)?.0)
    }

    /// One page of [`Vault::objects_between`]: the objects from the
    /// `skip`-th on, until their bytes reach `budget` (the object that
    /// crosses it included), and how many the whole transfer has. Only the
    /// page's objects are read.
    pub fn objects_page(
        &self,
        db: &Db,
        want: &str,
        haves: &[String],
        skip: usize,
        budget: usize,
    ) -> Result<(Vec<(String, RawObject)>, usize), VaultError> {
        let txn = db.read()?;
        let mut plan = self.ids_between(&txn, want, haves)?;
        let (page, _) = self.page_of(
            &txn,
            &plan.ids,
            &plan.bases,
            (skip, budget),
            &mut plan.kept,
            false,
        )?;
        Ok((page, plan.ids.len()))
    }

    /// The first page of the transfer of `want` to a copy holding `haves`
    /// ([`Vault::objects_page`] with nothing skipped), and the plan of the
    /// whole transfer for the pages after it ([`Vault::planned_page`]):
    /// the history is walked once for both (a second walk for the plan
    /// took a tenth of the CPU of a 10,000-commit clone). A blob stored in
    /// chunks goes in parts, in pages of their own
    /// ([`Vault::planned_part_page`]).
    pub fn first_page(
        &self,
        db: &Db,
        want: &str,
        haves: &[String],
        budget: usize,
    ) -> Result<(Page, SendPlan), VaultError> {
        let txn = db.read()?;
        let mut plan = self.ids_between(&txn, want, haves)?;
        let page = self.page_or_part(
            &txn,
            (&plan.ids, &plan.bases),
            (0, 0),
            budget,
            &mut plan.kept,
        )?;
        let plan = SendPlan {
            vault: self.id(),
            ids: plan.ids,
            bases: plan.bases,
        };
        Ok((page, plan))
    }

    /// What a transfer of version `want` to a copy holding `haves` sends,
    /// worked out once for all its pages ([`Vault::planned_page`]): the
    /// ids in order, and the base of each tree that goes as a delta. It
    /// holds no object data (about 40 bytes per object), so a sender can
    /// keep it between the pages of a long transfer instead of walking
    /// the history again for each.
    pub fn send_plan(&self, db: &Db, want: &str, haves: &[String]) -> Result<SendPlan, VaultError> {
        let plan = self.ids_between(&db.read()?, want, haves)?;
        Ok(SendPlan {
            vault: self.id(),
            ids: plan.ids,
            bases: plan.bases,
        })
    }

    /// The page of `plan` from its `skip`-th object on, as
    /// [`Vault::objects_page`] gives it. A tree that goes as a delta goes
    /// as its stored one when that is against the planned base, else as
    /// one worked out against that base (or whole, if none is smaller).
    pub fn planned_page(
        &self,
        db: &Db,
        plan: &SendPlan,
        skip: usize,
        budget: usize,
    ) -> Result<Vec<(String, RawObject)>, VaultError> {
        if plan.vault != self.id() {
            return Err(VaultError::corrupt("a transfer plan of another vault"));
        }
        let txn = db.read()?;
        let (page, _) = self.page_of(
            &txn,
            &plan.ids,
            &plan.bases,
            (skip, budget),
            &mut Kept::default(),
            false,
        )?;
        Ok(page)
    }

    /// [`Vault::planned_page`] for another device: a blob stored in chunks
    /// goes in parts, each a page of its own ([`PART_CHUNKS`] chunks, or as
    /// many as `budget` holds, one at least); `from` bytes of the object at
    /// `skip` were sent in parts before.
    pub fn planned_part_page(
        &self,
        db: &Db,
        plan: &SendPlan,
        (skip, from): (usize, usize),
        budget: usize,
    ) -> Result<Page, VaultError> {
        if plan.vault != self.id() {
            return Err(VaultError::corrupt("a transfer plan of another vault"));
        }
        let txn = db.read()?;
        self.page_or_part(
            &txn,
            (&plan.ids, &plan.bases),
            (skip, from),
            budget,
            &mut Kept::default(),
        )
    }

    /// The page from the `skip`-th object on: whole objects up to the next
    /// blob stored in chunks, or, when that is the first, its part from
    /// byte `from` on.
    fn page_or_part(
        &self,
        txn: &polykey_db::ReadTxn<'_>,
        (ids, bases): (&[ObjectId], &HashMap<ObjectId, ObjectId>),
        (skip, from): (usize, usize),
        budget: usize,
        kept: &mut Kept,
    ) -> Result<Page, VaultError> {
        let chunked = if from == 0 {
            let (objects, chunked) = self.page_of(txn, ids, bases, (skip, budget), kept, true)?;
            if !objects.is_empty() {
                return Ok(Page::Objects(objects));
            }
            chunked
        } else {
            let id = ids.get(skip).filter(|id| !bases.contains_key(*id));
            match id
                .map(|id| self.store.read_to_send(txn, id, true))
                .transpose()?
            {
                Some(ToSend::Chunked(len)) => id.map(|id| (*id, len)),
                _ => None,
            }
        };
        let Some((id, len)) = chunked else {
            return if from == 0 {
                Ok(Page::Objects(Vec::new()))
            } else {
                Err(VaultError::Refused(
                    "a part asked of an object not sent in parts".into(),
                ))
            };
        };
        if from >= len || !from.is_multiple_of(CHUNK_SIZE) {
            return Err(VaultError::Refused(format!(
                "no part of {len} bytes starts at {from}"
            )));
        }
        // Fewer chunks a part for a page smaller than a whole part.
        let first = from / CHUNK_SIZE;
        let chunks = (budget / CHUNK_SIZE).clamp(1, PART_CHUNKS);
        let mut data = self
            .store
            .open_chunks(txn, &id, len, first..first + chunks)?;
        Ok(Page::Part(Part {
            id: id.to_string(),
            offset: from,
            len,
            data: Plain::new(std::mem::take(&mut *data)),
        }))
    }

    /// Tree `id` as a delta against `base`: its stored delta when that is
    /// against `base`, else one worked out (`None` if none is smaller).
    fn delta_against(
        &self,
        txn: &polykey_db::ReadTxn<'_>,
        id: &ObjectId,
        base: &ObjectId,
    ) -> Result<Option<StoredDelta>, VaultError> {
        if let Some(stored) = self.store.stored_delta(txn, id)? {
            if stored.0 == *base {
                return Ok(Some(stored));
            }
        }
        let data = self.store.expect(txn, id, Kind::Tree)?;
        let base_data = self.store.expect(txn, base, Kind::Tree)?;
        Ok(delta::tree_delta(&base_data, &data).map(|ops| (*base, Zeroizing::new(ops))))
    }

    /// The objects of `ids` from the `skip`-th on, until their bytes reach
    /// `budget` (the object that crosses it included) or what they rebuild
    /// to reaches [`REBUILT_PAGE_BYTES`]: a tree in `bases` as a delta
    /// against its base, everything else whole; taken from `kept` when it
    /// was read before.
    ///
    /// With `parts`, the page ends before a blob stored in chunks, which
    /// is returned with its length (to go in parts).
    #[allow(clippy::type_complexity)]
    fn page_of(
        &self,
        txn: &polykey_db::ReadTxn<'_>,
        ids: &[ObjectId],
        bases: &HashMap<ObjectId, ObjectId>,
        (skip, budget): (usize, usize),
        kept: &mut Kept,
        parts: bool,
    ) -> Result<(Vec<(String, RawObject)>, Option<(ObjectId, usize)>), VaultError> {
        let mut objects = Vec::new();
        let mut bytes = 0usize;
        let mut rebuilt = 0usize;
        for id in ids.iter().skip(skip) {
            let as_delta = match bases.get(id) {
                Some(base) => match kept.deltas.remove(id) {
                    Some(delta) => Some(delta),
                    None => self.delta_against(txn, id, base)?,
                },
                None => None,
            };
            let (object, size) = if let Some((base, mut ops)) = as_delta {
                let size = delta::output_len(&ops).ok_or_else(|| {
                    VaultError::corrupt(format!("object {id} is a malformed delta"))
                })?;
                let object = RawObject {
                    kind: Kind::Tree,
                    data: std::mem::take(&mut *ops),
                    base: Some(base.to_string()),
                };
                (object, size)
            } else {
                let (kind, mut data) = match kept.objects.remove(id) {
                    Some(object) => object,
                    None => match self.store.read_to_send(txn, id, parts)? {
                        ToSend::Object(kind, data) => (kind, data),
                        ToSend::Chunked(len) => return Ok((objects, Some((*id, len)))),
                    },
                };
                let object = RawObject {
                    kind,
                    // Moved, not copied: the emptied buffer is zeroized anyway.
                    data: std::mem::take(&mut *data),
                    base: None,
                };
                let size = object.data.len();
                (object, size)
            };
            bytes = bytes.saturating_add(object.data.len());
            rebuilt = rebuilt.saturating_add(size);
            objects.push((id.to_string(), object));
            if bytes >= budget
                || rebuilt >= REBUILT_PAGE_BYTES
                || objects.len() >= (budget / super::PAGE_BYTES_PER_OBJECT).max(1)
            {
                break;
            }
        }
        Ok((objects, None))
    }

    /// The ids of the objects of `want` that a copy holding `haves` lacks,
    /// each after everything it refers to: for each new commit, oldest
    /// first, the new blobs and trees of its version (children before
    /// parents), then the commit. Reads commits and trees only, and hands
    /// back those it read (up to [`KEEP_READ_BYTES`]) so a page need not
    /// read them twice.
    fn ids_between(
        &self,
        txn: &polykey_db::ReadTxn<'_>,
        want: &str,
        haves: &[String],
    ) -> Result<Plan, VaultError> {
        let mut kept = Kept::default();
        // A sync names the version it wants by its whole id: found without
        // a walk through the history (the copy asking is a member, and may
        // ask for any commit this vault stores).
        let want = match ObjectId::from_hex(want.as_bytes()) {
            Ok(id) if self.store.commit(txn, &id).is_ok() => id,
            _ => self.resolve(txn, want)?,
        };
        let haves: HashSet<ObjectId> = haves
            .iter()
            .filter_map(|id| ObjectId::from_hex(id.as_bytes()).ok())
            .filter(|id| self.store.commit(txn, id).is_ok())
            .collect();
        // The commits the other copy lacks: those `want` reaches and no
        // version in `haves` does (git's `rev-list want --not haves`).
        // Stopping only at the versions named was not enough: a branch
        // forked below them and merged since led the walk down to the
        // first commit, and every sync of two diverged copies sent the
        // whole history again.
        let mut walk = Reach {
            // Nothing held: every commit is new, in any order.
            unordered: haves.is_empty(),
            ..Reach::default()
        };
        walk.add(&self.store, txn, want, WANTED)?;
        for have in &haves {
            walk.add(&self.store, txn, *have, HELD)?;
        }
        let mut new_commits: HashMap<ObjectId, (ObjectId, Vec<ObjectId>)> = HashMap::new();
        while let Some((id, wanted_only)) = walk.next() {
            if !wanted_only {
                // The other copy's, and so is everything below it.
                for parent in self.store.commit(txn, &id)?.parents.iter() {
                    walk.add(&self.store, txn, *parent, HELD)?;
                }
                continue;
            }
            let data = self.store.expect(txn, &id, Kind::Commit)?;
            let (tree, parents) = {
                let commit =
                    gix::objs::CommitRef::from_bytes(&data, HASH).map_err(VaultError::corrupt)?;
                (commit.tree(), commit.parents().collect::<Vec<ObjectId>>())
            };
            for parent in &parents {
                walk.add(&self.store, txn, *parent, WANTED)?;
            }
            new_commits.insert(id, (tree, parents));
            kept.object(id, (Kind::Commit, data));
        }
        // The versions the other copy has that the new ones build on.
        let mut boundary: HashSet<ObjectId> = new_commits
            .values()
            .flat_map(|(_, parents)| parents)
            .filter(|parent| !new_commits.contains_key(*parent))
            .copied()
            .collect();
        if !new_commits.contains_key(&want) {
            boundary.insert(want);
        }
        // Trees and blobs the other copy has: those of the boundary versions;
        // and, by path, the version of each directory it has (or gets
        // before), for trees whose stored delta is against one it lacks.
        let mut known: HashSet<ObjectId> = HashSet::new();
        let mut at_path: HashMap<Vec<u8>, ObjectId> = HashMap::new();
        let mut trees: Vec<(ObjectId, Vec<u8>)> = Vec::new();
        for id in &boundary {
            trees.push((self.store.commit(txn, id)?.tree, Vec::new()));
        }
        while let Some((tree, path)) = trees.pop() {
            if !known.insert(tree) {
                continue;
            }
            for entry in self.store.tree(txn, &tree)?.entries {
                if entry.mode.is_tree() {
                    trees.push((entry.oid, child_path(&path, &entry.filename)));
                } else {
                    known.insert(entry.oid);
                }
            }
            at_path.entry(path).or_insert(tree);
        }
        // New commits, parents first (a depth-first post-order).
        let mut commit_order = Vec::with_capacity(new_commits.len());
        let mut visited = HashSet::new();
        let mut stack = vec![(want, false)];
        while let Some((id, expanded)) = stack.pop() {
            if expanded {
                commit_order.push(id);
                continue;
            }
            let Some((_, parents)) = new_commits.get(&id) else {
                continue;
            };
            if !visited.insert(id) {
                continue;
            }
            stack.push((id, true));
            for parent in parents.iter().rev() {
                if !visited.contains(parent) {
                    stack.push((*parent, false));
                }
            }
        }
        // Each commit after the trees and blobs of its version not sent yet,
        // a tree after its entries.
        let mut ids: Vec<ObjectId> = Vec::new();
        let mut sent: HashSet<ObjectId> = HashSet::new();
        let mut emitted: HashSet<ObjectId> = HashSet::new();
        let mut bases = HashMap::new();
        for commit in commit_order {
            let Some((root, _)) = new_commits.get(&commit) else {
                continue;
            };
            let mut stack = vec![(*root, false, Vec::new())];
            while let Some((tree, expanded, path)) = stack.pop() {
                if expanded {
                    ids.push(tree);
                    emitted.insert(tree);
                    at_path.insert(path, tree);
                    continue;
                }
                if known.contains(&tree) || !sent.insert(tree) {
                    continue;
                }
                // A tree stored as a delta against one the other copy has
                // (or gets before it) goes as that delta, and only the
                // entries it inserts can be new to the other copy: the
                // base's came with the base.
                if let Some((base, ops)) = self.store.stored_delta(txn, &tree)? {
                    if known.contains(&base) || emitted.contains(&base) {
                        let malformed =
                            || VaultError::corrupt(format!("object {tree} is a malformed delta"));
                        let inserted = delta::inserted_entries(&ops).ok_or_else(malformed)?;
                        let mut children = Vec::new();
                        for entry in inserted {
                            let (is_tree, oid) =
                                delta::entry_target(entry).ok_or_else(malformed)?;
                            if known.contains(&oid) {
                                continue;
                            }
                            if is_tree {
                                if !sent.contains(&oid) {
                                    let name = delta::entry_name(entry).ok_or_else(malformed)?;
                                    children.push((oid, false, child_path(&path, name)));
                                }
                            } else if sent.insert(oid) {
                                ids.push(oid);
                            }
                        }
                        bases.insert(tree, base);
                        kept.delta(tree, (base, ops));
                        stack.push((tree, true, path));
                        stack.extend(children);
                        continue;
                    }
                }
                let data = self.store.expect(txn, &tree, Kind::Tree)?;
                let entries: Vec<(bool, ObjectId, Vec<u8>)> =
                    gix::objs::TreeRef::from_bytes(&data, HASH)
                        .map_err(VaultError::corrupt)?
                        .entries
                        .iter()
                        .map(|e| (e.mode.is_tree(), e.oid.to_owned(), e.filename.to_vec()))
                        .collect();
                // Otherwise, a large one goes as a delta against the
                // version of its directory the other copy has.
                if let Some(base) = at_path.get(&path).filter(|_| data.len() >= MIN_SENT_DELTA) {
                    let base_data = self.store.expect(txn, base, Kind::Tree)?;
                    if let Some(ops) = delta::tree_delta(&base_data, &data) {
                        bases.insert(tree, *base);
                        kept.delta(tree, (*base, Zeroizing::new(ops)));
                    }
                }
                let mut children = Vec::new();
                for (is_tree, oid, name) in entries {
                    if known.contains(&oid) {
                        continue;
                    }
                    if is_tree {
                        if !sent.contains(&oid) {
                            children.push((oid, false, child_path(&path, &name)));
                        }
                    } else if sent.insert(oid) {
                        ids.push(oid);
                    }
                }
                if !bases.contains_key(&tree) {
                    kept.object(tree, (Kind::Tree, data));
                }
                stack.push((tree, true, path));
                stack.extend(children);
            }
            ids.push(commit);
        }
        Ok(Plan { ids, kept, bases })
    }
}

/// An object read from the store: its kind and data.
type Read = (Kind, Zeroizing<Vec<u8>>);

/// Trees smaller than this go whole when their stored form is not a delta
/// the other copy can take.
const MIN_SENT_DELTA: usize = 4096;

/// The path of entry `name` in the directory at `path` (`""` for the root).
fn child_path(path: &[u8], name: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return name.to_vec();
    }
    [path, b"/", name].concat()
}

/// A transfer worked out by [`Vault::send_plan`], for
/// [`Vault::planned_page`].
#[derive(Clone, Debug)]
pub struct SendPlan {
    vault: crate::vault::VaultId,
    ids: Vec<ObjectId>,
    bases: HashMap<ObjectId, ObjectId>,
}

impl SendPlan {
    /// How many objects the whole transfer has.
    pub fn total(&self) -> usize {
        self.ids.len()
    }
}

/// What a transfer sends: the ids in order, the base of each tree that
/// goes as a delta, and what was read on the way.
struct Plan {
    ids: Vec<ObjectId>,
    bases: HashMap<ObjectId, ObjectId>,
    kept: Kept,
}

/// Objects and deltas read while working out a transfer, up to
/// [`KEEP_READ_BYTES`], so that its first page (the whole of a usual pull)
/// need not read them again; a transfer of a long history holds no more.
#[derive(Default)]
struct Kept {
    bytes: usize,
    objects: HashMap<ObjectId, Read>,
    deltas: HashMap<ObjectId, StoredDelta>,
}

impl Kept {
    fn room_for(&mut self, len: usize) -> bool {
        let fits = self.bytes.saturating_add(len) <= KEEP_READ_BYTES;
        if fits {
            self.bytes += len;
        }
        fits
    }

    fn object(&mut self, id: ObjectId, object: Read) {
        if self.room_for(object.1.len()) {
            self.objects.insert(id, object);
        }
    }

    fn delta(&mut self, id: ObjectId, delta: StoredDelta) {
        if self.room_for(delta.1.len()) {
            self.deltas.insert(id, delta);
        }
    }
}

/// Most bytes the objects of one page rebuild to (64 MiB), the object that
/// crosses it included: deltas are small on the wire, but the receiver
/// holds a page's objects whole while it checks them.
pub const REBUILT_PAGE_BYTES: usize = 64 * 1024 * 1024;

/// Most bytes of commits and trees one page request keeps after working
/// out what to send, so as not to read them again.
const KEEP_READ_BYTES: usize = 32 * 1024 * 1024;

/// Reached from the version asked for.
const WANTED: u8 = 1;
/// Reached from a version the other copy has.
const HELD: u8 = 2;
/// Taken from the queue (its marks are final).
const TAKEN: u8 = 4;

/// The walk of [`Vault::ids_between`]: commits are taken greatest
/// generation first, so all of a commit's children (in the walk) come
/// before it and it is taken knowing which side reaches it. It ends once
/// no commit waiting is reached from the version asked for alone: what is
/// left the other copy has. It reads the commits above where the two
/// copies' histories meet, not the history below.
#[derive(Default)]
struct Reach {
    marks: HashMap<ObjectId, u8>,
    queue: BinaryHeap<(u64, ObjectId)>,
    generations: HashMap<ObjectId, u64>,
    /// Commits waiting that only the version asked for reaches.
    open: usize,
    /// No generations: the other copy holds nothing (a clone).
    unordered: bool,
}

impl Reach {
    fn add(
        &mut self,
        store: &ObjectStore,
        src: &impl Source,
        id: ObjectId,
        mark: u8,
    ) -> Result<(), VaultError> {
        if let Some(marks) = self.marks.get_mut(&id) {
            if *marks & (HELD | TAKEN) == 0 && mark == HELD {
                self.open -= 1;
            }
            *marks |= mark;
            return Ok(());
        }
        let generation = if self.unordered {
            0
        } else {
            work_out_generation(store, src, id, &mut self.generations)?
        };
        self.marks.insert(id, mark);
        if mark == WANTED {
            self.open += 1;
        }
        self.queue.push((generation, id));
        Ok(())
    }

    /// The next commit, and whether only the version asked for reaches it;
    /// `None` once the rest is the other copy's.
    fn next(&mut self) -> Option<(ObjectId, bool)> {
        if self.open == 0 {
            return None;
        }
        let (_, id) = self.queue.pop()?;
        let marks = self.marks.get_mut(&id)?;
        *marks |= TAKEN;
        let wanted_only = *marks & HELD == 0;
        if wanted_only {
            self.open -= 1;
        }
        Some((id, wanted_only))
    }
}

use std::collections::HashSet;

use polykey_keys::NodeId;

use gix::hash::ObjectId;
use gix::objs::{Kind, WriteTo};
use polykey_db::{Db, WriteTxn};

use crate::error::VaultError;
use crate::objects::{Source, HASH};
use crate::vault::{Vault, VaultId, Vaults};

/// Most objects one import accepts, so a hostile peer cannot exhaust memory.
pub const MAX_IMPORT_OBJECTS: usize = 200_000;

/// A git object in transit between two copies of a vault.
#[derive(Clone, PartialEq, Eq)]
pub struct RawObject {
    /// Blob, tree or commit.
    pub kind: Kind,
    /// The encoded object (what git hashes after the header).
    pub data: Vec<u8>,
}

impl std::fmt::Debug for RawObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawObject({}, {} bytes)", self.kind, self.data.len())
    }
}

impl Drop for RawObject {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.data);
    }
}

fn check_tree_entry_name(name: &[u8]) -> Result<(), VaultError> {
    let bad = name.is_empty()
        || name == b"."
        || name == b".."
        || name.eq_ignore_ascii_case(b".git")
        || name.contains(&b'/')
        || name.contains(&b'\\')
        || name.iter().any(|b| *b < 0x20);
    if bad {
        return Err(VaultError::InvalidPath(
            "a received tree has an unsafe entry name",
        ));
    }
    Ok(())
}

impl Vault {
    /// Every object reachable from `from`, skipping what is reachable from
    /// `stop` (objects the other side already has).
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
                kind,
                data: data.to_vec(),
            });
        }
        Ok((head.to_string(), objects))
    }

    /// Store objects received from another copy, after checking each: it must
    /// hash to its id, trees must hold only safe names, and commits must be
    /// signed. All or nothing. The head does not move; merge does that.
    pub fn import(&self, db: &Db, objects: &[RawObject]) -> Result<usize, VaultError> {
        let mut txn = db.write()?;
        let added = self.import_into(&mut txn, objects)?;
        txn.commit()?;
        Ok(added)
    }

    fn import_into(
        &self,
        txn: &mut WriteTxn<'_>,
        objects: &[RawObject],
    ) -> Result<usize, VaultError> {
        if objects.len() > MAX_IMPORT_OBJECTS {
            return Err(VaultError::InvalidPath("too many objects in one transfer"));
        }
        let mut added = 0;
        for object in objects {
            check_object(object, false)?;
            let id = gix::objs::compute_hash(HASH, object.kind, &object.data)
                .map_err(VaultError::corrupt)?;
            if !self.store.contains(txn, &id)? {
                self.store
                    .write_hashed(txn, object.kind, &object.data, id)?;
                added += 1;
            }
        }
        Ok(added)
    }
}

/// The structural checks every received object passes: safe tree entries,
/// signed commits, bounded blobs, no tags.
fn check_object(object: &RawObject, signature_checked: bool) -> Result<(), VaultError> {
    match object.kind {
        Kind::Tree => {
            let tree =
                gix::objs::TreeRef::from_bytes(&object.data, HASH).map_err(VaultError::corrupt)?;
            for entry in &tree.entries {
                check_tree_entry_name(entry.filename)?;
                if !(entry.mode.is_tree() || entry.mode.is_blob()) {
                    return Err(VaultError::corrupt(
                        "a received tree has links or submodules",
                    ));
                }
            }
        }
        Kind::Commit if !signature_checked => {
            verify_commit(&object.data)?;
        }
        Kind::Commit => {}
        Kind::Blob => {
            if object.data.len() > crate::MAX_SECRET_SIZE {
                return Err(VaultError::TooLarge {
                    size: object.data.len(),
                    max: crate::MAX_SECRET_SIZE,
                });
            }
        }
        Kind::Tag => return Err(VaultError::corrupt("vaults hold no tags")),
    }
    Ok(())
}

/// A commit must carry a valid SSH signature over the rest of itself.
pub(crate) fn verify_commit(data: &[u8]) -> Result<polykey_keys::NodeId, VaultError> {
    let parsed = gix::objs::CommitRef::from_bytes(data, HASH).map_err(VaultError::corrupt)?;
    let mut commit = parsed.into_owned().map_err(VaultError::corrupt)?;
    let position = commit
        .extra_headers
        .iter()
        .position(|(name, _)| name == "gpgsig")
        .ok_or_else(|| VaultError::corrupt("a commit is not signed"))?;
    let (_, signature) = commit.extra_headers.remove(position);
    let mut unsigned = Vec::new();
    commit
        .write_to(&mut unsigned)
        .map_err(VaultError::corrupt)?;
    polykey_keys::sshsig::verify_armored(&signature.to_string(), "git", &unsigned)
        .map_err(|e| VaultError::corrupt(format!("a commit signature is invalid: {e}")))
}

impl Vaults<'_> {
    /// Make a local copy of another node's vault (same id) from its objects
    /// and head, sealed under a fresh local key.
    /// All or nothing: on any bad object no vault is created.
    pub fn clone_vault(
        &self,
        name: &str,
        id: &str,
        head: &str,
        objects: &[RawObject],
    ) -> Result<Vault, VaultError> {
        let id: VaultId = id.parse()?;
        let head = ObjectId::from_hex(head.as_bytes())
            .map_err(|_| VaultError::UnknownVersion(head.to_owned()))?;
        let mut txn = self.db.write()?;
        let vault = self.insert_record(&mut txn, name, id)?;
        vault.import_into(&mut txn, objects)?;
        vault.store.commit(&txn, &head)?;
        vault.store.set_head(&mut txn, &head)?;
        txn.commit()?;
        Ok(vault)
    }
}

/// Who may author commits a vault accepts from another node.
pub type MayAuthor<'a> = &'a dyn Fn(&NodeId) -> bool;

/// The wire tag of an object kind.
pub fn kind_tag(kind: Kind) -> u8 {
    match kind {
        Kind::Blob => 1,
        Kind::Tree => 2,
        Kind::Commit => 3,
        Kind::Tag => 4,
    }
}

/// The object kind of a wire tag.
pub fn kind_of_tag(tag: u8) -> Option<Kind> {
    match tag {
        1 => Some(Kind::Blob),
        2 => Some(Kind::Tree),
        3 => Some(Kind::Commit),
        _ => None,
    }
}

fn refused(what: impl std::fmt::Display) -> VaultError {
    VaultError::Refused(what.to_string())
}

impl Vault {
    /// The objects of version `want` that a copy holding `haves` lacks, in
    /// a stable order (so a transfer can be paged), with their ids.
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
        let ids = self.ids_between(&txn, want, haves)?;
        let total = ids.len();
        let mut objects = Vec::new();
        let mut bytes = 0usize;
        for id in ids.into_iter().skip(skip) {
            let (kind, mut data) = self.store.read(&txn, &id)?;
            bytes = bytes.saturating_add(data.len());
            objects.push((
                id.to_string(),
                RawObject {
                    kind,
                    // Moved, not copied: the emptied buffer is zeroized anyway.
                    data: std::mem::take(&mut *data),
                },
            ));
            if bytes >= budget {
                break;
            }
        }
        Ok((objects, total))
    }

    /// The ids of the objects of `want` that a copy holding `haves` lacks:
    /// commits first, then trees and blobs. Reads commits and trees only.
    fn ids_between(
        &self,
        txn: &polykey_db::ReadTxn<'_>,
        want: &str,
        haves: &[String],
    ) -> Result<Vec<ObjectId>, VaultError> {
        let want = self.resolve(txn, want)?;
        let haves: HashSet<ObjectId> = haves
            .iter()
            .filter_map(|id| ObjectId::from_hex(id.as_bytes()).ok())
            .filter(|id| self.store.commit(txn, id).is_ok())
            .collect();
        // The commits the other copy lacks: walk back from `want`, stopping
        // at versions it has (and so everything behind them).
        let mut new_commits = Vec::new();
        let mut boundary = HashSet::new();
        let mut seen = HashSet::from([want]);
        let mut queue = vec![want];
        while let Some(id) = queue.pop() {
            if haves.contains(&id) {
                boundary.insert(id);
                continue;
            }
            let commit = self.store.commit(txn, &id)?;
            for parent in &commit.parents {
                if seen.insert(*parent) {
                    queue.push(*parent);
                }
            }
            new_commits.push((id, commit.tree));
        }
        // Trees and blobs the other copy has: those of the boundary versions.
        let mut known: HashSet<ObjectId> = HashSet::new();
        let mut trees: Vec<ObjectId> = Vec::new();
        for id in &boundary {
            trees.push(self.store.commit(txn, id)?.tree);
        }
        while let Some(tree) = trees.pop() {
            if !known.insert(tree) {
                continue;
            }
            for entry in self.store.tree(txn, &tree)?.entries {
                if entry.mode.is_tree() {
                    trees.push(entry.oid);
                } else {
                    known.insert(entry.oid);
                }
            }
        }
        // New commits, oldest last, then the trees and blobs they need.
        let mut ids: Vec<ObjectId> = Vec::new();
        let mut sent: HashSet<ObjectId> = HashSet::new();
        let mut trees: Vec<ObjectId> = Vec::new();
        for (id, tree) in &new_commits {
            ids.push(*id);
            trees.push(*tree);
        }
        while let Some(tree) = trees.pop() {
            if known.contains(&tree) || !sent.insert(tree) {
                continue;
            }
            ids.push(tree);
            for entry in self.store.tree(txn, &tree)?.entries {
                if entry.mode.is_tree() {
                    trees.push(entry.oid);
                } else if !known.contains(&entry.oid) && sent.insert(entry.oid) {
                    ids.push(entry.oid);
                }
            }
        }
        Ok(ids)
    }

    /// Take in objects received from another copy so that version `head`
    /// is complete here; the head does not move (merge does that). Every
    /// object must hash to the id it came with, trees must hold only safe
    /// names, every commit must be signed by a node `may_author` accepts,
    /// and every object `head` needs must then be present. All or nothing.
    pub fn receive(
        &self,
        db: &Db,
        head: &str,
        objects: &[(String, RawObject)],
        may_author: MayAuthor<'_>,
    ) -> Result<usize, VaultError> {
        let mut txn = db.write()?;
        let added = self.receive_into(&mut txn, head, objects, may_author)?;
        txn.commit()?;
        Ok(added)
    }

    fn receive_into(
        &self,
        txn: &mut WriteTxn<'_>,
        head: &str,
        objects: &[(String, RawObject)],
        may_author: MayAuthor<'_>,
    ) -> Result<usize, VaultError> {
        if objects.len() > MAX_IMPORT_OBJECTS {
            return Err(refused("too many objects in one transfer"));
        }
        let head =
            ObjectId::from_hex(head.as_bytes()).map_err(|_| refused("a malformed version id"))?;
        let mut received: HashSet<ObjectId> = HashSet::with_capacity(objects.len());
        // Ids each received object needs, checked once all are in.
        let mut needed: Vec<ObjectId> = vec![head];
        let mut ids = Vec::with_capacity(objects.len());
        for (claimed, object) in objects {
            let id = gix::objs::compute_hash(HASH, object.kind, &object.data)
                .map_err(VaultError::corrupt)?;
            ids.push(id);
            if ObjectId::from_hex(claimed.as_bytes()).ok() != Some(id) {
                return Err(refused("an object does not match its id"));
            }
            match object.kind {
                Kind::Commit => {
                    let author = verify_commit(&object.data).map_err(refused)?;
                    if !may_author(&author) {
                        return Err(refused("a commit is signed by a node outside the gestalt"));
                    }
                    let commit = gix::objs::CommitRef::from_bytes(&object.data, HASH)
                        .map_err(|_| refused("a malformed commit"))?;
                    needed.push(commit.tree());
                    needed.extend(commit.parents());
                }
                Kind::Tree => {
                    let tree = gix::objs::TreeRef::from_bytes(&object.data, HASH)
                        .map_err(|_| refused("a malformed tree"))?;
                    for entry in &tree.entries {
                        needed.push(entry.oid.to_owned());
                    }
                }
                _ => {}
            }
            received.insert(id);
        }
        let mut added = 0;
        for ((_, object), id) in objects.iter().zip(&ids) {
            check_object(object, true).map_err(refused)?;
            if !self.store.contains(txn, id)? {
                self.store
                    .write_hashed(txn, object.kind, &object.data, *id)?;
                added += 1;
            }
        }
        for id in needed {
            if !received.contains(&id) && !self.store.contains(txn, &id)? {
                return Err(refused("the history sent is incomplete"));
            }
        }
        if self.store.commit(txn, &head).is_err() {
            return Err(refused("the version sent is not a commit"));
        }
        Ok(added)
    }
}

impl Vaults<'_> {
    /// Make the local copy of another node's vault: same id, name and
    /// rename time, with its history received as [`Vault::receive`] checks
    /// it and sealed under a fresh local key. If the name is taken here by
    /// another vault, a suffix tells them apart (locally only). All or
    /// nothing.
    pub fn receive_vault(
        &self,
        name: &str,
        id: &str,
        renamed_at: i64,
        head: &str,
        objects: &[(String, RawObject)],
        may_author: MayAuthor<'_>,
    ) -> Result<Vault, VaultError> {
        let id: VaultId = id.parse()?;
        let head_id =
            ObjectId::from_hex(head.as_bytes()).map_err(|_| refused("a malformed version id"))?;
        let mut txn = self.db.write()?;
        if self.is_deleted(&txn, &id)? {
            return Err(VaultError::UnknownVault(id.to_string()));
        }
        let name = self.free_name(&txn, name)?;
        let vault = self.insert_record(&mut txn, &name, id)?;
        vault.receive_into(&mut txn, head, objects, may_author)?;
        vault.store.set_head(&mut txn, &head_id)?;
        self.set_renamed_at(&mut txn, &id, renamed_at)?;
        txn.commit()?;
        self.open(&id.to_string())
    }
}

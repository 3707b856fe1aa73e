use std::collections::HashSet;

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
            match object.kind {
                Kind::Tree => {
                    let tree = gix::objs::TreeRef::from_bytes(&object.data, HASH)
                        .map_err(VaultError::corrupt)?;
                    for entry in &tree.entries {
                        check_tree_entry_name(entry.filename)?;
                        if !(entry.mode.is_tree() || entry.mode.is_blob()) {
                            return Err(VaultError::corrupt(
                                "a received tree has links or submodules",
                            ));
                        }
                    }
                }
                Kind::Commit => {
                    verify_commit(&object.data)?;
                }
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
            let id = gix::objs::compute_hash(HASH, object.kind, &object.data)
                .map_err(VaultError::corrupt)?;
            if !self.store.contains(txn, &id)? {
                self.store.write_raw(txn, object.kind, &object.data)?;
                added += 1;
            }
        }
        Ok(added)
    }
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

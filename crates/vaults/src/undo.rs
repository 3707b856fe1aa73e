//! Undoing what a removed device committed that the device removing it had
//! not seen.
//!
//! A removed device's commits can only be refused by their date, and the
//! date is the device's own to write: a thief can backdate a commit to
//! before its removal and hand it to a device that has not heard of the
//! removal yet, which merges it and passes it on. So the removal names,
//! for each vault, the version the remover had (see polykey-gestalts'
//! `ClaimPayload::heads`); whatever the removed device committed outside
//! that version's history is undone here, on whichever device finds it, in
//! one commit that names what it undid. History keeps everything, so an
//! undone edit can still be restored by hand.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use gix::hash::ObjectId;
use gix::objs::tree::EntryKind;
use polykey_db::Db;
use polykey_keys::{NodeId, RootKeypair};

use crate::error::VaultError;
use crate::path::SecretPath;
use crate::tree::TreeEdit;
use crate::vault::{write_commit, Vault};

/// The line an undo commit names the removed device with.
pub const UNDOES_DEVICE: &str = "Polykey-Undoes-Device: ";
/// The line an undo commit names each undone commit with.
pub const UNDOES: &str = "Polykey-Undoes: ";
/// The line naming an undo commit taken back (its device is back, or its
/// removal no longer stands: its remover was removed in turn).
pub const REDOES: &str = "Polykey-Redoes: ";
/// Commits undone by one undo commit (older ones wait for the next pass),
/// keeping its message far below the commit size limit.
pub const MAX_UNDONE_PER_COMMIT: usize = 500;

/// A removed device, and the version of this vault its remover had when
/// removing it: the removed device's commits in that version's history
/// stand, the others are undone. `None`: the remover had no copy of this
/// vault, so none of them stand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    /// The removed device.
    pub node: NodeId,
    /// The remover's version of this vault.
    pub seen: Option<String>,
}

/// An undo commit found in the history.
struct Undo {
    device: String,
    undone: Vec<ObjectId>,
}

fn undo_of(message: &str) -> Option<Undo> {
    let mut lines = message.lines();
    let device = lines
        .find_map(|l| l.strip_prefix(UNDOES_DEVICE))?
        .trim()
        .to_owned();
    let undone = message
        .lines()
        .filter_map(|l| l.strip_prefix(UNDOES))
        .filter_map(|id| ObjectId::from_hex(id.trim().as_bytes()).ok())
        .collect();
    Some(Undo { device, undone })
}

/// Take back in `files` what going from `before` to `made` changed, where
/// `files` still holds what `made` left; a later edit by someone else
/// stands.
fn take_back(
    files: &mut BTreeMap<String, ObjectId>,
    made: &BTreeMap<String, ObjectId>,
    before: &BTreeMap<String, ObjectId>,
) {
    let paths: BTreeSet<&String> = made.keys().chain(before.keys()).collect();
    for path in paths {
        let (m, b) = (made.get(path), before.get(path));
        if m != b && files.get(path) == m {
            match b {
                Some(blob) => files.insert(path.clone(), *blob),
                None => files.remove(path),
            };
        }
    }
}

impl Vault {
    /// Keep what `removed` devices committed in line with their removal:
    /// undo, in one commit per device signed by `signer`, what each
    /// committed outside the version its remover had (unless undone
    /// already), and take back undo commits whose device is no longer
    /// removed here. Returns the new head, or `None` when nothing changed
    /// (a remover's version not here yet is decided once it is).
    pub fn undo_removed(
        &self,
        db: &Db,
        signer: &RootKeypair,
        removed: &[Removed],
    ) -> Result<Option<String>, VaultError> {
        let mut txn = db.write()?;
        let first = self.head_of(&txn)?;
        let history = self.commits(&txn, first, None)?;
        let parents: HashMap<ObjectId, Vec<ObjectId>> = history
            .iter()
            .map(|(id, c)| (*id, c.parents.to_vec()))
            .collect();
        let undos: Vec<(ObjectId, Undo)> = history
            .iter()
            .filter_map(|(id, c)| Some((*id, undo_of(&c.message.to_string())?)))
            .collect();
        let redone: HashSet<ObjectId> = history
            .iter()
            .flat_map(|(_, c)| {
                let message = c.message.to_string();
                let ids: Vec<ObjectId> = message
                    .lines()
                    .filter_map(|l| l.strip_prefix(REDOES))
                    .filter_map(|id| ObjectId::from_hex(id.trim().as_bytes()).ok())
                    .collect();
                ids
            })
            .collect();
        let standing = |u: &&(ObjectId, Undo)| !redone.contains(&u.0);
        let still: HashSet<String> = removed.iter().map(|r| r.node.to_string()).collect();

        let mut head = first;
        let mut files = self.all_files(&txn, Some(head))?;
        let commit = |txn: &mut polykey_db::WriteTxn<'_>,
                      head: &mut ObjectId,
                      files: &BTreeMap<String, ObjectId>,
                      message: &str|
         -> Result<(), VaultError> {
            let ours = self.all_files(txn, Some(*head))?;
            let mut tree = TreeEdit::new(&self.store, txn, Some(&self.root_of(txn, head)?))?;
            for path in ours.keys().filter(|p| !files.contains_key(*p)) {
                tree.remove(txn, &SecretPath::parse(path)?)?;
            }
            for (path, blob) in files {
                // A secret whose folder became a file (or the reverse)
                // keeps the newer shape: history has both.
                let prefix = format!("{path}/");
                let shadowed = files
                    .range(prefix.clone()..)
                    .next()
                    .is_some_and(|(q, _)| q.starts_with(&prefix));
                if ours.get(path) != Some(blob) && !shadowed {
                    tree.upsert(txn, &SecretPath::parse(path)?, *blob, EntryKind::Blob)?;
                }
            }
            let root = tree.write(txn)?;
            *head = write_commit(&self.store, txn, signer, root, vec![*head], message)?;
            Ok(())
        };

        // Undo commits whose device is back: take them back.
        for (id, undo) in undos.iter().filter(standing) {
            if still.contains(&undo.device) {
                continue;
            }
            let made = self.all_files(&txn, Some(*id))?;
            let before = self.all_files(&txn, parents[id].first().copied())?;
            take_back(&mut files, &made, &before);
            let message = format!(
                "Take back an undo: {} is no longer removed\n\n{REDOES}{id}",
                undo.device
            );
            commit(&mut txn, &mut head, &files, &message)?;
        }

        let generation = generations(&parents);
        for r in removed {
            let device = r.node.to_string();
            let seen: HashSet<ObjectId> = match &r.seen {
                None => HashSet::new(),
                Some(hex) => {
                    let Some(id) = ObjectId::from_hex(hex.as_bytes())
                        .ok()
                        .filter(|id| self.store.commit(&txn, id).is_ok())
                    else {
                        continue;
                    };
                    self.commits(&txn, id, None)?
                        .into_iter()
                        .map(|(id, _)| id)
                        .collect()
                }
            };
            let undone: HashSet<ObjectId> = undos
                .iter()
                .filter(standing)
                .filter(|(_, u)| u.device == device)
                .flat_map(|(_, u)| u.undone.iter().copied())
                .collect();
            let unseen: HashSet<ObjectId> = history
                .iter()
                .filter(|(id, c)| c.author.name == device.as_str() && !seen.contains(id))
                .map(|(id, _)| *id)
                .collect();
            let mut todo: Vec<ObjectId> = unseen.difference(&undone).copied().collect();
            if todo.is_empty() {
                continue;
            }
            // Children before parents, as `git revert` of a range does.
            todo.sort_by_key(|id| std::cmp::Reverse((generation.get(id).copied(), *id)));
            todo.truncate(MAX_UNDONE_PER_COMMIT);
            for id in &todo {
                // From the state before it: a parent of someone else's if
                // it has one (a forged parent of its own is undone too).
                let before = parents[id]
                    .iter()
                    .find(|p| !unseen.contains(*p))
                    .or_else(|| parents[id].first())
                    .copied();
                let made = self.all_files(&txn, Some(*id))?;
                let before = self.all_files(&txn, before)?;
                take_back(&mut files, &made, &before);
            }
            let mut message = format!(
                "Undo what a removed device changed that the device removing it had not seen\n\n{UNDOES_DEVICE}{device}"
            );
            for id in &todo {
                message.push_str(&format!("\n{UNDOES}{id}"));
            }
            commit(&mut txn, &mut head, &files, &message)?;
        }
        if head == first {
            return Ok(None);
        }
        self.store.set_head(&mut txn, &head)?;
        txn.commit()?;
        Ok(Some(head.to_string()))
    }
}

/// Each commit's distance from the oldest (1 + its parents' largest),
/// without recursion.
fn generations(parents: &HashMap<ObjectId, Vec<ObjectId>>) -> HashMap<ObjectId, u64> {
    let mut generation: HashMap<ObjectId, u64> = HashMap::new();
    for start in parents.keys() {
        let mut stack = vec![*start];
        while let Some(id) = stack.pop() {
            if generation.contains_key(&id) {
                continue;
            }
            let known = parents.get(&id).map(Vec::as_slice).unwrap_or_default();
            let waiting: Vec<ObjectId> = known
                .iter()
                .filter(|p| parents.contains_key(*p) && !generation.contains_key(*p))
                .copied()
                .collect();
            if waiting.is_empty() {
                let above = known.iter().filter_map(|p| generation.get(p)).max();
                generation.insert(id, above.map_or(0, |g| g + 1));
            } else {
                stack.push(id);
                stack.extend(waiting);
            }
        }
    }
    generation
}

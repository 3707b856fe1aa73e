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
/// The line naming an undo taken back, `Polykey-Redoes: <undo commit>
/// <device>` (the device is back, or its removal no longer stands: its
/// remover was removed in turn).
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
    /// Removed, but no version to judge by (the removal that counts names
    /// none): what was undone stays undone, nothing more is.
    pub hold: bool,
}

/// One device's part of an undo commit.
struct Undo {
    device: String,
    undone: Vec<ObjectId>,
}

/// The undo parts of a commit message: each `Polykey-Undoes-Device:` line
/// starts one, and the `Polykey-Undoes:` lines after it belong to it.
fn undos_of(message: &str) -> Vec<Undo> {
    let mut out: Vec<Undo> = Vec::new();
    for line in message.lines() {
        if let Some(device) = line.strip_prefix(UNDOES_DEVICE) {
            out.push(Undo {
                device: device.trim().to_owned(),
                undone: Vec::new(),
            });
        } else if let Some(id) = line.strip_prefix(UNDOES) {
            if let (Some(undo), Ok(id)) = (out.last_mut(), ObjectId::from_hex(id.trim().as_bytes()))
            {
                undo.undone.push(id);
            }
        }
    }
    out
}

/// The undo parts a commit message takes back: `Polykey-Redoes: <undo
/// commit> <device>`.
fn redos_of(message: &str) -> Vec<(ObjectId, String)> {
    message
        .lines()
        .filter_map(|l| l.strip_prefix(REDOES))
        .filter_map(|rest| {
            let (id, device) = rest.trim().split_once(' ')?;
            Some((
                ObjectId::from_hex(id.as_bytes()).ok()?,
                device.trim().to_owned(),
            ))
        })
        .collect()
}

/// The paths `made` changed from every one of `befores` (a merge's own
/// change differs from all its parents; what it merged in from one parent
/// is not its work), with the value to go back to: the first of
/// `befores`'.
fn own_changes(
    made: &BTreeMap<String, ObjectId>,
    befores: &[BTreeMap<String, ObjectId>],
) -> Vec<(String, Option<ObjectId>, Option<ObjectId>)> {
    let empty = BTreeMap::new();
    let first = befores.first().unwrap_or(&empty);
    let mut paths: BTreeSet<&String> = made.keys().collect();
    for before in befores {
        paths.extend(before.keys());
    }
    paths
        .into_iter()
        .filter(|path| {
            let m = made.get(*path);
            if befores.is_empty() {
                return m.is_some();
            }
            befores.iter().all(|b| b.get(*path) != m)
        })
        .map(|path| {
            (
                path.clone(),
                made.get(path).copied(),
                first.get(path).copied(),
            )
        })
        .collect()
}

/// Set `path` to `value` in `files` (none: remove it) if it still holds
/// `expected`: a later edit by someone else stands. Returns whether it
/// changed.
fn put_back(
    files: &mut BTreeMap<String, ObjectId>,
    path: &str,
    expected: Option<ObjectId>,
    value: Option<ObjectId>,
) -> bool {
    if files.get(path).copied() != expected || expected == value {
        return false;
    }
    match value {
        Some(blob) => files.insert(path.to_owned(), blob),
        None => files.remove(path),
    };
    true
}

/// Whether a secret at `path` has no room in `files`: a folder of that name
/// holds secrets, or one of its folders is a secret.
fn no_room(path: &str, files: &BTreeMap<String, ObjectId>) -> bool {
    let prefix = format!("{path}/");
    let is_folder = files
        .range(prefix.clone()..)
        .next()
        .is_some_and(|(q, _)| q.starts_with(&prefix));
    let under_a_secret = path
        .match_indices('/')
        .any(|(at, _)| files.contains_key(&path[..at]));
    is_folder || under_a_secret
}

impl Vault {
    /// Keep what `removed` devices committed in line with their removal:
    /// undo, in one commit signed by `signer`, what each committed outside
    /// the version its remover had (unless undone already), and redo what
    /// an undo took from a device no longer removed here. Undo commits
    /// count only when made by a node `trusted` accepts (this gestalt's
    /// standing devices) other than the device they undo, with one parent:
    /// a removed device cannot mark its own work undone, and a trailer in
    /// anyone else's commit means nothing. Only undos of a device
    /// `once_removed` accepts (one with a removal stored here, standing or
    /// fallen) are ever taken back. Returns the new head, or `None`
    /// when nothing changed (a remover's version not here yet is decided
    /// once it is).
    pub fn undo_removed(
        &self,
        db: &Db,
        signer: &RootKeypair,
        removed: &[Removed],
        trusted: &dyn Fn(&str) -> bool,
        once_removed: &dyn Fn(&str) -> bool,
    ) -> Result<Option<String>, VaultError> {
        let mut txn = db.write()?;
        let first = self.head_of(&txn)?;
        // A deleted vault stays deleted: a commit would revive it. (It is
        // settled if it is restored.)
        if crate::deletion::deleted_at(&txn, self, first)? {
            return Ok(None);
        }
        let history = self.commits(&txn, first, None)?;
        let parents: HashMap<ObjectId, Vec<ObjectId>> = history
            .iter()
            .map(|(id, c)| (*id, c.parents.to_vec()))
            .collect();
        let authors: HashMap<ObjectId, String> = history
            .iter()
            .map(|(id, c)| (*id, c.author.name.to_string()))
            .collect();
        // Undo and redo commits that count (see above).
        let counts = |id: &ObjectId| {
            parents.get(id).is_some_and(|p| p.len() == 1)
                && authors.get(id).is_some_and(|a| trusted(a))
        };
        let undos: Vec<(ObjectId, Undo)> = history
            .iter()
            .filter(|(id, _)| counts(id))
            .flat_map(|(id, c)| {
                let parts = undos_of(&c.message.to_string());
                parts.into_iter().map(move |u| (*id, u))
            })
            .filter(|(id, undo)| authors.get(id) != Some(&undo.device))
            .collect();
        let redone: HashSet<(ObjectId, String)> = history
            .iter()
            .filter(|(id, _)| counts(id))
            .flat_map(|(_, c)| redos_of(&c.message.to_string()))
            .collect();
        let standing = |u: &&(ObjectId, Undo)| !redone.contains(&(u.0, u.1.device.clone()));
        let still: HashSet<String> = removed.iter().map(|r| r.node.to_string()).collect();
        let committed: HashSet<&String> = authors.values().collect();
        let generation = generations(&parents);
        let ours = self.all_files(&txn, Some(first))?;
        let mut files = ours.clone();
        let mut message = String::new();

        // Undos of a device no longer removed (and removed here once: an
        // "undo" naming a device never removed is a forgery) are taken
        // back: every commit they undid, each listed once, parents first
        // across all of them, at most MAX_UNDONE_PER_COMMIT per pass, gets
        // its own change put back where the undo left it.
        let mut redo: Vec<(ObjectId, String)> = Vec::new();
        let mut to_put_back: BTreeSet<ObjectId> = BTreeSet::new();
        for (id, undo) in undos.iter().filter(standing) {
            if still.contains(&undo.device) || !once_removed(&undo.device) {
                continue;
            }
            let listed: Vec<ObjectId> = undo
                .undone
                .iter()
                .filter(|u| authors.get(*u) == Some(&undo.device))
                .copied()
                .collect();
            if listed.is_empty() {
                continue;
            }
            if to_put_back.len() + listed.len() > MAX_UNDONE_PER_COMMIT && !redo.is_empty() {
                break;
            }
            to_put_back.extend(listed);
            redo.push((*id, undo.device.clone()));
        }
        let mut ordered: Vec<ObjectId> = to_put_back.into_iter().collect();
        ordered.sort_by_key(|u| (generation.get(u).copied(), *u));
        for undone in ordered {
            // Compared as the undo compared it: with the parents the device
            // did not write (with none, its first).
            let device = &authors[&undone];
            let others: Vec<ObjectId> = parents[&undone]
                .iter()
                .filter(|p| authors.get(*p) != Some(device))
                .copied()
                .collect();
            let compared = if others.is_empty() {
                parents[&undone].iter().take(1).copied().collect()
            } else {
                others
            };
            let made = self.all_files(&txn, Some(undone))?;
            let mut befores = Vec::new();
            for parent in compared {
                befores.push(self.all_files(&txn, Some(parent))?);
            }
            for (path, value, before) in own_changes(&made, &befores) {
                put_back(&mut files, &path, before, value);
            }
        }
        for (id, device) in &redo {
            message.push_str(&format!("\n{REDOES}{id} {device}"));
        }

        let mut seen_of: HashMap<String, HashSet<ObjectId>> = HashMap::new();
        for r in removed {
            let device = r.node.to_string();
            // A device with no commit here costs no walk.
            if r.hold || !committed.contains(&device) {
                continue;
            }
            let seen = match &r.seen {
                None => HashSet::new(),
                Some(hex) => {
                    if !seen_of.contains_key(hex) {
                        let Some(id) = ObjectId::from_hex(hex.as_bytes())
                            .ok()
                            .filter(|id| self.store.commit(&txn, id).is_ok())
                        else {
                            continue;
                        };
                        let walked = self.commits(&txn, id, None)?.into_iter().map(|(id, _)| id);
                        seen_of.insert(hex.clone(), walked.collect());
                    }
                    seen_of[hex].clone()
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
                // Compared with the parents it did not write (a forged
                // parent of its own is undone too); with none, its first.
                let own: Vec<ObjectId> = parents[id]
                    .iter()
                    .filter(|p| !unseen.contains(*p))
                    .copied()
                    .collect();
                let compared = if own.is_empty() {
                    parents[id].iter().take(1).copied().collect()
                } else {
                    own
                };
                let made = self.all_files(&txn, Some(*id))?;
                let mut befores = Vec::new();
                for parent in compared {
                    befores.push(self.all_files(&txn, Some(parent))?);
                }
                for (path, value, before) in own_changes(&made, &befores) {
                    put_back(&mut files, &path, value, before);
                }
            }
            message.push_str(&format!("\n{UNDOES_DEVICE}{device}"));
            for id in &todo {
                message.push_str(&format!("\n{UNDOES}{id}"));
            }
        }
        if message.is_empty() {
            return Ok(None);
        }

        let mut tree = TreeEdit::new(&self.store, &txn, Some(&self.root_of(&txn, &first)?))?;
        for path in ours.keys().filter(|p| !files.contains_key(*p)) {
            tree.remove(&txn, &SecretPath::parse(path)?)?;
        }
        for (path, blob) in &files {
            // A secret whose place is taken (a folder of its name, or a
            // folder of its path turned into a secret) stays out: history
            // has it.
            if ours.get(path) != Some(blob) && !no_room(path, &files) {
                tree.upsert(&txn, &SecretPath::parse(path)?, *blob, EntryKind::Blob)?;
            }
        }
        let root = tree.write(&mut txn)?;
        let text = format!(
            "Undo what a removed device changed that the device removing it had not seen\n{message}"
        );
        let head = write_commit(&self.store, &mut txn, signer, root, vec![first], &text)?;
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

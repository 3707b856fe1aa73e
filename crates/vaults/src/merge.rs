//! Three-way merge, decided per secret.
//!
//! Secrets are opaque values: two edits of the same password must never be
//! spliced together line by line, as a text merge would. So the merge compares
//! each path's blob id in the merge base, our head and their head, and when
//! both sides changed the same secret it keeps both versions and reports the
//! conflict, losing nothing.
//!
//! The result does not depend on which side merges: the winner in place is
//! the version with the greater id, the other goes to the secret's one copy
//! beside it (`NAME.conflict-TAG`, TAG from the path), and a copy edited on
//! both sides keeps its winner only. So devices that merge the same two
//! versions each way reach the same tree, and however many versions
//! collide a secret has at most one copy to review; every version stays in
//! history.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};

use gix::hash::ObjectId;
use gix::objs::tree::EntryKind;
use polykey_db::{Db, WriteTxn};
use polykey_keys::RootKeypair;

use crate::error::VaultError;
use crate::objects::{ObjectStore, Source};
use crate::path::{SecretPath, MAX_PATH_LEN, MAX_SEGMENT_LEN};
use crate::tree::{walk_files, TreeEdit};
use crate::vault::{write_commit, Vault};

/// One secret both sides changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeConflict {
    /// The secret's path; it holds the version that won (the edited one
    /// when the other side deleted it).
    pub path: String,
    /// Where the other version was kept beside it, when both exist (a
    /// conflict in a kept copy keeps only its winner).
    pub theirs_path: Option<String>,
    /// What happened, in words.
    pub reason: &'static str,
}

/// What a merge did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MergeOutcome {
    /// Their head is already part of ours.
    UpToDate,
    /// Ours was behind: the head moved to theirs, no commit.
    FastForward {
        /// The new head.
        head: String,
    },
    /// A merge commit with two parents.
    Merged {
        /// The merge commit.
        head: String,
        /// Secrets changed on both sides (both versions kept).
        conflicts: Vec<MergeConflict>,
    },
}

/// How another copy's version relates to ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// Their version is ours or already part of our history.
    UpToDate,
    /// Ours is part of their history: we can fast-forward.
    Behind,
    /// Both have changes the other lacks: a merge is needed.
    Diverged,
}

fn short(id: &ObjectId) -> String {
    id.to_string()[..8].to_owned()
}

/// The tag of the one copy a merge keeps beside `path`: eight hex digits
/// of the path's SHA-1, so every device names it alike.
fn path_tag(path: &str) -> String {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(path.as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// Most conflicts a merge commit's message names (the rest are counted),
/// so the commit stays far below [`crate::MAX_COMMIT_SIZE`].
const MESSAGE_CONFLICTS: usize = 100;

/// A free path beside `path` for another version of it:
/// `path.conflict-TAG`, then `-2`, `-3`… The name is shortened (at a
/// character boundary) when the suffix would take it past
/// [`MAX_SEGMENT_LEN`] or the path past [`MAX_PATH_LEN`], so the copy is
/// always a valid [`SecretPath`] and the merge never fails on a long name.
/// (A shortened copy is kept like any other secret, just not recognised by
/// [`conflict_original`].)
fn conflict_copy(path: &str, tag: &str, taken: impl Fn(&str) -> bool) -> String {
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (Some(dir), name),
        None => (None, path),
    };
    let mut n = 1u64;
    loop {
        let suffix = if n == 1 {
            format!(".conflict-{tag}")
        } else {
            format!(".conflict-{tag}-{n}")
        };
        // A directory too long to take even the suffix: keep the copy at
        // the top level instead.
        let dir = dir.filter(|d| d.len() + 1 + suffix.len() <= MAX_PATH_LEN);
        let dir_len = dir.map_or(0, |d| d.len() + 1);
        let room = MAX_SEGMENT_LEN
            .min(MAX_PATH_LEN - dir_len)
            .saturating_sub(suffix.len());
        let mut stem_len = name.len().min(room);
        while !name.is_char_boundary(stem_len) {
            stem_len -= 1;
        }
        let stem = &name[..stem_len];
        let candidate = match dir {
            Some(dir) => format!("{dir}/{stem}{suffix}"),
            None => format!("{stem}{suffix}"),
        };
        if !taken(&candidate) {
            return candidate;
        }
        n += 1;
    }
}

impl Vault {
    /// Move the head to `theirs` when it descends from the head (and is
    /// not it): a fast-forward. Returns whether it moved.
    pub(crate) fn fast_forward(
        &self,
        txn: &mut WriteTxn<'_>,
        theirs: ObjectId,
    ) -> Result<bool, VaultError> {
        let ours = self.head_of(&*txn)?;
        // Cached, so the walk below stops at our head's generation.
        generation(&self.store, txn, ours)?;
        let forward = theirs != ours && self.reaches(&*txn, theirs, ours)?;
        if forward {
            self.store.set_head(txn, &theirs)?;
            // The new head's too (reading the commits just received once),
            // so the next walk from it is bounded as well.
            generation(&self.store, txn, theirs)?;
        }
        Ok(forward)
    }

    /// Whether `target` is `from` or one of its ancestors; stops as soon as
    /// it is found, and goes no further down than `target`'s generation
    /// where generations are cached (an ancestor's is always less).
    fn reaches(
        &self,
        src: &impl Source,
        from: ObjectId,
        target: ObjectId,
    ) -> Result<bool, VaultError> {
        let floor = self.store.cached_generation(src, &target)?;
        let mut seen = HashSet::from([from]);
        let mut queue = std::collections::VecDeque::from([from]);
        while let Some(id) = queue.pop_front() {
            if id == target {
                return Ok(true);
            }
            for parent in self.store.commit(src, &id)?.parents {
                if !seen.insert(parent) {
                    continue;
                }
                if parent != target {
                    if let (Some(floor), Some(at)) =
                        (floor, self.store.cached_generation(src, &parent)?)
                    {
                        if at <= floor {
                            continue;
                        }
                    }
                }
                queue.push_back(parent);
            }
        }
        Ok(false)
    }

    /// The best common ancestor of `ours` and `theirs`: of the commits
    /// both reach, the one farthest from the root (the greatest
    /// generation: one more than its furthest parent), so never an
    /// ancestor of another common ancestor; ties go to the greater id.
    /// Found from the shape of the history alone: commit times are
    /// whatever each device's clock said, and the newest by time can be an
    /// older ancestor when a clock is off, which would make the merge undo
    /// a deletion or see an edit twice. `ours` itself when theirs descends
    /// from it, `theirs` when ours does; `None` for unrelated histories.
    ///
    /// Commits are taken greatest generation first, each passing on which
    /// heads reach it to its parents; all of a commit's children come
    /// before it, so the first that both heads reach is the answer, and
    /// the walk reads only the commits above it (the two sides' changes
    /// since they parted), not the whole history.
    fn merge_base(
        &self,
        txn: &mut WriteTxn<'_>,
        ours: ObjectId,
        theirs: ObjectId,
    ) -> Result<Option<ObjectId>, VaultError> {
        const OURS: u8 = 1;
        const THEIRS: u8 = 2;
        let mut reached: HashMap<ObjectId, u8> = HashMap::new();
        let mut queue: BinaryHeap<(u64, ObjectId)> = BinaryHeap::new();
        for (id, side) in [(ours, OURS), (theirs, THEIRS)] {
            let sides = reached.entry(id).or_insert(0);
            if *sides == 0 {
                queue.push((generation(&self.store, txn, id)?, id));
            }
            *sides |= side;
        }
        while let Some((_, id)) = queue.pop() {
            let sides = reached.get(&id).copied().unwrap_or(0);
            if sides == OURS | THEIRS {
                return Ok(Some(id));
            }
            for parent in self.store.commit(&*txn, &id)?.parents {
                let of_parent = reached.entry(parent).or_insert(0);
                if *of_parent == 0 {
                    queue.push((generation(&self.store, txn, parent)?, parent));
                }
                *of_parent |= sides;
            }
        }
        Ok(None)
    }

    /// Every file of a version (none for no version), markers included.
    pub(crate) fn all_files(
        &self,
        src: &impl Source,
        commit: Option<ObjectId>,
    ) -> Result<BTreeMap<String, ObjectId>, VaultError> {
        let Some(commit) = commit else {
            return Ok(BTreeMap::new());
        };
        let root = self.root_of(src, &commit)?;
        let mut files = Vec::new();
        walk_files(&self.store, src, &root, "", &mut files)?;
        Ok(files.into_iter().collect())
    }

    /// Whether version `id` (a whole commit id) is stored here.
    pub fn has_version(&self, db: &Db, id: &str) -> Result<bool, VaultError> {
        let txn = db.read()?;
        Ok(ObjectId::from_hex(id.as_bytes())
            .ok()
            .is_some_and(|id| self.store.commit(&txn, &id).is_ok()))
    }

    /// How version `theirs` (whose objects must be here) relates to our head.
    pub fn relation(&self, db: &Db, theirs: &str) -> Result<Relation, VaultError> {
        let txn = db.read()?;
        let ours = self.head_of(&txn)?;
        let theirs = ObjectId::from_hex(theirs.as_bytes())
            .ok()
            .filter(|id| self.store.commit(&txn, id).is_ok())
            .ok_or_else(|| VaultError::UnknownVersion(theirs.to_owned()))?;
        if theirs == ours {
            return Ok(Relation::UpToDate);
        }
        // Behind first: the usual case when pulling, and found in a step or
        // two (their few new commits lead to our head).
        if self.reaches(&txn, theirs, ours)? {
            return Ok(Relation::Behind);
        }
        if self.reaches(&txn, ours, theirs)? {
            return Ok(Relation::UpToDate);
        }
        Ok(Relation::Diverged)
    }

    /// Merge the version `theirs` (whose objects must already be imported)
    /// into the current head.
    pub fn merge(
        &self,
        db: &Db,
        signer: &RootKeypair,
        theirs: &str,
    ) -> Result<MergeOutcome, VaultError> {
        let mut txn = db.write()?;
        let ours = self.head_of(&txn)?;
        let theirs = ObjectId::from_hex(theirs.as_bytes())
            .ok()
            .filter(|id| self.store.commit(&txn, id).is_ok())
            .ok_or_else(|| VaultError::UnknownVersion(theirs.to_owned()))?;
        if theirs == ours {
            return Ok(MergeOutcome::UpToDate);
        }
        // One walk, of the commits above where the two parted, answers
        // whether theirs descends from ours (a fast-forward), ours from
        // theirs (nothing to do), or where they meet.
        let base = self.merge_base(&mut txn, ours, theirs)?;
        if base == Some(ours) {
            self.store.set_head(&mut txn, &theirs)?;
            txn.commit()?;
            return Ok(MergeOutcome::FastForward {
                head: theirs.to_string(),
            });
        }
        if base == Some(theirs) {
            // The generations worked out are kept for the next walk.
            txn.commit()?;
            return Ok(MergeOutcome::UpToDate);
        }

        let base_files = self.all_files(&txn, base)?;
        let our_files = self.all_files(&txn, Some(ours))?;
        let their_files = self.all_files(&txn, Some(theirs))?;
        let paths: BTreeSet<&String> = base_files
            .keys()
            .chain(our_files.keys())
            .chain(their_files.keys())
            .collect();

        let mut result: BTreeMap<String, ObjectId> = BTreeMap::new();
        let mut conflicts = Vec::new();
        // (index into `conflicts`, path, the version that lost) for
        // secrets edited on both sides.
        let mut losers: Vec<(usize, String, ObjectId)> = Vec::new();
        for path in paths {
            let (b, o, t) = (
                base_files.get(path),
                our_files.get(path),
                their_files.get(path),
            );
            let chosen = if o == t || t == b {
                o
            } else if o == b {
                t
            } else {
                match (o, t) {
                    (Some(our_id), Some(their_id)) => {
                        // The same winner on every device, whichever side
                        // merges: the greater id. The other is kept.
                        let (winner, loser) = if our_id >= their_id {
                            (our_id, their_id)
                        } else {
                            (their_id, our_id)
                        };
                        // A kept version edited on both sides keeps only
                        // its winner: the other stays in history, and
                        // no copy of a copy is ever made.
                        if conflict_original(path).is_none() {
                            losers.push((conflicts.len(), path.clone(), *loser));
                        }
                        conflicts.push(MergeConflict {
                            path: path.clone(),
                            theirs_path: None,
                            reason: "edited on both sides",
                        });
                        Some(winner)
                    }
                    (Some(_), None) => {
                        conflicts.push(MergeConflict {
                            path: path.clone(),
                            theirs_path: None,
                            reason: "edited here, deleted there",
                        });
                        o
                    }
                    (None, Some(_)) => {
                        conflicts.push(MergeConflict {
                            path: path.clone(),
                            theirs_path: None,
                            reason: "deleted here, edited there",
                        });
                        t
                    }
                    (None, None) => None,
                }
            };
            if let Some(id) = chosen {
                result.insert(path.clone(), *id);
            }
        }
        // The version that lost goes beside the secret, in its one kept
        // copy (named after the path, so the same on every device), over
        // whatever the copy held (that stays in history): however many
        // versions collide, a secret has one review, and it shows the
        // other version of the last merge.
        for (index, path, loser) in losers {
            conflicts[index].theirs_path = Some(keep_in_copy(&mut result, &path, loser));
        }
        // A secret where the other side made a directory of the same name
        // moves aside rather than being lost.
        let collisions: Vec<String> = result
            .keys()
            .filter(|p| is_directory(&result, p))
            .cloned()
            .collect();
        // (Into its one copy, as above, so collisions repeated do not
        // multiply copies.)
        for path in collisions {
            if let Some(id) = result.remove(&path) {
                let moved = keep_in_copy(&mut result, &path, id);
                conflicts.push(MergeConflict {
                    path,
                    theirs_path: Some(moved),
                    reason: "a secret and a directory share this name",
                });
            }
        }

        let mut tree = TreeEdit::new(&self.store, &txn, Some(&self.root_of(&txn, &ours)?))?;
        // In bulk: one at a time, each edit scanned its whole directory,
        // O(n²) for n secrets merged into one (70,000 took minutes).
        let gone = our_files
            .keys()
            .filter(|p| !result.contains_key(*p))
            .map(|p| SecretPath::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        tree.remove_files(&txn, &gone.iter().collect::<Vec<_>>())?;
        let changed = result
            .iter()
            .filter(|(path, id)| our_files.get(*path) != Some(*id))
            .map(|(path, id)| Ok((SecretPath::parse(path)?, *id)))
            .collect::<Result<Vec<_>, VaultError>>()?;
        let changed: Vec<(&SecretPath, ObjectId)> =
            changed.iter().map(|(p, id)| (p, *id)).collect();
        tree.upsert_blobs(&txn, &changed)?;
        let root = tree.write(&mut txn)?;
        let mut message = format!("Merge version {}", short(&theirs));
        if !conflicts.is_empty() {
            message.push_str("\n\nConflicts (both versions kept):");
            for conflict in conflicts.iter().take(MESSAGE_CONFLICTS) {
                message.push_str(&format!("\n  {} ({})", conflict.path, conflict.reason));
            }
            if conflicts.len() > MESSAGE_CONFLICTS {
                message.push_str(&format!(
                    "\n  and {} more",
                    conflicts.len() - MESSAGE_CONFLICTS
                ));
            }
        }
        let commit = write_commit(
            &self.store,
            &mut txn,
            signer,
            root,
            vec![ours, theirs],
            &message,
        )?;
        self.store.set_head(&mut txn, &commit)?;
        txn.commit()?;
        Ok(MergeOutcome::Merged {
            head: commit.to_string(),
            conflicts,
        })
    }
}

/// The generation of stored commit `id`: 1 for a root commit, else one
/// more than its furthest parent's. Cached with the commit's objects;
/// worked out (iteratively, reading each commit not cached once) and
/// cached for commits stored before generations were kept.
pub(crate) fn generation(
    store: &ObjectStore,
    txn: &mut WriteTxn<'_>,
    id: ObjectId,
) -> Result<u64, VaultError> {
    if let Some(known) = store.cached_generation(&*txn, &id)? {
        return Ok(known);
    }
    let mut worked_out = HashMap::new();
    let of_id = work_out_generation(store, &*txn, id, &mut worked_out)?;
    for (at, of_at) in worked_out {
        store.put_generation(txn, &at, of_at)?;
    }
    Ok(of_id)
}

/// The generation of stored commit `id` (see [`generation`]) where
/// nothing may be cached (a read): those worked out are kept in
/// `worked_out`, which later calls reuse.
pub(crate) fn work_out_generation(
    store: &ObjectStore,
    src: &impl Source,
    id: ObjectId,
    worked_out: &mut HashMap<ObjectId, u64>,
) -> Result<u64, VaultError> {
    if let Some(known) = worked_out.get(&id) {
        return Ok(*known);
    }
    if let Some(known) = store.cached_generation(src, &id)? {
        return Ok(known);
    }
    // (commit, its parents once read)
    let mut stack: Vec<(ObjectId, Option<Vec<ObjectId>>)> = vec![(id, None)];
    while let Some((at, parents)) = stack.pop() {
        if worked_out.contains_key(&at) {
            continue;
        }
        let parents = match parents {
            Some(parents) => parents,
            None => store.commit(src, &at)?.parents.to_vec(),
        };
        let mut furthest = 0u64;
        let mut missing = Vec::new();
        for parent in &parents {
            let of_parent = match worked_out.get(parent) {
                Some(g) => Some(*g),
                None => store.cached_generation(src, parent)?,
            };
            match of_parent {
                Some(g) => furthest = furthest.max(g),
                None => missing.push(*parent),
            }
        }
        if missing.is_empty() {
            worked_out.insert(at, furthest.saturating_add(1));
        } else {
            stack.push((at, Some(parents)));
            stack.extend(missing.into_iter().map(|p| (p, None)));
        }
    }
    worked_out
        .get(&id)
        .copied()
        .ok_or_else(|| VaultError::corrupt("a history walk ended early"))
}

/// The name of the one copy a merge keeps beside `path` (when that name
/// is free and short enough; see `conflict_copy`).
pub fn conflict_copy_path(path: &str) -> String {
    conflict_copy(path, &path_tag(path), |_| false)
}

/// Put `id`, a version this merge displaced (it lost to the other side's,
/// or it is a secret whose name became a directory), in `path`'s one copy
/// in the merged tree `result` and return the copy's name; the copy never
/// goes where `result` has a directory (the tree could not be written, and
/// the merge would fail on every try). It takes the copy whatever the copy
/// held (that stays in history): the merge says both versions are kept,
/// and the copy must show the other one. (It kept the greater id of the
/// two, so a writer who put a version of its own in the copy, at once or
/// a version before, with an id made great, hid our concurrent edit in
/// history.)
fn keep_in_copy(result: &mut BTreeMap<String, ObjectId>, path: &str, id: ObjectId) -> String {
    let copy = conflict_copy(path, &path_tag(path), |c| is_directory(result, c));
    result.insert(copy.clone(), id);
    copy
}

/// Whether `path` names a directory of the merged tree: some secret lies
/// below it.
fn is_directory(files: &BTreeMap<String, ObjectId>, path: &str) -> bool {
    let prefix = format!("{path}/");
    files
        .range(prefix.clone()..)
        .next()
        .is_some_and(|(q, _)| q.starts_with(&prefix))
}

/// Where a merge kept the other side's version of `path`: the original
/// path, if `theirs_path` is such a copy. The tag must be the original
/// path's own, so a secret someone named `x.conflict-12345678` is not
/// taken for a merge's copy.
pub fn conflict_original(theirs_path: &str) -> Option<&str> {
    let (original, tag) = theirs_path.rsplit_once(".conflict-")?;
    let (hex, n) = tag.split_once('-').unwrap_or((tag, "2"));
    let well_formed = !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
        && !original.is_empty()
        && !original.ends_with('/')
        && hex == path_tag(original);
    well_formed.then_some(original)
}

impl Vault {
    /// Secrets kept twice by a merge: (the secret, the other version). The
    /// secret's path may now be a directory, when the other side made one
    /// of its name and the secret was moved aside.
    pub fn conflicts(&self, db: &Db) -> Result<Vec<(String, String)>, VaultError> {
        // With directory markers: a directory made empty holds only one.
        let txn = db.read()?;
        let head = self.head_of(&txn)?;
        let files = self.all_files(&txn, Some(head))?;
        Ok(files
            .keys()
            .filter_map(|path| {
                let original = conflict_original(path)?;
                Some((original.to_owned(), path.clone()))
            })
            .filter(|(original, _)| files.contains_key(original) || is_directory(&files, original))
            .collect())
    }

    /// Settle a conflict in one commit: keep this version of `path` (drop
    /// `theirs_path`) or the other one (it replaces `path`).
    pub fn resolve_conflict(
        &self,
        db: &Db,
        signer: &RootKeypair,
        path: &str,
        theirs_path: &str,
        keep_theirs: bool,
    ) -> Result<String, VaultError> {
        if conflict_original(theirs_path) != Some(path) {
            return Err(VaultError::InvalidPath(
                "that is not a kept conflicting version",
            ));
        }
        let path = SecretPath::parse(path)?;
        let theirs = SecretPath::parse(theirs_path)?;
        self.change(db, signer, |tree, txn| {
            // A secret moved aside for a directory of its name cannot go
            // back in the directory's place.
            if keep_theirs && tree.get(txn, &path)?.is_some_and(|e| e.mode.is_tree()) {
                return Err(VaultError::WrongKind(path.to_string(), "directory"));
            }
            let kept = tree
                .remove(txn, &theirs)?
                .ok_or_else(|| VaultError::NotFound(theirs.to_string()))?;
            // A directory someone named like a copy is no secret to put in
            // the original's place (as a file, every other copy would
            // refuse the vault).
            if keep_theirs && kept.mode.is_tree() {
                return Err(VaultError::WrongKind(theirs.to_string(), "directory"));
            }
            if keep_theirs {
                tree.upsert(txn, &path, kept.oid, EntryKind::Blob)?;
                Ok(format!(
                    "Resolve conflict of {path}: keep the other version"
                ))
            } else {
                Ok(format!("Resolve conflict of {path}: keep this version"))
            }
        })
        .map(|id| id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::{conflict_copy, conflict_original, path_tag};
    use crate::path::{SecretPath, MAX_PATH_LEN};

    #[test]
    fn conflict_copies_stay_valid_paths() {
        let long = "\u{e9}".repeat(127); // 254 bytes
        let copy = conflict_copy(&format!("dir/{long}"), "0123abcd", |_| false);
        assert!(SecretPath::parse(&copy).is_ok(), "{copy}");
        assert!(copy.len() <= 4 + 255);
        let deep = format!("{}/x", "d".repeat(MAX_PATH_LEN - 2));
        let copy = conflict_copy(&deep, "0123abcd", |_| false);
        assert!(SecretPath::parse(&copy).is_ok(), "{copy}");
        let taken = ["a.conflict-0123abcd".to_owned()];
        assert_eq!(
            conflict_copy("a", "0123abcd", |c| taken.iter().any(|t| t == c)),
            "a.conflict-0123abcd-2"
        );
    }

    #[test]
    fn conflict_copies_are_recognised_and_nothing_else() {
        let (nested, top) = (path_tag("a/github"), path_tag("github"));
        assert_eq!(
            conflict_original(&format!("a/github.conflict-{nested}")),
            Some("a/github")
        );
        assert_eq!(
            conflict_original(&format!("github.conflict-{top}-3")),
            Some("github")
        );
        for not in [
            "github".to_owned(),
            "github.conflict-".to_owned(),
            format!("github.conflict-{}", top.to_uppercase()),
            format!("github.conflict-{}", &top[..7]),
            format!("github.conflict-{top}-x"),
            format!("github.conflict-{top}-"),
            format!(".conflict-{top}"),
            // Another path's tag: a name someone chose, not a merge's copy.
            format!("github.conflict-{nested}"),
            "github.conflict-0123abcd".to_owned(),
        ] {
            assert_eq!(conflict_original(&not), None, "{not}");
        }
    }
}

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};

use gix::hash::ObjectId;
use gix::objs::Commit;
use polykey_db::Db;
use polykey_keys::{NodeId, RootKeypair};
use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::objects::{ObjectStore, Source};
use crate::path::SecretPath;
use crate::tree::lookup;
use crate::vault::{write_commit, Vault, KEEP_FILE};

/// One version of a vault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit id (the version), 40 hex characters.
    pub id: String,
    /// The NodeId that made it.
    pub author: String,
    /// When, in seconds since the Unix epoch.
    pub time: i64,
    /// What changed, in words.
    pub message: String,
    /// The versions it follows (two for a merge).
    pub parents: Vec<String>,
}

/// How a path differs between two versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Only in the newer version.
    Added,
    /// In both, with different contents.
    Modified,
    /// Only in the older version.
    Deleted,
}

/// One changed secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The secret's path.
    pub path: String,
    /// How it changed.
    pub kind: ChangeKind,
}

/// The most commits [`Vault::recently_deleted`] walks back from the head,
/// so listing deleted secrets stays quick in a long history.
pub const MAX_DELETED_SCAN_COMMITS: usize = 2_000;

/// A secret that a recent version removed and that is not in the vault now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedSecret {
    /// Where it was.
    pub path: String,
    /// When the version that removed it was made (ms since the Unix epoch).
    pub deleted_at: i64,
    /// A version that still has it (the one before the removal): pass it to
    /// [`Vault::restore_secret`] to bring the secret back.
    pub version: String,
}

fn info(id: &ObjectId, commit: &Commit) -> CommitInfo {
    CommitInfo {
        id: id.to_string(),
        author: commit.author.name.to_string(),
        time: commit.committer.time.seconds,
        message: commit.message.to_string().trim_end().to_owned(),
        parents: commit.parents.iter().map(ToString::to_string).collect(),
    }
}

impl Vault {
    /// Every commit reachable from `head`, newest first (by time, then id).
    pub(crate) fn commits(
        &self,
        src: &impl Source,
        head: ObjectId,
        limit: Option<usize>,
    ) -> Result<Vec<(ObjectId, Commit)>, VaultError> {
        let mut seen = HashSet::from([head]);
        let mut queue = BinaryHeap::new();
        let first = self.store.commit(src, &head)?;
        queue.push((first.committer.time.seconds, head, first));
        let mut out = Vec::new();
        while let Some((_, id, commit)) = queue.pop() {
            if limit.is_some_and(|n| out.len() >= n) {
                break;
            }
            for parent in &commit.parents {
                if seen.insert(*parent) {
                    let parent_commit = self.store.commit(src, parent)?;
                    queue.push((parent_commit.committer.time.seconds, *parent, parent_commit));
                }
            }
            out.push((id, commit));
        }
        Ok(out)
    }

    /// The history, newest first; at most `limit` versions.
    pub fn log(&self, db: &Db, limit: Option<usize>) -> Result<Vec<CommitInfo>, VaultError> {
        let txn = db.read()?;
        let head = self.head_of(&txn)?;
        Ok(self
            .commits(&txn, head, limit)?
            .iter()
            .map(|(id, commit)| info(id, commit))
            .collect())
    }

    /// When each of `paths` last changed (seconds since the epoch), for
    /// those a version dated `since` or later changed: the history is read
    /// newest first and only back to `since`, each version compared with
    /// its first parent by tree (equal directories skipped unread), with at
    /// most `budget` trees read (then the walk stops; what it did not reach
    /// is left out). Also whether the walk reached `since` (false: the
    /// budget ran out first); when it did, the paths left out are unchanged
    /// since `since`.
    pub fn changed_since(
        &self,
        db: &Db,
        paths: &[String],
        since: i64,
        budget: usize,
    ) -> Result<(HashMap<String, i64>, bool), VaultError> {
        let txn = db.read()?;
        let head = self.head_of(&txn)?;
        let mut left: HashSet<&str> = paths.iter().map(String::as_str).collect();
        let mut out = HashMap::new();
        let mut budget = budget;
        let mut seen = HashSet::from([head]);
        let mut queue = BinaryHeap::new();
        let first = self.store.commit(&txn, &head)?;
        queue.push((first.committer.time.seconds, head, first));
        while let Some((time, _, commit)) = queue.pop() {
            if time < since || left.is_empty() {
                return Ok((out, true));
            }
            let parent_tree = match commit.parents.first() {
                Some(id) => Some(self.store.commit(&txn, id)?.tree),
                None => None,
            };
            let mut changed = Vec::new();
            if !changed_paths(
                &self.store,
                &txn,
                parent_tree,
                Some(commit.tree),
                "",
                0,
                &mut budget,
                &mut changed,
            )? {
                return Ok((out, false));
            }
            for path in changed {
                if left.remove(path.as_str()) {
                    out.insert(path, time);
                }
            }
            for id in &commit.parents {
                if seen.insert(*id) {
                    let parent_commit = self.store.commit(&txn, id)?;
                    queue.push((parent_commit.committer.time.seconds, *id, parent_commit));
                }
            }
        }
        Ok((out, true))
    }

    /// The versions in which the secret at `path` changed (added, edited or
    /// removed), newest first, following it back through moves and
    /// renames (see [`Self::history_with_paths`]).
    pub fn history_of(&self, db: &Db, path: &str) -> Result<Vec<CommitInfo>, VaultError> {
        Ok(self
            .history_with_paths(db, path)?
            .into_iter()
            .map(|(info, _)| info)
            .collect())
    }

    /// [`Self::history_of`], each version with the path the secret had in
    /// it: where a version moved it here (a rename of it or of a folder it
    /// is in, the same bytes at the old path before), the versions before
    /// are those of the old path.
    pub fn history_with_paths(
        &self,
        db: &Db,
        path: &str,
    ) -> Result<Vec<(CommitInfo, String)>, VaultError> {
        let path = SecretPath::parse(path)?;
        let txn = db.read()?;
        let head = self.head_of(&txn)?;
        let mut out = Vec::new();
        self.follow(&txn, head, path, |id, commit, here, changed| {
            if changed {
                out.push((info(id, commit), here.to_string()));
            }
            true
        })?;
        Ok(out)
    }

    /// Walk history from `head`, newest first, following the secret at
    /// `path` back through moves: `visit` gets each version, the path the
    /// secret has in it, and whether it changed there; it returns whether
    /// to go on. Each version's path comes from the child it was reached
    /// by (a move seen there sends its parents to the old path), so a move
    /// on one branch never redirects another.
    fn follow(
        &self,
        src: &impl Source,
        head: ObjectId,
        path: SecretPath,
        mut visit: impl FnMut(&ObjectId, &Commit, &SecretPath, bool) -> bool,
    ) -> Result<(), VaultError> {
        let blob_at =
            |tree: &ObjectId, path: &SecretPath| -> Result<Option<ObjectId>, VaultError> {
                Ok(lookup(&self.store, src, tree, path.as_str())?.map(|e| e.oid))
            };
        // Every version is listed after one of its children, which set
        // its path.
        let mut paths: HashMap<ObjectId, SecretPath> = HashMap::from([(head, path.clone())]);
        for (id, commit) in self.commits(src, head, None)? {
            let here = paths.get(&id).cloned().unwrap_or_else(|| path.clone());
            let parent = match commit.parents.first() {
                Some(parent) => Some(self.store.commit(src, parent)?),
                None => None,
            };
            let before = match &parent {
                Some(parent) => blob_at(&parent.tree, &here)?,
                None => None,
            };
            let now = blob_at(&commit.tree, &here)?;
            if !visit(&id, &commit, &here, now != before) {
                return Ok(());
            }
            // Arrived here by a move: earlier, it was at the old path. A
            // move, not a copy: the old path is gone in this version.
            let mut earlier = here;
            if let (Some(now), None, Some(parent)) = (now, before, &parent) {
                let message = commit.message.to_string();
                if let Some(old) = moved_from(&message, &earlier) {
                    if blob_at(&parent.tree, &old)? == Some(now)
                        && blob_at(&commit.tree, &old)?.is_none()
                    {
                        earlier = old;
                    }
                }
            }
            for parent in &commit.parents {
                paths.entry(*parent).or_insert_with(|| earlier.clone());
            }
        }
        Ok(())
    }

    /// Where the secret now at `path` was at `commit`, following moves
    /// (itself when it was never moved since).
    fn path_at(
        &self,
        src: &impl Source,
        commit: &ObjectId,
        path: &SecretPath,
    ) -> Result<SecretPath, VaultError> {
        let head = self.head_of(src)?;
        let mut found = path.clone();
        self.follow(src, head, path.clone(), |id, _, here, _| {
            if id == commit {
                found = here.clone();
                return false;
            }
            true
        })?;
        Ok(found)
    }

    /// Resolve a version: `HEAD`, or a commit id or unique prefix (≥ 4 hex).
    pub(crate) fn resolve(&self, src: &impl Source, version: &str) -> Result<ObjectId, VaultError> {
        let head = self.head_of(src)?;
        let version = version.trim();
        if version.eq_ignore_ascii_case("head") || version.eq_ignore_ascii_case("latest") {
            return Ok(head);
        }
        let prefix = version.to_ascii_lowercase();
        if prefix.len() < 4 || prefix.len() > 40 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(VaultError::UnknownVersion(version.to_owned()));
        }
        let matches: Vec<ObjectId> = self
            .commits(src, head, None)?
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| id.to_string().starts_with(&prefix))
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(VaultError::UnknownVersion(version.to_owned())),
            _ => Err(VaultError::AmbiguousVersion(version.to_owned())),
        }
    }

    /// The secret now at `path` (or last there, when removed) as it was
    /// at `version`, following it back through moves: the path may have
    /// named another secret then.
    pub fn get_at(
        &self,
        db: &Db,
        version: &str,
        path: &str,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let path = SecretPath::parse(path)?;
        let txn = db.read()?;
        let commit = self.resolve(&txn, version)?;
        // Where it was then: another secret may have had its name.
        let then = self.path_at(&txn, &commit, &path)?;
        self.read_path(&txn, &commit, &then)
    }

    /// The secrets of a version, without directory markers.
    pub(crate) fn files_at(
        &self,
        src: &impl Source,
        commit: &ObjectId,
    ) -> Result<BTreeMap<String, ObjectId>, VaultError> {
        let mut files = self.all_files(src, Some(*commit))?;
        files.retain(|path, _| path.rsplit('/').next() != Some(KEEP_FILE));
        Ok(files)
    }

    /// The secrets that differ between two versions.
    pub fn diff(&self, db: &Db, from: &str, to: &str) -> Result<Vec<Change>, VaultError> {
        let txn = db.read()?;
        let old = self.files_at(&txn, &self.resolve(&txn, from)?)?;
        let new = self.files_at(&txn, &self.resolve(&txn, to)?)?;
        let mut changes = Vec::new();
        for (path, id) in &new {
            match old.get(path) {
                None => changes.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::Added,
                }),
                Some(old_id) if old_id != id => changes.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::Modified,
                }),
                Some(_) => {}
            }
        }
        for path in old.keys().filter(|p| !new.contains_key(*p)) {
            changes.push(Change {
                path: path.clone(),
                kind: ChangeKind::Deleted,
            });
        }
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(changes)
    }

    /// Bring one secret back to how it was at `version`, as a new commit;
    /// later history stays.
    pub fn restore_secret(
        &self,
        db: &Db,
        signer: &RootKeypair,
        version: &str,
        path: &str,
    ) -> Result<String, VaultError> {
        let path = SecretPath::parse(path)?;
        let (commit, entry) = {
            let txn = db.read()?;
            let commit = self.resolve(&txn, version)?;
            let root = self.root_of(&txn, &commit)?;
            // From where it was then: another secret may have had its name.
            let then = self.path_at(&txn, &commit, &path)?;
            let entry = lookup(&self.store, &txn, &root, then.as_str())?
                .ok_or_else(|| VaultError::NotFound(format!("{path} at version {version}")))?;
            (commit, entry)
        };
        let short = &commit.to_string()[..8];
        self.change(db, signer, |tree, txn| {
            tree.upsert(txn, &path, entry.oid, entry.mode.kind())?;
            Ok(format!("Restore {path} to version {short}"))
        })
        .map(|id| id.to_string())
    }

    /// Bring the whole vault back to how it was at `version`, as a new
    /// commit on top of the current one; later history stays.
    pub fn restore_vault(
        &self,
        db: &Db,
        signer: &RootKeypair,
        version: &str,
    ) -> Result<String, VaultError> {
        let mut txn = db.write()?;
        let head = self.head_of(&txn)?;
        let target = self.resolve(&txn, version)?;
        let tree = self.root_of(&txn, &target)?;
        if tree == self.root_of(&txn, &head)? {
            return Ok(head.to_string());
        }
        let short = &target.to_string()[..8];
        let commit = write_commit(
            &self.store,
            &mut txn,
            signer,
            tree,
            vec![head],
            &format!("Restore vault to version {short}"),
        )?;
        self.store.set_head(&mut txn, &commit)?;
        txn.commit()?;
        Ok(commit.to_string())
    }

    /// Secrets removed by versions made at or after `since_ms` and not in
    /// the vault now, the most recently removed first, at most `limit`.
    /// Walks back at most [`MAX_DELETED_SCAN_COMMITS`] versions from the
    /// head. A merge counts as removing only what all its parents had.
    pub fn recently_deleted(
        &self,
        db: &Db,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<DeletedSecret>, VaultError> {
        let txn = db.read()?;
        let head = self.head_of(&txn)?;
        let now_root = self.root_of(&txn, &head)?;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut seen: HashSet<String> = HashSet::new();
        let mut now = FilesOf::new(now_root);
        // Newest first by commit time, so the first version found removing
        // a path is its latest removal, and older ones can stop the walk.
        for (_, commit) in self.commits(&txn, head, Some(MAX_DELETED_SCAN_COMMITS))? {
            let made_at = commit.committer.time.seconds.saturating_mul(1000);
            if made_at < since_ms {
                break;
            }
            let Some(first) = commit.parents.first() else {
                continue;
            };
            let mut removed =
                self.removed_paths(&txn, &self.root_of(&txn, first)?, &commit.tree)?;
            // Removed by this version only if every parent held it: each
            // other parent's own difference (a walk of what differs, not a
            // lookup from the root per path: a merge of a parent adding
            // 100,000 paths would open the root 100,000 times).
            for other in commit.parents.iter().skip(1) {
                if removed.is_empty() {
                    break;
                }
                let also: HashSet<String> = self
                    .removed_paths(&txn, &self.root_of(&txn, other)?, &commit.tree)?
                    .into_iter()
                    .collect();
                removed.retain(|path| also.contains(path));
            }
            for path in removed {
                if path.rsplit('/').next() == Some(KEEP_FILE) || !seen.insert(path.clone()) {
                    continue;
                }
                if now.is_file(&self.store, &txn, &path)? {
                    continue;
                }
                out.push(DeletedSecret {
                    path,
                    deleted_at: made_at,
                    version: first.to_string(),
                });
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }
}

/// Which paths of one version are secrets, each of its trees opened at
/// most once: a walk asking about 100,000 paths of one directory (a
/// writer's version adding and removing them) opens it once, not 100,000
/// times. Holds what it opened, at most the version (bounded by
/// [`crate::MAX_VERSION_ENTRIES`]).
struct FilesOf {
    root: ObjectId,
    trees: HashMap<ObjectId, HashMap<Vec<u8>, (bool, ObjectId)>>,
}

impl FilesOf {
    fn new(root: ObjectId) -> Self {
        Self {
            root,
            trees: HashMap::new(),
        }
    }

    fn is_file(
        &mut self,
        store: &ObjectStore,
        src: &impl Source,
        path: &str,
    ) -> Result<bool, VaultError> {
        let mut at = self.root;
        let mut segments = path.split('/').peekable();
        while let Some(segment) = segments.next() {
            let entries = match self.trees.entry(at) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(
                    store
                        .tree(src, &at)?
                        .entries
                        .into_iter()
                        .map(|e| (e.filename.to_vec(), (e.mode.is_tree(), e.oid)))
                        .collect(),
                ),
            };
            let Some(&(is_tree, oid)) = entries.get(segment.as_bytes()) else {
                return Ok(false);
            };
            if segments.peek().is_none() {
                return Ok(!is_tree);
            }
            if !is_tree {
                return Ok(false);
            }
            at = oid;
        }
        Ok(false)
    }
}

impl Vault {
    /// The paths of the secrets in tree `old` that tree `new` does not have
    /// (a secret replaced by a directory counts as removed). Iterative, and
    /// reads only the subtrees that differ.
    fn removed_paths(
        &self,
        src: &impl Source,
        old: &ObjectId,
        new: &ObjectId,
    ) -> Result<Vec<String>, VaultError> {
        let mut out = Vec::new();
        let mut pending: Vec<(ObjectId, Option<ObjectId>, String)> =
            vec![(*old, Some(*new), String::new())];
        while let Some((old, new, prefix)) = pending.pop() {
            if Some(old) == new {
                continue;
            }
            let new_entries: HashMap<Vec<u8>, (bool, ObjectId)> = match new {
                Some(new) => self
                    .store
                    .tree(src, &new)?
                    .entries
                    .into_iter()
                    .map(|e| (e.filename.to_vec(), (e.mode.is_tree(), e.oid)))
                    .collect(),
                None => HashMap::new(),
            };
            for entry in self.store.tree(src, &old)?.entries {
                let name = String::from_utf8_lossy(&entry.filename);
                let path = if prefix.is_empty() {
                    name.into_owned()
                } else {
                    format!("{prefix}/{name}")
                };
                let counterpart = new_entries.get(entry.filename.as_slice());
                match (entry.mode.is_tree(), counterpart) {
                    (true, Some(&(true, oid))) => pending.push((entry.oid, Some(oid), path)),
                    (true, _) => pending.push((entry.oid, None, path)),
                    (false, Some(&(false, _))) => {}
                    (false, _) => out.push(path),
                }
            }
        }
        Ok(out)
    }

    /// Check every commit's SSH signature; returns the signers seen.
    pub fn verify_history(&self, db: &Db) -> Result<Vec<NodeId>, VaultError> {
        let txn = db.read()?;
        let head = self.head_of(&txn)?;
        let mut signers = Vec::new();
        for (id, _) in self.commits(&txn, head, None)? {
            let (_, data) = self.store.read(&txn, &id)?;
            let (signer, _) = crate::transfer::verify_commit(&data)?;
            if !signers.contains(&signer) {
                signers.push(signer);
            }
        }
        Ok(signers)
    }
}

/// A directory's entries by name: object id, and whether it is a directory.
type Listing = BTreeMap<String, (ObjectId, bool)>;

/// The files that differ between two trees (either may be absent), into
/// `out`; equal subtrees are not read. Each tree read costs one of
/// `budget`: false when it ran out first.
#[allow(clippy::too_many_arguments)]
fn changed_paths(
    store: &crate::objects::ObjectStore,
    src: &impl Source,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    prefix: &str,
    depth: usize,
    budget: &mut usize,
    out: &mut Vec<String>,
) -> Result<bool, VaultError> {
    if old == new {
        return Ok(true);
    }
    if depth > crate::path::MAX_TREE_DEPTH {
        return Err(VaultError::corrupt(
            "a directory is nested deeper than 64 levels",
        ));
    }
    let mut read = |id: Option<ObjectId>| -> Result<Option<Listing>, VaultError> {
        let Some(id) = id else {
            return Ok(Some(BTreeMap::new()));
        };
        if *budget == 0 {
            return Ok(None);
        }
        *budget -= 1;
        Ok(Some(
            store
                .tree(src, &id)?
                .entries
                .into_iter()
                .map(|e| {
                    (
                        String::from_utf8_lossy(&e.filename).into_owned(),
                        (e.oid, e.mode.is_tree()),
                    )
                })
                .collect(),
        ))
    };
    let (Some(old), Some(new)) = (read(old)?, read(new)?) else {
        return Ok(false);
    };
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        let (a, b) = (old.get(name), new.get(name));
        if a == b {
            continue;
        }
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let dir = |e: Option<&(ObjectId, bool)>| e.filter(|(_, tree)| *tree).map(|(id, _)| *id);
        let file = |e: Option<&(ObjectId, bool)>| e.is_some_and(|(_, tree)| !tree);
        if file(a) || file(b) {
            out.push(path.clone());
        }
        if (dir(a).is_some() || dir(b).is_some())
            && !changed_paths(store, src, dir(a), dir(b), &path, depth + 1, budget, out)?
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The path a rename (`Rename FROM to TO`, as [`Vault::rename`] writes it)
/// brought the secret now at `here` from: `FROM` when `TO` is `here`, or
/// the same place under `FROM` when `TO` is a folder holding it.
fn moved_from(message: &str, here: &SecretPath) -> Option<SecretPath> {
    let rest = message.trim_end().strip_prefix("Rename ")?;
    let here = here.as_str();
    for (at, _) in rest.match_indices(" to ") {
        let (from, to) = (&rest[..at], &rest[at + 4..]);
        if here == to {
            return SecretPath::parse(from).ok();
        }
        if let Some(tail) = here.strip_prefix(to).filter(|t| t.starts_with('/')) {
            return SecretPath::parse(&format!("{from}{tail}")).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Vaults;

    /// A version that says it renamed `a` to `b` but kept `a` (a copy, as
    /// a device may write any message): `b`'s history starts there, and
    /// never lists `a`'s versions as its own.
    #[test]
    fn a_copy_that_calls_itself_a_rename_is_not_followed() {
        let (_dir, keys, db) = crate::testing::db();
        let vault = Vaults::new(&db).create("v", &keys).expect("a vault");
        vault
            .write_secret(&db, &keys, "a", b"same")
            .expect("written");
        vault
            .write_secret(&db, &keys, "a", b"bytes")
            .expect("written");
        let (a, b) = (
            SecretPath::parse("a").expect("a path"),
            SecretPath::parse("b").expect("a path"),
        );
        vault
            .change(&db, &keys, |tree, txn| {
                let entry = tree.get(txn, &a)?.expect("a is there");
                tree.upsert(txn, &b, entry.oid, entry.mode.kind())?;
                Ok("Rename a to b".into())
            })
            .expect("the copy");
        let history = vault.history_with_paths(&db, "b").expect("a history");
        let seen: Vec<(&str, &str)> = history
            .iter()
            .map(|(c, p)| (c.message.as_str(), p.as_str()))
            .collect();
        assert_eq!(seen, [("Rename a to b", "b")]);
        let first = vault
            .log(&db, None)
            .expect("a log")
            .last()
            .expect("one")
            .id
            .clone();
        assert!(vault.get_at(&db, &first, "b").is_err());
    }
}

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use gix::hash::ObjectId;
use gix::objs::tree::{Entry, EntryKind, EntryMode};
use gix::objs::Tree;
use polykey_db::WriteTxn;

use crate::error::VaultError;
use crate::objects::{ObjectStore, Source};
use crate::path::{check_segment, SecretPath, MAX_PATH_LEN, MAX_TREE_DEPTH};

fn parent_of(dir: &str) -> (&str, &str) {
    match dir.rsplit_once('/') {
        Some((parent, name)) => (parent, name),
        None => ("", dir),
    }
}

fn position(tree: &Tree, name: &str) -> Option<usize> {
    tree.entries
        .iter()
        .position(|e| e.filename == name.as_bytes())
}

/// Replace the entry of the same name, or add it (sorted when written).
fn put_entry(tree: &mut Tree, entry: Entry) {
    match tree
        .entries
        .iter()
        .position(|e| e.filename == entry.filename)
    {
        Some(i) => tree.entries[i] = entry,
        None => tree.entries.push(entry),
    }
}

/// Look up the entry at `path` under `root` without loading anything else.
pub(crate) fn lookup(
    store: &ObjectStore,
    src: &impl Source,
    root: &ObjectId,
    path: &str,
) -> Result<Option<Entry>, VaultError> {
    let mut tree = store.tree(src, root)?;
    let mut segments = path.split('/').peekable();
    while let Some(segment) = segments.next() {
        let Some(index) = position(&tree, segment) else {
            return Ok(None);
        };
        let entry = tree.entries.swap_remove(index);
        if segments.peek().is_none() {
            return Ok(Some(entry));
        }
        if !entry.mode.is_tree() {
            return Ok(None);
        }
        tree = store.tree(src, &entry.oid)?;
    }
    Ok(None)
}

/// Most entries (files and directories, each counted once per path it
/// has) one version of a vault may hold. Git trees share subtrees, so a
/// few small trees can name billions of paths; every walk and every
/// received tree is held to this.
pub const MAX_VERSION_ENTRIES: u64 = 1_000_000;
/// Most bytes the paths of one version may add up to (64 MiB), so a
/// listing of a version fits in memory whatever a peer sent.
pub const MAX_VERSION_PATH_BYTES: u64 = 64 * 1024 * 1024;

/// The size of what a tree holds, as its walk would see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TreeShape {
    /// Levels of directories, this one included (1 for a tree of files).
    pub(crate) height: u64,
    /// Entries below, files and directories, counted once per path.
    pub(crate) entries: u64,
    /// The lengths of those entries' paths (relative to this tree), summed.
    pub(crate) path_bytes: u64,
    /// The longest of those paths.
    pub(crate) longest: u64,
}

impl TreeShape {
    /// Bytes of the cached form.
    pub(crate) const ENCODED_LEN: usize = 32;

    pub(crate) fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        for (i, value) in [self.height, self.entries, self.path_bytes, self.longest]
            .into_iter()
            .enumerate()
        {
            out[i * 8..(i + 1) * 8].copy_from_slice(&value.to_le_bytes());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::ENCODED_LEN {
            return None;
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..(i + 1) * 8]);
            u64::from_le_bytes(w)
        };
        Some(Self {
            height: word(0),
            entries: word(1),
            path_bytes: word(2),
            longest: word(3),
        })
    }

    /// Whether a version whose root has this shape is within every bound.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.height > MAX_TREE_DEPTH as u64 {
            return Err("a directory is nested deeper than 64 levels");
        }
        if self.entries > MAX_VERSION_ENTRIES {
            return Err("a version holds more than 1,000,000 files and directories");
        }
        if self.path_bytes > MAX_VERSION_PATH_BYTES {
            return Err("the paths of a version add up to more than 64 MiB");
        }
        if self.longest > MAX_PATH_LEN as u64 {
            return Err("a path is longer than 4096 bytes");
        }
        Ok(())
    }
}

/// One entry of a tree, borrowed from either a parsed or an owned tree.
pub(crate) struct EntryView<'a> {
    pub(crate) mode: EntryMode,
    pub(crate) name: &'a [u8],
    pub(crate) oid: ObjectId,
}

/// Check a tree's entries (the one name rule, files and directories only,
/// no name twice) and work out its shape from its subtrees' shapes, which
/// `subtree` gives. Every shape this returns is within bounds.
pub(crate) fn shape_of_entries(
    entries: &[EntryView<'_>],
    subtree: impl FnMut(&ObjectId) -> Result<TreeShape, VaultError>,
) -> Result<TreeShape, VaultError> {
    check_entries(entries, |_| true)?;
    sum_shape(entries, subtree)
}

/// The checks of [`shape_of_entries`] that need nothing but the tree: the
/// one name rule for each entry `unchecked` picks (the others are known to
/// pass it, as entries copied from a checked tree are), files and
/// directories only, no name twice.
pub(crate) fn check_entries(
    entries: &[EntryView<'_>],
    unchecked: impl Fn(&EntryView<'_>) -> bool,
) -> Result<(), VaultError> {
    for entry in entries {
        if !entry.mode.is_tree() && !entry.mode.is_blob() {
            return Err(VaultError::corrupt(
                "a tree holds links or submodules, which vaults do not have",
            ));
        }
        if unchecked(entry) {
            check_segment(entry.name)?;
        }
    }
    // Names in ascending byte order (as a tree of files is, and most trees
    // are) hold none twice; otherwise sort a copy to find out.
    if entries.windows(2).all(|pair| pair[0].name < pair[1].name) {
        return Ok(());
    }
    let mut names: Vec<&[u8]> = entries.iter().map(|e| e.name).collect();
    names.sort_unstable();
    if names.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(VaultError::corrupt("a tree holds the same name twice"));
    }
    Ok(())
}

/// What one entry adds to its tree's shape: itself, and for a directory
/// everything below it (`below`, that directory's own shape).
fn contribution(entry: &EntryView<'_>, below: Option<TreeShape>) -> TreeShape {
    let len = entry.name.len() as u64;
    let mut shape = TreeShape {
        height: 1,
        entries: 1,
        path_bytes: len,
        longest: len,
    };
    if let Some(below) = below {
        shape.height = below.height.saturating_add(1);
        shape.entries = shape.entries.saturating_add(below.entries);
        // Each path below gains this name and a '/'.
        shape.path_bytes = shape
            .path_bytes
            .saturating_add(below.path_bytes)
            .saturating_add(below.entries.saturating_mul(len + 1));
        if below.entries > 0 {
            shape.longest = shape.longest.max(len + 1 + below.longest);
        }
    }
    shape
}

/// The shape of a tree whose entries [`check_entries`] accepted, from its
/// subtrees' shapes, which `subtree` gives; an error once it passes a
/// bound.
pub(crate) fn sum_shape(
    entries: &[EntryView<'_>],
    mut subtree: impl FnMut(&ObjectId) -> Result<TreeShape, VaultError>,
) -> Result<TreeShape, VaultError> {
    let mut shape = TreeShape {
        height: 1,
        ..TreeShape::default()
    };
    for entry in entries {
        let below = match entry.mode.is_tree() {
            true => Some(subtree(&entry.oid)?),
            false => None,
        };
        let adds = contribution(entry, below);
        shape.height = shape.height.max(adds.height);
        shape.entries = shape.entries.saturating_add(adds.entries);
        shape.path_bytes = shape.path_bytes.saturating_add(adds.path_bytes);
        shape.longest = shape.longest.max(adds.longest);
        shape.check().map_err(VaultError::OverLimit)?;
    }
    Ok(shape)
}

/// The shape of a tree made from a tree of shape `base` by removing some
/// of its entries and inserting others (see [`crate::delta::splice`]),
/// without its other entries: what [`sum_shape`] of the whole would give.
/// `None` when that needs the whole: a removed entry held the base's
/// height or longest path and no inserted one reaches it.
pub(crate) fn spliced_shape(
    base: TreeShape,
    removed: &[EntryView<'_>],
    inserted: &[EntryView<'_>],
    mut subtree: impl FnMut(&ObjectId) -> Result<TreeShape, VaultError>,
) -> Result<Option<TreeShape>, VaultError> {
    let mut adds = |entry: &EntryView<'_>| -> Result<TreeShape, VaultError> {
        let below = match entry.mode.is_tree() {
            true => Some(subtree(&entry.oid)?),
            false => None,
        };
        Ok(contribution(entry, below))
    };
    let mut shape = base;
    let (mut lost_height, mut lost_longest) = (false, false);
    for entry in removed {
        let gone = adds(entry)?;
        let (Some(entries), Some(path_bytes)) = (
            shape.entries.checked_sub(gone.entries),
            shape.path_bytes.checked_sub(gone.path_bytes),
        ) else {
            return Ok(None);
        };
        shape.entries = entries;
        shape.path_bytes = path_bytes;
        lost_height |= gone.height >= base.height && base.height > 1;
        lost_longest |= gone.longest >= base.longest;
    }
    let (mut height, mut longest) = (1u64, 0u64);
    for entry in inserted {
        let new = adds(entry)?;
        height = height.max(new.height);
        longest = longest.max(new.longest);
        shape.entries = shape.entries.saturating_add(new.entries);
        shape.path_bytes = shape.path_bytes.saturating_add(new.path_bytes);
    }
    if (lost_height && height < base.height) || (lost_longest && longest < base.longest) {
        return Ok(None);
    }
    shape.height = shape.height.max(height);
    shape.longest = shape.longest.max(longest);
    shape.check().map_err(VaultError::OverLimit)?;
    Ok(Some(shape))
}

fn views(tree: &Tree) -> Vec<EntryView<'_>> {
    tree.entries
        .iter()
        .map(|e| EntryView {
            mode: e.mode,
            name: e.filename.as_slice(),
            oid: e.oid,
        })
        .collect()
}

/// The shape of the stored tree `id`, from the cache when it is there;
/// otherwise worked out (walking only trees not yet cached, iteratively,
/// never deeper than [`MAX_TREE_DEPTH`]) and cached. Errors if the tree or
/// anything under it breaks a bound or the name rule.
pub(crate) fn stored_shape(
    store: &ObjectStore,
    txn: &mut WriteTxn<'_>,
    id: &ObjectId,
) -> Result<TreeShape, VaultError> {
    if let Some(shape) = store.cached_shape(txn, id)? {
        return Ok(shape);
    }
    struct Frame {
        id: ObjectId,
        tree: Tree,
        next: usize,
    }
    let mut known: HashMap<ObjectId, TreeShape> = HashMap::new();
    let mut stack = vec![Frame {
        id: *id,
        tree: store.tree(txn, id)?,
        next: 0,
    }];
    while let Some(frame) = stack.last_mut() {
        // Find the next subtree whose shape is not known yet.
        let mut descend = None;
        while let Some(entry) = frame.tree.entries.get(frame.next) {
            if entry.mode.is_tree() && !known.contains_key(&entry.oid) {
                match store.cached_shape(txn, &entry.oid)? {
                    Some(shape) => {
                        known.insert(entry.oid, shape);
                    }
                    None => {
                        descend = Some(entry.oid);
                        break;
                    }
                }
            }
            frame.next += 1;
        }
        if let Some(child) = descend {
            if stack.len() >= MAX_TREE_DEPTH {
                return Err(VaultError::corrupt(
                    "a directory is nested deeper than 64 levels",
                ));
            }
            let tree = store.tree(txn, &child)?;
            stack.push(Frame {
                id: child,
                tree,
                next: 0,
            });
            continue;
        }
        let Some(done) = stack.pop() else { break };
        let shape = shape_of_entries(&views(&done.tree), |oid| {
            known
                .get(oid)
                .copied()
                .ok_or_else(|| VaultError::corrupt("a subtree's shape is not known"))
        })?;
        store.put_shape(txn, &done.id, &shape)?;
        if stack.is_empty() {
            return Ok(shape);
        }
        known.insert(done.id, shape);
    }
    Err(VaultError::corrupt("a tree walk ended early"))
}

/// Every file under the tree `root`, as `(path, blob id)`. Iterative, and
/// bounded like a received tree: an error, never an overflow, if the
/// stored tree nests deeper than [`MAX_TREE_DEPTH`] (counting the levels
/// of `prefix`) or expands past [`MAX_VERSION_ENTRIES`] or
/// [`MAX_VERSION_PATH_BYTES`].
pub(crate) fn walk_files(
    store: &ObjectStore,
    src: &impl Source,
    root: &ObjectId,
    prefix: &str,
    out: &mut Vec<(String, ObjectId)>,
) -> Result<(), VaultError> {
    let base = if prefix.is_empty() {
        0
    } else {
        prefix.split('/').count()
    };
    let mut entries = 0u64;
    let mut bytes = 0u64;
    // Each distinct tree is read once, however many paths it has.
    let mut trees: HashMap<ObjectId, Rc<Tree>> = HashMap::new();
    let mut read = |id: &ObjectId| -> Result<Rc<Tree>, VaultError> {
        if let Some(tree) = trees.get(id) {
            return Ok(tree.clone());
        }
        let tree = Rc::new(store.tree(src, id)?);
        trees.insert(*id, tree.clone());
        Ok(tree)
    };
    // One frame per directory being walked: (tree, next entry, its path),
    // so files come out in the order a recursive walk gives (tree order).
    let mut stack = vec![(read(root)?, 0usize, prefix.to_owned())];
    if base + stack.len() > MAX_TREE_DEPTH {
        return Err(VaultError::corrupt(
            "a directory is nested deeper than 64 levels",
        ));
    }
    loop {
        // The depth of the entries of the directory on top.
        let depth = base + stack.len();
        let Some((tree, next, dir)) = stack.last_mut() else {
            break;
        };
        let Some(entry) = tree.entries.get(*next) else {
            stack.pop();
            continue;
        };
        *next += 1;
        let name = String::from_utf8_lossy(&entry.filename);
        let path = if dir.is_empty() {
            name.into_owned()
        } else {
            format!("{dir}/{name}")
        };
        entries += 1;
        bytes = bytes.saturating_add(path.len() as u64);
        if entries > MAX_VERSION_ENTRIES {
            return Err(VaultError::corrupt(
                "a version holds more than 1,000,000 files and directories",
            ));
        }
        if bytes > MAX_VERSION_PATH_BYTES {
            return Err(VaultError::corrupt(
                "the paths of a version add up to more than 64 MiB",
            ));
        }
        if entry.mode.is_tree() {
            if depth + 1 > MAX_TREE_DEPTH {
                return Err(VaultError::corrupt(
                    "a directory is nested deeper than 64 levels",
                ));
            }
            let oid = entry.oid;
            stack.push((read(&oid)?, 0, path));
        } else {
            out.push((path, entry.oid));
        }
    }
    Ok(())
}

/// Edits to a vault's tree, applied in memory and written in one go: only
/// the directories on an edited path are read and rewritten, so the cost of
/// a change does not grow with the number of secrets elsewhere.
pub(crate) struct TreeEdit<'s> {
    store: &'s ObjectStore,
    trees: BTreeMap<String, Tree>,
    /// The stored tree each loaded directory was read from: its new
    /// version is stored as a delta against that one's line.
    origins: BTreeMap<String, ObjectId>,
}

impl<'s> TreeEdit<'s> {
    pub(crate) fn new(
        store: &'s ObjectStore,
        txn: &WriteTxn<'_>,
        root: Option<&ObjectId>,
    ) -> Result<Self, VaultError> {
        let tree = match root {
            Some(id) => store.tree(txn, id)?,
            None => Tree::empty(),
        };
        Ok(Self {
            store,
            trees: BTreeMap::from([(String::new(), tree)]),
            origins: root.map(|id| (String::new(), *id)).into_iter().collect(),
        })
    }

    /// Load the directory `dir` (and its parents, top down). With
    /// `create`, missing directories are made; without, a missing one gives
    /// `Ok(false)`.
    fn load(&mut self, txn: &WriteTxn<'_>, dir: &str, create: bool) -> Result<bool, VaultError> {
        if self.trees.contains_key(dir) {
            return Ok(true);
        }
        let ends = dir
            .match_indices('/')
            .map(|(i, _)| i)
            .chain(std::iter::once(dir.len()));
        for end in ends {
            let current = &dir[..end];
            if self.trees.contains_key(current) {
                continue;
            }
            let (parent, name) = parent_of(current);
            let parent_tree = self
                .trees
                .get(parent)
                .ok_or_else(|| VaultError::corrupt("parent directory not loaded"))?;
            let tree = match position(parent_tree, name).map(|i| &parent_tree.entries[i]) {
                Some(entry) if entry.mode.is_tree() => {
                    let oid = entry.oid;
                    self.origins.insert(current.to_owned(), oid);
                    self.store.tree(txn, &oid)?
                }
                Some(_) => {
                    return Err(VaultError::WrongKind(
                        current.to_owned(),
                        "secret, not a directory",
                    ))
                }
                None if create => Tree::empty(),
                None => return Ok(false),
            };
            self.trees.insert(current.to_owned(), tree);
        }
        Ok(true)
    }

    /// The entry at `path`, if any.
    pub(crate) fn get(
        &mut self,
        txn: &WriteTxn<'_>,
        path: &SecretPath,
    ) -> Result<Option<Entry>, VaultError> {
        let dir = path.parent().unwrap_or("");
        if !self.load(txn, dir, false)? {
            return Ok(None);
        }
        let tree = &self.trees[dir];
        Ok(position(tree, path.file_name()).map(|i| tree.entries[i].clone()))
    }

    /// The parent directory of `path`, loaded for editing (made if
    /// `create`; `None` if missing otherwise). Whatever is loaded at or below
    /// `path` is dropped: the edit replaces it, and a loaded directory would
    /// otherwise overwrite the edit when written.
    fn parent_for_edit(
        &mut self,
        txn: &WriteTxn<'_>,
        path: &SecretPath,
        create: bool,
    ) -> Result<Option<&mut Tree>, VaultError> {
        let dir = path.parent().unwrap_or("");
        if !self.load(txn, dir, create)? {
            return Ok(None);
        }
        // Only the loaded directories at or below `path`, found by range:
        // scanning every loaded one made a merge of n new directories
        // O(n²) (a stolen device could send one that took hours).
        self.trees.remove(path.as_str());
        let below = format!("{path}/");
        let dropped: Vec<String> = self
            .trees
            .range(below.clone()..)
            .take_while(|(loaded, _)| loaded.starts_with(&below))
            .map(|(loaded, _)| loaded.clone())
            .collect();
        for loaded in dropped {
            self.trees.remove(&loaded);
        }
        self.trees
            .get_mut(dir)
            .map(Some)
            .ok_or_else(|| VaultError::corrupt("directory not loaded"))
    }

    /// Put a blob (or tree) at `path`, creating directories on the way.
    pub(crate) fn upsert(
        &mut self,
        txn: &WriteTxn<'_>,
        path: &SecretPath,
        oid: ObjectId,
        kind: EntryKind,
    ) -> Result<(), VaultError> {
        let tree = self
            .parent_for_edit(txn, path, true)?
            .ok_or_else(|| VaultError::corrupt("directory not created"))?;
        put_entry(
            tree,
            Entry {
                mode: kind.into(),
                filename: path.file_name().into(),
                oid,
            },
        );
        Ok(())
    }

    /// [`TreeEdit::upsert`] of many blobs: each directory's names are
    /// indexed once, so adding n secrets to a directory costs O(n), not
    /// O(n²).
    pub(crate) fn upsert_blobs(
        &mut self,
        txn: &WriteTxn<'_>,
        blobs: &[(&SecretPath, ObjectId)],
    ) -> Result<(), VaultError> {
        let mut indexes: HashMap<String, HashMap<Vec<u8>, usize>> = HashMap::new();
        for (path, oid) in blobs {
            let dir = path.parent().unwrap_or("");
            let tree = self
                .parent_for_edit(txn, path, true)?
                .ok_or_else(|| VaultError::corrupt("directory not created"))?;
            let index = indexes.entry(dir.to_owned()).or_insert_with(|| {
                tree.entries
                    .iter()
                    .enumerate()
                    .map(|(i, entry)| (entry.filename.to_vec(), i))
                    .collect()
            });
            let entry = Entry {
                mode: EntryKind::Blob.into(),
                filename: path.file_name().into(),
                oid: *oid,
            };
            match index.get(path.file_name().as_bytes()) {
                Some(&i) => tree.entries[i] = entry,
                None => {
                    index.insert(path.file_name().as_bytes().to_vec(), tree.entries.len());
                    tree.entries.push(entry);
                }
            }
        }
        Ok(())
    }

    /// Remove whatever is at `path`; returns it.
    pub(crate) fn remove(
        &mut self,
        txn: &WriteTxn<'_>,
        path: &SecretPath,
    ) -> Result<Option<Entry>, VaultError> {
        let Some(tree) = self.parent_for_edit(txn, path, false)? else {
            return Ok(None);
        };
        Ok(position(tree, path.file_name()).map(|i| tree.entries.remove(i)))
    }

    /// [`TreeEdit::remove`] of many files: each directory's removals are
    /// applied in one pass, so removing n secrets from a directory costs
    /// O(n), not O(n²). Paths not there are skipped.
    pub(crate) fn remove_files(
        &mut self,
        txn: &WriteTxn<'_>,
        paths: &[&SecretPath],
    ) -> Result<(), VaultError> {
        let mut sorted = paths.to_vec();
        sorted.sort_by(|a, b| {
            (a.parent().unwrap_or(""), a.file_name())
                .cmp(&(b.parent().unwrap_or(""), b.file_name()))
        });
        for group in sorted.chunk_by(|a, b| a.parent() == b.parent()) {
            let mut names: HashSet<&[u8]> = HashSet::with_capacity(group.len());
            for path in group {
                // What is loaded at or below each path goes, as in `remove`.
                if self.parent_for_edit(txn, path, false)?.is_none() {
                    break;
                }
                names.insert(path.file_name().as_bytes());
            }
            let dir = group[0].parent().unwrap_or("");
            if let Some(tree) = self.trees.get_mut(dir) {
                tree.entries.retain(|e| !names.contains(&e.filename[..]));
            }
        }
        Ok(())
    }

    /// Write every changed directory, deepest first, and return the new root.
    pub(crate) fn write(mut self, txn: &mut WriteTxn<'_>) -> Result<ObjectId, VaultError> {
        let mut dirs: Vec<String> = self.trees.keys().cloned().collect();
        dirs.sort_by_key(|d| {
            std::cmp::Reverse(if d.is_empty() {
                0
            } else {
                d.matches('/').count() + 1
            })
        });
        let mut root = None;
        // The shape of each directory written, from its subtrees' (written
        // here, or stored before and cached): a version past a bound every
        // copy holds a vault to is refused here rather than written, as no
        // copy could list it or take it in. Cached, the shapes make the
        // next edit's check read only the directories it rewrites and one
        // cached shape per distinct subdirectory of those (a directory of
        // n subdirectories costs n small reads per edit in it).
        let mut written: HashMap<ObjectId, TreeShape> = HashMap::new();
        for dir in dirs {
            let Some(mut tree) = self.trees.remove(&dir) else {
                continue;
            };
            tree.entries.sort();
            let origin = self.origins.get(&dir);
            // (Each stored subtree's cached shape read once, however many
            // entries name it.)
            let shape = sum_shape(&views(&tree), |oid| {
                if let Some(shape) = written.get(oid) {
                    return Ok(*shape);
                }
                let shape = stored_shape(self.store, txn, oid)?;
                written.insert(*oid, shape);
                Ok(shape)
            })?;
            if dir.is_empty() {
                let id = self.store.write_version(txn, &tree, origin)?;
                self.store.put_shape(txn, &id, &shape)?;
                root = Some(id);
                continue;
            }
            let (parent, name) = parent_of(&dir);
            let parent_tree = self
                .trees
                .get_mut(parent)
                .ok_or_else(|| VaultError::corrupt("parent directory not loaded"))?;
            let existing = position(parent_tree, name);
            if tree.entries.is_empty() {
                // Git does not keep empty directories.
                if let Some(i) = existing {
                    parent_tree.entries.remove(i);
                }
                continue;
            }
            let oid = self.store.write_version(txn, &tree, origin)?;
            self.store.put_shape(txn, &oid, &shape)?;
            written.insert(oid, shape);
            put_entry(
                parent_tree,
                Entry {
                    mode: EntryKind::Tree.into(),
                    filename: name.into(),
                    oid,
                },
            );
        }
        root.ok_or_else(|| VaultError::corrupt("root tree not written"))
    }
}

#[cfg(test)]
mod tests {
    use gix::objs::Kind;
    use polykey_db::Db;
    use polykey_keys::SymmetricKey;

    use super::*;
    use crate::vault::VaultId;

    fn store() -> (tempfile::TempDir, Db, ObjectStore) {
        let (dir, _keys, db) = crate::testing::db();
        let id: VaultId = "00112233445566778899aabbccddeeff".parse().unwrap();
        (dir, db, ObjectStore::new(id, SymmetricKey::generate()))
    }

    fn entry(kind: EntryKind, name: &str, oid: ObjectId) -> Entry {
        Entry {
            mode: kind.into(),
            filename: name.into(),
            oid,
        }
    }

    /// Written straight into the store, as no check would let them in.
    fn nested(store: &ObjectStore, txn: &mut WriteTxn<'_>, levels: usize) -> ObjectId {
        let file = store.write_raw(txn, Kind::Blob, b"x").unwrap();
        let mut id = store
            .write(
                txn,
                &Tree {
                    entries: vec![entry(EntryKind::Blob, "x", file)],
                },
            )
            .unwrap();
        for _ in 1..levels {
            let tree = Tree {
                entries: vec![entry(EntryKind::Tree, "d", id)],
            };
            id = store.write(txn, &tree).unwrap();
        }
        id
    }

    fn doubling(store: &ObjectStore, txn: &mut WriteTxn<'_>, levels: usize) -> ObjectId {
        let file = store.write_raw(txn, Kind::Blob, b"x").unwrap();
        let mut id = store
            .write(
                txn,
                &Tree {
                    entries: vec![entry(EntryKind::Blob, "x", file)],
                },
            )
            .unwrap();
        for _ in 0..levels {
            let tree = Tree {
                entries: vec![
                    entry(EntryKind::Tree, "a", id),
                    entry(EntryKind::Tree, "b", id),
                ],
            };
            id = store.write(txn, &tree).unwrap();
        }
        id
    }

    #[test]
    fn walks_of_stored_trees_too_deep_or_too_wide_fail_instead_of_overflowing() {
        let (_dir, db, store) = store();
        let mut txn = db.write().unwrap();
        let deep = nested(&store, &mut txn, 20_000);
        let mut files = Vec::new();
        let err = walk_files(&store, &txn, &deep, "", &mut files).unwrap_err();
        assert!(err.to_string().contains("deeper than 64"), "{err}");
        let err = stored_shape(&store, &mut txn, &deep).unwrap_err();
        assert!(err.to_string().contains("deeper than 64"), "{err}");

        // 2^40 paths from 42 objects: refused at a bound, not walked.
        let wide = doubling(&store, &mut txn, 40);
        let err = walk_files(&store, &txn, &wide, "", &mut Vec::new()).unwrap_err();
        let err = err.to_string();
        assert!(err.contains("1,000,000") || err.contains("64 MiB"), "{err}");
        let err = stored_shape(&store, &mut txn, &wide).unwrap_err();
        assert!(err.to_string().contains("1,000,000"), "{err}");

        // At the bounds: fine, and the shape is cached.
        let ok = nested(&store, &mut txn, MAX_TREE_DEPTH);
        let mut files = Vec::new();
        walk_files(&store, &txn, &ok, "", &mut files).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0.split('/').count(), MAX_TREE_DEPTH);
        let shape = stored_shape(&store, &mut txn, &ok).unwrap();
        assert_eq!(shape.height, MAX_TREE_DEPTH as u64);
        assert_eq!(shape.entries, MAX_TREE_DEPTH as u64);
        assert_eq!(store.cached_shape(&txn, &ok).unwrap(), Some(shape));
        // Listing from a directory counts the directory's own depth.
        let err = walk_files(&store, &txn, &ok, "top", &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("deeper than 64"), "{err}");
    }

    #[test]
    fn shapes_add_up_as_a_walk_sees_them() {
        let (_dir, db, store) = store();
        let mut txn = db.write().unwrap();
        let wide = doubling(&store, &mut txn, 3);
        let mut files = Vec::new();
        walk_files(&store, &txn, &wide, "", &mut files).unwrap();
        let shape = stored_shape(&store, &mut txn, &wide).unwrap();
        // 8 files and 2 + 4 + 8 directories.
        assert_eq!(files.len(), 8);
        assert_eq!(shape.entries, 8 + 14);
        assert_eq!(shape.height, 4);
        let longest = files.iter().map(|(p, _)| p.len()).max().unwrap();
        assert_eq!(shape.longest, longest as u64);
        // Paths of files ("a/b/a/x": 7 bytes) and of directories.
        let dirs: u64 = 2 + 4 * 3 + 8 * 5;
        assert_eq!(shape.path_bytes, 8 * 7 + dirs);
        assert_eq!(TreeShape::decode(&shape.encode()), Some(shape));
    }

    /// A directory's made-up shape, fixed by its id's first byte.
    fn made_up(oid: &ObjectId) -> Result<TreeShape, VaultError> {
        let b = u64::from(oid.as_bytes()[0]);
        Ok(TreeShape {
            height: 1 + b % 4,
            entries: b % 7,
            path_bytes: (b % 7) * (b % 5 + 1),
            longest: if b % 7 == 0 { 0 } else { b % 5 + 1 },
        })
    }

    proptest::proptest! {
        /// The shape worked out from what a delta removes and inserts is
        /// the shape of the whole result, whenever it can be worked out.
        #[test]
        fn a_spliced_shape_is_the_shape_of_the_whole(
            base in proptest::collection::btree_map("[a-h]{1,4}", (proptest::bool::ANY, 0u8..255), 0..16),
            edits in proptest::collection::btree_map("[a-h]{1,4}", proptest::option::of((proptest::bool::ANY, 0u8..255)), 0..6),
        ) {
            fn view(name: &str, (dir, byte): (bool, u8)) -> EntryView<'_> {
                EntryView {
                    mode: if dir { EntryKind::Tree.into() } else { EntryKind::Blob.into() },
                    name: name.as_bytes(),
                    oid: ObjectId::from_bytes_or_panic(&[byte; 20]),
                }
            }
            let mut target: BTreeMap<&String, (bool, u8)> = base.iter().map(|(n, e)| (n, *e)).collect();
            let (mut removed, mut inserted) = (Vec::new(), Vec::new());
            for (name, edit) in &edits {
                if let Some(old) = base.get(name) {
                    removed.push(view(name, *old));
                    target.remove(name);
                }
                if let Some(new) = edit {
                    inserted.push(view(name, *new));
                    target.insert(name, *new);
                }
            }
            let base_views: Vec<EntryView<'_>> = base.iter().map(|(n, e)| view(n, *e)).collect();
            let whole: Vec<EntryView<'_>> = target.iter().map(|(n, e)| view(n, *e)).collect();
            let base_shape = sum_shape(&base_views, made_up).unwrap();
            let expected = sum_shape(&whole, made_up).unwrap();
            if let Some(shape) = spliced_shape(base_shape, &removed, &inserted, made_up).unwrap() {
                proptest::prop_assert_eq!(shape, expected);
            }
        }
    }
}

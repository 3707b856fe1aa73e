use std::collections::BTreeMap;

use gix::hash::ObjectId;
use gix::objs::tree::{Entry, EntryKind};
use gix::objs::Tree;
use polykey_db::WriteTxn;

use crate::error::VaultError;
use crate::objects::{ObjectStore, Source};
use crate::path::SecretPath;

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

/// Every file under the tree `root`, as `(path, blob id)`, depth first.
pub(crate) fn walk_files(
    store: &ObjectStore,
    src: &impl Source,
    root: &ObjectId,
    prefix: &str,
    out: &mut Vec<(String, ObjectId)>,
) -> Result<(), VaultError> {
    for entry in store.tree(src, root)?.entries {
        let name = String::from_utf8_lossy(&entry.filename);
        let path = if prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{prefix}/{name}")
        };
        if entry.mode.is_tree() {
            walk_files(store, src, &entry.oid, &path, out)?;
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
}

impl<'s> TreeEdit<'s> {
    pub(crate) fn new(
        store: &'s ObjectStore,
        txn: &WriteTxn<'_>,
        root: Option<&ObjectId>,
    ) -> Result<Self, VaultError> {
        let root = match root {
            Some(id) => store.tree(txn, id)?,
            None => Tree::empty(),
        };
        Ok(Self {
            store,
            trees: BTreeMap::from([(String::new(), root)]),
        })
    }

    /// Load the directory `dir` (and its parents). With `create`, missing
    /// directories are made; without, a missing one gives `Ok(false)`.
    fn load(&mut self, txn: &WriteTxn<'_>, dir: &str, create: bool) -> Result<bool, VaultError> {
        if self.trees.contains_key(dir) {
            return Ok(true);
        }
        let (parent, name) = parent_of(dir);
        if !self.load(txn, parent, create)? {
            return Ok(false);
        }
        let parent_tree = &self.trees[parent];
        let tree = match position(parent_tree, name).map(|i| &parent_tree.entries[i]) {
            Some(entry) if entry.mode.is_tree() => self.store.tree(txn, &entry.oid)?,
            Some(_) => {
                return Err(VaultError::WrongKind(
                    dir.to_owned(),
                    "secret, not a directory",
                ))
            }
            None if create => Tree::empty(),
            None => return Ok(false),
        };
        self.trees.insert(dir.to_owned(), tree);
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
        self.trees.retain(|loaded, _| {
            !(loaded == path.as_str() || loaded.starts_with(&format!("{path}/")))
        });
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
        for dir in dirs {
            let Some(mut tree) = self.trees.remove(&dir) else {
                continue;
            };
            tree.entries.sort();
            if dir.is_empty() {
                root = Some(self.store.write(txn, &tree)?);
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
            let oid = self.store.write(txn, &tree)?;
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

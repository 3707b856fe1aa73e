use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use polykey_keys::WrappedRootKey;

use crate::error::NodeError;
use crate::preferences::Preferences;

/// Environment variable that overrides the node directory (as in Polykey-CLI).
pub const NODE_PATH_ENV: &str = "PK_NODE_PATH";

/// The lock file: an OS file lock on it marks the directory in use.
pub const LOCK_FILE: &str = "node.lock";
const ROOT_KEY_FILE: &str = "root_key.json";
const DB_FILE: &str = "db.redb";
const PREFERENCES_FILE: &str = "preferences.json";
/// Present while a node is being created, until its key file is written.
const CREATING_FILE: &str = "creating";

/// The node directory: `$PK_NODE_PATH`, else the platform's data directory
/// (`$XDG_DATA_HOME/polykey` on Linux, `~/Library/Application Support/polykey`
/// on macOS, `%APPDATA%\polykey` on Windows).
pub fn default_node_path() -> PathBuf {
    if let Some(path) = std::env::var_os(NODE_PATH_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("polykey")
}

/// An exclusively held node directory.
///
/// Layout (see ARCHITECTURE.md):
/// - `node.lock`: empty; an OS file lock on it marks the directory in use.
/// - `root_key.json`: the public NodeId, Argon2id parameters and the sealed
///   root key. Written last on create, so its presence means "a node lives here".
/// - `db.redb`: the encrypted store; every value sealed under the DB key.
/// - `preferences.json`: timeouts, shortcut, tray; nothing secret.
#[derive(Debug)]
pub struct NodeDir {
    path: PathBuf,
    // Held for the lifetime of the value: dropping it releases the lock.
    _lock: File,
}

impl NodeDir {
    /// Take the directory for this process, creating it if needed.
    pub fn acquire(path: &Path) -> Result<Self, NodeError> {
        create_private_dir(path).map_err(|e| NodeError::io("create the node directory", e))?;
        restrict_permissions(path)
            .map_err(|e| NodeError::io("make the node directory private", e))?;
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let lock = options
            .open(path.join(LOCK_FILE))
            .map_err(|e| NodeError::io("open the node lock", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(NodeError::InUse),
            Err(TryLockError::Error(e)) => return Err(NodeError::io("lock the node directory", e)),
        }
        restrict_existing_files(path)
            .map_err(|e| NodeError::io("make the node's files private", e))?;
        Ok(Self {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// Whether another process holds the directory at `path` (without
    /// taking it: a lock that could be taken is given back at once).
    pub fn in_use(path: &Path) -> bool {
        let Ok(lock) = OpenOptions::new().write(true).open(path.join(LOCK_FILE)) else {
            return false;
        };
        matches!(lock.try_lock(), Err(TryLockError::WouldBlock))
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Path of the encrypted store.
    pub fn db_path(&self) -> PathBuf {
        self.path.join(DB_FILE)
    }

    /// Read the wrapped root key, if a node has been created here.
    pub fn read_root_key(&self) -> Result<Option<WrappedRootKey>, NodeError> {
        let path = self.path.join(ROOT_KEY_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(NodeError::io("read the key file", e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| NodeError::KeyFileCorrupt)
    }

    /// Replace the wrapped root key atomically (see [`NodeDir::write_atomically`]).
    pub fn write_root_key(&self, wrapped: &WrappedRootKey) -> Result<(), NodeError> {
        let bytes = serde_json::to_vec_pretty(wrapped)
            .map_err(|e| NodeError::io("encode the key file", e.into()))?;
        self.write_atomically(ROOT_KEY_FILE, &bytes)
            .map_err(|e| NodeError::io("write the key file", e))
    }

    /// Mark a creation under way: a store found later beside this mark
    /// and no key file was never handed to anyone.
    pub fn begin_creation(&self) -> Result<(), NodeError> {
        self.write_atomically(CREATING_FILE, b"a node is being created here\n")
            .map_err(|e| NodeError::io("start creating the node", e))
    }

    /// The creation is complete (its key file written). A mark that stays
    /// after a failure here is outranked by the key file, and taken away
    /// at the next open.
    pub fn end_creation(&self) {
        let _ = std::fs::remove_file(self.path.join(CREATING_FILE));
    }

    /// Whether the store here was left by a creation cut off before its
    /// key file was written.
    pub fn creation_cut_off(&self) -> bool {
        self.path.join(CREATING_FILE).is_file() && !self.path.join(ROOT_KEY_FILE).exists()
    }

    /// Remove what a cut-off creation left, so a new one can begin.
    pub fn discard_cut_off_creation(&self) -> Result<(), NodeError> {
        std::fs::remove_file(self.db_path())
            .map_err(|e| NodeError::io("remove an unfinished node's store", e))?;
        self.end_creation();
        Ok(())
    }

    /// The saved preferences; defaults if there are none or the file is
    /// unreadable (it holds nothing that cannot be chosen again).
    pub fn read_preferences(&self) -> Preferences {
        std::fs::read(self.path.join(PREFERENCES_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Preferences>(&bytes).ok())
            .map(Preferences::within_bounds)
            .unwrap_or_default()
    }

    /// Save the preferences atomically.
    pub fn write_preferences(&self, preferences: &Preferences) -> Result<(), NodeError> {
        let bytes = serde_json::to_vec_pretty(preferences)
            .map_err(|e| NodeError::io("encode the preferences", e.into()))?;
        self.write_atomically(PREFERENCES_FILE, &bytes)
            .map_err(|e| NodeError::io("save the preferences", e))
    }

    /// Replace the file `name` atomically and privately
    /// ([`polykey_os::fs::replace_private`]): a crash leaves the old file or
    /// the new one, never a torn one, and the temporary file never follows a
    /// planted symlink nor is readable by others.
    fn write_atomically(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        polykey_os::fs::replace_private(&self.path.join(name), bytes)
    }
}

/// Create `path` (and missing parents) private from the start (0700, or
/// an owner-only ACL on Windows).
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    polykey_os::fs::create_private_dir_all(path)
}

/// Files an older version created with the umask's mode (0644), or that
/// lost their owner-only ACL, are made private when the directory is taken.
fn restrict_existing_files(path: &Path) -> std::io::Result<()> {
    for name in [LOCK_FILE, ROOT_KEY_FILE, DB_FILE, PREFERENCES_FILE] {
        let file = path.join(name);
        match std::fs::symlink_metadata(&file) {
            Ok(meta) if meta.is_file() && !polykey_os::fs::is_private(&file)? => {
                polykey_os::fs::restrict(&file)?
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// An existing directory (made by an older version or by the user) is
/// made private too; failing to do so is an error, not a silent weakening.
fn restrict_permissions(path: &Path) -> std::io::Result<()> {
    polykey_os::fs::restrict(path)
}

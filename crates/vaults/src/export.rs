use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use flate2::write::ZlibEncoder;
use flate2::Compression;
use polykey_db::Db;

use crate::error::VaultError;
use crate::vault::Vault;

impl Vault {
    /// Write the vault, with its whole history, as a plain bare git
    /// repository at `target`. **The result is not encrypted**: every secret
    /// is readable by anyone who can read `target`. `target` must not exist
    /// or be an empty directory.
    pub fn export_bare(&self, db: &Db, target: &Path) -> Result<(), VaultError> {
        let io = |e: std::io::Error| VaultError::Export(e.to_string());
        // A symlink could send the plaintext anywhere (another user's
        // directory, a shared mount): the target itself must be a real
        // directory or nothing.
        match std::fs::symlink_metadata(target) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(VaultError::Export(format!(
                    "{} is a symbolic link; export to a real directory",
                    target.display()
                )))
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(VaultError::Export(format!(
                    "{} exists and is not a directory",
                    target.display()
                )))
            }
            Ok(_) => {
                if std::fs::read_dir(target)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true)
                {
                    return Err(VaultError::Export(format!(
                        "{} exists and is not empty",
                        target.display()
                    )));
                }
                restrict_to_owner(target).map_err(io)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                private_dir(target).map_err(io)?
            }
            Err(e) => return Err(io(e)),
        }
        let txn = db.read()?;
        let head = self.head_of(&txn)?;
        for dir in ["objects/info", "objects/pack", "refs/heads", "refs/tags"] {
            private_dir(&target.join(dir)).map_err(io)?;
        }
        private_file(&target.join("HEAD"), b"ref: refs/heads/main\n").map_err(io)?;
        private_file(
            &target.join("config"),
            b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
        )
        .map_err(io)?;
        for id in self.closure(&txn, &[head], &HashSet::new())? {
            let (kind, data) = self.store.read(&txn, &id)?;
            let hex = id.to_string();
            let dir = target.join("objects").join(&hex[..2]);
            private_dir(&dir).map_err(io)?;
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
            encoder
                .write_all(format!("{kind} {}\0", data.len()).as_bytes())
                .and_then(|()| encoder.write_all(&data))
                .map_err(io)?;
            private_file(&dir.join(&hex[2..]), &encoder.finish().map_err(io)?).map_err(io)?;
        }
        private_file(
            &target.join("refs/heads/main"),
            format!("{head}\n").as_bytes(),
        )
        .map_err(io)?;
        Ok(())
    }
}

/// Create `path` (and missing parents inside the export) private from the
/// start (0700, or an owner-only ACL on Windows); an existing directory is
/// fine.
fn private_dir(path: &Path) -> std::io::Result<()> {
    polykey_os::fs::create_private_dir_all(path)
}

/// Make an existing (empty) target directory private to its owner.
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    polykey_os::fs::restrict(path)
}

/// Write a new file, private from the start. `create_new` never follows a
/// symlink and never writes into a file planted at the name.
fn private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    polykey_os::fs::create_new_private(path)?.write_all(bytes)
}

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
        if target.exists()
            && std::fs::read_dir(target)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(VaultError::Export(format!(
                "{} exists and is not empty",
                target.display()
            )));
        }
        let io = |e: std::io::Error| VaultError::Export(e.to_string());
        let txn = db.read()?;
        let head = self.head_of(&txn)?;
        for dir in ["objects/info", "objects/pack", "refs/heads", "refs/tags"] {
            std::fs::create_dir_all(target.join(dir)).map_err(io)?;
        }
        std::fs::write(target.join("HEAD"), "ref: refs/heads/main\n").map_err(io)?;
        std::fs::write(
            target.join("config"),
            "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
        )
        .map_err(io)?;
        for id in self.closure(&txn, &[head], &HashSet::new())? {
            let (kind, data) = self.store.read(&txn, &id)?;
            let hex = id.to_string();
            let dir = target.join("objects").join(&hex[..2]);
            std::fs::create_dir_all(&dir).map_err(io)?;
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
            encoder
                .write_all(format!("{kind} {}\0", data.len()).as_bytes())
                .and_then(|()| encoder.write_all(&data))
                .map_err(io)?;
            std::fs::write(dir.join(&hex[2..]), encoder.finish().map_err(io)?).map_err(io)?;
        }
        std::fs::write(target.join("refs/heads/main"), format!("{head}\n")).map_err(io)?;
        Ok(())
    }
}

//! Vaults and secrets through the node: each call runs against the unlocked
//! session's store and signs with its root key, on Tokio's blocking pool.

use std::path::PathBuf;

use polykey_keys::NodeId;
use polykey_vaults::{
    Change, CommitInfo, MergeOutcome, SecretStat, Vault, VaultError, VaultInfo, Vaults,
};
use zeroize::Zeroizing;

use crate::error::NodeError;
use crate::node::{Node, Session};

impl Node {
    /// Run `work` on the vault named `vault` in the unlocked session.
    pub(crate) async fn with_vault<T: Send + 'static>(
        &self,
        vault: String,
        work: impl FnOnce(&Session, &Vault) -> Result<T, VaultError> + Send + 'static,
    ) -> Result<T, NodeError> {
        self.with_vaults(move |s| Ok(work(s, &Vaults::new(&s.db).open(&vault)?)?))
            .await
    }

    /// Run `work`, which writes, on the vault named `vault`: refused for
    /// another person's vault shared read only.
    pub(crate) async fn with_vault_mut<T: Send + 'static>(
        &self,
        vault: String,
        work: impl FnOnce(&Session, &Vault) -> Result<T, VaultError> + Send + 'static,
    ) -> Result<T, NodeError> {
        self.with_vaults(move |s| {
            let opened = Vaults::new(&s.db).open(&vault)?;
            if let Some(why) = Node::read_only_in(s, &opened.id(), opened.name())? {
                return Err(NodeError::ReadOnly(why));
            }
            Ok(work(s, &opened)?)
        })
        .await
    }

    /// How the node's store uses its file (stored, fragmented, allocated
    /// bytes).
    pub async fn store_space(&self) -> Result<polykey_db::Space, NodeError> {
        self.with_vaults(|s| Ok(s.db.space()?)).await
    }

    /// Every vault, by name.
    pub async fn vaults(&self) -> Result<Vec<VaultInfo>, NodeError> {
        self.with_vaults(|session| Ok(Vaults::new(&session.db).list()?))
            .await
    }

    /// Create a vault.
    pub async fn create_vault(&self, name: String) -> Result<VaultInfo, NodeError> {
        self.with_vaults(move |s| Ok(Vaults::new(&s.db).create(&name, &s.keys)?.info().clone()))
            .await
    }

    /// Rename a vault.
    pub async fn rename_vault(&self, vault: String, new_name: String) -> Result<(), NodeError> {
        self.with_vaults(move |s| Ok(Vaults::new(&s.db).rename(&vault, &new_name)?))
            .await?;
        self.notify();
        Ok(())
    }

    /// Delete a vault: a deletion signed with this node's key is recorded;
    /// the vault and its history stay restorable for 30 days.
    pub async fn delete_vault(&self, vault: String) -> Result<(), NodeError> {
        self.with_vaults(move |s| {
            Vaults::new(&s.db).delete(&vault, &s.keys)?;
            Ok(())
        })
        .await?;
        self.notify();
        Ok(())
    }

    /// Read a secret (at `version`, or the current one).
    pub async fn get_secret(
        &self,
        vault: String,
        path: String,
        version: Option<String>,
    ) -> Result<Zeroizing<Vec<u8>>, NodeError> {
        self.with_vault(vault, move |s, v| match version {
            Some(version) => v.get_at(&s.db, &version, &path),
            None => v.get(&s.db, &path),
        })
        .await
    }

    /// Every secret under `dir` (or the whole vault), recursively.
    pub async fn list_secrets(
        &self,
        vault: String,
        dir: Option<String>,
    ) -> Result<Vec<String>, NodeError> {
        self.with_vault(vault, move |s, v| v.list(&s.db, dir.as_deref()))
            .await
    }

    /// Every path of the vault with the markers that keep empty folders
    /// (`.gitkeep`): the names a new secret must not take, since an empty
    /// folder is still a folder (an import placed an item over one).
    pub async fn list_paths(&self, vault: String) -> Result<Vec<String>, NodeError> {
        self.with_vault(vault, move |s, v| v.paths(&s.db)).await
    }

    /// What is at `path`.
    pub async fn stat_secret(&self, vault: String, path: String) -> Result<SecretStat, NodeError> {
        self.with_vault(vault, move |s, v| v.stat(&s.db, &path))
            .await
    }

    /// Create or replace a secret; returns the new version.
    pub async fn write_secret(
        &self,
        vault: String,
        path: String,
        value: Zeroizing<Vec<u8>>,
    ) -> Result<String, NodeError> {
        self.with_vault_mut(vault, move |s, v| {
            v.write_secret(&s.db, &s.keys, &path, &value)
        })
        .await
    }

    /// Create or replace many secrets in one commit (a folder added, an
    /// import); returns the new version.
    pub async fn write_secrets(
        &self,
        vault: String,
        secrets: Vec<(String, Zeroizing<Vec<u8>>)>,
    ) -> Result<String, NodeError> {
        self.with_vault_mut(vault, move |s, v| {
            let refs: Vec<(&str, &[u8])> = secrets
                .iter()
                .map(|(path, value)| (path.as_str(), value.as_slice()))
                .collect();
            v.write_secrets(&s.db, &s.keys, &refs)
        })
        .await
    }

    /// Create a secret that must not exist yet; returns the new version.
    pub async fn create_secret(
        &self,
        vault: String,
        path: String,
        value: Zeroizing<Vec<u8>>,
    ) -> Result<String, NodeError> {
        self.with_vault_mut(vault, move |s, v| {
            v.create_secret(&s.db, &s.keys, &path, &value)
        })
        .await
    }

    /// Replace a secret that must exist; returns the new version.
    pub async fn edit_secret(
        &self,
        vault: String,
        path: String,
        value: Zeroizing<Vec<u8>>,
    ) -> Result<String, NodeError> {
        self.with_vault_mut(vault, move |s, v| {
            v.edit_secret(&s.db, &s.keys, &path, &value)
        })
        .await
    }

    /// Make a directory.
    pub async fn make_directory(&self, vault: String, path: String) -> Result<String, NodeError> {
        self.with_vault_mut(vault, move |s, v| v.mkdir(&s.db, &s.keys, &path))
            .await
    }

    /// Move or rename a secret or directory.
    pub async fn rename_secret(
        &self,
        vault: String,
        from: String,
        to: String,
    ) -> Result<String, NodeError> {
        let (f, t) = (from.clone(), to.clone());
        let version = self
            .with_vault_mut(vault.clone(), move |s, v| v.rename(&s.db, &s.keys, &f, &t))
            .await?;
        self.follow_rename(vault, from, to).await?;
        Ok(version)
    }

    /// Remove a secret, or a directory with `recursive`.
    pub async fn remove_secret(
        &self,
        vault: String,
        path: String,
        recursive: bool,
    ) -> Result<String, NodeError> {
        let version = self
            .with_vault_mut(vault, move |s, v| {
                v.remove(&s.db, &s.keys, &path, recursive)
            })
            .await?;
        self.notify();
        Ok(version)
    }

    /// A vault's history, newest first.
    pub async fn vault_log(
        &self,
        vault: String,
        limit: Option<usize>,
    ) -> Result<Vec<CommitInfo>, NodeError> {
        self.with_vault(vault, move |s, v| v.log(&s.db, limit))
            .await
    }

    /// Check that every version in a vault's history is whole and signed
    /// (after a crash or a restore); returns how many devices signed it.
    pub async fn verify_vault(&self, vault: String) -> Result<usize, NodeError> {
        self.with_vault(vault, move |s, v| v.verify_history(&s.db).map(|s| s.len()))
            .await
    }

    /// The versions in which one secret changed, newest first.
    pub async fn secret_history(
        &self,
        vault: String,
        path: String,
    ) -> Result<Vec<CommitInfo>, NodeError> {
        self.with_vault(vault, move |s, v| v.history_of(&s.db, &path))
            .await
    }

    /// [`Self::secret_history`] for the desktop app, each version with its
    /// author's device name.
    pub async fn secret_history_dto(
        &self,
        vault: String,
        path: String,
    ) -> Result<Vec<crate::api::VersionDto>, NodeError> {
        self.with_vaults_read(move |s| {
            let versions = Vaults::new(&s.db)
                .open(&vault)?
                .history_with_paths(&s.db, &path)?;
            let authors = versions
                .iter()
                .filter_map(|(c, _)| c.author.parse::<NodeId>().ok());
            let names = crate::names::names_of(s, authors)?;
            Ok(versions
                .into_iter()
                .map(|(c, then)| {
                    let author_name = c
                        .author
                        .parse::<NodeId>()
                        .ok()
                        .and_then(|n| names.get(&n).cloned());
                    crate::api::VersionDto {
                        author_name,
                        path: if then == path { String::new() } else { then },
                        ..c.into()
                    }
                })
                .collect())
        })
        .await
    }

    /// Secrets that differ between two versions.
    pub async fn vault_diff(
        &self,
        vault: String,
        from: String,
        to: String,
    ) -> Result<Vec<Change>, NodeError> {
        self.with_vault(vault, move |s, v| v.diff(&s.db, &from, &to))
            .await
    }

    /// Restore one secret (or, with `path = None`, the whole vault) to
    /// `version` as a new commit.
    pub async fn restore(
        &self,
        vault: String,
        version: String,
        path: Option<String>,
    ) -> Result<String, NodeError> {
        self.with_vault_mut(vault, move |s, v| match path {
            Some(path) => v.restore_secret(&s.db, &s.keys, &version, &path),
            None => v.restore_vault(&s.db, &s.keys, &version),
        })
        .await
    }

    /// Merge a version whose objects are already imported.
    pub async fn merge_vault(
        &self,
        vault: String,
        theirs: String,
    ) -> Result<MergeOutcome, NodeError> {
        self.with_vault_mut(vault, move |s, v| v.merge(&s.db, &s.keys, &theirs))
            .await
    }

    /// Export a vault as a plain, **unencrypted** bare git repository.
    pub async fn export_vault(&self, vault: String, target: PathBuf) -> Result<(), NodeError> {
        self.with_vault(vault, move |s, v| v.export_bare(&s.db, &target))
            .await
    }
}

/// A secret kept in two versions after both devices edited it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The vault's name.
    pub vault: String,
    /// The secret.
    pub path: String,
    /// The other version, kept beside it.
    pub theirs_path: String,
}

impl Node {
    /// Every unresolved conflict, in every vault.
    pub async fn conflicts(&self) -> Result<Vec<Conflict>, NodeError> {
        self.with_vaults(|s| {
            let vaults = Vaults::new(&s.db);
            let mut out = Vec::new();
            for info in vaults.list()? {
                let vault = vaults.open(&info.id.to_string())?;
                for (path, theirs_path) in vault.conflicts(&s.db)? {
                    out.push(Conflict {
                        vault: info.name.clone(),
                        path,
                        theirs_path,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    /// Keep one version of a conflicting secret; returns the new version.
    pub async fn resolve_conflict(
        &self,
        vault: String,
        path: String,
        theirs_path: String,
        keep_theirs: bool,
    ) -> Result<String, NodeError> {
        let head = self
            .with_vault_mut(vault, move |s, v| {
                v.resolve_conflict(&s.db, &s.keys, &path, &theirs_path, keep_theirs)
            })
            .await?;
        self.notify();
        Ok(head)
    }
}

//! "Recently deleted": vaults deleted on any device of the gestalt stay
//! restorable here for the recovery window (their objects are kept), and
//! secrets removed recently are found in their vault's history. A restore
//! is a new signed commit, so it reaches every device as an edit would.

use polykey_vaults::{VaultId, Vaults};

use crate::api::{DeletedSecretDto, DeletedVaultDto, VaultDto};
use crate::error::NodeError;
use crate::node::Node;
use crate::peers::now_ms;

/// Most versions looked at per vault for deleted secrets.
const DELETED_SECRETS_PER_VAULT: usize = 200;

impl Node {
    /// Vaults deleted (here or on another device) and still restorable.
    pub async fn deleted_vaults_dto(&self) -> Result<Vec<DeletedVaultDto>, NodeError> {
        self.with_vaults(|s| {
            let mut out: Vec<DeletedVaultDto> = Vaults::new(&s.db)
                .deleted_vaults()?
                .into_iter()
                .map(|d| DeletedVaultDto {
                    id: d.info.id.to_string(),
                    name: d.info.name,
                    deleted_at: d.deletion.deleted_at,
                    deleted_by: d.deletion.by.to_string(),
                    purge_at: d.purge_at,
                })
                .collect();
            out.sort_by_key(|d| std::cmp::Reverse(d.deleted_at));
            Ok(out)
        })
        .await
    }

    /// Bring a deleted vault back (on every device, as it syncs).
    pub async fn restore_deleted_vault(&self, id: String) -> Result<VaultDto, NodeError> {
        let restored = self
            .with_vaults(move |s| {
                let id: VaultId = id.trim().parse()?;
                let vault = Vaults::new(&s.db).restore(&id, &s.keys)?;
                Ok(vault.info().clone())
            })
            .await?;
        self.notify();
        Ok(restored.into())
    }

    /// Secrets removed by the latest versions of every vault, newest first.
    /// Not cut at 30 days by commit time: a commit's time is what its
    /// author claims, and a backdated removal must still show.
    pub async fn deleted_secrets_dto(&self) -> Result<Vec<DeletedSecretDto>, NodeError> {
        self.with_vaults(|s| {
            let since = i64::MIN;
            let vaults = Vaults::new(&s.db);
            let mut out = Vec::new();
            for info in vaults.list()? {
                let vault = vaults.open(&info.id.to_string())?;
                for d in vault.recently_deleted(&s.db, since, DELETED_SECRETS_PER_VAULT)? {
                    out.push(DeletedSecretDto {
                        vault: info.name.clone(),
                        path: d.path,
                        deleted_at: d.deleted_at,
                        version: d.version,
                    });
                }
            }
            out.sort_by_key(|d| std::cmp::Reverse(d.deleted_at));
            Ok(out)
        })
        .await
    }

    /// Free the space of vaults deleted longer ago than the recovery
    /// window, and of copies of new vaults that no transfer is receiving
    /// any more (left by a transfer cut off, a crash, or a restore that
    /// stopped half way), and the chunks such transfers stored of secrets
    /// sent in parts. Returns how many vaults were purged.
    pub async fn purge_deleted(&self) -> Result<usize, NodeError> {
        let inner = std::sync::Arc::clone(&self.inner);
        self.with_vaults(move |s| {
            let vaults = Vaults::new(&s.db);
            // Taken under the store's lock: a transfer begins its copy in
            // a call like this one, holding its lock from before.
            let arriving = inner.vaults_arriving();
            // And those whose transfer was cut off and set aside, to go on.
            let resuming = inner.vaults_resuming();
            vaults.drop_unfinished(|id| arriving.contains(id) || resuming.contains(id))?;
            let purged = vaults.purge_expired(now_ms())?;
            // And what transfers no longer going on stored of secrets sent
            // in parts (see `Vaults::sweep_parts`); a failure here is
            // tried again at the next purge.
            let _ = vaults.sweep_parts();
            Ok(purged)
        })
        .await
    }
}

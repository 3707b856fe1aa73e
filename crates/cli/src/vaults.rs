//! `polykey vaults`: list, create, rename, delete and restore vaults, and
//! their history (sharing is in `sharing`).

use clap::Subcommand;

use crate::output::{one_line, text, Failure, Output};
use crate::session::backend;
use crate::Cli;

#[derive(Subcommand)]
pub(crate) enum Vaults {
    /// List vaults.
    List,
    /// Create a vault.
    Create { name: String },
    /// Rename a vault.
    Rename { name: String, new_name: String },
    /// Delete a vault: it leaves every device and waits in "Recently
    /// deleted" for 30 days (`vaults deleted`, `vaults restore`).
    Delete { name: String },
    /// Vaults deleted on any of your devices, still restorable.
    Deleted,
    /// Bring a deleted vault back, on every device (by the id `vaults
    /// deleted` shows).
    Restore { id: String },
    /// Bring a vault back to an earlier version (a new version on top;
    /// later history stays).
    Version { name: String, version: String },
    /// A vault's history, newest first.
    Log {
        name: String,
        /// At most this many versions.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Write a vault, with its whole history, as a plain git repository
    /// (bare) at DIRECTORY, which must not exist or be empty. NOT
    /// ENCRYPTED: anyone who can read DIRECTORY reads every secret.
    /// Commits are signed: `git log --show-signature` checks them.
    Export {
        name: String,
        directory: std::path::PathBuf,
    },
    #[command(flatten)]
    Sharing(crate::sharing::Sharing),
}

/// `polykey vaults …`, on the running agent or the node directory.
pub(crate) async fn run(cli: &Cli, command: &Vaults) -> Result<Output, Failure> {
    if let Vaults::Sharing(sharing) = command {
        return crate::sharing::run(cli, sharing).await;
    }
    let mut node = backend(cli).await?;
    match command {
        Vaults::List => {
            let vaults = node.vaults().await?;
            let human = vaults
                .iter()
                .map(|v| format!("{}\t{}", v.name, v.id))
                .collect::<Vec<_>>()
                .join("\n");
            let json = vaults
                .iter()
                .map(|v| serde_json::json!({ "name": v.name, "id": v.id.to_string() }))
                .collect();
            Ok(text(human, serde_json::Value::Array(json)))
        }
        Vaults::Create { name } => {
            let (name, id) = node.create_vault(name.clone()).await?;
            Ok(text(
                format!("Created vault {name} ({id})"),
                serde_json::json!({ "name": name, "id": id }),
            ))
        }
        Vaults::Export { name, directory } => {
            // The agent writes it: it needs the whole path.
            let directory = std::path::absolute(directory)
                .map_err(|e| crate::output::io_failure("resolve the directory", e))?;
            node.export_vault(name.clone(), directory.clone()).await?;
            Ok(text(
                format!(
                    "Exported vault {name} to {} as a plain git repository. It is NOT \
                     encrypted: delete it when done, or keep it somewhere only you can read.",
                    directory.display()
                ),
                serde_json::json!({ "directory": directory }),
            ))
        }
        Vaults::Rename { name, new_name } => {
            node.rename_vault(name.clone(), new_name.clone()).await?;
            Ok(text(
                format!("Renamed vault {name} to {new_name}"),
                serde_json::json!({ "name": new_name }),
            ))
        }
        Vaults::Delete { name } => {
            node.delete_vault(name.clone()).await?;
            Ok(text(
                format!("Deleted vault {name} (restorable for 30 days: polykey vaults deleted)"),
                serde_json::json!({}),
            ))
        }
        Vaults::Deleted => {
            let deleted = node.deleted_vaults().await?;
            let human = deleted
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    format!(
                        "{}\t{}\tdeleted by {}",
                        d["id"].as_str().unwrap_or_default(),
                        d["name"].as_str().unwrap_or_default(),
                        d["deletedBy"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(text(human, deleted))
        }
        Vaults::Restore { id } => {
            let name = node.restore_deleted_vault(id.clone()).await?;
            Ok(text(
                format!("Restored vault {name}"),
                serde_json::json!({ "name": name }),
            ))
        }
        Vaults::Version { name, version } => {
            let head = node.restore_vault(name.clone(), version.clone()).await?;
            Ok(text(
                format!("Vault {name} is back at {version} (as {})", short_id(&head)),
                serde_json::json!({ "version": head }),
            ))
        }
        // Answered above, without opening the node here.
        Vaults::Sharing(sharing) => crate::sharing::run(cli, sharing).await,
        Vaults::Log { name, limit } => {
            let log = node.vault_log(name.clone(), *limit).await?;
            let human = log
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {}",
                        short_id(&c.id),
                        c.time,
                        one_line(c.message.lines().next().unwrap_or(""))
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            let json = log
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.id, "author": c.author, "time": c.time, "message": c.message
                    })
                })
                .collect();
            Ok(text(human, serde_json::Value::Array(json)))
        }
    }
}

/// The first 8 characters of a version id, as git shows them; an id that
/// is shorter or not ASCII (a malformed answer) is shown whole.
fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

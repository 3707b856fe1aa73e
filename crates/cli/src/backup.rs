//! `polykey backup`: encrypted backups of the node's vaults with their
//! history, and their restore.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use polykey_node::{Password, MIN_PASSWORD_LEN};
use serde_json::Value;

use crate::output::{io_failure, text, Failure, Output, EX_USAGE};
use crate::session::backend;
use crate::Cli;

/// `polykey backup …`.
#[derive(clap::Subcommand)]
pub(crate) enum BackupCommand {
    /// Write every vault (or those named with --vault), with its whole
    /// history, to FILE, encrypted with a passphrase of its own.
    Create {
        /// The backup file to write (it must not exist).
        file: PathBuf,
        /// Back up only this vault (repeat for more).
        #[arg(long = "vault", value_name = "VAULT")]
        vaults: Vec<String>,
        /// The backup's passphrase, in this file (first line); asked for
        /// twice at the terminal otherwise.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Restore the vaults of a backup: each one not here comes back as it
    /// was; one here in another state comes back beside it.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The backup's passphrase, in this file (first line); asked for
        /// at the terminal otherwise.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Show what a backup holds (every byte of it is checked).
    Show {
        /// The backup file.
        file: PathBuf,
        /// The backup's passphrase, in this file (first line); asked for
        /// at the terminal otherwise.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
}

fn usage(message: &str) -> Failure {
    Failure {
        code: EX_USAGE,
        kind: "usage".into(),
        message: message.into(),
    }
}

/// The passphrase: the first line of `file`, or typed at the terminal
/// (twice for a new backup); never an argument.
fn passphrase(file: Option<&Path>, new: bool) -> Result<Password, Failure> {
    let first_line = |text: &str| Password::new(text.lines().next().unwrap_or("").to_owned());
    let passphrase = match file {
        Some(file) => first_line(&zeroize::Zeroizing::new(
            std::fs::read_to_string(file).map_err(|e| io_failure("read the passphrase file", e))?,
        )),
        None if std::io::stdin().is_terminal() => {
            let typed = first_line(&zeroize::Zeroizing::new(
                rpassword::prompt_password("Backup passphrase: ")
                    .map_err(|e| io_failure("read the passphrase", e))?,
            ));
            if new {
                let again = zeroize::Zeroizing::new(
                    rpassword::prompt_password("The same passphrase again: ")
                        .map_err(|e| io_failure("read the passphrase", e))?,
                );
                if again.lines().next().unwrap_or("") != typed.expose_secret() {
                    return Err(usage("the two passphrases differ; nothing was written"));
                }
            }
            typed
        }
        None => return Err(usage("give the backup's passphrase with --passphrase-file")),
    };
    if new && passphrase.expose_secret().chars().count() < MIN_PASSWORD_LEN {
        return Err(usage(&format!(
            "the passphrase must be at least {MIN_PASSWORD_LEN} characters long"
        )));
    }
    Ok(passphrase)
}

fn absolute(file: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(file).map_err(|e| io_failure("find the backup file", e))
}

fn vault_lines(backup: &Value) -> String {
    backup["vaults"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            format!(
                "  {} ({} objects)",
                v["name"].as_str().unwrap_or_default(),
                v["objects"].as_u64().unwrap_or(0)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `polykey backup …`.
pub(crate) async fn run(cli: &Cli, command: &BackupCommand) -> Result<Output, Failure> {
    match command {
        BackupCommand::Create {
            file,
            vaults,
            passphrase_file,
        } => {
            let passphrase = passphrase(passphrase_file.as_deref(), true)?;
            let chosen = (!vaults.is_empty()).then(|| vaults.clone());
            let made = backend(cli)
                .await?
                .backup("backup.create", absolute(file)?, passphrase, chosen)
                .await?;
            let count = made["vaults"].as_array().map_or(0, Vec::len);
            Ok(text(
                format!(
                    "Backed up {count} vault(s) with their history to {} ({} bytes, encrypted \
                     with your passphrase: without it nothing can be restored):\n{}",
                    file.display(),
                    made["bytes"].as_u64().unwrap_or(0),
                    vault_lines(&made)
                ),
                made,
            ))
        }
        BackupCommand::Show {
            file,
            passphrase_file,
        } => {
            let passphrase = passphrase(passphrase_file.as_deref(), false)?;
            let read = backend(cli)
                .await?
                .backup("backup.read", absolute(file)?, passphrase, None)
                .await?;
            Ok(text(
                format!(
                    "A backup of node {} made at {} (seconds since 1970), intact:\n{}",
                    read["node"].as_str().unwrap_or_default(),
                    read["createdAt"].as_u64().unwrap_or(0),
                    vault_lines(&read)
                ),
                read,
            ))
        }
        BackupCommand::Restore {
            file,
            passphrase_file,
        } => {
            let passphrase = passphrase(passphrase_file.as_deref(), false)?;
            let restored = backend(cli)
                .await?
                .backup("backup.restore", absolute(file)?, passphrase, None)
                .await?;
            let lines: Vec<String> = restored
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let name = r["name"].as_str().unwrap_or_default();
                    match r["how"].as_str() {
                        Some("beside") => format!(
                            "  {name}: restored beside the vault of the same id here, which \
                             changed since"
                        ),
                        Some("unchanged") => format!("  {name}: here already, unchanged"),
                        _ => format!("  {name}: restored"),
                    }
                })
                .collect();
            Ok(text(format!("Restored:\n{}", lines.join("\n")), restored))
        }
    }
}

//! `polykey vaults share|unshare|permissions|scan|clone|pull`: vaults
//! shared with other people's gestalts, through the running agent (the
//! network runs there).

use clap::Subcommand;

use crate::output::{one_line, text, Failure, Output};
use crate::session::running_agent;
use crate::Cli;

#[derive(Subcommand, Clone)]
pub(crate) enum Sharing {
    /// Share VAULT with a person: TARGET is a NodeId, a contact code or
    /// provider:login (trusted first if they are not). They are sent an
    /// offer; read only unless --write.
    Share {
        vault: String,
        target: String,
        /// Take their changes too.
        #[arg(long)]
        write: bool,
    },
    /// Stop sharing VAULT with TARGET. They keep what they have.
    Unshare { vault: String, target: String },
    /// Whom VAULT is shared with, or whose it is.
    Permissions { vault: String },
    /// What TARGET shares with you (they must allow you `scan`).
    Scan { target: String },
    /// Take a vault shared with you, by its id: offered in a notification,
    /// or from TARGET. It is kept in step from then on.
    Clone {
        id: String,
        /// Who shares it (by default, whoever offered it).
        target: Option<String>,
    },
    /// Pull a shared vault now from its owner (or writers).
    Pull { vault: String },
}

fn strings(value: &serde_json::Value) -> Vec<&str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .collect()
}

fn access(write: bool) -> &'static str {
    if write {
        "read and write"
    } else {
        "read only"
    }
}

/// `polykey vaults share…`, through the running agent.
pub(crate) async fn run(cli: &Cli, command: &Sharing) -> Result<Output, Failure> {
    let mut agent = running_agent(cli)?;
    match command {
        Sharing::Share {
            vault,
            target,
            write,
        } => {
            let shared = agent.call(
                "vaults.share",
                serde_json::json!({ "vault": vault, "target": target, "write": write }),
            )?;
            let told = if shared["offered"].as_bool().unwrap_or(false) {
                "they were sent an offer"
            } else {
                "they could not be told now; they can take it with `polykey vaults clone`"
            };
            Ok(text(
                format!(
                    "Shared {vault} with {} ({}); {told}",
                    shared["person"].as_str().unwrap_or_default(),
                    access(*write)
                ),
                shared,
            ))
        }
        Sharing::Unshare { vault, target } => {
            let done = agent.call(
                "vaults.unshare",
                serde_json::json!({ "vault": vault, "target": target }),
            )?;
            let human = if done["unshared"].as_bool().unwrap_or(false) {
                format!("{vault} is no longer shared with {target}; they keep what they have")
            } else {
                format!("{vault} was not shared with {target}")
            };
            Ok(text(human, done))
        }
        Sharing::Permissions { vault } => {
            let found = agent.call("vaults.permissions", serde_json::json!({ "vault": vault }))?;
            let mut lines: Vec<String> = found["grants"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| {
                    format!(
                        "{}\t{}\t{}",
                        g["person"].as_str().unwrap_or_default(),
                        access(g["write"].as_bool().unwrap_or(false)),
                        strings(&g["nodes"]).join(",")
                    )
                })
                .collect();
            let remote = &found["remote"];
            if remote.is_object() {
                let ended = if remote["ended"].as_bool().unwrap_or(false) {
                    "; no longer shared"
                } else {
                    ""
                };
                lines.push(format!(
                    "{}'s vault, shared with you ({}){ended}",
                    remote["owner"].as_str().unwrap_or_default(),
                    access(remote["write"].as_bool().unwrap_or(false))
                ));
            }
            let human = if lines.is_empty() {
                format!("{vault} is not shared")
            } else {
                lines.join("\n")
            };
            Ok(text(human, found))
        }
        Sharing::Scan { target } => {
            let vaults = agent.call("vaults.scan", serde_json::json!({ "target": target }))?;
            let lines: Vec<String> = vaults
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| {
                    format!(
                        "{}\t{}\t{}",
                        v["id"].as_str().unwrap_or_default(),
                        one_line(v["name"].as_str().unwrap_or_default()),
                        access(v["write"].as_bool().unwrap_or(false))
                    )
                })
                .collect();
            let human = if lines.is_empty() {
                format!("{target} shares nothing with you")
            } else {
                lines.join("\n")
            };
            Ok(text(human, vaults))
        }
        Sharing::Clone { id, target } => {
            let mut params = serde_json::json!({ "id": id });
            if let Some(target) = target {
                params["target"] = serde_json::json!(target);
            }
            let cloned = agent.call("vaults.clone", params)?;
            Ok(text(
                format!(
                    "Cloned {} ({})",
                    cloned["name"].as_str().unwrap_or_default(),
                    cloned["id"].as_str().unwrap_or_default()
                ),
                cloned,
            ))
        }
        Sharing::Pull { vault } => {
            let done = agent.call("vaults.pull", serde_json::json!({ "vault": vault }))?;
            let human = if done["changed"].as_bool().unwrap_or(false) {
                format!("Pulled {vault}")
            } else {
                format!("{vault} is up to date")
            };
            Ok(text(human, done))
        }
    }
}

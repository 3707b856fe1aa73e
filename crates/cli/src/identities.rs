//! `polykey identities`: accounts on identity providers (GitHub) linked to
//! this node by signed claims, and other people's nodes found under their
//! accounts, through the running agent.

use std::io::Write;

use clap::Subcommand;

use crate::output::{text, Failure, Output};
use crate::session::running_agent;
use crate::Cli;

#[derive(Subcommand)]
pub(crate) enum IdentitiesCommand {
    /// Log in to a provider (e.g. github.com): shows a code to enter on the
    /// provider's site, then waits until you approve.
    Authenticate {
        /// The provider, e.g. github.com.
        provider: String,
    },
    /// Claim the account logged in to for this node: a signed claim on
    /// this node's chain, posted publicly under the account.
    Claim {
        /// The provider, e.g. github.com.
        provider: String,
    },
    /// The identities this node claimed.
    List,
    /// The nodes that claimed IDENTITY (provider:login, e.g.
    /// github.com:alice), each claim checked.
    Discover {
        /// provider:login
        identity: String,
    },
    /// Trust a person: TARGET is a NodeId or an identity (its claimed
    /// nodes, checked now). Shares nothing; permissions start off.
    Trust {
        /// A NodeId, or provider:login.
        target: String,
    },
    /// Stop trusting a person (as trusted: NodeId or identity).
    Untrust {
        /// A NodeId, or provider:login.
        target: String,
    },
    /// Allow a trusted person PERMISSION: notify (may send you
    /// notifications) or scan (may list what you share with them).
    Allow {
        /// A NodeId, or provider:login.
        target: String,
        /// notify or scan
        permission: String,
    },
    /// Take a permission back.
    Disallow {
        /// A NodeId, or provider:login.
        target: String,
        /// notify or scan
        permission: String,
    },
    /// The people trusted here and their permissions.
    Permissions,
    /// This node's contact code, for another person to add you (no secret
    /// in it).
    Contact,
}

/// One person as a line: name, permissions, nodes.
fn person_line(p: &serde_json::Value) -> String {
    let allowed: Vec<&str> = ["notify", "scan"]
        .into_iter()
        .filter(|k| p[*k].as_bool().unwrap_or(false))
        .collect();
    let nodes: Vec<&str> = p["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .collect();
    format!(
        "{}\t{}\t{}",
        p["name"].as_str().unwrap_or_default(),
        if allowed.is_empty() {
            "-".to_owned()
        } else {
            allowed.join(",")
        },
        nodes.join(",")
    )
}

/// `polykey identities …`, through the running agent.
pub(crate) async fn run(cli: &Cli, command: &IdentitiesCommand) -> Result<Output, Failure> {
    let mut agent = running_agent(cli)?;
    match command {
        IdentitiesCommand::Authenticate { provider } => {
            let login = agent.call(
                "identities.login.start",
                serde_json::json!({ "provider": provider }),
            )?;
            // Shown at once, before the wait, on standard error (standard
            // output carries the result).
            let mut err = std::io::stderr();
            let _ = writeln!(
                err,
                "Enter the code {} at {} (valid for {} minutes)",
                login["userCode"].as_str().unwrap_or_default(),
                login["verificationUri"].as_str().unwrap_or_default(),
                login["expiresInSecs"].as_u64().unwrap_or(0) / 60
            );
            let _ = err.flush();
            let done = agent.call(
                "identities.login.finish",
                serde_json::json!({ "provider": provider }),
            )?;
            Ok(text(
                format!(
                    "Logged in as {}",
                    done["identity"].as_str().unwrap_or_default()
                ),
                done,
            ))
        }
        IdentitiesCommand::Claim { provider } => {
            let linked = agent.call(
                "identities.claim",
                serde_json::json!({ "provider": provider }),
            )?;
            Ok(text(
                format!(
                    "Claimed {} for this node: {}",
                    linked["identity"].as_str().unwrap_or_default(),
                    linked["proofUrl"].as_str().unwrap_or_default()
                ),
                linked,
            ))
        }
        IdentitiesCommand::List => {
            let list = agent.call("identities.list", serde_json::json!({}))?;
            let human = list
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| {
                    format!(
                        "{}\t{}",
                        l["identity"].as_str().unwrap_or_default(),
                        l["proofUrl"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(text(human, list))
        }
        IdentitiesCommand::Discover { identity } => {
            let found = agent.call(
                "identities.discover",
                serde_json::json!({ "identity": identity }),
            )?;
            let lines: Vec<String> = found
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| {
                    format!(
                        "{}\t{}",
                        n["node"].as_str().unwrap_or_default(),
                        n["proofUrl"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            let human = if lines.is_empty() {
                format!("No node has claimed {identity}")
            } else {
                lines.join("\n")
            };
            Ok(text(human, found))
        }
        IdentitiesCommand::Trust { target } => {
            let person = agent.call("identities.trust", serde_json::json!({ "target": target }))?;
            Ok(text(format!("Trusted {}", person_line(&person)), person))
        }
        IdentitiesCommand::Untrust { target } => {
            let done = agent.call(
                "identities.untrust",
                serde_json::json!({ "target": target }),
            )?;
            let human = if done["untrusted"].as_bool().unwrap_or(false) {
                format!("No longer trusted: {target}")
            } else {
                format!("{target} was not trusted")
            };
            Ok(text(human, done))
        }
        IdentitiesCommand::Allow { target, permission }
        | IdentitiesCommand::Disallow { target, permission } => {
            let method = if matches!(command, IdentitiesCommand::Allow { .. }) {
                "identities.allow"
            } else {
                "identities.disallow"
            };
            let person = agent.call(
                method,
                serde_json::json!({ "target": target, "permission": permission }),
            )?;
            Ok(text(person_line(&person), person))
        }
        IdentitiesCommand::Contact => {
            let contact = agent.call("identities.contact", serde_json::json!({}))?;
            Ok(text(
                contact["code"].as_str().unwrap_or_default().to_owned(),
                contact,
            ))
        }
        IdentitiesCommand::Permissions => {
            let people = agent.call("identities.people", serde_json::json!({}))?;
            let lines: Vec<String> = people
                .as_array()
                .into_iter()
                .flatten()
                .map(person_line)
                .collect();
            let human = if lines.is_empty() {
                "Nobody is trusted here".to_owned()
            } else {
                lines.join("\n")
            };
            Ok(text(human, people))
        }
    }
}

//! `polykey identities`: accounts on identity providers (GitHub) linked to
//! this node by signed claims, other people's accounts and the nodes found
//! under them (searched, looked up, checked again), and the people trusted
//! here, through the running agent.

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
    /// Accounts on PROVIDER whose login matches QUERY (the provider's own
    /// user search).
    Search {
        /// The provider, e.g. github.com.
        provider: String,
        /// Part of a login.
        query: String,
    },
    /// What this node knows of TARGET: the person trusted here, and the
    /// nodes claiming its identity, each claim checked now. A person
    /// trusted by an identity is refreshed on the way.
    Get {
        /// A NodeId, a contact code, or provider:login.
        target: String,
    },
    /// Check a person trusted by an identity again: nodes whose claims no
    /// longer verify are dropped (and lose what is shared with them),
    /// newly claimed nodes added.
    Refresh {
        /// As trusted (provider:login), or one of their NodeIds.
        target: String,
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
    let or_dash = |list: Vec<&str>| {
        if list.is_empty() {
            "-".to_owned()
        } else {
            list.join(",")
        }
    };
    format!(
        "{}\t{}\t{}",
        p["name"].as_str().unwrap_or_default(),
        or_dash(allowed),
        or_dash(nodes)
    )
}

/// A list of NodeIds in JSON as text.
fn node_list(nodes: &serde_json::Value) -> String {
    nodes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// What a refresh changed, a line for each change.
fn changes(found: &serde_json::Value) -> Vec<String> {
    let mut lines = Vec::new();
    if found["dropped"].as_array().is_some_and(|d| !d.is_empty()) {
        lines.push(format!(
            "Dropped (claim no longer verifies): {}",
            node_list(&found["dropped"])
        ));
    }
    if found["added"].as_array().is_some_and(|a| !a.is_empty()) {
        lines.push(format!(
            "Added (newly claimed): {}",
            node_list(&found["added"])
        ));
    }
    lines
}

/// An account as a line: identity, name, profile page.
fn account_line(a: &serde_json::Value) -> String {
    format!(
        "{}\t{}\t{}",
        a["identity"].as_str().unwrap_or_default(),
        a["name"].as_str().unwrap_or("-"),
        a["url"].as_str().unwrap_or("-")
    )
}

/// `identities get` for people: the person, what changed, then each
/// identity with the nodes claiming it.
fn gestalt_text(found: &serde_json::Value) -> String {
    let mut lines = Vec::new();
    let person = &found["person"];
    if person.is_object() {
        lines.push(format!(
            "Trusted since {}: {}",
            person["trustedAt"].as_u64().unwrap_or(0),
            person_line(person)
        ));
    } else {
        lines.push(format!(
            "{} is not trusted here",
            found["target"].as_str().unwrap_or_default()
        ));
    }
    lines.extend(changes(found));
    for identity in found["identities"].as_array().into_iter().flatten() {
        if !identity["exists"].as_bool().unwrap_or(false) {
            lines.push(format!(
                "{}\tno such account any more",
                identity["identity"].as_str().unwrap_or_default()
            ));
            continue;
        }
        lines.push(account_line(identity));
        let claims: Vec<String> = identity["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| {
                format!(
                    "  claimed by {}\t{}",
                    n["node"].as_str().unwrap_or_default(),
                    n["proofUrl"].as_str().unwrap_or_default()
                )
            })
            .collect();
        if claims.is_empty() {
            lines.push("  no node claims it".to_owned());
        }
        lines.extend(claims);
    }
    lines.join("\n")
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
        IdentitiesCommand::Search { provider, query } => {
            let found = agent.call(
                "identities.search",
                serde_json::json!({ "provider": provider, "query": query }),
            )?;
            let lines: Vec<String> = found
                .as_array()
                .into_iter()
                .flatten()
                .map(account_line)
                .collect();
            let human = if lines.is_empty() {
                format!("No account on {provider} matches {query}")
            } else {
                lines.join("\n")
            };
            Ok(text(human, found))
        }
        IdentitiesCommand::Get { target } => {
            let found = agent.call("identities.get", serde_json::json!({ "target": target }))?;
            Ok(text(gestalt_text(&found), found))
        }
        IdentitiesCommand::Refresh { target } => {
            let refreshed = agent.call(
                "identities.refresh",
                serde_json::json!({ "target": target }),
            )?;
            let mut lines = vec![format!("Refreshed {}", person_line(&refreshed["person"]))];
            let changed = changes(&refreshed);
            if changed.is_empty() {
                lines.push("Nothing changed".to_owned());
            }
            lines.extend(changed);
            Ok(text(lines.join("\n"), refreshed))
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

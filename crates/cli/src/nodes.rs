//! `polykey nodes`: the devices of this gestalt — who they are, where
//! they are, whether they answer — through the running agent; the commands
//! that change trust are in `devices`.

use clap::Subcommand;

use crate::devices;
use crate::output::{text, Failure, Output, EX_NOINPUT};
use crate::session::running_agent;
use crate::Cli;

#[derive(Subcommand)]
pub(crate) enum NodesCommand {
    /// Every device of the gestalt, with its name and status.
    Getall,
    /// Name this device (your other devices show the name, in their device
    /// list and history).
    Name { name: String },
    /// Connect to a device of the gestalt at an address (when mDNS and the
    /// DHT cannot find it).
    Add { node_id: String, address: String },
    /// Devices connected now, and the sync status.
    Connections,
    /// Where a node can be reached (local network, DHT).
    Find { node_id: String },
    /// Whether a node answers, and how fast.
    Ping { node_id: String },
    #[command(flatten)]
    Trust(devices::TrustCommand),
}

/// `polykey nodes …`, through the running agent.
pub(crate) async fn run(cli: &Cli, command: &NodesCommand) -> Result<Output, Failure> {
    match command {
        NodesCommand::Getall => {
            let devices = running_agent(cli)?.call("nodes.devices", serde_json::json!({}))?;
            let human = devices
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    format!(
                        "{}\t{}\t{}\t{}",
                        d["name"].as_str().unwrap_or("(unnamed)"),
                        d["nodeId"].as_str().unwrap_or_default(),
                        if d["thisDevice"].as_bool() == Some(true) {
                            "this device"
                        } else if d["online"].as_bool() == Some(true) {
                            "online"
                        } else {
                            "offline"
                        },
                        d["addresses"][0].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(text(human, devices))
        }
        NodesCommand::Name { name } => {
            running_agent(cli)?.call("nodes.name", serde_json::json!({ "name": name }))?;
            Ok(text(
                format!("This device is now called “{}”", name.trim()),
                serde_json::json!({ "name": name.trim() }),
            ))
        }
        NodesCommand::Add { node_id, address } => {
            running_agent(cli)?.call(
                "nodes.add",
                serde_json::json!({ "nodeId": node_id, "address": address }),
            )?;
            Ok(text(
                format!("Connected to {node_id}"),
                serde_json::json!({}),
            ))
        }
        NodesCommand::Connections => {
            let status = running_agent(cli)?.call("sync.status", serde_json::json!({}))?;
            Ok(text(
                format!(
                    "{} device(s) connected; {}; {} conflict(s) to review",
                    status["online"].as_u64().unwrap_or(0),
                    if status["syncing"].as_bool() == Some(true) {
                        "syncing"
                    } else {
                        "idle"
                    },
                    status["conflicts"].as_u64().unwrap_or(0)
                ),
                status,
            ))
        }
        NodesCommand::Find { node_id } => {
            let found =
                running_agent(cli)?.call("nodes.find", serde_json::json!({ "nodeId": node_id }))?;
            let addresses: Vec<String> = found["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            if addresses.is_empty() {
                return Err(Failure {
                    code: EX_NOINPUT,
                    kind: "not_found".into(),
                    message: format!("no address found for {node_id}"),
                });
            }
            Ok(text(addresses.join("\n"), found))
        }
        NodesCommand::Ping { node_id } => {
            let pong =
                running_agent(cli)?.call("nodes.ping", serde_json::json!({ "nodeId": node_id }))?;
            Ok(text(
                format!(
                    "{node_id} answered in {:.1} ms",
                    pong["ms"].as_f64().unwrap_or(0.0)
                ),
                pong,
            ))
        }
        NodesCommand::Trust(command) => devices::trust(cli, command).await,
    }
}

//! `polykey notifications`: messages between the devices of this
//! gestalt, through the running agent.

use clap::Subcommand;

use crate::output::{one_line, text, Failure, Output};
use crate::session::running_agent;
use crate::Cli;

#[derive(Subcommand)]
pub(crate) enum NotificationsCommand {
    /// Show notifications, newest first (and mark them read).
    Read {
        /// Only the ones not read yet.
        #[arg(long)]
        unread: bool,
    },
    /// Send a message to a device of the gestalt.
    Send { node_id: String, message: String },
    /// Delete every notification.
    Clear,
}

/// `polykey notifications …`, through the running agent.
pub(crate) async fn run(cli: &Cli, command: &NotificationsCommand) -> Result<Output, Failure> {
    let mut agent = running_agent(cli)?;
    match command {
        NotificationsCommand::Read { unread } => {
            let list = agent.call(
                "notifications.read",
                serde_json::json!({ "unread": unread }),
            )?;
            let human = list
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| {
                    format!(
                        "{} {}: {}",
                        n["sentAt"].as_i64().unwrap_or(0) / 1000,
                        one_line(n["from"].as_str().unwrap_or_default()),
                        one_line(n["text"].as_str().unwrap_or_default())
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(text(human, list))
        }
        NotificationsCommand::Send { node_id, message } => {
            agent.call(
                "notifications.send",
                serde_json::json!({ "nodeId": node_id, "message": message }),
            )?;
            Ok(text(format!("Sent to {node_id}"), serde_json::json!({})))
        }
        NotificationsCommand::Clear => {
            let cleared = agent.call("notifications.clear", serde_json::json!({}))?;
            Ok(text(
                format!("Cleared {}", cleared["cleared"].as_u64().unwrap_or(0)),
                cleared,
            ))
        }
    }
}

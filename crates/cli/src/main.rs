//! `polykey`: Polykey-CLI's commands over a node directory.
//!
//! Secrets are addressed as `vault:path`. Passwords never come from an
//! argument: `--password-file`, `POLYKEY_PASSWORD_FILE`, piped standard input,
//! or a prompt without echo. `--format json` gives machine-readable output;
//! exit codes follow sysexits so scripts can branch on them.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)]

/// `polykey agent`: start, stop, status, lock, unlock.
mod agent;
/// The node itself or its running agent.
mod backend;
mod devices;
#[cfg(unix)]
mod edit;
#[cfg(windows)]
#[path = "edit_windows.rs"]
mod edit;
/// Waiting for the editor of `secrets edit`, the same on every OS.
mod editor;
/// What a command gives back: output, or a failure with its exit code.
mod output;
/// `polykey secrets`: secrets as `vault:path`, and `secrets env`.
mod secrets;
/// How a command reaches the node: password, node directory, agent session.
mod session;
/// `polykey vaults`: vaults and their history.
mod vaults;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use backend::{Agent, Backend};
use clap::{Parser, Subcommand, ValueEnum};
use output::{io_failure, text, usage, Failure, Output, EX_DATAERR, EX_NOINPUT, EX_SOFTWARE};
use polykey_node::NodeError;
use session::{
    agent_session, backend, node_path, open, read_password, running_agent, write_private,
};
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(
    name = "polykey",
    version,
    about = "Polykey: secrets on your own devices"
)]
struct Cli {
    /// The node directory.
    #[arg(long, global = true, env = "PK_NODE_PATH")]
    node_path: Option<PathBuf>,
    /// Output for people or for programs.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Read the password from this file (first line).
    #[arg(long, global = true, env = "POLYKEY_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new node; prints its NodeId and the recovery code (once).
    Bootstrap {
        /// Write the recovery code to this file (mode 0600) instead of stdout.
        #[arg(long)]
        recovery_code_out: Option<PathBuf>,
        /// Restore the identity from the recovery code in this file.
        #[arg(long)]
        recovery_code_file: Option<PathBuf>,
    },
    /// Vaults.
    #[command(subcommand)]
    Vaults(vaults::Vaults),
    /// Secrets, addressed as `vault:path`.
    #[command(subcommand)]
    Secrets(secrets::Secrets),
    /// This node's keys.
    #[command(subcommand)]
    Keys(Keys),
    /// The agent: a running node that serves the CLI and syncs.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Show a pairing code (QR code and words) for a new device to join.
    Invite {
        /// Print the code and return instead of waiting for the device
        /// (confirm its digits later with `polykey nodes confirm`).
        #[arg(long)]
        no_wait: bool,
        /// Accept the joining device's digits without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Join the gestalt of the device showing CODE (the code or its words);
    /// both devices show the same digits, compared before anything is
    /// recorded.
    Join {
        /// The pairing code (`polykey-pair:…`) or its four words.
        code: String,
        /// Accept the digits without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Devices of this gestalt.
    #[command(subcommand)]
    Nodes(NodesCommand),
    /// Notifications from the devices of this gestalt.
    #[command(subcommand)]
    Notifications(NotificationsCommand),
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum NotificationsCommand {
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

#[derive(Subcommand)]
enum NodesCommand {
    /// Every device of the gestalt, with its status.
    Getall,
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

#[derive(Subcommand)]
enum Keys {
    /// This node's public key (its NodeId).
    Public,
    /// Encrypt a file for a node (this one unless --node-id).
    Encrypt {
        file: PathBuf,
        #[arg(long)]
        node_id: Option<String>,
    },
    /// Decrypt a file encrypted for this node.
    Decrypt { file: PathBuf },
    /// Sign a file with this node's key (an armored SSH signature in
    /// namespace `file`, as `ssh-keygen -Y sign -n file` writes).
    Sign { file: PathBuf },
    /// Verify a signature over a file by a node (this one unless --node-id).
    Verify {
        file: PathBuf,
        /// The armored signature (it starts with `-----`, taken as is).
        #[arg(allow_hyphen_values = true)]
        signature: String,
        #[arg(long)]
        node_id: Option<String>,
    },
    /// Change the password (the new one from a file, never an argument).
    Password {
        #[arg(long)]
        new_password_file: PathBuf,
    },
}

async fn run(cli: &Cli, warnings: &mut Vec<String>) -> Result<Output, Failure> {
    match &cli.command {
        Command::Agent(command) => agent::run(cli, command).await,
        Command::Vaults(command) => vaults::run(cli, command).await,
        Command::Secrets(command) => secrets::run(cli, command, warnings).await,
        Command::Invite { no_wait, yes } => devices::invite(cli, *no_wait, *yes).await,
        Command::Nodes(NodesCommand::Trust(command)) => devices::trust(cli, command).await,
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(
                *shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "polykey",
                &mut script,
            );
            Ok(Output::Bytes(Zeroizing::new(script), serde_json::json!({})))
        }
        Command::Join { code, yes } => devices::join(cli, code, *yes).await,
        Command::Nodes(NodesCommand::Add { node_id, address }) => {
            running_agent(cli)?.call(
                "nodes.add",
                serde_json::json!({ "nodeId": node_id, "address": address }),
            )?;
            Ok(text(
                format!("Connected to {node_id}"),
                serde_json::json!({}),
            ))
        }
        Command::Notifications(command) => {
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
                                n["from"].as_str().unwrap_or_default(),
                                n["text"].as_str().unwrap_or_default()
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
        Command::Nodes(NodesCommand::Find { node_id }) => {
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
        Command::Nodes(NodesCommand::Ping { node_id }) => {
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
        Command::Nodes(NodesCommand::Connections) => {
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
        Command::Nodes(NodesCommand::Getall) => {
            let devices = running_agent(cli)?.call("nodes.devices", serde_json::json!({}))?;
            let human = devices
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    format!(
                        "{}\t{}\t{}",
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
        Command::Bootstrap {
            recovery_code_out,
            recovery_code_file,
        } => {
            let node = open(cli).await?;
            if let Some(file) = recovery_code_file {
                let code = Zeroizing::new(
                    std::fs::read_to_string(file)
                        .map_err(|e| io_failure("read the recovery code file", e))?,
                );
                let password = read_password(cli, "New password: ")?;
                node.recover(code.trim(), password).await?;
                let id = node
                    .status()
                    .node_id
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                return Ok(text(
                    format!("Recovered node {id}"),
                    serde_json::json!({ "nodeId": id }),
                ));
            }
            let password = read_password(cli, "New password: ")?;
            let created = node.create(password).await?;
            let id = created.node_id.to_string();
            let code = created.recovery_code.expose_secret().to_string();
            match recovery_code_out {
                Some(file) => {
                    write_private(file, code.as_bytes())?;
                    Ok(text(
                        format!("Created node {id}\nRecovery code written to {}", file.display()),
                        serde_json::json!({ "nodeId": id }),
                    ))
                }
                None => Ok(text(
                    format!("Created node {id}\nRecovery code (write it down; it is shown once):\n{code}"),
                    serde_json::json!({ "nodeId": id, "recoveryCode": code }),
                )),
            }
        }
        Command::Keys(Keys::Public) => {
            if let Some(stream) = Agent::connect(&node_path(cli)) {
                let id = agent_session(cli, stream)?.call("status", serde_json::json!({}))?
                    ["nodeId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                return Ok(text(id.clone(), serde_json::json!({ "nodeId": id })));
            }
            let node = open(cli).await?;
            let id = node
                .status()
                .node_id
                .ok_or(NodeError::NotInitialised)?
                .to_string();
            Ok(text(id.clone(), serde_json::json!({ "nodeId": id })))
        }
        Command::Keys(command) => {
            let mut node = backend(cli).await?;
            let read = |file: &PathBuf| -> Result<Zeroizing<Vec<u8>>, Failure> {
                std::fs::read(file)
                    .map(Zeroizing::new)
                    .map_err(|e| io_failure("read the file", e))
            };
            let node_id = |given: &Option<String>,
                           node: &mut Backend|
             -> Result<polykey_node::NodeId, Failure> {
                let text = match given {
                    Some(id) => id.clone(),
                    None => node.node_id()?,
                };
                text.parse()
                    .map_err(|_| usage(format!("not a NodeId: {text}")))
            };
            match command {
                Keys::Public => {
                    let id = node.node_id()?;
                    Ok(text(id.clone(), serde_json::json!({ "nodeId": id })))
                }
                Keys::Encrypt { file, node_id: to } => {
                    let to = node_id(to, &mut node)?;
                    let sealed = polykey_node::keyops::encrypt_for(&to, &read(file)?)?;
                    Ok(text(sealed.clone(), serde_json::json!({ "data": sealed })))
                }
                Keys::Decrypt { file } => {
                    let data = String::from_utf8_lossy(&read(file)?).into_owned();
                    let plain = node.decrypt(data).await?;
                    let value = serde_json::json!({ "value": String::from_utf8_lossy(&plain) });
                    Ok(Output::Bytes(plain, value))
                }
                Keys::Sign { file } => {
                    let signature = node.sign(read(file)?.to_vec()).await?;
                    Ok(text(
                        signature.clone(),
                        serde_json::json!({ "signature": signature }),
                    ))
                }
                Keys::Verify {
                    file,
                    signature,
                    node_id: by,
                } => {
                    let by = node_id(by, &mut node)?;
                    let valid = polykey_node::keyops::verify(&by, &read(file)?, signature)?;
                    if !valid {
                        return Err(Failure {
                            code: EX_DATAERR,
                            kind: "bad_signature".into(),
                            message: "the signature does not match".into(),
                        });
                    }
                    Ok(text(
                        "Signature valid",
                        serde_json::json!({ "valid": true }),
                    ))
                }
                Keys::Password { new_password_file } => {
                    let old = read_password(cli, "Password: ")?;
                    let new = Zeroizing::new(
                        std::fs::read_to_string(new_password_file)
                            .map_err(|e| io_failure("read the new password file", e))?,
                    );
                    let new = new.lines().next().unwrap_or("").to_owned();
                    node.change_password(old.expose_secret(), &new).await?;
                    Ok(text("Password changed", serde_json::json!({})))
                }
            }
        }
    }
}

/// Say something on stderr while a command runs (the foreground agent's
/// log); the command's own output is printed by `main` when it ends.
fn note(message: std::fmt::Arguments<'_>) {
    eprintln!("{message}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("polykey: cannot start: {e}");
            return ExitCode::from(EX_SOFTWARE);
        }
    };
    let mut warnings = Vec::new();
    let result = runtime.block_on(run(&cli, &mut warnings));
    for warning in &warnings {
        eprintln!("polykey: warning: {warning}");
    }
    let json = cli.format == Format::Json;
    let mut stdout = std::io::stdout().lock();
    match result {
        Ok(Output::Exit(code)) => ExitCode::from(code),
        Ok(Output::Text(human, value)) => {
            let out = if json { value.to_string() } else { human };
            if !out.is_empty() {
                let _ = writeln!(stdout, "{out}");
            }
            ExitCode::SUCCESS
        }
        Ok(Output::Bytes(bytes, value)) => {
            if json {
                let _ = writeln!(stdout, "{value}");
            } else {
                let _ = stdout.write_all(&bytes);
            }
            let _ = stdout.flush();
            ExitCode::SUCCESS
        }
        Err(failure) => {
            if json {
                let error = serde_json::json!({
                    "error": { "code": failure.kind, "message": failure.message }
                });
                eprintln!("{error}");
            } else {
                eprintln!("polykey: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}

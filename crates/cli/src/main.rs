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
/// How a command reaches the node: password, node directory, agent session.
mod session;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use backend::{Agent, Backend, BackendError};
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
    Vaults(Vaults),
    /// Secrets, addressed as `vault:path`.
    #[command(subcommand)]
    Secrets(Secrets),
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
enum Vaults {
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
}

#[derive(Subcommand)]
enum Secrets {
    /// List the secrets of a vault (or of a directory in it).
    Ls { target: String },
    /// Print secrets' contents, as stored (no newline added).
    Cat {
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Write standard input to a secret (created or replaced).
    Write { target: String },
    /// Create a secret from a file; fails if it exists.
    Create { file: PathBuf, target: String },
    /// Remove a secret (a directory with --recursive).
    Rm {
        target: String,
        #[arg(short, long)]
        recursive: bool,
    },
    /// Make a directory.
    Mkdir { target: String },
    /// Rename (or move) a secret within its vault.
    Rename { target: String, new_path: String },
    /// What is at a path.
    Stat { target: String },
    /// Add every file under a local directory to a vault directory.
    Dir { directory: PathBuf, target: String },
    /// Edit a secret in $VISUAL or $EDITOR (a private temporary file in
    /// memory, removed afterwards and on SIGHUP/SIGTERM/SIGINT).
    Edit {
        target: String,
        /// Use the disk temporary directory when no memory-backed one
        /// ($XDG_RUNTIME_DIR on tmpfs, /dev/shm) exists: the secret may then
        /// survive on disk after its removal.
        #[arg(long)]
        allow_disk_tempfile: bool,
    },
    /// Secrets as environment variables: run a command with them, or print
    /// them.
    Env {
        /// `vault:path` (a secret or a directory of secrets).
        #[arg(required = true)]
        targets: Vec<String>,
        /// A name that is not a valid variable name.
        #[arg(long, value_enum, default_value_t = Invalid::Error)]
        env_invalid: Invalid,
        /// Two secrets with the same name.
        #[arg(long, value_enum, default_value_t = Duplicate::Overwrite)]
        env_duplicate: Duplicate,
        /// How to print them when no command is given.
        #[arg(long, value_enum, default_value_t = EnvFormat::Unix)]
        env_format: EnvFormat,
        /// The command to run, after `--`.
        #[arg(last = true)]
        command: Vec<String>,
    },
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

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Invalid {
    Error,
    Warn,
    Ignore,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Duplicate {
    Keep,
    Overwrite,
    Warn,
    Error,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EnvFormat {
    Unix,
    Dotenv,
    Json,
}

/// `vault:path` (the path may be empty for the whole vault).
fn address(target: &str) -> Result<(String, String), Failure> {
    match target.split_once(':') {
        Some((vault, path)) if !vault.is_empty() => Ok((vault.to_owned(), path.to_owned())),
        _ => Err(usage(format!("expected vault:path, got {target:?}"))),
    }
}

/// The first 8 characters of a version id, as git shows them; an id that
/// is shorter or not ASCII (a malformed answer) is shown whole.
fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

async fn env(
    node: &mut Backend,
    targets: &[String],
    invalid: Invalid,
    duplicate: Duplicate,
    format: EnvFormat,
    command: &[String],
    warnings: &mut Vec<String>,
) -> Result<Output, Failure> {
    let mut vars: BTreeMap<String, Zeroizing<String>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for target in targets {
        let (vault, path) = address(target)?;
        let is_dir = path.is_empty()
            || node
                .stat_secret(vault.clone(), path.clone())
                .await
                .map(|s| s.kind == polykey_node::EntryKind::Directory)?;
        let paths = if is_dir {
            let dir = (!path.is_empty()).then(|| path.clone());
            node.list_secrets(vault.clone(), dir).await?
        } else {
            vec![path.clone()]
        };
        for secret in paths {
            let name = secret.rsplit('/').next().unwrap_or(&secret).to_owned();
            if !valid_name(&name) {
                match invalid {
                    Invalid::Error => {
                        return Err(Failure {
                            code: EX_DATAERR,
                            kind: "invalid_name".into(),
                            message: format!("{vault}:{secret} is not a valid variable name"),
                        })
                    }
                    Invalid::Warn => {
                        warnings.push(format!(
                            "skipped {vault}:{secret}: not a valid variable name"
                        ));
                        continue;
                    }
                    Invalid::Ignore => continue,
                }
            }
            let bytes = node.get_secret(vault.clone(), secret.clone()).await?;
            let value = Zeroizing::new(String::from_utf8(bytes.to_vec()).map_err(|_| Failure {
                code: EX_DATAERR,
                kind: "not_text".into(),
                message: format!("{vault}:{secret} is not text"),
            })?);
            if vars.contains_key(&name) {
                match duplicate {
                    Duplicate::Keep => continue,
                    Duplicate::Overwrite => {}
                    Duplicate::Warn => {
                        warnings.push(format!("{name} is set twice; the later one wins"))
                    }
                    Duplicate::Error => {
                        return Err(Failure {
                            code: EX_DATAERR,
                            kind: "duplicate_name".into(),
                            message: format!("{name} is set by two secrets"),
                        })
                    }
                }
            } else {
                order.push(name.clone());
            }
            vars.insert(name, value);
        }
    }
    if let Some((program, args)) = command.split_first() {
        let status = std::process::Command::new(program)
            .args(args)
            .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .status()
            .map_err(|e| io_failure(&format!("run {program}"), e))?;
        return Ok(Output::Exit(status.code().map_or(EX_SOFTWARE, |c| c as u8)));
    }
    let json = serde_json::Value::Object(
        order
            .iter()
            .map(|k| (k.clone(), serde_json::Value::String(vars[k].to_string())))
            .collect(),
    );
    let human = match format {
        EnvFormat::Json => serde_json::to_string_pretty(&json).unwrap_or_default(),
        EnvFormat::Unix => order
            .iter()
            .map(|k| format!("export {k}={}", shell_quote(&vars[k])))
            .collect::<Vec<_>>()
            .join("\n"),
        EnvFormat::Dotenv => order
            .iter()
            .map(|k| format!("{k}={}", serde_json::Value::String(vars[k].to_string())))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    Ok(text(human, json))
}

async fn run(cli: &Cli, warnings: &mut Vec<String>) -> Result<Output, Failure> {
    match &cli.command {
        Command::Agent(command) => agent::run(cli, command).await,
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
        Command::Vaults(command) => {
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
                        format!(
                            "Deleted vault {name} (restorable for 30 days: polykey vaults deleted)"
                        ),
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
                Vaults::Log { name, limit } => {
                    let log = node.vault_log(name.clone(), *limit).await?;
                    let human = log
                        .iter()
                        .map(|c| {
                            format!(
                                "{} {} {}",
                                short_id(&c.id),
                                c.time,
                                c.message.lines().next().unwrap_or("")
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
        Command::Secrets(command) => {
            let mut node = backend(cli).await?;
            match command {
                Secrets::Ls { target } => {
                    let (vault, path) = match target.split_once(':') {
                        Some(_) => address(target)?,
                        None => (target.clone(), String::new()),
                    };
                    let dir = (!path.is_empty()).then_some(path);
                    let list = node.list_secrets(vault, dir).await?;
                    Ok(text(list.join("\n"), serde_json::json!(list)))
                }
                Secrets::Cat { targets } => {
                    let mut all = Zeroizing::new(Vec::new());
                    let mut json = Vec::new();
                    for target in targets {
                        let (vault, path) = address(target)?;
                        let bytes = node.get_secret(vault, path.clone()).await?;
                        all.extend_from_slice(&bytes);
                        json.push(serde_json::json!({
                            "path": target,
                            "value": String::from_utf8_lossy(&bytes),
                        }));
                    }
                    Ok(Output::Bytes(all, serde_json::Value::Array(json)))
                }
                Secrets::Write { target } => {
                    let (vault, path) = address(target)?;
                    let mut value = Zeroizing::new(Vec::new());
                    std::io::stdin()
                        .read_to_end(&mut value)
                        .map_err(|e| io_failure("read standard input", e))?;
                    let version = node.write_secret(vault, path, value).await?;
                    Ok(text(
                        format!("Wrote {target}"),
                        serde_json::json!({ "version": version }),
                    ))
                }
                Secrets::Create { file, target } => {
                    let (vault, path) = address(target)?;
                    let value = Zeroizing::new(
                        std::fs::read(file).map_err(|e| io_failure("read the file", e))?,
                    );
                    let version = node.create_secret(vault, path, value).await?;
                    Ok(text(
                        format!("Created {target}"),
                        serde_json::json!({ "version": version }),
                    ))
                }
                Secrets::Rm { target, recursive } => {
                    let (vault, path) = address(target)?;
                    let version = node.remove_secret(vault, path, *recursive).await?;
                    Ok(text(
                        format!("Removed {target}"),
                        serde_json::json!({ "version": version }),
                    ))
                }
                Secrets::Mkdir { target } => {
                    let (vault, path) = address(target)?;
                    let version = node.make_directory(vault, path).await?;
                    Ok(text(
                        format!("Made {target}"),
                        serde_json::json!({ "version": version }),
                    ))
                }
                Secrets::Rename { target, new_path } => {
                    let (vault, path) = address(target)?;
                    let version = node.rename_secret(vault, path, new_path.clone()).await?;
                    Ok(text(
                        format!("Renamed {target} to {new_path}"),
                        serde_json::json!({ "version": version }),
                    ))
                }
                Secrets::Stat { target } => {
                    let (vault, path) = address(target)?;
                    let stat = node.stat_secret(vault, path).await?;
                    let kind = match stat.kind {
                        polykey_node::EntryKind::Secret => "secret",
                        polykey_node::EntryKind::Directory => "directory",
                    };
                    Ok(text(
                        format!("{}\t{kind}\t{}", stat.path, stat.size),
                        serde_json::json!({ "path": stat.path, "kind": kind, "size": stat.size }),
                    ))
                }
                Secrets::Dir { directory, target } => {
                    let (vault, base) = address(target)?;
                    let mut stack = vec![directory.clone()];
                    let mut added = Vec::new();
                    while let Some(dir) = stack.pop() {
                        let entries = std::fs::read_dir(&dir)
                            .map_err(|e| io_failure("read the directory", e))?;
                        for entry in entries {
                            let entry = entry.map_err(|e| io_failure("read the directory", e))?;
                            let local = entry.path();
                            let kind = entry
                                .file_type()
                                .map_err(|e| io_failure("read the directory", e))?;
                            if kind.is_dir() {
                                stack.push(local);
                                continue;
                            }
                            if !kind.is_file() {
                                continue;
                            }
                            let relative = local
                                .strip_prefix(directory)
                                .map_err(|_| usage("a file outside the directory"))?
                                .to_string_lossy()
                                .replace('\\', "/");
                            let path = if base.trim_matches('/').is_empty() {
                                relative
                            } else {
                                format!("{}/{relative}", base.trim_matches('/'))
                            };
                            let value = Zeroizing::new(
                                std::fs::read(&local).map_err(|e| io_failure("read a file", e))?,
                            );
                            node.write_secret(vault.clone(), path.clone(), value)
                                .await?;
                            added.push(path);
                        }
                    }
                    added.sort();
                    Ok(text(
                        format!("Added {} secret(s) to {vault}", added.len()),
                        serde_json::json!({ "added": added }),
                    ))
                }
                Secrets::Edit {
                    target,
                    allow_disk_tempfile,
                } => {
                    let (vault, path) = address(target)?;
                    let current = match node.get_secret(vault.clone(), path.clone()).await {
                        Ok(value) => value,
                        Err(BackendError::Node(NodeError::Vault(
                            polykey_node::VaultError::NotFound(_),
                        ))) => Zeroizing::new(Vec::new()),
                        Err(BackendError::Agent(kind, _)) if kind == "secret_not_found" => {
                            Zeroizing::new(Vec::new())
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let edited =
                        edit::edit_in_editor(&current, &path, *allow_disk_tempfile).await?;
                    if *edited == *current {
                        return Ok(text("No change", serde_json::json!({ "changed": false })));
                    }
                    let version = node.write_secret(vault, path, edited).await?;
                    Ok(text(
                        format!("Saved {target}"),
                        serde_json::json!({ "changed": true, "version": version }),
                    ))
                }
                Secrets::Env {
                    targets,
                    env_invalid,
                    env_duplicate,
                    env_format,
                    command,
                } => {
                    env(
                        &mut node,
                        targets,
                        *env_invalid,
                        *env_duplicate,
                        *env_format,
                        command,
                        warnings,
                    )
                    .await
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

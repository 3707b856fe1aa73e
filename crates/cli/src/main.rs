//! `polykey`: Polykey-CLI's commands over a node directory.
//!
//! Secrets are addressed as `vault:path`. Passwords never come from an
//! argument: `--password-file`, `POLYKEY_PASSWORD_FILE`, piped standard input,
//! or a prompt without echo. `--format json` gives machine-readable output;
//! exit codes follow sysexits so scripts can branch on them.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)]

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

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use backend::{Agent, Backend, BackendError};
use clap::{Parser, Subcommand, ValueEnum};
use polykey_node::{KdfProfile, Node, NodeError, NodeOptions, Password};
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
    Agent(AgentCommand),
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
enum AgentCommand {
    /// Start the agent (in the background unless --foreground).
    Start {
        /// Stay in the foreground until stopped.
        #[arg(long)]
        foreground: bool,
        /// Lock the node after this long without a command (e.g. 10m, 1h;
        /// at least 30s). Off by default: a server's agent stays unlocked.
        #[arg(long, value_name = "TIME", value_parser = parse_auto_lock)]
        auto_lock: Option<std::time::Duration>,
    },
    /// Stop the running agent.
    Stop,
    /// Whether an agent runs, and its node's state.
    Status,
    /// Lock the agent's node (sessions stay; unlock with the password).
    Lock,
    /// Lock the node and end every session.
    Lockall,
    /// Log in to the running agent (unlocking its node if locked).
    Unlock,
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

/// Why the command failed, with its exit code.
struct Failure {
    code: u8,
    kind: String,
    message: String,
}

// sysexits(3).
const EX_USAGE: u8 = 64;
const EX_DATAERR: u8 = 65;
const EX_NOINPUT: u8 = 66;
const EX_UNAVAILABLE: u8 = 69;
const EX_SOFTWARE: u8 = 70;
const EX_IOERR: u8 = 74;
const EX_NOPERM: u8 = 77;

impl From<NodeError> for Failure {
    fn from(error: NodeError) -> Self {
        // The same codes the agent sends, so both paths exit alike.
        let kind = serde_json::to_value(error.code())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "error".into());
        Self {
            code: exit_for(&kind),
            kind,
            message: error.to_string(),
        }
    }
}

fn exit_for(kind: &str) -> u8 {
    match kind {
        "wrong_password" | "locked" | "wrong_key" | "unauthorised" => EX_NOPERM,
        "not_initialised" | "unknown_vault" | "secret_not_found" | "unknown_version" => EX_NOINPUT,
        "in_use" => EX_UNAVAILABLE,
        "io" => EX_IOERR,
        "internal" => EX_SOFTWARE,
        _ => EX_DATAERR,
    }
}

impl From<BackendError> for Failure {
    fn from(error: BackendError) -> Self {
        match error {
            BackendError::Node(e) => e.into(),
            BackendError::Agent(kind, message) => Self {
                code: exit_for(&kind),
                kind,
                message,
            },
            BackendError::Io(e) => Self {
                code: EX_UNAVAILABLE,
                kind: "agent".into(),
                message: format!("cannot talk to the agent: {e}"),
            },
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: EX_USAGE,
        kind: "usage".into(),
        message: message.into(),
    }
}

fn io_failure(what: &str, error: std::io::Error) -> Failure {
    Failure {
        code: EX_IOERR,
        kind: "io".into(),
        message: format!("could not {what}: {error}"),
    }
}

/// `vault:path` (the path may be empty for the whole vault).
fn address(target: &str) -> Result<(String, String), Failure> {
    match target.split_once(':') {
        Some((vault, path)) if !vault.is_empty() => Ok((vault.to_owned(), path.to_owned())),
        _ => Err(usage(format!("expected vault:path, got {target:?}"))),
    }
}

fn read_password(cli: &Cli, prompt: &str) -> Result<Password, Failure> {
    let text = match &cli.password_file {
        Some(file) => Zeroizing::new(
            std::fs::read_to_string(file).map_err(|e| io_failure("read the password file", e))?,
        ),
        None if !std::io::stdin().is_terminal() => {
            let mut text = Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| io_failure("read the password", e))?;
            text
        }
        None => Zeroizing::new(
            rpassword::prompt_password(prompt).map_err(|e| io_failure("read the password", e))?,
        ),
    };
    let line = text.lines().next().unwrap_or("").to_owned();
    Ok(Password::new(line))
}

/// Environment variable that makes key files cheap to derive, so the CLI
/// tests run quickly. Honoured only by debug builds.
const FAST_KDF_ENV: &str = "POLYKEY_FAST_KDF_FOR_TESTS";

/// The node's options: the default Argon2id parameters, whatever the
/// environment says, in a release build.
fn node_options() -> NodeOptions {
    let switch = std::env::var(FAST_KDF_ENV).ok();
    NodeOptions {
        kdf: kdf_profile(cfg!(debug_assertions), switch.as_deref()),
        network: None,
    }
}

/// The KDF profile for a build (`debug`) and the value of [`FAST_KDF_ENV`]:
/// the weak test profile only in a debug build that asks for it.
fn kdf_profile(debug: bool, switch: Option<&str>) -> KdfProfile {
    if debug && switch == Some("1") {
        KdfProfile::FastForTests
    } else {
        KdfProfile::Default
    }
}

async fn open(cli: &Cli) -> Result<Node, Failure> {
    let path = cli
        .node_path
        .clone()
        .unwrap_or_else(polykey_node::default_node_path);
    Ok(Node::open(&path, node_options()).await?)
}

fn node_path(cli: &Cli) -> PathBuf {
    cli.node_path
        .clone()
        .unwrap_or_else(polykey_node::default_node_path)
}

async fn unlocked(cli: &Cli) -> Result<Node, Failure> {
    let node = open(cli).await?;
    if node.status().state == polykey_node::NodeState::Uninitialised {
        return Err(NodeError::NotInitialised.into());
    }
    let password = read_password(cli, "Password: ")?;
    node.unlock(password).await?;
    Ok(node)
}

/// A session with the running agent: its saved token, or a new one for
/// the password (saved, mode 0600).
fn agent_session(cli: &Cli, stream: backend::Stream) -> Result<Agent, Failure> {
    let token_file = backend::token_path(&node_path(cli));
    let token = Zeroizing::new(std::fs::read_to_string(&token_file).unwrap_or_default());
    let mut agent = Agent::new(stream, token);
    match agent.call("status", serde_json::json!({})) {
        Ok(_) => return Ok(agent),
        Err(BackendError::Agent(kind, _)) if kind == "unauthorised" => {}
        Err(e) => return Err(e.into()),
    }
    let password = read_password(cli, "Password: ")?;
    save_token(&token_file, &agent.log_in(password.expose_secret())?)?;
    Ok(agent)
}

/// The running agent if there is one, else the node directory itself.
async fn backend(cli: &Cli) -> Result<Backend, Failure> {
    if let Some(stream) = Agent::connect(&node_path(cli)) {
        return Ok(Backend::Agent(Box::new(agent_session(cli, stream)?)));
    }
    Ok(Backend::Local(unlocked(cli).await?))
}

/// What a command prints: text for people, JSON for programs, or raw bytes.
enum Output {
    Text(String, serde_json::Value),
    Bytes(Zeroizing<Vec<u8>>, serde_json::Value),
    Exit(u8),
}

/// The first 8 characters of a version id, as git shows them; an id that
/// is shorter or not ASCII (a malformed answer) is shown whole.
fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn text(human: impl Into<String>, json: impl Into<serde_json::Value>) -> Output {
    Output::Text(human.into(), json.into())
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
        Command::Agent(command) => agent_command(cli, command).await,
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

/// Replace the saved session token (a new 0600 file).
fn save_token(file: &std::path::Path, token: &str) -> Result<(), Failure> {
    let _ = std::fs::remove_file(file);
    write_private(file, token.as_bytes())
}

/// A session with the running agent, or the error that none runs.
fn running_agent(cli: &Cli) -> Result<Agent, Failure> {
    let stream = Agent::connect(&node_path(cli)).ok_or_else(no_agent)?;
    agent_session(cli, stream)
}

fn no_agent() -> Failure {
    Failure {
        code: EX_UNAVAILABLE,
        kind: "no_agent".into(),
        message: "no agent is running for this node; start one with `polykey agent start`".into(),
    }
}

async fn wait_until(done: impl Fn() -> bool) -> bool {
    for _ in 0..300 {
        if done() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// The shortest auto-lock time (as the desktop's); debug builds (tests)
/// accept one second.
const MIN_AUTO_LOCK: std::time::Duration = if cfg!(debug_assertions) {
    std::time::Duration::from_secs(1)
} else {
    std::time::Duration::from_secs(30)
};

/// `30s`, `10m`, `2h` (or plain seconds) for `agent start --auto-lock`.
fn parse_auto_lock(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err("the auto-lock time is a number with s, m or h (e.g. 10m)".into()),
    };
    let seconds: u64 = number
        .parse()
        .map_err(|_| "the auto-lock time is a number with s, m or h (e.g. 10m)".to_owned())?;
    let time = std::time::Duration::from_secs(seconds.saturating_mul(scale));
    if time < MIN_AUTO_LOCK || time > std::time::Duration::from_secs(24 * 3600) {
        return Err(format!(
            "the auto-lock time must be between {}s and 24h",
            MIN_AUTO_LOCK.as_secs()
        ));
    }
    Ok(time)
}

/// Lock `node` once nobody used it for `idle` (client-API calls count).
fn spawn_auto_lock(node: Node, idle: std::time::Duration) {
    tokio::spawn(async move {
        let tick = (idle / 10).clamp(
            std::time::Duration::from_millis(250),
            std::time::Duration::from_secs(5),
        );
        loop {
            tokio::time::sleep(tick).await;
            let _ = node.lock_if_idle(idle).await;
        }
    });
}

async fn agent_command(cli: &Cli, command: &AgentCommand) -> Result<Output, Failure> {
    let path = node_path(cli);
    let running = Agent::connect(&path);
    match command {
        AgentCommand::Start { .. } if running.is_some() => Err(Failure {
            code: EX_UNAVAILABLE,
            kind: "agent_running".into(),
            message: "an agent is already running for this node".into(),
        }),
        AgentCommand::Start {
            foreground: true,
            auto_lock,
        } => {
            let options = NodeOptions {
                network: polykey_node::NetworkOptions::from_env(),
                ..node_options()
            };
            let node = Node::open(&path, options).await?;
            if node.status().state == polykey_node::NodeState::Uninitialised {
                return Err(NodeError::NotInitialised.into());
            }
            node.unlock(read_password(cli, "Password: ")?).await?;
            if let Some(idle) = *auto_lock {
                spawn_auto_lock(node.clone(), idle);
            }
            let (stop, stopped) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                if told_to_stop().await.is_ok() {
                    let _ = stop.send(true);
                }
            });
            eprintln!(
                "polykey: agent for node {} serving {}",
                node.status()
                    .node_id
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                node.socket_path().display()
            );
            node.serve_client_api(stopped).await?;
            node.lock().await?;
            Ok(text(
                "Agent stopped",
                serde_json::json!({ "status": "stopped" }),
            ))
        }
        AgentCommand::Start {
            foreground: false,
            auto_lock,
        } => {
            let password = read_password(cli, "Password: ")?;
            let exe = std::env::current_exe().map_err(|e| io_failure("find this program", e))?;
            let log = private_log(&path.join("agent.log"))?;
            let mut child = std::process::Command::new(exe);
            child
                .args(["agent", "start", "--foreground", "--node-path"])
                .arg(&path);
            if let Some(idle) = auto_lock {
                child.arg("--auto-lock").arg(idle.as_secs().to_string());
            }
            #[cfg(windows)]
            {
                // Its own process group, without the console: closing the
                // terminal or Ctrl-C there does not end the agent.
                use std::os::windows::process::CommandExt;
                const DETACHED_PROCESS: u32 = 0x0000_0008;
                const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
                child.creation_flags(DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP);
            }
            let mut child = child
                .env_remove("POLYKEY_PASSWORD_FILE")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| io_failure("start the agent", e))?;
            if let Some(mut stdin) = child.stdin.take() {
                let line = Zeroizing::new(format!("{}\n", password.expose_secret()));
                stdin
                    .write_all(line.as_bytes())
                    .map_err(|e| io_failure("hand the password to the agent", e))?;
            }
            let started = wait_until(|| Agent::connect(&path).is_some()).await;
            if !started {
                let _ = child.kill();
                let status = child.wait().ok().and_then(|s| s.code());
                return Err(Failure {
                    code: match status {
                        Some(code) if code > 0 && code < 256 => code as u8,
                        _ => EX_SOFTWARE,
                    },
                    kind: "agent_failed".into(),
                    message: format!(
                        "the agent did not start; see {}",
                        path.join("agent.log").display()
                    ),
                });
            }
            // Log in with the same password so the next commands need none.
            if let Some(stream) = Agent::connect(&path) {
                let mut agent = Agent::new(stream, Zeroizing::new(String::new()));
                save_token(
                    &backend::token_path(&path),
                    &agent.log_in(password.expose_secret())?,
                )?;
            }
            let pid = child.id();
            Ok(text(
                format!("Agent started (pid {pid})"),
                serde_json::json!({ "status": "running", "pid": pid }),
            ))
        }
        AgentCommand::Status => match running {
            None => Ok(text(
                "No agent is running",
                serde_json::json!({ "status": "stopped" }),
            )),
            Some(stream) => {
                let mut agent = agent_session(cli, stream)?;
                let status = agent.call("status", serde_json::json!({}))?;
                let state = status["state"].as_str().unwrap_or("unknown").to_owned();
                let id = status["nodeId"].as_str().unwrap_or_default().to_owned();
                Ok(text(
                    format!("Agent running; node {id} is {state}"),
                    serde_json::json!({ "status": "running", "state": state, "nodeId": id }),
                ))
            }
        },
        AgentCommand::Stop => {
            let stream = running.ok_or_else(no_agent)?;
            let mut agent = agent_session(cli, stream)?;
            agent.call("agent.stop", serde_json::json!({}))?;
            wait_until(|| Agent::connect(&path).is_none()).await;
            Ok(text(
                "Agent stopped",
                serde_json::json!({ "status": "stopped" }),
            ))
        }
        AgentCommand::Lock => {
            let stream = running.ok_or_else(no_agent)?;
            agent_session(cli, stream)?.call("agent.lock", serde_json::json!({}))?;
            Ok(text("Locked", serde_json::json!({})))
        }
        AgentCommand::Lockall => {
            let stream = running.ok_or_else(no_agent)?;
            agent_session(cli, stream)?.call("agent.lockall", serde_json::json!({}))?;
            let _ = std::fs::remove_file(backend::token_path(&path));
            Ok(text("Locked; every session ended", serde_json::json!({})))
        }
        AgentCommand::Unlock => {
            let stream = running.ok_or_else(no_agent)?;
            let mut agent = Agent::new(stream, Zeroizing::new(String::new()));
            let password = read_password(cli, "Password: ")?;
            save_token(
                &backend::token_path(&path),
                &agent.log_in(password.expose_secret())?,
            )?;
            Ok(text("Unlocked", serde_json::json!({})))
        }
    }
}

/// Open the agent's log for a new run: the old log is removed and a new
/// one created 0600 with `create_new`, which never follows a symlink and
/// never keeps the mode of a file an older version made 0644.
/// Wait until the agent is told to stop: Ctrl-C or SIGTERM on Unix; Ctrl-C,
/// Ctrl-Break, closing the console, logoff or shutdown on Windows.
async fn told_to_stop() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_close, ctrl_logoff, ctrl_shutdown};
        let (mut brk, mut close) = (ctrl_break()?, ctrl_close()?);
        let (mut logoff, mut shutdown) = (ctrl_logoff()?, ctrl_shutdown()?);
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = brk.recv() => {}
            _ = close.recv() => {}
            _ = logoff.recv() => {}
            _ = shutdown.recv() => {}
        }
    }
    Ok(())
}

fn private_log(path: &std::path::Path) -> Result<std::fs::File, Failure> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_failure("replace the agent log", e)),
    }
    polykey_os::fs::create_new_private(path).map_err(|e| io_failure("create the agent log", e))
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut file = polykey_os::fs::create_new_private(path)
        .map_err(|e| io_failure("create a private file", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_failure("write a private file", e))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_kdf_switch_works_only_in_a_debug_build() {
        assert_eq!(kdf_profile(false, Some("1")), KdfProfile::Default);
        assert_eq!(kdf_profile(true, Some("1")), KdfProfile::FastForTests);
        assert_eq!(kdf_profile(true, Some("yes")), KdfProfile::Default);
        assert_eq!(kdf_profile(true, None), KdfProfile::Default);
    }

    /// The built binary itself: under `cargo test --release` the switch
    /// set in the environment changes nothing.
    #[cfg(not(debug_assertions))]
    #[test]
    fn a_release_build_ignores_the_fast_kdf_switch() {
        std::env::set_var(FAST_KDF_ENV, "1");
        assert_eq!(node_options().kdf, KdfProfile::Default);
    }
}

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
/// `polykey backup`.
mod backup;
/// Pairing (`invite`, `join`) and the commands that change trust.
mod devices;
/// `secrets edit`: the secret in a private temporary file, in memory.
#[cfg(unix)]
mod edit;
/// `secrets edit` on Windows: only with `--allow-disk-tempfile`.
#[cfg(windows)]
#[path = "edit_windows.rs"]
mod edit;
/// Waiting for the editor of `secrets edit`, the same on every OS.
mod editor;
/// `polykey identities`: linked accounts and others' claims.
mod identities;
/// `polykey import` and `polykey export`: other password managers'
/// files.
mod import;
/// `polykey bootstrap` and `polykey keys`: the node's identity.
mod keys;
/// `polykey nodes`: the devices of this gestalt.
mod nodes;
/// `polykey notifications`: messages between the devices.
mod notifications;
/// What a command gives back: output, or a failure with its exit code.
mod output;
/// `polykey secrets`: secrets as `vault:path`, and `secrets env`.
mod secrets;
/// How a command reaches the node: password, node directory, agent session.
mod session;
/// `polykey vaults share…`: vaults shared with other people.
mod sharing;
/// `polykey vaults`: vaults and their history.
mod vaults;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use output::{Failure, Output, EX_SOFTWARE};
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

impl Cli {
    /// Whether the command reads its own input from standard input (a
    /// secret's value, a pairing code): the password cannot come from there
    /// as well, or the input would be taken for the password.
    fn stdin_is_input(&self) -> bool {
        match &self.command {
            Command::Secrets(secrets::Secrets::Write { .. }) => true,
            // The command run gets standard input.
            Command::Secrets(secrets::Secrets::Env { command, .. }) => !command.is_empty(),
            Command::Join { code, .. } => code.as_deref().is_none_or(|code| code == "-"),
            // A file argument that is standard input (`import csv
            // /dev/stdin`, `keys sign /dev/fd/0`).
            _ => std::env::args_os().skip(1).any(|arg| names_stdin(&arg)),
        }
    }
}

/// Whether a command-line argument (`--opt=value`, `-xvalue` or a value
/// alone) names standard input as a file: spelled as such, or (on Unix)
/// any path to the file standard input is (`//dev/stdin`, `/dev/./stdin`,
/// a file also redirected to it).
fn names_stdin(arg: &std::ffi::OsStr) -> bool {
    let arg = arg.to_string_lossy();
    let mut values = vec![arg.as_ref()];
    if let Some(option) = arg.strip_prefix("--") {
        values = option
            .split_once('=')
            .map(|(_, value)| value)
            .into_iter()
            .collect();
    } else if let Some(short) = arg.strip_prefix('-') {
        // A short option's value written against it.
        values.extend(short.char_indices().nth(1).map(|(at, _)| &short[at..]));
    }
    values.into_iter().any(|value| {
        matches!(value, "/dev/stdin" | "/dev/fd/0" | "/proc/self/fd/0") || is_stdin_file(value)
    })
}

/// Whether `path` is the file standard input reads (the same device and
/// inode).
#[cfg(unix)]
fn is_stdin_file(path: &str) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    if path.is_empty() {
        return false;
    }
    let Ok(stdin) = std::io::stdin().as_fd().try_clone_to_owned() else {
        return false;
    };
    match (
        std::fs::File::from(stdin).metadata(),
        std::fs::metadata(path),
    ) {
        (Ok(stdin), Ok(named)) => stdin.dev() == named.dev() && stdin.ino() == named.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn is_stdin_file(_: &str) -> bool {
    false
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
    Keys(keys::Keys),
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
        /// The pairing code (`polykey-pair:…`) or its four words; left out
        /// (or `-`), read from standard input (asked for at a terminal), so
        /// that no other user of this machine sees it among the processes.
        code: Option<String>,
        /// Accept the digits without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Devices of this gestalt.
    #[command(subcommand)]
    Nodes(nodes::NodesCommand),
    /// Notifications from the devices of this gestalt.
    #[command(subcommand)]
    Notifications(notifications::NotificationsCommand),
    /// Accounts (GitHub) linked to this node, and others' nodes found
    /// under theirs.
    #[command(subcommand)]
    Identities(identities::IdentitiesCommand),
    /// Import another password manager's export into a vault, in one
    /// commit.
    Import(import::ImportCommand),
    /// Write a vault's secrets to a plain-text file another password
    /// manager imports (NOT encrypted).
    Export(import::ExportCommand),
    /// Encrypted backups of your vaults with their history, and their
    /// restore.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

async fn run(cli: &Cli, warnings: &mut Vec<String>) -> Result<Output, Failure> {
    match &cli.command {
        Command::Bootstrap {
            recovery_code_out,
            recovery_code_file,
        } => {
            keys::bootstrap(
                cli,
                recovery_code_out.as_deref(),
                recovery_code_file.as_deref(),
            )
            .await
        }
        Command::Vaults(command) => vaults::run(cli, command).await,
        Command::Secrets(command) => secrets::run(cli, command, warnings).await,
        Command::Keys(command) => keys::run(cli, command).await,
        Command::Agent(command) => agent::run(cli, command).await,
        Command::Invite { no_wait, yes } => devices::invite(cli, *no_wait, *yes).await,
        Command::Join { code, yes } => devices::join(cli, code.as_deref(), *yes).await,
        Command::Nodes(command) => nodes::run(cli, command).await,
        Command::Notifications(command) => notifications::run(cli, command).await,
        Command::Identities(command) => identities::run(cli, command).await,
        Command::Import(command) => import::run(cli, command).await,
        Command::Export(command) => import::export(cli, command).await,
        Command::Backup(command) => backup::run(cli, command).await,
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
    }
}

/// Say something on stderr while a command runs (the foreground agent's
/// log); the command's own output is printed by `main` when it ends.
fn note(message: std::fmt::Arguments<'_>) {
    eprintln!("{message}");
}

fn main() -> ExitCode {
    // An agent's (or a command's) keys, password and secrets never reach
    // a crash dump.
    let _ = polykey_os::process::keep_out_of_core_dumps();
    // A panic on a worker thread is caught and reported as an error (the
    // storage engine can panic on a damaged file); one on the main thread
    // is a bug, said in one line. Neither prints a location or backtrace.
    std::panic::set_hook(Box::new(|info| {
        if std::thread::current().name() == Some("main") {
            let what = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            eprintln!("polykey: internal error: {what}");
        }
    }));
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
        eprintln!("polykey: warning: {}", output::one_line(warning));
    }
    let json = cli.format == Format::Json;
    let mut stdout = std::io::stdout().lock();
    match result {
        Ok(Output::Exit(code)) => ExitCode::from(code),
        Ok(Output::Text(human, value)) => {
            // Values for programs (`secrets env` for `eval`) are bytes.
            let out = if json {
                value.to_string()
            } else {
                output::shown(&human).into_owned()
            };
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
                eprintln!("polykey: {}", output::shown(&failure.message));
            }
            ExitCode::from(failure.code)
        }
    }
}

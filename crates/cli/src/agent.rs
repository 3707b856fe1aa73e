//! `polykey agent`: the node running headless, serving the CLI and
//! syncing; started in the background by re-executing this program with
//! `--foreground` and handing it the password over a pipe.

use std::io::Write;

use clap::Subcommand;
use polykey_node::{Node, NodeError, NodeOptions};
use zeroize::Zeroizing;

use crate::backend::{self, Agent};
use crate::output::{io_failure, text, Failure, Output, EX_SOFTWARE, EX_UNAVAILABLE};
use crate::session::{
    agent_session, log_in_anew, no_agent, node_options, node_path, read_password, save_token,
};
use crate::Cli;

#[derive(Subcommand)]
pub(crate) enum AgentCommand {
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
    /// Lock the agent's node (every session ends with it; unlock with the
    /// password).
    Lock,
    /// Lock the node, end every session, and remove this user's saved
    /// session token.
    Lockall,
    /// Log in to the running agent (unlocking its node if locked).
    Unlock,
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

pub(crate) async fn run(cli: &Cli, command: &AgentCommand) -> Result<Output, Failure> {
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
            crate::note(format_args!(
                "polykey: agent for node {} serving {}",
                node.status()
                    .node_id
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                node.socket_path().display()
            ));
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
            // Stopped once its process has let go of the node directory,
            // not when its socket goes (earlier: the next command found
            // the directory still in use).
            let gone = || Agent::connect(&path).is_none() && !polykey_node::NodeDir::in_use(&path);
            if !wait_until(gone).await {
                return Err(Failure {
                    code: EX_UNAVAILABLE,
                    kind: "agent_still_running".into(),
                    message: "the agent was told to stop but still holds the node after 30 s; \
                              try again, or end its process"
                        .into(),
                });
            }
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
            running.ok_or_else(no_agent)?;
            let password = read_password(cli, "Password: ")?;
            log_in_anew(cli, &password)?;
            Ok(text("Unlocked", serde_json::json!({})))
        }
    }
}

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

/// Open the agent's log for a new run: the old log is removed and a new
/// one created 0600 with `create_new`, which never follows a symlink and
/// never keeps the mode of a file an older version made 0644.
fn private_log(path: &std::path::Path) -> Result<std::fs::File, Failure> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_failure("replace the agent log", e)),
    }
    polykey_os::fs::create_new_private(path).map_err(|e| io_failure("create the agent log", e))
}

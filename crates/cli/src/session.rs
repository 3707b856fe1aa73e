//! How a command reaches its node: the password, the node directory opened
//! in-process, or a session with the running agent (its token saved 0600).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use polykey_node::{KdfProfile, Node, NodeError, NodeOptions, Password};
use zeroize::Zeroizing;

use crate::backend::{self, Agent, Backend, BackendError, Found};
use crate::output::{io_failure, usage, Failure, EX_NOPERM, EX_UNAVAILABLE};
use crate::Cli;

pub(crate) fn read_password(cli: &Cli, prompt: &str) -> Result<Password, Failure> {
    let text = match &cli.password_file {
        Some(file) => Zeroizing::new(
            std::fs::read_to_string(file).map_err(|e| io_failure("read the password file", e))?,
        ),
        None if !std::io::stdin().is_terminal() && cli.stdin_is_input() => {
            // A saved session that ended (a lock, its idle time, its
            // lifetime) would otherwise take a piped secret for the
            // password, and lose it.
            return Err(usage(
                "a password is needed, and standard input carries this command's input: \
                 give the password with --password-file (or POLYKEY_PASSWORD_FILE)",
            ));
        }
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
pub(crate) fn node_options() -> NodeOptions {
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

pub(crate) async fn open(cli: &Cli) -> Result<Node, Failure> {
    let path = cli
        .node_path
        .clone()
        .unwrap_or_else(polykey_node::default_node_path);
    Ok(Node::open(&path, node_options()).await?)
}

pub(crate) fn node_path(cli: &Cli) -> PathBuf {
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
pub(crate) fn agent_session(cli: &Cli, stream: backend::Stream) -> Result<Agent, Failure> {
    let token_file = backend::token_path(&node_path(cli));
    let token = Zeroizing::new(std::fs::read_to_string(&token_file).unwrap_or_default());
    let had_session = !token.is_empty();
    let mut agent = Agent::new(stream, token);
    let prompt = match agent.call("status", serde_json::json!({})) {
        Ok(_) => return Ok(agent),
        // Why a session that was saved ended, said before the prompt.
        Err(BackendError::Agent(kind, message)) if kind == "unauthorised" && had_session => {
            format!("polykey: {}\nPassword: ", crate::output::one_line(&message))
        }
        Err(BackendError::Agent(kind, _)) if kind == "unauthorised" => "Password: ".to_owned(),
        Err(e) => return Err(e.into()),
    };
    let password = read_password(cli, &prompt)?;
    log_in_anew(cli, &password)
}

/// A session with the running agent for `password`, its token saved. On a
/// new connection: the agent closes one that does not log in in time, and
/// a person may take longer at the prompt.
pub(crate) fn log_in_anew(cli: &Cli, password: &Password) -> Result<Agent, Failure> {
    let stream = agent_stream(cli)?;
    let mut agent = Agent::new(stream, Zeroizing::default());
    let token = agent.log_in(password.expose_secret())?;
    save_token(&backend::token_path(&node_path(cli)), &token)?;
    Ok(agent)
}

/// The running agent if there is one, else the node directory itself.
pub(crate) async fn backend(cli: &Cli) -> Result<Backend, Failure> {
    match Agent::find(&node_path(cli)) {
        Found::Ours(stream) => Ok(Backend::Agent(Box::new(agent_session(cli, stream)?))),
        Found::Theirs => Err(another_users_agent()),
        Found::Nothing => Ok(Backend::Local(unlocked(cli).await?)),
    }
}

/// Replace the saved session token (a new 0600 file).
pub(crate) fn save_token(file: &std::path::Path, token: &str) -> Result<(), Failure> {
    let _ = std::fs::remove_file(file);
    write_private(file, token.as_bytes())
}

/// A session with the running agent, or the error that none runs.
pub(crate) fn running_agent(cli: &Cli) -> Result<Agent, Failure> {
    let stream = agent_stream(cli)?;
    agent_session(cli, stream)
}

/// A connection to this user's running agent, or why there is none.
fn agent_stream(cli: &Cli) -> Result<backend::Stream, Failure> {
    match Agent::find(&node_path(cli)) {
        Found::Ours(stream) => Ok(stream),
        Found::Theirs => Err(another_users_agent()),
        Found::Nothing => Err(no_agent()),
    }
}

/// Another user listens where this node's agent would.
pub(crate) fn another_users_agent() -> Failure {
    Failure {
        code: EX_NOPERM,
        kind: "not_yours".into(),
        message: "another user's program listens where this node's agent would (is PK_NODE_PATH a \
                  folder others can write to?); nothing was sent to it"
            .into(),
    }
}

pub(crate) fn no_agent() -> Failure {
    Failure {
        code: EX_UNAVAILABLE,
        kind: "no_agent".into(),
        message: "no agent is running for this node; start one with `polykey agent start`".into(),
    }
}

pub(crate) fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut file = polykey_os::fs::create_new_private(path)
        .map_err(|e| io_failure("create a private file", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_failure("write a private file", e))
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

//! The local client API: a running node (the desktop app or a headless
//! agent) serves the CLI, one JSON-RPC 2.0 request per line, on a Unix
//! domain socket in its node directory on Linux and macOS (mode 0600; the
//! directory is 0700; [`unix`]) and on a named pipe on Windows that only
//! the current user can open ([`windows`]). [`endpoint`] says where.
//!
//! `session.unlock` trades the password for a session token; every other
//! method needs a valid token in `params.token`. A token ends at every lock
//! (including auto-lock), at a change of password, after [`SESSION_IDLE`]
//! without a call and [`SESSION_LIFETIME`] after it was issued (time asleep
//! counts); after that the client logs in again. `agent.lockall` revokes
//! every token and locks the node. Secret values travel as base64.
//!
//! A connection without a live session (new, or its session ended) may send
//! only short lines ([`MAX_UNAUTHENTICATED_LINE`]) and must log in within
//! [`LOGIN_WITHIN`]; at most [`MAX_UNAUTHENTICATED_CONNECTIONS`] such
//! connections are open at once (of [`MAX_CONNECTIONS`] in all), and one
//! with a session is closed after [`SESSION_IDLE`] without a request
//! unless its token was used on another meanwhile.
//! Password checks run one at a time in the whole process, so parallel
//! attempts cannot each claim Argon2's 64 MiB.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use data_encoding::{BASE64, HEXLOWER};
use serde_json::{json, Value};

use crate::wiped_json::WipedJson;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{timeout_at, Instant};
use zeroize::Zeroizing;

use crate::clock::Moment;
use crate::error::NodeError;
use crate::node::{Node, TokenTimes};

/// The Unix domain socket transport (Linux, macOS).
#[cfg(unix)]
mod unix;
/// The named pipe transport (Windows).
#[cfg(windows)]
mod windows;

#[cfg(unix)]
use unix::Listener;
#[cfg(windows)]
use windows::Listener;

/// The socket's file name in the node directory (Unix).
pub const SOCKET_NAME: &str = "client.sock";

/// Where the client API of the node in `node_dir` listens: the socket's
/// path on Unix, the pipe's name (`\\.\pipe\polykey-…`, one per node
/// directory) on Windows. The CLI connects to the same.
pub fn endpoint(node_dir: &Path) -> PathBuf {
    #[cfg(unix)]
    {
        node_dir.join(SOCKET_NAME)
    }
    #[cfg(windows)]
    {
        PathBuf::from(windows::pipe_name(node_dir))
    }
}
/// The longest request line accepted from an authenticated connection (a
/// 16 MiB secret in base64, and room).
const MAX_LINE: usize = 24 * 1024 * 1024;
/// The longest request line accepted before a connection has authenticated:
/// a login or a call with a token is far shorter.
pub const MAX_UNAUTHENTICATED_LINE: usize = 64 * 1024;
/// Connections that have not authenticated yet, at most; one more is
/// refused until one of them logs in or closes.
pub const MAX_UNAUTHENTICATED_CONNECTIONS: usize = 16;
/// Open connections, at most.
pub const MAX_CONNECTIONS: usize = 128;
/// A session token ends after this long without a call on it.
pub const SESSION_IDLE: Duration = Duration::from_secs(15 * 60);
/// A session token ends this long after it was issued, however much it is
/// used (as 1Password's CLI sessions do): a token file copied once is not
/// good for ever. A client with the password logs in again.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// A connection without a live session is closed unless it logs in (or
/// shows a live token) within this long of connecting or of its session
/// ending: connections that never log in would hold the places of those
/// that do. Waiting for the password check itself does not count.
pub const LOGIN_WITHIN: Duration = Duration::from_secs(30);

/// Password derivations (Argon2id, 64 MiB each) in this process: one at a
/// time, so parallel login attempts wait instead of each taking 64 MiB.
static DERIVATIONS: Semaphore = Semaphore::const_new(1);

/// How the client API serves (tests shorten the times).
#[derive(Clone, Debug)]
pub struct ClientApiOptions {
    /// A token ends after this long without a call ([`SESSION_IDLE`]).
    pub session_idle: Duration,
    /// A token ends this long after it was issued ([`SESSION_LIFETIME`]).
    pub session_lifetime: Duration,
    /// A connection without a session must log in within this long
    /// ([`LOGIN_WITHIN`]).
    pub login_within: Duration,
    /// Whether `agent.stop` stops this server: not the desktop app's, which
    /// serves for as long as the app runs (the CLI could neither reach the
    /// node then nor open its directory, which the app holds).
    pub stoppable: bool,
}

impl Default for ClientApiOptions {
    fn default() -> Self {
        Self {
            session_idle: SESSION_IDLE,
            session_lifetime: SESSION_LIFETIME,
            login_within: LOGIN_WITHIN,
            stoppable: true,
        }
    }
}

/// Why a call without a valid session was refused.
#[derive(Debug)]
enum Refused {
    /// No such token, or it ended at a lock or a change of password.
    NoSession,
    /// The token was not used for the idle time.
    Idle,
    /// The token reached its lifetime.
    Expired,
}

/// What every connection of one server shares.
struct Server {
    node: Node,
    options: ClientApiOptions,
    unauthenticated: Arc<Semaphore>,
    stopper: tokio::sync::watch::Sender<bool>,
}

impl Server {
    /// Check `token` and note its use.
    fn check_session(&self, token: &str) -> Result<(), Refused> {
        self.node.session(token, &self.options, true)?;
        // A call from the CLI is something a person did.
        self.node.touch();
        Ok(())
    }

    /// Run a password derivation, one at a time in the whole process.
    async fn derive<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let _permit = DERIVATIONS.acquire().await;
        #[cfg(test)]
        let _counted = tests::Deriving::start();
        work.await
    }
}

impl Node {
    /// Check `password`, unlocking the node if it is locked.
    async fn log_in(&self, password: crate::Password) -> Result<(), NodeError> {
        match self.status().state {
            crate::NodeState::Locked => self.unlock(password).await,
            crate::NodeState::Unlocked => self.key_encryption_key(password).await.map(drop),
            crate::NodeState::Uninitialised => Err(NodeError::NotInitialised),
        }
    }

    /// A fresh session token for a login whose password was checked
    /// against the password as of `changes` ([`Node::password_changes`]),
    /// issued only while the node is unlocked and with its state held: a
    /// lock landing between the login and the token would otherwise leave
    /// a token that works again after the next unlock, and a change of
    /// password one for the old password.
    fn new_token(&self, changes: u64) -> Result<String, NodeError> {
        let mut bytes = [0u8; 32];
        polykey_keys::random_bytes(&mut bytes);
        let token = HEXLOWER.encode(&bytes);
        self.while_unlocked(|| {
            if self.password_changes() != changes {
                return Err(NodeError::WrongPassword);
            }
            let times = TokenTimes {
                issued: Moment::now(),
                used: Moment::now(),
            };
            self.inner.tokens().0.insert(token.clone(), times);
            Ok(())
        })??;
        Ok(token)
    }

    /// Changes of password so far in this process.
    fn password_changes(&self) -> u64 {
        self.inner
            .password_changes
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether `token` is a live session under `options`' limits, noting
    /// its use if `using`. Then tokens found ended are dropped, this one
    /// (its next use says why it ended) and any other (nothing else sweeps
    /// them on a node that never locks).
    fn session(&self, token: &str, options: &ClientApiOptions, using: bool) -> Result<(), Refused> {
        let ended = |times: &TokenTimes| {
            if times.issued.elapsed() >= options.session_lifetime {
                Some(Refused::Expired)
            } else if times.used.elapsed() >= options.session_idle {
                Some(Refused::Idle)
            } else {
                None
            }
        };
        let mut tokens = self.inner.tokens();
        let verdict = match tokens.0.get_mut(token) {
            None => Err(Refused::NoSession),
            Some(times) => match ended(times) {
                Some(refused) => Err(refused),
                None => {
                    if using {
                        times.used = Moment::now();
                    }
                    Ok(())
                }
            },
        };
        if using {
            tokens.0.retain(|_, times| ended(times).is_none());
        }
        verdict
    }

    /// Revoke every session token.
    pub fn revoke_tokens(&self) {
        self.inner.end_client_sessions();
    }

    /// Where this node's client API listens ([`endpoint`]).
    pub fn socket_path(&self) -> PathBuf {
        endpoint(self.path())
    }

    /// Serve the client API until `stop` fires (or `agent.stop` is called).
    pub async fn serve_client_api(
        &self,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), NodeError> {
        self.serve_client_api_with(stop, ClientApiOptions::default())
            .await
    }

    /// [`Node::serve_client_api`] with `options`.
    pub async fn serve_client_api_with(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
        options: ClientApiOptions,
    ) -> Result<(), NodeError> {
        let mut listener = Listener::bind(self.path())?;
        let (stopper, _) = tokio::sync::watch::channel(false);
        let mut stopped = stopper.subscribe();
        let server = Arc::new(Server {
            node: self.clone(),
            options,
            unauthenticated: Arc::new(Semaphore::new(MAX_UNAUTHENTICATED_CONNECTIONS)),
            stopper,
        });
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok(stream) = accepted else { continue };
                    let server = Arc::clone(&server);
                    let permits = Arc::clone(&connections)
                        .try_acquire_owned()
                        .ok()
                        .zip(Arc::clone(&server.unauthenticated).try_acquire_owned().ok());
                    tokio::spawn(async move {
                        match permits {
                            Some((connection, unauthenticated)) => {
                                server.serve_connection(stream, unauthenticated).await;
                                drop(connection);
                            }
                            None => refuse(stream).await,
                        }
                    });
                }
                _ = stop.changed() => break,
                _ = stopped.changed() => break,
            }
        }
        listener.close();
        Ok(())
    }
}

impl Server {
    async fn serve_connection<S>(&self, stream: S, unauthenticated: OwnedSemaphorePermit)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (read, mut write) = tokio::io::split(stream);
        let mut reader = BufReader::new(read);
        let login_by = || Instant::now() + self.options.login_within;
        // The token this connection last used, while it may still live.
        let mut session: Option<Zeroizing<String>> = None;
        // While the connection has no live session: its place among those
        // that have not logged in, and when it must have.
        let mut waiting = Some((unauthenticated, login_by()));
        // How much longer than `login_within` waiting for answers may make
        // the time to log in (once over, wrong passwords one after another
        // no longer keep the place).
        let mut grace = self.options.login_within;
        loop {
            let live = session
                .as_deref()
                .is_some_and(|token| self.node.session(token, &self.options, false).is_ok());
            if live {
                waiting = None;
            } else {
                session = None;
                if waiting.is_none() {
                    // Its session ended (a lock, the idle time, the
                    // lifetime): it is a connection not logged in again,
                    // with a new place and a new time to log in.
                    let Ok(permit) = Arc::clone(&self.unauthenticated).try_acquire_owned() else {
                        let _ = timeout_at(login_by(), refuse(&mut write)).await;
                        return;
                    };
                    waiting = Some((permit, login_by()));
                    grace = self.options.login_within;
                }
            }
            // A connection with a session that sends nothing for the idle
            // time is closed, unless its token was used meanwhile on
            // another (a long `secrets edit` while a shell hook reads
            // secrets): it is looked at again then.
            let until = match &waiting {
                Some((_, deadline)) => *deadline,
                None => Instant::now() + self.options.session_idle,
            };
            let limit = if live {
                MAX_LINE
            } else {
                MAX_UNAUTHENTICATED_LINE
            };
            let mut line = Zeroizing::new(Vec::new());
            let mut bounded = (&mut reader).take(limit as u64 + 1);
            let n = match timeout_at(until, bounded.read_until(b'\n', &mut line)).await {
                Err(_) if live && line.is_empty() => continue,
                Err(_) | Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(n)) => n,
            };
            if n > limit {
                // The rest of the line is never read: the connection ends.
                let response = error_response(Value::Null, -32600, "request too large", None);
                let _ = timeout_at(until, write_response(&mut write, &response)).await;
                return;
            }
            // Requests and answers carry passwords and secrets: both are
            // wiped once written.
            let answering = Instant::now();
            let response = match serde_json::from_slice::<Value>(&line) {
                Ok(request) => {
                    let (response, token) = self.answer_client(WipedJson(request)).await;
                    session = token;
                    response
                }
                Err(_) => WipedJson(error_response(Value::Null, -32700, "not JSON", None)),
            };
            // Waiting for the answer (a password check queued behind
            // others) does not count against the time to log in.
            if let Some((_, deadline)) = waiting.as_mut() {
                let extra = answering.elapsed().min(grace);
                grace -= extra;
                *deadline += extra;
            }
            // A client that does not read its answers holds its place no
            // longer than it may wait.
            let until = match (&session, &waiting) {
                (Some(_), _) => Instant::now() + self.options.session_idle,
                (None, Some((_, deadline))) => *deadline,
                (None, None) => login_by(),
            };
            match timeout_at(until, write_response(&mut write, &response)).await {
                Ok(Ok(())) => {}
                Err(_) | Ok(Err(_)) => return,
            }
        }
    }

    /// The answer to `request`, and the token of the session the
    /// connection holds after it, if any.
    async fn answer_client(
        &self,
        mut request: WipedJson,
    ) -> (WipedJson, Option<Zeroizing<String>>) {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let mut params = request.take("params");
        if params.is_null() {
            params = WipedJson(json!({}));
        }
        let Some(method) = request.get("method").and_then(Value::as_str) else {
            return (
                WipedJson(error_response(id, -32600, "no method", None)),
                None,
            );
        };
        let token = Zeroizing::new(
            params
                .get("token")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        );
        if method != "session.unlock" {
            if let Err(refused) = self.check_session(&token) {
                let message = match refused {
                    Refused::NoSession => "no valid session (sessions end whenever the node \
                         locks or its password changes); log in again"
                        .to_owned(),
                    Refused::Idle => "the session expired after being idle; log in again".into(),
                    Refused::Expired => format!(
                        "the session reached its limit of {} (a session ends that long after \
                         its login, however much it is used); log in again",
                        span(self.options.session_lifetime)
                    ),
                };
                return (
                    WipedJson(error_response(id, -32001, &message, Some(UNAUTHORISED))),
                    None,
                );
            }
        }
        let result = self.call_client(method, &params).await;
        // A login that succeeded, or any call with a valid token, leaves the
        // connection with a session, unless the call ended the sessions.
        let session = match method {
            "session.unlock" => result
                .as_ref()
                .ok()
                .and_then(|answer| answer.get("token"))
                .and_then(Value::as_str)
                .map(|new| Zeroizing::new(new.to_owned())),
            "agent.lock" | "agent.lockall" | "agent.stop" | "keys.password" => None,
            _ => Some(token),
        };
        let response = match result {
            Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
            Err(Call::Node(e)) => {
                let code = serde_json::to_value(e.code()).unwrap_or(Value::Null);
                json!({
                    "jsonrpc": "2.0", "id": id,
                    "error": { "code": -32000, "message": e.to_string(), "data": { "code": code } }
                })
            }
            Err(Call::Params(what)) => error_response(id, -32602, what, None),
            Err(Call::Unknown) => error_response(id, -32601, "no such method", None),
        };
        (WipedJson(response), session)
    }

    /// Methods that concern sessions, the server or a password derivation;
    /// the rest are the node's.
    async fn call_client(&self, method: &str, params: &Value) -> Result<Value, Call> {
        let text = |name: &'static str| -> Result<Zeroizing<String>, Call> {
            params
                .get(name)
                .and_then(Value::as_str)
                .map(|s| Zeroizing::new(s.to_owned()))
                .ok_or(Call::Params(name))
        };
        Ok(match method {
            "session.unlock" => {
                let password = text("password")?;
                // Counted once its turn for the check has come, so a change
                // made while it queued does not refuse the new password.
                let changes = self
                    .derive(async {
                        let changes = self.node.password_changes();
                        self.node
                            .log_in(password.as_str().into())
                            .await
                            .map(|()| changes)
                    })
                    .await?;
                // Refused if a lock or a change of password came in since
                // the password was checked.
                let token = self.node.new_token(changes)?;
                self.node.touch();
                json!({ "token": token })
            }
            "keys.password" => {
                let old = text("password")?;
                let new = text("newPassword")?;
                self.derive(
                    self.node
                        .change_password(old.as_str().into(), new.as_str().into()),
                )
                .await?;
                json!({})
            }
            "backup.create" | "backup.read" | "backup.restore" => {
                let file = absolute(text("file")?.to_string(), "file")?;
                let passphrase = crate::Password::new(text("passphrase")?.to_string());
                let vaults = match params.get("vaults") {
                    None | Some(Value::Null) => None,
                    Some(list) => Some(
                        serde_json::from_value::<Vec<String>>(list.clone())
                            .map_err(|_| Call::Params("vaults"))?,
                    ),
                };
                // Each opens with an Argon2id derivation: one at a time.
                let answer = match method {
                    "backup.create" => self
                        .derive(self.node.create_backup(file, passphrase, vaults))
                        .await
                        .map(|made| serde_json::to_value(made.manifest.to_dto(made.bytes))),
                    "backup.read" => self
                        .derive(self.node.read_backup(file, passphrase))
                        .await
                        .map(|manifest| serde_json::to_value(manifest.to_dto(0))),
                    _ => self
                        .derive(self.node.restore_backup_dto(file, passphrase))
                        .await
                        .map(serde_json::to_value),
                };
                answer?.unwrap_or(Value::Null)
            }
            "agent.stop" if !self.options.stoppable => {
                return Err(Call::Node(NodeError::Invalid(
                    "the desktop app serves this node while it runs; quit the app to stop it"
                        .into(),
                )))
            }
            "agent.stop" => {
                let _ = self.stopper.send(true);
                json!({})
            }
            "agent.lock" | "agent.lockall" => {
                self.node.revoke_tokens();
                self.node.lock().await?;
                self.node.revoke_tokens();
                json!({})
            }
            _ => return self.node.call_client(method, params).await,
        })
    }
}

impl Node {
    async fn call_client(&self, method: &str, params: &Value) -> Result<Value, Call> {
        let text = |name: &'static str| -> Result<String, Call> {
            params
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or(Call::Params(name))
        };
        let bytes = |name: &'static str| -> Result<Zeroizing<Vec<u8>>, Call> {
            let encoded = Zeroizing::new(text(name)?);
            BASE64
                .decode(encoded.as_bytes())
                .map(Zeroizing::new)
                .map_err(|_| Call::Params(name))
        };
        Ok(match method {
            "status" => {
                let status = self.status();
                json!({ "state": format!("{:?}", status.state).to_lowercase(),
                        "nodeId": status.node_id.map(|n| n.to_string()) })
            }
            "vaults.list" => {
                let vaults = self.vaults().await?;
                Value::Array(
                    vaults
                        .into_iter()
                        .map(|v| json!({ "name": v.name, "id": v.id.to_string() }))
                        .collect(),
                )
            }
            "vaults.create" => {
                let info = self.create_vault(text("name")?).await?;
                json!({ "name": info.name, "id": info.id.to_string() })
            }
            "vaults.export" => {
                let target = absolute(text("directory")?, "directory")?;
                self.export_vault(text("vault")?, target).await?;
                json!({})
            }
            "vaults.rename" => {
                self.rename_vault(text("vault")?, text("newName")?).await?;
                json!({})
            }
            "vaults.delete" => {
                self.delete_vault(text("vault")?).await?;
                json!({})
            }
            "vaults.log" => {
                let limit = params
                    .get("limit")
                    .and_then(Value::as_u64)
                    .map(|n| n as usize);
                let log = self.vault_log(text("vault")?, limit).await?;
                Value::Array(
                    log.into_iter()
                        .map(|c| json!({ "id": c.id, "author": c.author, "time": c.time, "message": c.message }))
                        .collect(),
                )
            }
            "vaults.version" => {
                json!({ "version": self.restore(text("vault")?, text("version")?, None).await? })
            }
            "nodes.add" => {
                let node: crate::NodeId = text("nodeId")?
                    .parse()
                    .map_err(|_| Call::Params("nodeId"))?;
                self.connect(node, text("address")?).await?;
                json!({})
            }
            "notifications.send" => {
                let node: crate::NodeId = text("nodeId")?
                    .parse()
                    .map_err(|_| Call::Params("nodeId"))?;
                self.send_notification(node, text("message")?).await?;
                json!({})
            }
            "notifications.read" => {
                let unread = params
                    .get("unread")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                serde_json::to_value(self.read_notifications(unread).await?).unwrap_or(Value::Null)
            }
            "notifications.clear" => json!({ "cleared": self.clear_notifications().await? }),
            "identities.login.start" => {
                serde_json::to_value(self.start_identity_login(&text("provider")?).await?)
                    .unwrap_or(Value::Null)
            }
            "identities.login.finish" => {
                json!({ "identity": self.finish_identity_login(&text("provider")?).await? })
            }
            "identities.claim" => {
                serde_json::to_value(self.claim_identity(&text("provider")?).await?)
                    .unwrap_or(Value::Null)
            }
            "identities.list" => {
                serde_json::to_value(self.linked_identities().await?).unwrap_or(Value::Null)
            }
            "identities.trust" => {
                serde_json::to_value(self.trust(&text("target")?).await?).unwrap_or(Value::Null)
            }
            "identities.untrust" => json!({ "untrusted": self.untrust(&text("target")?).await? }),
            "identities.allow" | "identities.disallow" => {
                let permission: crate::people::Permission = text("permission")?.parse()?;
                let allow = method == "identities.allow";
                serde_json::to_value(
                    self.set_permission(&text("target")?, permission, allow)
                        .await?,
                )
                .unwrap_or(Value::Null)
            }
            "identities.people" => {
                serde_json::to_value(self.people().await?).unwrap_or(Value::Null)
            }
            "identities.contact" => json!({ "code": self.contact_code().await? }),
            "vaults.share" => {
                let write = params
                    .get("write")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let shared = self
                    .share_vault(&text("vault")?, &text("target")?, write)
                    .await?;
                json!({ "person": shared.grant.person,
                        "nodes": shared.grant.nodes.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "write": shared.grant.write, "offered": shared.offered })
            }
            "vaults.unshare" => {
                json!({ "unshared": self.unshare_vault(&text("vault")?, &text("target")?).await? })
            }
            "vaults.permissions" => self.vault_access(&text("vault")?).await?.to_json(),
            "vaults.scan" => Value::Array(
                self.scan(&text("target")?)
                    .await?
                    .into_iter()
                    .map(|v| json!({ "id": v.id, "name": v.name, "write": v.write }))
                    .collect(),
            ),
            "vaults.clone" => {
                let info = match params.get("target").and_then(Value::as_str) {
                    Some(target) => self.clone_shared(target, &text("id")?).await?,
                    None => self.accept_share(&text("id")?).await?,
                };
                json!({ "name": info.name, "id": info.id.to_string() })
            }
            "vaults.pull" => json!({ "changed": self.pull_shared(&text("vault")?).await? }),
            "identities.discover" => {
                serde_json::to_value(self.discover_identity(&text("identity")?).await?)
                    .unwrap_or(Value::Null)
            }
            "identities.search" => serde_json::to_value(
                self.search_identities(&text("provider")?, &text("query")?)
                    .await?,
            )
            .unwrap_or(Value::Null),
            "identities.get" => serde_json::to_value(self.lookup_gestalt(&text("target")?).await?)
                .unwrap_or(Value::Null),
            "identities.refresh" => {
                serde_json::to_value(self.refresh_person(&text("target")?).await?)
                    .unwrap_or(Value::Null)
            }
            "nodes.find" => {
                let node: crate::NodeId = text("nodeId")?
                    .parse()
                    .map_err(|_| Call::Params("nodeId"))?;
                json!({ "addresses": self.find_node(node).await? })
            }
            "nodes.ping" => {
                let node: crate::NodeId = text("nodeId")?
                    .parse()
                    .map_err(|_| Call::Params("nodeId"))?;
                json!({ "ms": self.ping(node).await?.as_secs_f64() * 1000.0 })
            }
            "secrets.list" => {
                let dir = params.get("dir").and_then(Value::as_str).map(str::to_owned);
                json!(self.list_secrets(text("vault")?, dir).await?)
            }
            "secrets.paths" => json!(self.list_paths(text("vault")?).await?),
            "secrets.get" => {
                let value = self.get_secret(text("vault")?, text("path")?, None).await?;
                json!({ "value": BASE64.encode(&value) })
            }
            "secrets.write" => {
                json!({ "version": self.write_secret(text("vault")?, text("path")?, bytes("value")?).await? })
            }
            "secrets.writeMany" => {
                let list = params
                    .get("secrets")
                    .and_then(Value::as_array)
                    .ok_or(Call::Params("secrets"))?;
                let mut secrets = Vec::with_capacity(list.len());
                for item in list {
                    let path = item.get("path").and_then(Value::as_str);
                    let value = item.get("value").and_then(Value::as_str);
                    let (Some(path), Some(value)) = (path, value) else {
                        return Err(Call::Params("secrets"));
                    };
                    let value = BASE64
                        .decode(value.as_bytes())
                        .map(Zeroizing::new)
                        .map_err(|_| Call::Params("secrets"))?;
                    secrets.push((path.to_owned(), value));
                }
                json!({ "version": self.write_secrets(text("vault")?, secrets).await? })
            }
            "secrets.create" => {
                json!({ "version": self.create_secret(text("vault")?, text("path")?, bytes("value")?).await? })
            }
            "secrets.remove" => {
                let recursive = params
                    .get("recursive")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                json!({ "version": self.remove_secret(text("vault")?, text("path")?, recursive).await? })
            }
            "secrets.mkdir" => {
                json!({ "version": self.make_directory(text("vault")?, text("path")?).await? })
            }
            "secrets.rename" => {
                json!({ "version": self.rename_secret(text("vault")?, text("path")?, text("newPath")?).await? })
            }
            "secrets.stat" => {
                let stat = self.stat_secret(text("vault")?, text("path")?).await?;
                let kind = match stat.kind {
                    polykey_vaults::EntryKind::Secret => "secret",
                    polykey_vaults::EntryKind::Directory => "directory",
                };
                json!({ "path": stat.path, "kind": kind, "size": stat.size })
            }
            "keys.decrypt" => {
                let plain = self.decrypt(text("data")?).await?;
                json!({ "value": BASE64.encode(&plain) })
            }
            "keys.sign" => {
                json!({ "signature": self.sign_base64(bytes("message")?.to_vec()).await? })
            }
            "pairing.invite" => {
                let invitation = self.invite().await?;
                json!({ "code": invitation.to_code(), "words": invitation.words(),
                        "expiresAt": invitation.expires_at })
            }
            "pairing.state" => {
                serde_json::to_value(crate::api::PairingStateDto::from(self.pairing_state()))
                    .unwrap_or(Value::Null)
            }
            "pairing.join" => {
                let code = Zeroizing::new(text("code")?);
                let (device, fingerprint) = self.join(&code).await?;
                json!({ "device": device.to_string(), "fingerprint": fingerprint })
            }
            "pairing.confirm" => {
                let shown = params.get("fingerprint").and_then(Value::as_str);
                self.confirm_pairing_of(accept(params), shown)?;
                json!({})
            }
            "pairing.confirmJoin" => {
                self.confirm_join(accept(params)).await?;
                json!({})
            }
            "vaults.deleted" => {
                serde_json::to_value(self.deleted_vaults_dto().await?).unwrap_or(Value::Null)
            }
            "vaults.restore" => {
                serde_json::to_value(self.restore_deleted_vault(text("id")?).await?)
                    .unwrap_or(Value::Null)
            }
            "nodes.revoke" => {
                self.revoke_device_text(text("nodeId")?).await?;
                json!({})
            }
            "nodes.keep" => {
                self.keep_device_text(text("nodeId")?).await?;
                json!({})
            }
            "nodes.notices" => {
                serde_json::to_value(self.device_notices_dto().await?).unwrap_or(Value::Null)
            }
            "nodes.removalEffect" => {
                serde_json::to_value(self.removal_effect_dto(text("nodeId")?).await?)
                    .unwrap_or(Value::Null)
            }
            "nodes.disputes" => {
                serde_json::to_value(self.device_disputes_dto().await?).unwrap_or(Value::Null)
            }
            "nodes.name" => {
                self.set_device_name(text("name")?).await?;
                json!({})
            }
            "nodes.devices" => {
                serde_json::to_value(self.devices_dto().await?).unwrap_or(Value::Null)
            }
            "sync.status" => {
                serde_json::to_value(self.sync_status_dto().await?).unwrap_or(Value::Null)
            }
            _ => return Err(Call::Unknown),
        })
    }
}

enum Call {
    Node(NodeError),
    Params(&'static str),
    Unknown,
}

impl From<NodeError> for Call {
    fn from(error: NodeError) -> Self {
        Self::Node(error)
    }
}

/// The `accept` parameter of a confirmation (absent: no).
/// A file or directory (`what`) the agent reads or writes for the caller,
/// as the same user: a relative path would be taken from the agent's
/// directory, not the caller's.
fn absolute(path: String, what: &str) -> Result<std::path::PathBuf, Call> {
    let path = std::path::PathBuf::from(path);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(Call::Node(NodeError::Invalid(format!(
            "give the {what} as an absolute path"
        ))))
    }
}

fn accept(params: &Value) -> bool {
    params
        .get("accept")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn error_response(id: Value, code: i64, message: &str, kind: Option<&str>) -> Value {
    let data = kind.map(|k| json!({ "code": k }));
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message, "data": data } })
}

/// `time` in words: "12 hours", "15 minutes".
fn span(time: Duration) -> String {
    let counted = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match time.as_secs() {
        s if s >= 3600 && s % 3600 == 0 => counted(s / 3600, "hour"),
        s if s >= 60 => counted(s / 60, "minute"),
        s if s >= 1 => counted(s, "second"),
        _ => format!("{} ms", time.as_millis()),
    }
}

/// Write one response line.
async fn write_response(
    write: &mut (impl AsyncWrite + Unpin),
    response: &Value,
) -> std::io::Result<()> {
    let mut out = Zeroizing::new(serde_json::to_vec(response).unwrap_or_default());
    out.push(b'\n');
    write.write_all(&out).await
}

/// Turn away a connection over the limits.
async fn refuse(mut stream: impl AsyncWrite + Unpin) {
    let response = error_response(
        Value::Null,
        -32003,
        "too many connections to the agent; try again",
        Some("busy"),
    );
    let _ = write_response(&mut stream, &response).await;
}

/// The error code a client sees for an invalid or revoked token.
pub const UNAUTHORISED: &str = "unauthorised";

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixStream;

    use super::*;

    /// Derivations running now, and the most ever at once.
    static RUNNING: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    /// Counts one running derivation while it lives.
    pub(super) struct Deriving;

    impl Deriving {
        pub(super) fn start() -> Self {
            let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
            PEAK.fetch_max(now, Ordering::SeqCst);
            Self
        }
    }

    impl Drop for Deriving {
        fn drop(&mut self) {
            RUNNING.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A lock that lands between a login's password check and its token
    /// leaves no token behind (it would work again after the next unlock),
    /// nor does a change of password.
    #[tokio::test]
    async fn no_token_is_issued_while_locked_or_for_a_password_changed_since() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::node::test_node(dir.path(), "correct horse battery").await;
        node.lock().await.unwrap();
        assert!(matches!(node.new_token(0), Err(NodeError::Locked)));
        node.unlock("correct horse battery".into()).await.unwrap();
        assert!(node.inner.tokens().0.is_empty(), "nothing kept from before");
        // A login checked before a change of password gets no token.
        let before = node.password_changes();
        node.change_password(
            "correct horse battery".into(),
            "a new and longer one".into(),
        )
        .await
        .unwrap();
        assert!(matches!(
            node.new_token(before),
            Err(NodeError::WrongPassword)
        ));
        let token = node.new_token(node.password_changes()).unwrap();
        let options = ClientApiOptions::default();
        assert!(node.session(&token, &options, false).is_ok());
        node.lock().await.unwrap();
        assert!(matches!(
            node.session(&token, &options, false),
            Err(Refused::NoSession)
        ));
    }

    async fn wrong_login(path: PathBuf) -> Value {
        let stream = UnixStream::connect(path).await.unwrap();
        let (read, mut write) = stream.into_split();
        let request = json!({ "jsonrpc": "2.0", "id": 1, "method": "session.unlock",
                              "params": { "password": "not the password at all" } });
        let mut line = serde_json::to_vec(&request).unwrap();
        line.push(b'\n');
        write.write_all(&line).await.unwrap();
        let mut answer = String::new();
        BufReader::new(read).read_line(&mut answer).await.unwrap();
        serde_json::from_str(&answer).unwrap()
    }

    /// Four logins at once with the real 64 MiB Argon2id: each is checked,
    /// but never two derivations at the same time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_logins_derive_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path(), crate::NodeOptions::default())
            .await
            .unwrap();
        node.create("correct horse battery".into()).await.unwrap();
        node.lock().await.unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let server = tokio::spawn({
            let node = node.clone();
            async move { node.serve_client_api(stopped).await }
        });
        while !node.socket_path().exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let logins: Vec<_> = (0..4)
            .map(|_| tokio::spawn(wrong_login(node.socket_path())))
            .collect();
        for login in logins {
            let answer = login.await.unwrap();
            assert_eq!(
                answer.pointer("/error/data/code"),
                Some(&json!("wrong_password")),
                "{answer}"
            );
        }
        assert_eq!(PEAK.load(Ordering::SeqCst), 1, "derivations at once");
        stop.send(true).unwrap();
        server.await.unwrap().unwrap();
    }
}

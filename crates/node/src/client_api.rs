//! The local client API: a running node (the desktop app or a headless
//! agent) serves the CLI on a Unix domain socket in its node directory
//! (mode 0600; the directory is 0700), one JSON-RPC 2.0 request per line.
//!
//! `session.unlock` trades the password for a session token; every other
//! method needs a valid token in `params.token`. `agent.lockall` revokes
//! every token and locks the node. Secret values travel as base64.

use std::path::{Path, PathBuf};

use data_encoding::{BASE64, HEXLOWER};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use zeroize::Zeroizing;

use crate::error::NodeError;
use crate::node::Node;

/// The socket's file name in the node directory.
pub const SOCKET_NAME: &str = "client.sock";
/// The longest request line accepted (a 16 MiB secret in base64, and room).
const MAX_LINE: usize = 24 * 1024 * 1024;

impl Node {
    /// Trade the password for a session token (unlocking the node if it is
    /// locked). A wrong password gets [`NodeError::WrongPassword`].
    pub async fn issue_token(&self, password: crate::Password) -> Result<String, NodeError> {
        match self.status().state {
            crate::NodeState::Locked => self.unlock(password).await?,
            crate::NodeState::Unlocked => {
                self.key_encryption_key(password).await?;
            }
            crate::NodeState::Uninitialised => return Err(NodeError::NotInitialised),
        }
        let mut bytes = [0u8; 32];
        polykey_keys::random_bytes(&mut bytes);
        let token = HEXLOWER.encode(&bytes);
        self.tokens().0.insert(token.clone());
        Ok(token)
    }

    /// Whether `token` was issued and not revoked.
    pub fn token_valid(&self, token: &str) -> bool {
        self.tokens().0.contains(token)
    }

    /// Revoke every session token.
    pub fn revoke_tokens(&self) {
        self.tokens().0.clear();
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, crate::node::Tokens> {
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Where this node's client API listens.
    pub fn socket_path(&self) -> PathBuf {
        self.path().join(SOCKET_NAME)
    }

    /// Serve the client API until `stop` fires (or `agent.stop` is called).
    pub async fn serve_client_api(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), NodeError> {
        let path = self.socket_path();
        // This process holds the node directory's lock, so a socket file
        // left there is stale.
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(|e| NodeError::io("listen on the client socket", e))?;
        set_private(&path)?;
        let (stopper, _) = tokio::sync::watch::channel(false);
        let stopper = std::sync::Arc::new(stopper);
        let mut stopped = stopper.subscribe();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let node = self.clone();
                    let stopper = std::sync::Arc::clone(&stopper);
                    tokio::spawn(async move { node.serve_connection(stream, &stopper).await });
                }
                _ = stop.changed() => break,
                _ = stopped.changed() => break,
            }
        }
        let _ = std::fs::remove_file(&path);
        Ok(())
    }

    async fn serve_connection(
        &self,
        stream: UnixStream,
        stopper: &tokio::sync::watch::Sender<bool>,
    ) {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        loop {
            let mut line = Zeroizing::new(Vec::new());
            let n = match (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .await
            {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let response = if n > MAX_LINE {
                error_response(Value::Null, -32600, "request too large", None)
            } else {
                match serde_json::from_slice::<Value>(&line) {
                    Ok(request) => self.answer_client(request, stopper).await,
                    Err(_) => error_response(Value::Null, -32700, "not JSON", None),
                }
            };
            let mut out = Zeroizing::new(serde_json::to_vec(&response).unwrap_or_default());
            out.push(b'\n');
            if write.write_all(&out).await.is_err() {
                return;
            }
        }
    }

    async fn answer_client(
        &self,
        request: Value,
        stopper: &tokio::sync::watch::Sender<bool>,
    ) -> Value {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let Some(method) = request.get("method").and_then(Value::as_str) else {
            return error_response(id, -32600, "no method", None);
        };
        let params = request.get("params").cloned().unwrap_or(json!({}));
        if method != "session.unlock" {
            let token = params.get("token").and_then(Value::as_str).unwrap_or("");
            if !self.token_valid(token) {
                return error_response(
                    id,
                    -32001,
                    "no valid session; log in again",
                    Some("unauthorised"),
                );
            }
        }
        match self.call_client(method, &params, stopper).await {
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
        }
    }

    async fn call_client(
        &self,
        method: &str,
        params: &Value,
        stopper: &tokio::sync::watch::Sender<bool>,
    ) -> Result<Value, Call> {
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
            "session.unlock" => {
                let password = Zeroizing::new(text("password")?);
                json!({ "token": self.issue_token(password.as_str().into()).await? })
            }
            "status" => {
                let status = self.status();
                json!({ "state": format!("{:?}", status.state).to_lowercase(),
                        "nodeId": status.node_id.map(|n| n.to_string()) })
            }
            "agent.stop" => {
                let _ = stopper.send(true);
                json!({})
            }
            "agent.lock" => {
                self.lock().await?;
                json!({})
            }
            "agent.lockall" => {
                self.revoke_tokens();
                self.lock().await?;
                json!({})
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
            "secrets.get" => {
                let value = self.get_secret(text("vault")?, text("path")?, None).await?;
                json!({ "value": BASE64.encode(&value) })
            }
            "secrets.write" => {
                json!({ "version": self.write_secret(text("vault")?, text("path")?, bytes("value")?).await? })
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
            "keys.password" => {
                let old = Zeroizing::new(text("password")?);
                let new = Zeroizing::new(text("newPassword")?);
                self.change_password(old.as_str().into(), new.as_str().into())
                    .await?;
                json!({})
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
                self.confirm_pairing(accept(params))?;
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

fn set_private(path: &Path) -> Result<(), NodeError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| NodeError::io("protect the client socket", e))?;
    }
    Ok(())
}

/// The error code a client sees for an invalid or revoked token.
pub const UNAUTHORISED: &str = "unauthorised";

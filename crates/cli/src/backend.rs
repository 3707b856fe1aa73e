//! Where the CLI's commands go: the running agent (desktop app or headless
//! node) through its client socket, or the node directory itself.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use data_encoding::BASE64;
use polykey_node::wiped_json::WipedJson;
use polykey_node::{CommitInfo, EntryKind, Node, NodeError, SecretStat, VaultInfo};
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// A failed call: a node error, or the agent's error text and code.
pub enum BackendError {
    /// From the node itself.
    Node(NodeError),
    /// From the agent: (error code, message).
    Agent(String, String),
    /// Talking to the agent failed.
    Io(std::io::Error),
}

impl From<NodeError> for BackendError {
    fn from(error: NodeError) -> Self {
        Self::Node(error)
    }
}

impl From<std::io::Error> for BackendError {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

type Result<T> = std::result::Result<T, BackendError>;

/// The connection to an agent: a Unix domain socket, or on Windows a named
/// pipe (opened as a file once its owner was checked to be this user).
#[cfg(unix)]
pub type Stream = std::os::unix::net::UnixStream;
/// See above.
#[cfg(windows)]
pub type Stream = std::fs::File;

/// Who listens where a node directory's agent would ([`Agent::find`]).
pub enum Found {
    /// This user's agent, connected.
    Ours(Stream),
    /// Another user's program (on Windows the pipe's owner check finds
    /// none: such a pipe is not connected to).
    #[cfg_attr(windows, allow(dead_code))]
    Theirs,
    /// Nothing.
    Nothing,
}

/// A connection to the agent with a session token.
pub struct Agent {
    stream: BufReader<Stream>,
    token: Zeroizing<String>,
    next_id: u64,
}

/// The token file beside the socket (mode 0600).
pub fn token_path(node_path: &std::path::Path) -> PathBuf {
    node_path.join("session.token")
}

impl Agent {
    /// Connect to the agent of the node directory, if one is running.
    pub fn connect(node_path: &std::path::Path) -> Option<Stream> {
        match Self::find(node_path) {
            Found::Ours(stream) => Some(stream),
            Found::Theirs | Found::Nothing => None,
        }
    }

    /// Who listens where the node directory's agent would: this user's
    /// agent, connected; another user's program (a node directory they
    /// can write to, named by PK_NODE_PATH), never sent a token or a
    /// password, nor the directory opened here instead; or nothing.
    pub fn find(node_path: &std::path::Path) -> Found {
        let endpoint = polykey_node::client_api::endpoint(node_path);
        #[cfg(unix)]
        {
            let Ok(stream) = Stream::connect(endpoint) else {
                return Found::Nothing;
            };
            match polykey_os::fs::peer_uid(&stream) {
                Ok(peer) if peer == polykey_os::fs::own_uid() => Found::Ours(stream),
                Ok(_) => Found::Theirs,
                Err(_) => Found::Nothing,
            }
        }
        #[cfg(windows)]
        {
            // A pipe of that name owned by anyone else is refused here,
            // before a password could be sent to it.
            match polykey_os::pipe::connect_client(&endpoint.to_string_lossy()) {
                Ok(stream) => Found::Ours(stream),
                Err(_) => Found::Nothing,
            }
        }
    }

    /// A session over `stream` with `token` (possibly empty).
    pub fn new(stream: Stream, token: Zeroizing<String>) -> Self {
        Self {
            stream: BufReader::new(stream),
            token,
            next_id: 1,
        }
    }

    /// Call `method`; the token is added to `params`. The request and the
    /// answer (passwords, secrets, the token) are wiped once used.
    pub fn call(&mut self, method: &str, mut params: Value) -> Result<WipedJson> {
        if let Value::Object(map) = &mut params {
            map.insert("token".into(), Value::String(self.token.to_string()));
        }
        let id = self.next_id;
        self.next_id += 1;
        let request =
            WipedJson(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        let mut line = Zeroizing::new(serde_json::to_vec(&*request).unwrap_or_default());
        line.push(b'\n');
        self.stream.get_mut().write_all(&line)?;
        let mut answer = Zeroizing::new(String::new());
        if self.stream.read_line(&mut answer)? == 0 {
            return Err(BackendError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the agent closed the connection",
            )));
        }
        let mut answer = WipedJson(serde_json::from_str(&answer).map_err(|e| {
            BackendError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })?);
        if let Some(error) = answer.get("error") {
            let code = error
                .pointer("/data/code")
                .and_then(Value::as_str)
                .unwrap_or("agent")
                .to_owned();
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the agent refused")
                .to_owned();
            return Err(BackendError::Agent(code, message));
        }
        Ok(answer.take("result"))
    }

    /// Log in: trade the password for a token.
    pub fn log_in(&mut self, password: &str) -> Result<Zeroizing<String>> {
        let result = self.call("session.unlock", json!({ "password": password }))?;
        let token = Zeroizing::new(result["token"].as_str().unwrap_or_default().to_owned());
        self.token = token.clone();
        Ok(token)
    }
}

/// The node itself, or its running agent.
pub enum Backend {
    /// This process opened the node directory.
    Local(Node),
    /// The agent serves it.
    Agent(Box<Agent>),
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_owned()
}

impl Backend {
    pub async fn vaults(&mut self) -> Result<Vec<VaultInfo>> {
        match self {
            Self::Local(node) => Ok(node.vaults().await?),
            Self::Agent(agent) => {
                let list = agent.call("vaults.list", json!({}))?;
                Ok(list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| {
                        Some(VaultInfo {
                            id: text(v, "id").parse().ok()?,
                            name: text(v, "name"),
                            created_at: 0,
                            renamed_at: 0,
                        })
                    })
                    .collect())
            }
        }
    }

    pub async fn create_vault(&mut self, name: String) -> Result<(String, String)> {
        match self {
            Self::Local(node) => {
                let info = node.create_vault(name).await?;
                Ok((info.name, info.id.to_string()))
            }
            Self::Agent(agent) => {
                let v = agent.call("vaults.create", json!({ "name": name }))?;
                Ok((text(&v, "name"), text(&v, "id")))
            }
        }
    }

    pub async fn export_vault(&mut self, vault: String, target: std::path::PathBuf) -> Result<()> {
        match self {
            Self::Local(node) => Ok(node.export_vault(vault, target).await?),
            Self::Agent(agent) => {
                agent.call(
                    "vaults.export",
                    json!({ "vault": vault, "directory": target.to_string_lossy() }),
                )?;
                Ok(())
            }
        }
    }

    /// Write an encrypted backup (`backup.create`), read one back
    /// (`backup.read`) or restore one (`backup.restore`); the answer as
    /// the node's transport types. `file` is absolute.
    pub async fn backup(
        &mut self,
        method: &str,
        file: std::path::PathBuf,
        passphrase: polykey_node::Password,
        vaults: Option<Vec<String>>,
    ) -> Result<Value> {
        match self {
            Self::Local(node) => Ok(match method {
                "backup.create" => {
                    let made = node.create_backup(file, passphrase, vaults).await?;
                    serde_json::to_value(made.manifest.to_dto(made.bytes))
                }
                "backup.read" => {
                    serde_json::to_value(node.read_backup(file, passphrase).await?.to_dto(0))
                }
                _ => {
                    let restored = node.restore_backup(file, passphrase).await?;
                    serde_json::to_value(
                        restored
                            .into_iter()
                            .map(polykey_node::api::RestoredDto::from)
                            .collect::<Vec<_>>(),
                    )
                }
            }
            .unwrap_or(Value::Null)),
            Self::Agent(agent) => {
                let params = json!({
                    "file": file.to_string_lossy(),
                    "passphrase": passphrase.expose_secret(),
                    "vaults": vaults,
                });
                Ok(agent.call(method, params)?.into())
            }
        }
    }

    pub async fn rename_vault(&mut self, vault: String, new_name: String) -> Result<()> {
        match self {
            Self::Local(node) => Ok(node.rename_vault(vault, new_name).await?),
            Self::Agent(agent) => {
                agent.call(
                    "vaults.rename",
                    json!({ "vault": vault, "newName": new_name }),
                )?;
                Ok(())
            }
        }
    }

    pub async fn delete_vault(&mut self, vault: String) -> Result<()> {
        match self {
            Self::Local(node) => Ok(node.delete_vault(vault).await?),
            Self::Agent(agent) => {
                agent.call("vaults.delete", json!({ "vault": vault }))?;
                Ok(())
            }
        }
    }

    /// Vaults deleted on any device and still restorable (JSON, as the
    /// node's transport type).
    pub async fn deleted_vaults(&mut self) -> Result<Value> {
        match self {
            Self::Local(node) => {
                Ok(serde_json::to_value(node.deleted_vaults_dto().await?).unwrap_or(Value::Null))
            }
            Self::Agent(agent) => Ok(agent.call("vaults.deleted", json!({}))?.into()),
        }
    }

    /// Bring a deleted vault back; returns its name.
    pub async fn restore_deleted_vault(&mut self, id: String) -> Result<String> {
        match self {
            Self::Local(node) => Ok(node.restore_deleted_vault(id).await?.name),
            Self::Agent(agent) => {
                let restored = agent.call("vaults.restore", json!({ "id": id }))?;
                Ok(text(&restored, "name"))
            }
        }
    }

    pub async fn vault_log(
        &mut self,
        vault: String,
        limit: Option<usize>,
    ) -> Result<Vec<CommitInfo>> {
        match self {
            Self::Local(node) => Ok(node.vault_log(vault, limit).await?),
            Self::Agent(agent) => {
                let log = agent.call("vaults.log", json!({ "vault": vault, "limit": limit }))?;
                Ok(log
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| CommitInfo {
                        id: text(c, "id"),
                        author: text(c, "author"),
                        time: c["time"].as_i64().unwrap_or(0),
                        message: text(c, "message"),
                        parents: Vec::new(),
                    })
                    .collect())
            }
        }
    }

    /// Every path of `vault`, the markers of empty folders among them.
    pub async fn list_paths(&mut self, vault: String) -> Result<Vec<String>> {
        match self {
            Self::Local(node) => Ok(node.list_paths(vault).await?),
            Self::Agent(agent) => match agent.call("secrets.paths", json!({ "vault": vault })) {
                Ok(list) => Ok(strings(&list)),
                // An agent started before this call was made: its secrets,
                // without empty folders, as this command read them then.
                Err(BackendError::Agent(_, message)) if message == "no such method" => {
                    let list =
                        agent.call("secrets.list", json!({ "vault": vault, "dir": null }))?;
                    Ok(strings(&list))
                }
                Err(e) => Err(e),
            },
        }
    }

    pub async fn list_secrets(
        &mut self,
        vault: String,
        dir: Option<String>,
    ) -> Result<Vec<String>> {
        match self {
            Self::Local(node) => Ok(node.list_secrets(vault, dir).await?),
            Self::Agent(agent) => {
                let list = agent.call("secrets.list", json!({ "vault": vault, "dir": dir }))?;
                Ok(strings(&list))
            }
        }
    }

    pub async fn get_secret(&mut self, vault: String, path: String) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Self::Local(node) => Ok(node.get_secret(vault, path, None).await?),
            Self::Agent(agent) => {
                let v = agent.call("secrets.get", json!({ "vault": vault, "path": path }))?;
                let encoded = Zeroizing::new(text(&v, "value"));
                BASE64
                    .decode(encoded.as_bytes())
                    .map(Zeroizing::new)
                    .map_err(|_| BackendError::Agent("agent".into(), "a malformed answer".into()))
            }
        }
    }

    async fn put(
        &mut self,
        method: &str,
        vault: String,
        path: String,
        value: Zeroizing<Vec<u8>>,
    ) -> Result<String> {
        match self {
            Self::Local(node) => Ok(match method {
                "secrets.create" => node.create_secret(vault, path, value).await?,
                _ => node.write_secret(vault, path, value).await?,
            }),
            Self::Agent(agent) => {
                let encoded = Zeroizing::new(BASE64.encode(&value));
                let params = json!({ "vault": vault, "path": path, "value": encoded.as_str() });
                Ok(text(&*agent.call(method, params)?, "version"))
            }
        }
    }

    pub async fn write_secret(
        &mut self,
        vault: String,
        path: String,
        value: Zeroizing<Vec<u8>>,
    ) -> Result<String> {
        self.put("secrets.write", vault, path, value).await
    }

    /// Create or replace many secrets in one commit.
    pub async fn write_secrets(
        &mut self,
        vault: String,
        secrets: Vec<(String, Zeroizing<Vec<u8>>)>,
    ) -> Result<String> {
        match self {
            Self::Local(node) => Ok(node.write_secrets(vault, secrets).await?),
            Self::Agent(agent) => {
                // Built by moving each encoded value in (`json!` would copy
                // it and drop the original unwiped); `call` wipes the rest.
                let encoded: Vec<Value> = secrets
                    .iter()
                    .map(|(path, value)| {
                        let mut item = serde_json::Map::new();
                        item.insert("path".into(), Value::String(path.clone()));
                        item.insert("value".into(), Value::String(BASE64.encode(value)));
                        Value::Object(item)
                    })
                    .collect();
                let mut params = serde_json::Map::new();
                params.insert("vault".into(), Value::String(vault));
                params.insert("secrets".into(), Value::Array(encoded));
                let answer = agent.call("secrets.writeMany", Value::Object(params))?;
                Ok(text(&answer, "version"))
            }
        }
    }

    pub async fn create_secret(
        &mut self,
        vault: String,
        path: String,
        value: Zeroizing<Vec<u8>>,
    ) -> Result<String> {
        self.put("secrets.create", vault, path, value).await
    }

    pub async fn remove_secret(
        &mut self,
        vault: String,
        path: String,
        recursive: bool,
    ) -> Result<String> {
        match self {
            Self::Local(node) => Ok(node.remove_secret(vault, path, recursive).await?),
            Self::Agent(agent) => {
                let params = json!({ "vault": vault, "path": path, "recursive": recursive });
                Ok(text(&*agent.call("secrets.remove", params)?, "version"))
            }
        }
    }

    pub async fn make_directory(&mut self, vault: String, path: String) -> Result<String> {
        match self {
            Self::Local(node) => Ok(node.make_directory(vault, path).await?),
            Self::Agent(agent) => {
                let params = json!({ "vault": vault, "path": path });
                Ok(text(&*agent.call("secrets.mkdir", params)?, "version"))
            }
        }
    }

    pub async fn rename_secret(
        &mut self,
        vault: String,
        path: String,
        new_path: String,
    ) -> Result<String> {
        match self {
            Self::Local(node) => Ok(node.rename_secret(vault, path, new_path).await?),
            Self::Agent(agent) => {
                let params = json!({ "vault": vault, "path": path, "newPath": new_path });
                Ok(text(&*agent.call("secrets.rename", params)?, "version"))
            }
        }
    }

    pub async fn stat_secret(&mut self, vault: String, path: String) -> Result<SecretStat> {
        match self {
            Self::Local(node) => Ok(node.stat_secret(vault, path).await?),
            Self::Agent(agent) => {
                let v = agent.call("secrets.stat", json!({ "vault": vault, "path": path }))?;
                Ok(SecretStat {
                    path: text(&v, "path"),
                    kind: if text(&v, "kind") == "directory" {
                        EntryKind::Directory
                    } else {
                        EntryKind::Secret
                    },
                    size: v["size"].as_u64().unwrap_or(0),
                })
            }
        }
    }

    pub async fn decrypt(&mut self, data: String) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Self::Local(node) => Ok(node.decrypt(data).await?),
            Self::Agent(agent) => {
                let v = agent.call("keys.decrypt", json!({ "data": data }))?;
                let encoded = Zeroizing::new(text(&v, "value"));
                BASE64
                    .decode(encoded.as_bytes())
                    .map(Zeroizing::new)
                    .map_err(|_| BackendError::Agent("agent".into(), "a malformed answer".into()))
            }
        }
    }

    pub async fn sign(&mut self, message: Vec<u8>) -> Result<String> {
        match self {
            Self::Local(node) => Ok(node.sign_base64(message).await?),
            Self::Agent(agent) => {
                let v = agent.call("keys.sign", json!({ "message": BASE64.encode(&message) }))?;
                Ok(text(&v, "signature"))
            }
        }
    }

    pub async fn change_password(&mut self, old: &str, new: &str) -> Result<()> {
        match self {
            Self::Local(node) => Ok(node.change_password(old.into(), new.into()).await?),
            Self::Agent(agent) => {
                agent.call(
                    "keys.password",
                    json!({ "password": old, "newPassword": new }),
                )?;
                Ok(())
            }
        }
    }

    pub fn node_id(&mut self) -> Result<String> {
        match self {
            Self::Local(node) => Ok(node
                .status()
                .node_id
                .map(|n| n.to_string())
                .unwrap_or_default()),
            Self::Agent(agent) => Ok(text(&*agent.call("status", json!({}))?, "nodeId")),
        }
    }

    pub async fn restore_vault(&mut self, vault: String, version: String) -> Result<String> {
        match self {
            Self::Local(node) => Ok(node.restore(vault, version, None).await?),
            Self::Agent(agent) => {
                let params = json!({ "vault": vault, "version": version });
                Ok(text(&*agent.call("vaults.version", params)?, "version"))
            }
        }
    }
}

/// The strings of a JSON array the agent answered (anything else in it is
/// left out, as a malformed answer is never a crash).
fn strings(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect()
}

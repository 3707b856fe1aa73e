//! `polykey bootstrap` and `polykey keys`: the node's identity — created
//! or recovered from its recovery code, its public key, encryption for a
//! node, signatures, and the password that guards it.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use polykey_node::NodeError;
use zeroize::Zeroizing;

use crate::backend::{Agent, Backend, Found};
use crate::output::{io_failure, text, usage, Failure, Output, EX_DATAERR};
use crate::session::{
    agent_session, another_users_agent, backend, node_path, open, read_password, write_private,
};
use crate::Cli;

#[derive(Subcommand)]
pub(crate) enum Keys {
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

/// `polykey bootstrap`: a new node (its recovery code written to
/// `recovery_code_out` or printed once), or one recovered from the code in
/// `recovery_code_file`.
pub(crate) async fn bootstrap(
    cli: &Cli,
    recovery_code_out: Option<&Path>,
    recovery_code_file: Option<&Path>,
) -> Result<Output, Failure> {
    // Shown only at a terminal: piped, it would end up in a CI log or a
    // file no one made private. Refused before the directory is touched.
    if recovery_code_file.is_none()
        && recovery_code_out.is_none()
        && !std::io::stdout().is_terminal()
    {
        return Err(usage(
            "the recovery code is shown only at a terminal; give --recovery-code-out FILE \
             (written readable by you alone) to keep it in a file; nothing was created",
        ));
    }
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
                format!(
                    "Created node {id}\nRecovery code written to {}",
                    file.display()
                ),
                serde_json::json!({ "nodeId": id }),
            ))
        }
        None => Ok(text(
            format!("Created node {id}\nRecovery code (write it down; it is shown once):\n{code}"),
            serde_json::json!({ "nodeId": id, "recoveryCode": code }),
        )),
    }
}

/// `polykey keys …`, on the running agent or the node directory.
pub(crate) async fn run(cli: &Cli, command: &Keys) -> Result<Output, Failure> {
    if let Keys::Public = command {
        return public(cli).await;
    }
    let mut node = backend(cli).await?;
    let read = |file: &PathBuf| -> Result<Zeroizing<Vec<u8>>, Failure> {
        std::fs::read(file)
            .map(Zeroizing::new)
            .map_err(|e| io_failure("read the file", e))
    };
    let node_id =
        |given: &Option<String>, node: &mut Backend| -> Result<polykey_node::NodeId, Failure> {
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

/// `polykey keys public`: from the running agent, else from the node
/// directory without unlocking it.
async fn public(cli: &Cli) -> Result<Output, Failure> {
    match Agent::find(&node_path(cli)) {
        Found::Ours(stream) => {
            let id = agent_session(cli, stream)?.call("status", serde_json::json!({}))?["nodeId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            return Ok(text(id.clone(), serde_json::json!({ "nodeId": id })));
        }
        Found::Theirs => return Err(another_users_agent()),
        Found::Nothing => {}
    }
    let node = open(cli).await?;
    let id = node
        .status()
        .node_id
        .ok_or(NodeError::NotInitialised)?
        .to_string();
    Ok(text(id.clone(), serde_json::json!({ "nodeId": id })))
}

//! The client API on a named pipe that only the current user can open
//! (its security descriptor admits the current user's SID alone; remote
//! clients are rejected), one per node directory. The first instance is
//! created with `first_pipe_instance`, so a name someone else holds is an
//! error instead of a shared pipe; the CLI checks the pipe's owner before it
//! sends anything ([`polykey_os::pipe::connect_client`]).

use std::path::Path;

use tokio::net::windows::named_pipe::NamedPipeServer;

use crate::error::NodeError;

/// The pipe's name for the node in `node_dir`: a hash of its full path
/// (Windows paths compare without case), so two nodes never share one.
pub(super) fn pipe_name(node_dir: &Path) -> String {
    let full = std::fs::canonicalize(node_dir).unwrap_or_else(|_| node_dir.to_owned());
    let key = full.to_string_lossy().to_lowercase();
    let digest = blake3::hash(key.as_bytes()).to_hex();
    format!(r"\\.\pipe\polykey-{}", &digest[..32])
}

/// The pipe instance waiting for the next client.
pub(super) struct Listener {
    name: String,
    next: NamedPipeServer,
}

impl Listener {
    /// Listen for the node in `node_dir`.
    pub(super) fn bind(node_dir: &Path) -> Result<Self, NodeError> {
        let name = pipe_name(node_dir);
        let next = polykey_os::pipe::create_server(&name, true)
            .map_err(|e| NodeError::io("listen on the client pipe", e))?;
        Ok(Self { name, next })
    }

    /// The next connection; a new instance waits for the one after.
    pub(super) async fn accept(&mut self) -> std::io::Result<NamedPipeServer> {
        self.next.connect().await?;
        let fresh = polykey_os::pipe::create_server(&self.name, false)?;
        Ok(std::mem::replace(&mut self.next, fresh))
    }

    /// Stop listening: the pipe goes with its last handle.
    pub(super) fn close(self) {}
}

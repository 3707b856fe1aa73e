//! The client API on a Unix domain socket in the node directory, bound so
//! that no one else can ever connect.

use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

use super::SOCKET_NAME;
use crate::error::NodeError;

/// The private directory the socket is bound in before it is moved to
/// [`SOCKET_NAME`], so it is never reachable by others, not even between
/// `bind` and `chmod`.
const BIND_DIR_NAME: &str = ".client.sock.d";

/// The listening socket, removed again by [`Listener::close`].
pub(super) struct Listener {
    listener: UnixListener,
    path: PathBuf,
}

impl Listener {
    /// Listen in `node_dir`.
    pub(super) fn bind(node_dir: &Path) -> Result<Self, NodeError> {
        let path = node_dir.join(SOCKET_NAME);
        let listener = bind_private(node_dir, &path)?;
        Ok(Self { listener, path })
    }

    /// The next connection.
    pub(super) async fn accept(&mut self) -> std::io::Result<UnixStream> {
        self.listener.accept().await.map(|(stream, _)| stream)
    }

    /// Stop listening: the socket file goes.
    pub(super) fn close(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Bind the client socket at `path` so that it is never reachable by
/// others: bound inside a fresh directory only this user can enter, made
/// 0600 there (a failed chmod is an error), then moved into place.
fn bind_private(node_dir: &Path, path: &Path) -> Result<UnixListener, NodeError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let io = |what: &'static str| move |e| NodeError::io(what, e);
    // This process holds the node directory's lock, so a socket file or a
    // bind directory left there is stale.
    let _ = std::fs::remove_file(path);
    let bind_dir = node_dir.join(BIND_DIR_NAME);
    match std::fs::remove_dir_all(&bind_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(NodeError::io("remove a stale client socket directory", e))
        }
        _ => {}
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&bind_dir)
        .map_err(io("create the client socket directory"))?;
    // `create` fails if anything (a symlink included) is already there, so
    // this is the directory just made; check nobody else can enter it.
    let meta =
        std::fs::symlink_metadata(&bind_dir).map_err(io("check the client socket directory"))?;
    if !meta.is_dir() || meta.mode() & 0o077 != 0 {
        let _ = std::fs::remove_dir_all(&bind_dir);
        return Err(NodeError::io(
            "check the client socket directory",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "not private"),
        ));
    }
    let bound = bind_dir.join(SOCKET_NAME);
    let result = (|| {
        let listener = UnixListener::bind(&bound).map_err(io("listen on the client socket"))?;
        std::fs::set_permissions(&bound, std::fs::Permissions::from_mode(0o600))
            .map_err(io("protect the client socket"))?;
        std::fs::rename(&bound, path).map_err(io("move the client socket into place"))?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&bind_dir);
    result
}

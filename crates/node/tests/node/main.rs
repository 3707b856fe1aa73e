//! The node lifecycle against a real node directory on disk.

// Tests fail loudly on purpose; the helper process speaks on stdout.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod attachments;
mod backup;
mod client_api;
mod corruption;
mod disk_full;
mod file_modes;
mod health;
mod identities;
mod import;
mod import_memory;
mod keys;
mod lifecycle;
mod qr;
mod quick;
mod secrecy;
mod single_process;
mod vaults;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polykey_node::{KdfProfile, Node, NodeOptions};

pub const PASSWORD: &str = "correct horse battery";
pub const DEVICE_NAME: &str = "workstation-under-the-stairs";

pub fn options() -> NodeOptions {
    NodeOptions {
        kdf: KdfProfile::FastForTests,
        ..Default::default()
    }
}

pub async fn open(path: &Path) -> Node {
    Node::open(path, options()).await.expect("open node")
}

/// A FIFO made at `path` (with `mkfifo`): what opens it to read waits
/// for a writer, and what reads it, for bytes.
#[cfg(unix)]
pub fn fifo(path: &Path) -> PathBuf {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success());
    path.to_owned()
}

/// A new node at `path`, created with [`PASSWORD`] (so unlocked), holding
/// one empty vault named `vault`.
pub async fn open_with_vault(path: &Path, vault: &str) -> Node {
    let node = open(path).await;
    node.create(PASSWORD.into()).await.expect("create node");
    node.create_vault(vault.into()).await.expect("create vault");
    node
}

/// Every file under `dir`, with its bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).expect("read dir") {
            let entry = entry.expect("entry");
            if entry.file_type().expect("type").is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(entry.path(), std::fs::read(entry.path()).expect("read"));
            }
        }
    }
    out
}

//! A second process opening the same node directory gets "already in use".

use std::process::Stdio;

use polykey_node::{Node, NodeError};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{open, options, PASSWORD};

const HOLD_ENV: &str = "POLYKEY_TEST_HOLD_NODE";

/// Not a test of its own: when the parent test re-runs this binary with
/// `HOLD_ENV` set, it opens the node, says so, and holds it until stdin closes.
#[tokio::test]
async fn helper_hold_node() {
    let Some(path) = std::env::var_os(HOLD_ENV) else {
        return;
    };
    let node = Node::open(std::path::Path::new(&path), options())
        .await
        .unwrap();
    println!("holding {:?}", node.status().state);
    let mut line = String::new();
    let _ = BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await;
}

#[tokio::test]
async fn second_process_gets_already_in_use() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path())
        .await
        .create(PASSWORD.into())
        .await
        .unwrap();

    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "single_process::helper_hold_node", "--nocapture"])
        .env(HOLD_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("holding") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(ready, "the helper process opened the node");

    let err = Node::open(dir.path(), options()).await.unwrap_err();
    assert!(matches!(err, NodeError::InUse), "{err:?}");
    assert!(err.to_string().contains("already in use"));

    drop(child.stdin.take());
    child.wait().await.unwrap();
    // Once the other process is gone, the node opens again, intact.
    let node = open(dir.path()).await;
    node.unlock(PASSWORD.into()).await.unwrap();
}

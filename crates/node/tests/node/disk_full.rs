//! Out of space: a node whose data file may not grow (`RLIMIT_FSIZE`, set
//! in a child process so the rest of the suite is untouched) refuses the
//! write that does not fit with a clear error, loses nothing written
//! before, and writes again once there is room.

use std::path::Path;
use std::process::Command;

use zeroize::Zeroizing;

use crate::{open, PASSWORD};

const HELPER_ENV: &str = "POLYKEY_TEST_DISK_FULL_DIR";

async fn write(node: &polykey_node::Node, name: &str) -> Result<String, polykey_node::NodeError> {
    node.write_secret(
        "v".into(),
        name.into(),
        Zeroizing::new(format!("{name} {}", "x".repeat(60_000)).into_bytes()),
    )
    .await
}

async fn read(node: &polykey_node::Node, name: &str) -> String {
    let value = node
        .get_secret("v".into(), name.into(), None)
        .await
        .unwrap();
    String::from_utf8(value.to_vec()).unwrap()
}

/// Write secrets `s0`, `s1`… (named on from `written`) until one is
/// refused; returns the refusal.
async fn write_until_refused(
    node: &polykey_node::Node,
    written: &mut Vec<String>,
) -> polykey_node::NodeError {
    loop {
        let name = format!("s{}", written.len());
        match write(node, &name).await {
            Ok(_) => written.push(name),
            Err(e) => return e,
        }
        assert!(written.len() < 1000, "the limit never stopped a write");
    }
}

/// Not a test of its own: the child process of
/// `a_full_disk_refuses_the_write_loses_nothing_and_recovers`.
#[tokio::test]
async fn helper_disk_full() {
    let Some(dir) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    // Past the limit the kernel sends SIGXFSZ, which ends a process; with
    // a handler the write fails with EFBIG instead, as on a full disk.
    let _xfsz = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(25)).unwrap();
    let node = open(dir).await;
    node.unlock(PASSWORD.into()).await.unwrap();
    let size = std::fs::metadata(dir.join("db.redb")).unwrap().len();
    let limit = |soft: Option<u64>| {
        rustix::process::setrlimit(
            rustix::process::Resource::Fsize,
            rustix::process::Rlimit {
                current: soft,
                maximum: None,
            },
        )
        .unwrap();
    };
    limit(Some(size + 2 * 1024 * 1024));
    let mut written = Vec::new();
    let error = write_until_refused(&node, &mut written).await;
    println!("refused after {}: {error}", written.len());
    assert!(!written.is_empty());
    for name in &written {
        assert_eq!(
            read(&node, name).await,
            format!("{name} {}", "x".repeat(60_000))
        );
    }
    // Trying again while the disk is still full (a write may fit in what
    // the failed one left) ends in the same clear error, and what was
    // acknowledged is all there.
    let again = write_until_refused(&node, &mut written).await;
    println!("again: {again}");
    for name in &written {
        assert!(read(&node, name).await.starts_with(name.as_str()));
    }
    // Room again: the next write works, and everything is there.
    limit(None);
    write(&node, "after").await.unwrap();
    for name in written.iter().chain([&"after".to_owned()]) {
        assert!(read(&node, name).await.starts_with(name.as_str()));
    }
    println!("written {}", written.len());
}

#[tokio::test]
async fn a_full_disk_refuses_the_write_loses_nothing_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    {
        let node = open(dir.path()).await;
        node.create(PASSWORD.into()).await.unwrap();
        node.create_vault("v".into()).await.unwrap();
        node.lock().await.unwrap();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "disk_full::helper_disk_full", "--nocapture"])
        .env(HELPER_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let refused = stdout
        .lines()
        .find_map(|l| l.strip_prefix("refused after "))
        .unwrap_or_else(|| panic!("no refusal: {stdout}"));
    let (_, words) = refused.split_once(": ").unwrap();
    assert!(
        words.contains("the disk is full"),
        "not a clear error: {words}"
    );
    let again = stdout
        .lines()
        .find_map(|l| l.strip_prefix("again: "))
        .unwrap_or_else(|| panic!("no second refusal: {stdout}"));
    assert!(
        again.contains("the disk is full"),
        "not a clear error: {again}"
    );
    let written: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("written "))
        .unwrap()
        .parse()
        .unwrap();
    // A later process finds every acknowledged write.
    let node = open(dir.path()).await;
    node.unlock(PASSWORD.into()).await.unwrap();
    for i in 0..written {
        let name = format!("s{i}");
        assert!(read(&node, &name).await.starts_with(&name));
    }
    assert!(read(&node, "after").await.starts_with("after"));
}

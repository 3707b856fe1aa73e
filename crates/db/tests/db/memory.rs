//! The store's memory does not grow with its file: reading back 64 MiB
//! leaves the process far below that (redb alone would cache up to 1 GiB).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use polykey_db::Db;

use super::{root, Login, LOGINS};

const CHILD_ENV: &str = "POLYKEY_TEST_MEMORY_CHILD";
const RECORDS: usize = 1024;
const RECORD_BYTES: usize = 64 * 1024;

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Not a test of its own: the child process of the test below, so that no
/// other test shares its memory.
#[test]
fn helper_memory_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let db = Db::create(Path::new(&path), &root(3)).unwrap();
    for chunk in 0..16 {
        let mut txn = db.write().unwrap();
        for i in 0..RECORDS / 16 {
            let name = format!("login-{chunk}-{i}");
            let key = db.record_key("logins", name.as_bytes());
            let password = "p".repeat(RECORD_BYTES);
            txn.put(&LOGINS, &key, &Login { name, password }).unwrap();
        }
        txn.commit().unwrap();
    }
    let txn = db.read().unwrap();
    let mut read = 0;
    for chunk in 0..16 {
        for i in 0..RECORDS / 16 {
            let name = format!("login-{chunk}-{i}");
            let key = db.record_key("logins", name.as_bytes());
            read += txn.get(&LOGINS, &key).unwrap().unwrap().password.len();
        }
    }
    assert_eq!(read, RECORDS * RECORD_BYTES);
    let mut out = std::io::stdout().lock();
    writeln!(out, "\nresident {}", resident_kib()).unwrap();
    out.flush().unwrap();
}

#[test]
fn reading_a_large_store_back_keeps_memory_small() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "memory::helper_memory_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path().join("db.redb"))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let resident: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("resident "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no figure in {stdout:?}"));
    let stored = (RECORDS * RECORD_BYTES / 1024) as u64;
    eprintln!("{stored} KiB stored and read back; {resident} KiB resident");
    assert!(
        resident < 48 * 1024,
        "{resident} KiB resident after reading {stored} KiB"
    );
}

//! Moving in from KeePass: a database of 10,000 logins made by
//! `keepassxc-cli import` (KDBX 3.1, its least key derivation: 100 ms on
//! this machine to KeePassXC), read and written into a vault in one
//! commit. The key derivation is timed apart and taken out.
//!
//! Run: `cargo bench -p polykey-node --bench kdbx` (needs keepassxc-cli;
//! `POLYKEY_IMPORT_ROWS` for another count).

// A report on stdout is what this bench is for.
#![allow(clippy::print_stdout)]

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use polykey_node::import;

mod common;
use common::device;

const PASSWORD: &str = "bench-kdbx-1";

fn main() {
    let rows: usize = std::env::var("POLYKEY_IMPORT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<KeePassFile><Meta><Generator>bench</Generator></Meta><Root><Group><Name>Root</Name>\n",
    );
    for group in 0..100 {
        xml.push_str(&format!("<Group><Name>Group {group}</Name>\n"));
        for i in (group..rows).step_by(100) {
            xml.push_str(&format!(
                "<Entry><String><Key>Title</Key><Value>Site {i}</Value></String>\
                 <String><Key>UserName</Key><Value>user{i}@example.com</Value></String>\
                 <String><Key>Password</Key><Value ProtectInMemory=\"True\">pw-{i}-Xk9#q</Value></String>\
                 <String><Key>URL</Key><Value>https://site{i}.example/login</Value></String>\
                 <String><Key>Notes</Key><Value>note {i}</Value></String></Entry>\n"
            ));
        }
        xml.push_str("</Group>\n");
    }
    xml.push_str("</Group></Root></KeePassFile>\n");
    let xml_path = dir.path().join("bench.xml");
    std::fs::write(&xml_path, xml).expect("xml");
    let database = dir.path().join("bench.kdbx");
    let mut child = Command::new("keepassxc-cli")
        .args(["import", "-q", "-p", "-t", "100"])
        .arg(&xml_path)
        .arg(&database)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("keepassxc-cli is installed (scripts/setup.sh)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n{PASSWORD}\n").as_bytes())
        .expect("password");
    assert!(child.wait().expect("keepassxc-cli").success());
    let bytes = std::fs::read(&database).expect("database");

    // A wrong password costs the key derivation and the first block.
    let started = Instant::now();
    assert!(import::keepass::read(&bytes, Some("not it"), None).is_err());
    let kdf = started.elapsed();

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let a = device().await;
        a.node.create_vault("Imported".into()).await.expect("vault");
        let started = Instant::now();
        let parsed = import::keepass::read(&bytes, Some(PASSWORD), None).expect("read");
        let read = started.elapsed();
        assert_eq!(parsed.items.len(), rows);
        let existing: BTreeSet<String> = BTreeSet::new();
        let secrets = import::secrets_for(&parsed.items, "", &existing).expect("paths");
        a.node
            .write_secrets("Imported".into(), secrets)
            .await
            .expect("write");
        let took = started.elapsed();
        println!(
            "KDBX import of {rows} logins in 100 groups ({:.1} KiB): key derivation {:.0} ms; \
             read {:.0} ms and read and written in one commit {:.0} ms, both without it",
            bytes.len() as f64 / 1024.0,
            kdf.as_secs_f64() * 1e3,
            (read.saturating_sub(kdf)).as_secs_f64() * 1e3,
            (took.saturating_sub(kdf)).as_secs_f64() * 1e3
        );
        a.node.lock().await.expect("lock");
    });
}

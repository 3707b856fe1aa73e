//! Moving in: a CSV export of 10,000 logins read and written into a vault
//! as one durable, signed commit (release build, a real redb file).
//!
//! Run: `cargo bench -p polykey-node --bench import` (`POLYKEY_IMPORT_ROWS`
//! for another count).

// A report on stdout is what this bench is for.
#![allow(clippy::print_stdout)]

use std::collections::BTreeSet;
use std::time::Instant;

use polykey_node::import;

mod common;
use common::device;

fn main() {
    let rows: usize = std::env::var("POLYKEY_IMPORT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut csv = String::from("name,url,username,password,note\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "Site {i},https://site{i}.example/login,user{i}@example.com,pw-{i}-Xk9#q,\"note {i}\"\n"
        ));
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let a = device().await;
        a.node.create_vault("Imported".into()).await.expect("vault");
        let started = Instant::now();
        let parsed = import::csv::read(csv.as_bytes(), None).expect("read");
        let read = started.elapsed();
        let existing: BTreeSet<String> = a
            .node
            .list_secrets("Imported".into(), None)
            .await
            .expect("list")
            .into_iter()
            .collect();
        let secrets = import::secrets_for(&parsed.items, "", &existing).expect("paths");
        a.node
            .write_secrets("Imported".into(), secrets)
            .await
            .expect("write");
        let took = started.elapsed();
        println!(
            "CSV import of {rows} logins ({:.1} KiB): read {:.0} ms, read and written in one commit {:.0} ms",
            csv.len() as f64 / 1024.0,
            read.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e3
        );
        a.node.lock().await.expect("lock");
    });
}

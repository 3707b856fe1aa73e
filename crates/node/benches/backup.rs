//! Backups: a vault of 10,000 secrets (and `POLYKEY_BACKUP_EDITS` more
//! versions, 100 by default) written to an encrypted backup file and
//! restored into a fresh node (release build, real redb files, the
//! default Argon2id cost, whose time is reported apart).
//!
//! Run: `cargo bench -p polykey-node --bench backup`
//! (`POLYKEY_BACKUP_SECRETS` for another count).

// A report on stdout is what this bench is for.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use polykey_node::Password;
use zeroize::Zeroizing;

mod common;
use common::device;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let secrets = env("POLYKEY_BACKUP_SECRETS", 10_000);
    let edits = env("POLYKEY_BACKUP_EDITS", 100);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let a = device().await;
        a.node.create_vault("Big".into()).await.expect("vault");
        let batch: Vec<(String, Zeroizing<Vec<u8>>)> = (0..secrets)
            .map(|i| {
                (
                    format!("group{}/secret{i}", i % 100),
                    Zeroizing::new(format!("{{\"password\":\"pw-{i}-Xk9#q\"}}").into_bytes()),
                )
            })
            .collect();
        a.node
            .write_secrets("Big".into(), batch)
            .await
            .expect("write");
        for i in 0..edits {
            a.node
                .write_secret(
                    "Big".into(),
                    format!("group{}/secret{i}", i % 100),
                    Zeroizing::new(format!("edited {i}").into_bytes()),
                )
                .await
                .expect("edit");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("bench.backup");
        let kdf_started = Instant::now();
        polykey_keys::KdfParams::default_profile()
            .derive(&Password::from("bench passphrase"))
            .expect("derive");
        let kdf = kdf_started.elapsed();
        let started = Instant::now();
        let made = a
            .node
            .create_backup(file.clone(), "bench passphrase".into(), None)
            .await
            .expect("backup");
        let written = started.elapsed();
        let b = device().await;
        let started = Instant::now();
        b.node
            .restore_backup(file, "bench passphrase".into())
            .await
            .expect("restore");
        let restored = started.elapsed();
        let objects: usize = made.manifest.vaults.iter().map(|v| v.objects).sum();
        println!(
            "Backup of {secrets} secrets in {} versions ({objects} objects): {:.1} KiB; \
             written in {:.0} ms, restored into a fresh node in {:.0} ms \
             (each including one Argon2id derivation of {:.0} ms)",
            edits + 2,
            made.bytes as f64 / 1024.0,
            written.as_secs_f64() * 1e3,
            restored.as_secs_f64() * 1e3,
            kdf.as_secs_f64() * 1e3,
        );
        a.node.lock().await.expect("lock");
        b.node.lock().await.expect("lock");
    });
}

//! Scale: what a vault costs as one directory grows (release build, real
//! redb files, real nodes on 127.0.0.1). Prints, for 1,000 / 10,000 /
//! 100,000 secrets in one directory (`POLYKEY_SCALE_SIZES=1000,10000` to
//! pick others):
//! - the bulk add of them all (one commit);
//! - ms per single-secret write (in-process, durable, signed) and the bytes
//!   each adds to the store (redb's stored bytes, and the file);
//! - the time to list the directory;
//! - a new device joining and cloning the vault (the bulk commit plus 100
//!   edits): time, bytes on the wire, and the wire against the bytes stored;
//!
//! then a soak of 100,000 edits in a directory of 1,000 secrets
//! (`POLYKEY_SCALE_SOAK`: stored bytes and file size as it goes, then
//! the time a collection of what no version needs takes), a clone
//! of 10,000 secrets made in 10,000 commits
//! (`POLYKEY_SCALE_HISTORY`; then, for comparison, git's own clone of
//! the same history exported and packed), the cost of a write while a paired device is
//! online against the same write alone, the latency of a small edit from A
//! until B has it, and a 10 MiB secret from A's commit until B has it.
//! The clones and the 10 MiB secret also print the CPU time the process
//! (both devices) used meanwhile, and so how many cores they kept busy.
//!
//! Run: `cargo bench -p polykey-node --bench scale`.

// A report on stdout is what this bench is for.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use polykey_db::Db;
use polykey_keys::RootKeypair;
use polykey_node::Node;
use polykey_vaults::Vaults;
use zeroize::Zeroizing;

mod common;
use common::{device, head, pair, wait_for_head, write};

/// Single-secret writes timed at each size.
const WRITES: usize = 100;

fn sizes_from(var: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(var)
        .ok()
        .map(|text| {
            text.split(',')
                .filter_map(|n| n.trim().replace('_', "").parse().ok())
                .collect()
        })
        .unwrap_or_else(|| default.to_vec())
}

fn secret_name(i: usize) -> String {
    format!("logins/site-{i:06}")
}

fn secret_value(i: usize, round: usize) -> Vec<u8> {
    format!("{{\"type\":\"login\",\"username\":\"user{i}\",\"password\":\"pw-{i}-{round}-Xq!9\"}}")
        .into_bytes()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn kib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}

/// CPU time this process has used so far, on every thread: both nodes of
/// a measurement and the bench itself, so a figure's CPU time against its
/// wall time says how much of the machine's cores it kept busy.
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// In-process: a vault of `n` secrets in one directory, written, listed.
fn in_process(n: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = RootKeypair::from_seed(&[5; 32]);
    let path = dir.path().join("db.redb");
    let db = Db::create(&path, &keys).expect("db");
    let vault = Vaults::new(&db).create("scale", &keys).expect("vault");
    let names: Vec<String> = (0..n).map(secret_name).collect();
    let values: Vec<Vec<u8>> = (0..n).map(|i| secret_value(i, 0)).collect();
    let secrets: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&values)
        .map(|(name, value)| (name.as_str(), value.as_slice()))
        .collect();
    let started = Instant::now();
    vault.write_secrets(&db, &keys, &secrets).expect("bulk add");
    let bulk = started.elapsed();

    let stored_before = db.space().expect("space").stored_bytes;
    let file_before = std::fs::metadata(&path).expect("file").len();
    let started = Instant::now();
    for round in 0..WRITES {
        let i = (round * 7_919) % n;
        vault
            .write_secret(&db, &keys, &secret_name(i), &secret_value(i, round + 1))
            .expect("write");
    }
    let per_write = started.elapsed() / WRITES as u32;
    let stored = db.space().expect("space").stored_bytes - stored_before;
    let file = std::fs::metadata(&path)
        .expect("file")
        .len()
        .saturating_sub(file_before);

    let started = Instant::now();
    let listed = vault.list(&db, Some("logins")).expect("list");
    let list = started.elapsed();
    assert_eq!(listed.len(), n);
    println!(
        "{n:>7} secrets | bulk add {:>8.1} ms | write {:>6.2} ms | +{:>6.2} KiB stored/write (file +{:>7.1} KiB/write) | list {:>7.1} ms",
        ms(bulk),
        ms(per_write),
        kib(stored) / WRITES as f64,
        kib(file) / WRITES as f64,
        ms(list),
    );
}

/// A soak: `edits` single-secret edits in a directory of 1,000 secrets,
/// printing what the store holds and the file's size as they go.
fn soak(edits: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = RootKeypair::from_seed(&[6; 32]);
    let path = dir.path().join("db.redb");
    let db = Db::create(&path, &keys).expect("db");
    let vault = Vaults::new(&db).create("soak", &keys).expect("vault");
    let names: Vec<String> = (0..1_000).map(secret_name).collect();
    let values: Vec<Vec<u8>> = (0..1_000).map(|i| secret_value(i, 0)).collect();
    let secrets: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&values)
        .map(|(name, value)| (name.as_str(), value.as_slice()))
        .collect();
    vault.write_secrets(&db, &keys, &secrets).expect("bulk add");
    let started = Instant::now();
    let step = (edits / 5).max(1);
    for round in 0..edits {
        let i = (round * 7_919) % 1_000;
        vault
            .write_secret(&db, &keys, &names[i], &secret_value(i, round + 1))
            .expect("write");
        if (round + 1) % step == 0 {
            let space = db.space().expect("space");
            let file = std::fs::metadata(&path).expect("file").len();
            println!(
                "soak: {:>7} edits | stored {:>8.1} MiB ({:.2} KiB/edit) | file {:>8.1} MiB | {:.2} ms/edit",
                round + 1,
                kib(space.stored_bytes) / 1024.0,
                kib(space.stored_bytes) / (round + 1) as f64,
                kib(file) / 1024.0,
                ms(started.elapsed()) / (round + 1) as f64
            );
        }
    }
    // What a lock's collection costs where nothing is garbage: every
    // record of the history opened, none rebuilt.
    let mut db = db;
    let started = Instant::now();
    let collected = Vaults::collect_garbage(&mut db).expect("collect");
    println!(
        "soak: a collection of what no version needs took {:.0} ms ({} records freed)",
        ms(started.elapsed()),
        collected.records
    );
    let started = Instant::now();
    db.compact().expect("compact");
    let space = db.space().expect("space");
    println!(
        "soak: compacted in {:.0} ms | stored {:.1} MiB | file {:.1} MiB",
        ms(started.elapsed()),
        kib(space.stored_bytes) / 1024.0,
        kib(std::fs::metadata(&path).expect("file").len()) / 1024.0
    );
}

async fn secrets_in_bulk(node: &Node, vault: &str, n: usize) {
    let secrets = (0..n)
        .map(|i| (secret_name(i), Zeroizing::new(secret_value(i, 0))))
        .collect();
    node.write_secrets(vault.into(), secrets)
        .await
        .expect("bulk add");
}

/// A clone as measured: its time, of which pairing, the CPU time both
/// devices used meanwhile, the bytes sent, and A's stored bytes.
struct Cloned {
    took: Duration,
    pairing: Duration,
    cpu: Duration,
    wire: u64,
    stored: u64,
}

/// A new device joins and clones.
async fn timed_clone(a: &Node, vault: &str) -> Cloned {
    let want = head(a, vault).await.expect("head");
    let stored = a.store_space().await.expect("space").stored_bytes;
    let fresh = device().await;
    let sent = polykey_network::bytes_written();
    let (started, cpu) = (Instant::now(), cpu_time());
    pair(a, &fresh.node).await;
    let pairing = started.elapsed();
    wait_for_head(&fresh.node, vault, &want).await;
    let (took, cpu) = (started.elapsed(), cpu_time() - cpu);
    let wire = polykey_network::bytes_written() - sent;
    fresh.node.lock().await.expect("lock");
    Cloned {
        took,
        pairing,
        cpu,
        wire,
        stored,
    }
}

fn print_clone(what: &str, c: Cloned) {
    println!(
        "{what} | clone to a new device {:>8.1} ms (pairing {:.0}; CPU {:.0} ms, {:.2} cores) | {:>9.1} KiB on the wire | store {:>9.1} KiB | wire/store {:.2}",
        ms(c.took),
        ms(c.pairing),
        ms(c.cpu),
        c.cpu.as_secs_f64() / c.took.as_secs_f64(),
        kib(c.wire),
        kib(c.stored),
        c.wire as f64 / c.stored as f64
    );
}

async fn clone_of(n: usize) {
    let a = device().await;
    a.node.create_vault("Scale".into()).await.expect("vault");
    secrets_in_bulk(&a.node, "Scale", n).await;
    for round in 0..100 {
        let i = (round * 7_919) % n;
        write(
            &a.node,
            "Scale",
            &secret_name(i),
            secret_value(i, round + 1),
        )
        .await;
    }
    print_clone(
        &format!("{n:>7} secrets, 101 commits"),
        timed_clone(&a.node, "Scale").await,
    );
    a.node.lock().await.expect("lock");
}

async fn clone_of_history(n: usize) {
    let a = device().await;
    a.node.create_vault("History".into()).await.expect("vault");
    let started = Instant::now();
    for i in 0..n {
        write(&a.node, "History", &secret_name(i), secret_value(i, 0)).await;
    }
    println!(
        "{n:>7} secrets added one commit each: {:.2} ms per commit",
        ms(started.elapsed()) / n as f64
    );
    print_clone(
        &format!("{n:>7} secrets, {n} commits"),
        timed_clone(&a.node, "History").await,
    );
    git_clone_of(&a.node, "History").await;
    a.node.lock().await.expect("lock");
}

/// For comparison, git's own clone of the same history: the vault
/// exported (plain objects), packed with deltas, then cloned with
/// `--no-local` (`pack-objects` sends, `index-pack` rebuilds and hashes
/// every version, on every core). Skipped without `git`.
async fn git_clone_of(a: &Node, vault: &str) {
    let git = |args: &[&str], dir: &std::path::Path| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let dir = tempfile::tempdir().expect("temp dir");
    if !git(&["--version"], dir.path()) {
        println!("git's own clone: skipped (no git)");
        return;
    }
    let source = dir.path().join("source.git");
    a.export_vault(vault.into(), source.clone())
        .await
        .expect("export");
    assert!(git(&["repack", "-adq"], &source), "git repack");
    let started = Instant::now();
    assert!(
        git(
            &[
                "clone",
                "-q",
                "--no-local",
                "--bare",
                "source.git",
                "copy.git"
            ],
            dir.path()
        ),
        "git clone"
    );
    let took = started.elapsed();
    let pack: u64 = std::fs::read_dir(source.join("objects/pack"))
        .expect("packs")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "git's own clone of the same history (exported, packed, --no-local): {:.1} ms, pack {:.1} KiB",
        ms(took),
        kib(pack)
    );
}

/// Writes on A alone, then with B paired and online; and the latency of a
/// small edit until B has it; and a 10 MiB secret.
async fn with_a_peer() {
    let a = device().await;
    a.node.create_vault("Work".into()).await.expect("vault");
    secrets_in_bulk(&a.node, "Work", 1_000).await;
    let timed_writes = |round: usize| {
        let node = a.node.clone();
        async move {
            let mut samples = Vec::new();
            for k in 0..200 {
                let i = (k * 37) % 1_000;
                let started = Instant::now();
                write(&node, "Work", &secret_name(i), secret_value(i, round + k)).await;
                samples.push(started.elapsed());
            }
            median(samples)
        }
    };
    let alone = timed_writes(1_000).await;
    let b = device().await;
    pair(&a.node, &b.node).await;
    let want = head(&a.node, "Work").await.expect("head");
    wait_for_head(&b.node, "Work", &want).await;
    let online = timed_writes(2_000).await;
    println!(
        "write with no device online {:.2} ms, with a paired device online {:.2} ms: ratio {:.2}",
        ms(alone),
        ms(online),
        online.as_secs_f64() / alone.as_secs_f64()
    );

    let mut latencies = Vec::new();
    for k in 0..100 {
        let started = Instant::now();
        let new_head = write(&a.node, "Work", "edited", format!("edit {k}").into_bytes()).await;
        wait_for_head(&b.node, "Work", &new_head).await;
        latencies.push(started.elapsed());
    }
    println!(
        "small edit on A until B has it: median {:.2} ms",
        ms(median(latencies))
    );

    const SIZE: usize = 10 * 1024 * 1024;
    let (mut rates, mut cpus) = (Vec::new(), Vec::new());
    for round in 0..5u64 {
        let blob: Vec<u8> = (0..SIZE)
            .map(|j| (j as u64).wrapping_mul(2_654_435_761).wrapping_add(round) as u8)
            .collect();
        let new_head = write(&a.node, "Work", "archive.bin", blob).await;
        let (started, cpu) = (Instant::now(), cpu_time());
        wait_for_head(&b.node, "Work", &new_head).await;
        rates.push(started.elapsed());
        cpus.push(cpu_time() - cpu);
    }
    let (took, cpu) = (median(rates), median(cpus));
    println!(
        "10 MiB secret from A's commit until B has it: {:.1} ms, {:.0} MB/s (CPU of both devices meanwhile {:.0} ms, {:.2} cores)",
        ms(took),
        SIZE as f64 / took.as_secs_f64() / 1e6,
        ms(cpu),
        cpu.as_secs_f64() / took.as_secs_f64()
    );
    b.node.lock().await.expect("lock");
    a.node.lock().await.expect("lock");
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks parts.
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |part: &str| only.as_deref().is_none_or(|o| part.contains(o));
    let sizes = sizes_from("POLYKEY_SCALE_SIZES", &[1_000, 10_000, 100_000]);
    if wanted("in-process") {
        println!("-- in process (one vault, one directory, durable signed commits)");
        for &n in &sizes {
            in_process(n);
        }
    }
    if wanted("soak") {
        println!("-- soak (edits in a directory of 1,000 secrets)");
        for edits in sizes_from("POLYKEY_SCALE_SOAK", &[100_000]) {
            soak(edits);
        }
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    if wanted("clone") {
        println!("-- clone over loopback");
        for &n in &sizes {
            runtime.block_on(clone_of(n));
        }
        for n in sizes_from("POLYKEY_SCALE_HISTORY", &[10_000]) {
            runtime.block_on(clone_of_history(n));
        }
    }
    if wanted("peer") {
        println!("-- with a paired device online (1,000 secrets)");
        runtime.block_on(with_a_peer());
    }
}

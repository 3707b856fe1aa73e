//! Sync between real nodes on 127.0.0.1 (release build, loopback TCP):
//! - a new device joins and receives a vault of 1,000 secrets made in 1,000
//!   commits (pairing included, from `join` until its head matches);
//! - one edit on A until B reads it (change notice, pull, verify, merge);
//! - a 10 MiB secret, from A's commit until B has it (throughput);
//! - sharing with another person: Alice shares a vault of 1,000 secrets
//!   (1,000 commits) with Bob, who accepts the offer (from `share_vault`
//!   until Bob's `accept_share` returns with the vault whole), and one edit
//!   of Alice's until Bob's copy has it.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use polykey_node::Node;

mod common;
use common::{device, head, pair, wait_for_head, write, Device};

/// `iters` edits of "Big" on `writer`, each timed from the write until
/// `reader` has it; `n` numbers the values so each edit changes something.
async fn timed_edits(writer: &Node, reader: &Node, iters: u64, n: &mut u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        *n += 1;
        let started = Instant::now();
        let new_head = write(writer, "Big", "edited", format!("value {n}").into_bytes()).await;
        wait_for_head(reader, "Big", &new_head).await;
        total += started.elapsed();
    }
    total
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (a, big_head) = runtime.block_on(alice_with_big_vault());

    let mut group = c.benchmark_group("sync on loopback");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function(
        "new device joins and receives 1,000 secrets in 1,000 commits",
        |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let fresh = device().await;
                        let started = Instant::now();
                        pair(&a.node, &fresh.node).await;
                        wait_for_head(&fresh.node, "Big", &big_head).await;
                        total += started.elapsed();
                        // Stop it (dropping a node does not stop its
                        // tasks at once): one new device per measurement,
                        // not dozens still syncing with A during the next.
                        fresh.node.lock().await.expect("lock");
                    }
                    total
                })
            });
        },
    );

    let b_dev = runtime.block_on(async {
        let b_dev = device().await;
        pair(&a.node, &b_dev.node).await;
        wait_for_head(&b_dev.node, "Big", &big_head).await;
        b_dev
    });
    let mut n = 0u64;
    group.bench_function("one edit on A until B has it", |b| {
        b.iter_custom(|iters| runtime.block_on(timed_edits(&a.node, &b_dev.node, iters, &mut n)));
    });

    runtime.block_on(async {
        a.node.create_vault("Files".into()).await.expect("vault");
    });
    const SIZE: usize = 10 * 1024 * 1024;
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.bench_function("a 10 MiB secret, from A's commit until B has it", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let mut blob = vec![0u8; SIZE];
                    for (j, byte) in blob.iter_mut().enumerate() {
                        *byte = (j as u64).wrapping_mul(2654435761).wrapping_add(i) as u8;
                    }
                    // Writing on A (hash, seal, store: about as long as the
                    // transfer) is not counted: from A's commit on, the
                    // notice, fetch, checks and storing on B are.
                    let new_head = write(&a.node, "Files", "archive.bin", blob).await;
                    let started = Instant::now();
                    wait_for_head(&b_dev.node, "Files", &new_head).await;
                    total += started.elapsed();
                }
                total
            })
        });
    });
    group.finish();
}

/// Alice's 1,000-secret vault "Big", made in 1,000 commits.
async fn alice_with_big_vault() -> (Device, String) {
    let a = device().await;
    a.node.create_vault("Big".into()).await.expect("vault");
    for i in 0..1_000 {
        write(
            &a.node,
            "Big",
            &format!("group{:02}/site-{i:04}", i / 50),
            format!("password-{i:04}-Xq!").into_bytes(),
        )
        .await;
    }
    let big_head = head(&a.node, "Big").await.expect("head");
    (a, big_head)
}

/// A new person who can reach Alice and lets her send offers.
async fn bob_trusting(alice: &Node) -> Device {
    let bob = device().await;
    let alice_id = alice.status().node_id.expect("unlocked");
    let address = alice
        .addresses()
        .await
        .expect("addresses")
        .into_iter()
        .find(|a| a.contains("/127.0.0.1/"))
        .expect("a loopback address");
    bob.node.connect(alice_id, address).await.expect("connect");
    let name = alice_id.to_string();
    bob.node.trust(&name).await.expect("trust");
    bob.node
        .set_permission(&name, polykey_node::people::Permission::Notify, true)
        .await
        .expect("allow");
    bob
}

/// Alice shares "Big" with `bob`, who accepts: the offer's vault id.
async fn share_and_accept(alice: &Node, bob: &Node) -> String {
    let bob_id = bob.status().node_id.expect("unlocked").to_string();
    let shared = alice
        .share_vault("Big", &bob_id, false)
        .await
        .expect("share");
    assert!(shared.offered, "the offer arrived");
    let offer = bob
        .read_notifications(true)
        .await
        .expect("notifications")
        .into_iter()
        .find_map(|n| n.share)
        .expect("an offer");
    bob.accept_share(&offer.vault).await.expect("accept");
    offer.vault
}

fn bench_sharing(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (a, big_head) = runtime.block_on(alice_with_big_vault());
    let mut group = c.benchmark_group("sharing on loopback");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function(
        "share a 1,000-secret vault, accept, until the recipient holds it",
        |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let bob = bob_trusting(&a.node).await;
                        let started = Instant::now();
                        share_and_accept(&a.node, &bob.node).await;
                        total += started.elapsed();
                        assert_eq!(head(&bob.node, "Big").await.as_deref(), Some(&*big_head));
                        let bob_id = bob.node.status().node_id.expect("id").to_string();
                        a.node.unshare_vault("Big", &bob_id).await.expect("unshare");
                        a.node.untrust(&bob_id).await.expect("untrust");
                        bob.node.lock().await.expect("lock");
                    }
                    total
                })
            });
        },
    );
    let bob = runtime.block_on(async {
        let bob = bob_trusting(&a.node).await;
        share_and_accept(&a.node, &bob.node).await;
        bob
    });
    let mut n = 0u64;
    group.bench_function("one edit of the owner until the recipient has it", |b| {
        b.iter_custom(|iters| runtime.block_on(timed_edits(&a.node, &bob.node, iters, &mut n)));
    });
    group.finish();
}

criterion_group!(benches, bench, bench_sharing);
criterion_main!(benches);

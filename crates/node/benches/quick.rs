//! Listing and searching a vault of 10,000 logins through the node: the
//! first listing after unlock (every item read and summarized), a listing
//! with the summaries cached, and a search across every vault.

use criterion::{criterion_group, criterion_main, Criterion};
use polykey_node::api::{ItemDto, SecretDto};
use polykey_node::{KdfProfile, Node, NodeOptions};

const PASSWORD: &str = "bench password 1";

fn login(i: usize) -> SecretDto {
    SecretDto {
        path: format!("group{:03}/site-{i:05}", i / 100),
        title: format!("Site {i:05}"),
        item: ItemDto::Login {
            username: format!("user-{i:05}@example.org"),
            password: format!("password-{i:05}-Xq!"),
            urls: vec![format!("https://site-{i:05}.example.org/login")],
            totp: None,
            notes: String::new(),
        },
        fields: Vec::new(),
        attachments: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let node = runtime.block_on(async {
        let options = NodeOptions {
            kdf: KdfProfile::Default,
            ..Default::default()
        };
        let node = Node::open(dir.path(), options).await.expect("open");
        node.create(PASSWORD.into()).await.expect("create");
        node.create_vault("Big".into()).await.expect("vault");
        let all: Vec<SecretDto> = (0..10_000).map(login).collect();
        for chunk in all.chunks(2_000) {
            node.save_secrets("Big".into(), chunk.to_vec())
                .await
                .expect("populate");
        }
        node
    });
    let mut group = c.benchmark_group("vault of 10,000 logins");
    group.sample_size(10);
    group.bench_function("first listing after unlock", |b| {
        b.iter_batched(
            || {
                runtime.block_on(async {
                    node.lock().await.expect("lock");
                    node.unlock(PASSWORD.into()).await.expect("unlock");
                })
            },
            |()| {
                runtime
                    .block_on(node.list_entries("Big".into()))
                    .expect("list")
            },
            criterion::BatchSize::PerIteration,
        );
    });
    group.bench_function("listing, summaries cached", |b| {
        b.iter(|| {
            runtime
                .block_on(node.list_entries("Big".into()))
                .expect("list")
        });
    });
    group.bench_function("quick search across vaults", |b| {
        b.iter(|| {
            runtime
                .block_on(node.quick_search("user-0424".into(), 50))
                .expect("search")
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

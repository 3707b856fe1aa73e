//! Vault operations on a real redb file, every write a durable, signed commit.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use polykey_db::Db;
use polykey_keys::RootKeypair;
use polykey_vaults::{Incoming, RawObject, Vault, Vaults};

struct Setup {
    _dir: tempfile::TempDir,
    db: Db,
    keys: RootKeypair,
    vault: Vault,
}

/// A vault holding `count` secrets in directories of 100 (`group-NN/secret-NNNNN`),
/// or all in the root directory when `flat`.
fn vault_with(count: usize, flat: bool) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = RootKeypair::from_seed(&[5; 32]);
    let db = Db::create(&dir.path().join("db.redb"), &keys).expect("db");
    let vault = Vaults::new(&db).create("bench", &keys).expect("vault");
    let names: Vec<String> = (0..count)
        .map(|i| {
            if flat {
                format!("secret-{i:05}")
            } else {
                format!("group-{:02}/secret-{i:05}", i / 100)
            }
        })
        .collect();
    let value = b"correct horse battery staple".as_slice();
    let secrets: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), value)).collect();
    for chunk in secrets.chunks(5_000) {
        vault.write_secrets(&db, &keys, chunk).expect("populate");
    }
    Setup {
        _dir: dir,
        db,
        keys,
        vault,
    }
}

fn write_one(c: &mut Criterion) {
    let mut group = c.benchmark_group("write_one_secret");
    for (count, flat) in [(10, false), (1_000, false), (10_000, false), (10_000, true)] {
        let s = vault_with(count, flat);
        let label = if flat {
            format!("{count}_flat")
        } else {
            count.to_string()
        };
        let mut n = 0u64;
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| {
                n += 1;
                let value = format!("value-{n}");
                s.vault
                    .write_secret(&s.db, &s.keys, "group-00/secret-00001", value.as_bytes())
                    .expect("write")
            })
        });
    }
    group.finish();
}

fn read_and_list(c: &mut Criterion) {
    let s = vault_with(10_000, false);
    c.bench_function("read_one_secret_of_10000", |b| {
        b.iter(|| s.vault.get(&s.db, "group-42/secret-04242").expect("read"))
    });
    c.bench_function("list_10000_secrets", |b| {
        b.iter(|| {
            let names = s.vault.list(&s.db, None).expect("list");
            assert_eq!(names.len(), 10_000);
        })
    });
}

fn log_1000(c: &mut Criterion) {
    let s = vault_with(10, false);
    for i in 0..1_000 {
        s.vault
            .write_secret(
                &s.db,
                &s.keys,
                "group-00/secret-00001",
                format!("v{i}").as_bytes(),
            )
            .expect("write");
    }
    c.bench_function("log_1000_commits", |b| {
        b.iter(|| {
            let log = s.vault.log(&s.db, None).expect("log");
            assert!(log.len() > 1_000);
        })
    });
}

fn merge(c: &mut Criterion) {
    merge_after(c, "merge_1000_secret_vault", 0);
    // The same after 10,000 earlier commits: a merge reads the commits
    // since the two parted, not the whole history.
    merge_after(c, "merge_after_10000_commits", 10_000);
}

fn merge_after(c: &mut Criterion, name: &str, history: usize) {
    // Two copies of a 1,000-secret vault (with `history` edits before
    // they part). Every iteration both sides make a new edit of a
    // different secret (setup, untimed) and the laptop merges the phone's
    // head (timed): a real three-way merge each time.
    let laptop = vault_with(1_000, false);
    for i in 0..history {
        laptop
            .vault
            .write_secret(
                &laptop.db,
                &laptop.keys,
                "group-02/secret-00200",
                format!("h{i}").as_bytes(),
            )
            .expect("history");
    }
    let (head, objects) = laptop.vault.objects_for(&laptop.db, &[]).expect("objects");
    let other = tempfile::tempdir().expect("dir");
    let phone_keys = RootKeypair::from_seed(&[6; 32]);
    let phone_db = Db::create(&other.path().join("db.redb"), &phone_keys).expect("db");
    let phone = Vaults::new(&phone_db)
        .clone_vault("bench", &laptop.vault.id().to_string(), &head, &objects)
        .expect("clone");
    let mut n = 0u64;
    c.bench_function(name, |b| {
        b.iter_batched(
            || {
                n += 1;
                let laptop_head = laptop.vault.head(&laptop.db).expect("head");
                let phone_head = phone.head(&phone_db).expect("head");
                let (_, to_phone) = laptop
                    .vault
                    .objects_for(&laptop.db, &[phone_head])
                    .expect("objects");
                phone.import(&phone_db, &to_phone).expect("import");
                phone
                    .merge(&phone_db, &phone_keys, &laptop_head)
                    .expect("catch up");
                phone
                    .write_secret(
                        &phone_db,
                        &phone_keys,
                        "group-01/secret-00100",
                        format!("p{n}").as_bytes(),
                    )
                    .expect("phone edit");
                let (their_head, to_laptop) = phone
                    .objects_for(&phone_db, &[laptop.vault.head(&laptop.db).expect("head")])
                    .expect("objects");
                laptop.vault.import(&laptop.db, &to_laptop).expect("import");
                laptop
                    .vault
                    .write_secret(
                        &laptop.db,
                        &laptop.keys,
                        "group-00/secret-00001",
                        format!("l{n}").as_bytes(),
                    )
                    .expect("laptop edit");
                their_head
            },
            |their_head| {
                let outcome = laptop
                    .vault
                    .merge(&laptop.db, &laptop.keys, &their_head)
                    .expect("merge");
                assert!(matches!(
                    outcome,
                    polykey_vaults::MergeOutcome::Merged { .. }
                ));
            },
            criterion::BatchSize::PerIteration,
        )
    });
}

/// The pages a copy at `haves` is sent to reach `want`, of about `budget` bytes.
fn pages_of(
    from: &Setup,
    want: &str,
    haves: &[String],
    budget: usize,
) -> Vec<Vec<(String, RawObject)>> {
    let mut pages = Vec::new();
    let mut skip = 0;
    loop {
        let (page, total) = from
            .vault
            .objects_page(&from.db, want, haves, skip, budget)
            .expect("page");
        skip += page.len();
        if page.is_empty() {
            break;
        }
        pages.push(page);
        if skip >= total {
            break;
        }
    }
    pages
}

fn receive(c: &mut Criterion) {
    let anyone = |_: &polykey_keys::NodeId, _: i64| true;
    // A whole 1,000-secret vault arriving in 64 KiB pages, each verified and
    // stored in its own transaction, into a fresh store.
    let laptop = vault_with(1_000, false);
    let head = laptop.vault.head(&laptop.db).expect("head");
    let id = laptop.vault.id().to_string();
    let pages = pages_of(&laptop, &head, &[], 64 * 1024);
    c.bench_function("receive_1000_secret_vault_in_pages", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("dir");
                let keys = RootKeypair::from_seed(&[7; 32]);
                let db = Db::create(&dir.path().join("db.redb"), &keys).expect("db");
                (dir, db)
            },
            |(_dir, db)| {
                let vaults = Vaults::new(&db);
                let copy = vaults.begin_receive_vault("bench", &id, 0).expect("begin");
                let mut incoming = Incoming::new(&copy);
                for page in &pages {
                    copy.receive_page(&db, &mut incoming, page, &anyone)
                        .expect("page");
                }
                vaults
                    .finish_receive_vault(&id, incoming, &head)
                    .expect("finish");
            },
            criterion::BatchSize::PerIteration,
        )
    });

    // One edit arriving into a copy of a 10,000-secret vault: the checks
    // look at the new trees only (the shapes of stored subtrees are cached).
    let laptop = vault_with(10_000, false);
    let (head, objects) = laptop.vault.objects_for(&laptop.db, &[]).expect("objects");
    let other = tempfile::tempdir().expect("dir");
    let phone_keys = RootKeypair::from_seed(&[8; 32]);
    let phone_db = Db::create(&other.path().join("db.redb"), &phone_keys).expect("db");
    let phone = Vaults::new(&phone_db)
        .clone_vault("bench", &laptop.vault.id().to_string(), &head, &objects)
        .expect("clone");
    let mut n = 0u64;
    c.bench_function("receive_one_edit_into_10000_secret_vault", |b| {
        b.iter_batched(
            || {
                n += 1;
                laptop
                    .vault
                    .write_secret(
                        &laptop.db,
                        &laptop.keys,
                        "group-42/secret-04242",
                        format!("v{n}").as_bytes(),
                    )
                    .expect("edit");
                let want = laptop.vault.head(&laptop.db).expect("head");
                let pages = pages_of(
                    &laptop,
                    &want,
                    &[phone.head(&phone_db).expect("head")],
                    1 << 20,
                );
                (want, pages)
            },
            |(want, pages)| {
                let mut incoming = Incoming::new(&phone);
                for page in &pages {
                    phone
                        .receive_page(&phone_db, &mut incoming, page, &anyone)
                        .expect("page");
                }
                phone
                    .finish_receive(&phone_db, incoming, &want)
                    .expect("finish");
                phone.merge(&phone_db, &phone_keys, &want).expect("merge");
            },
            criterion::BatchSize::PerIteration,
        )
    });
}

criterion_group!(
    benches,
    write_one,
    read_and_list,
    log_1000,
    merge,
    receive,
    clone_1000_commits
);
criterion_main!(benches);

/// A 1,000-commit history cloned the way a node does: pages of 64 KiB read
/// on one side (each page recomputes what to send), then received whole.
fn clone_1000_commits(c: &mut Criterion) {
    let anyone = |_: &polykey_keys::NodeId, _: i64| true;
    let s = vault_with(10, false);
    for i in 0..1_000 {
        s.vault
            .write_secret(
                &s.db,
                &s.keys,
                "group-00/secret-00001",
                format!("v{i}").as_bytes(),
            )
            .expect("write");
    }
    let head = s.vault.head(&s.db).expect("head");
    let id = s.vault.id().to_string();
    c.bench_function("send_1000_commits_in_64k_pages", |b| {
        b.iter(|| {
            let mut skip = 0;
            loop {
                let (page, total) = s
                    .vault
                    .objects_page(&s.db, &head, &[], skip, 64 * 1024)
                    .expect("page");
                skip += page.len();
                if page.is_empty() || skip >= total {
                    break;
                }
            }
        })
    });
    let objects = s.vault.objects_between(&s.db, &head, &[]).expect("objects");
    c.bench_function("receive_vault_of_1000_commits_whole", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("dir");
                let keys = RootKeypair::from_seed(&[7; 32]);
                let db = Db::create(&dir.path().join("db.redb"), &keys).expect("db");
                (dir, db)
            },
            |(_dir, db)| {
                Vaults::new(&db)
                    .receive_vault("bench", &id, 0, &head, &objects, &anyone)
                    .expect("receive");
            },
            criterion::BatchSize::PerIteration,
        )
    });
}

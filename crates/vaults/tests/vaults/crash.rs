//! Crash safety: a writer process killed with SIGKILL at random moments
//! never loses an acknowledged write and never leaves a broken history.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use polykey_db::Db;
use polykey_keys::RootKeypair;
use polykey_vaults::{RawObject, Vault, Vaults};

const WRITER_ENV: &str = "POLYKEY_TEST_CRASH_WRITER";
/// The count: a hundred kills per suite run.
const RUNS: u64 = 100;

fn keys() -> RootKeypair {
    RootKeypair::from_seed(&[77; 32])
}

/// Not a test of its own: run by `sigkill_at_random_moments_loses_no_acknowledged_write`
/// as the child process. It writes secrets until killed, printing an
/// acknowledgement after each commit has returned.
#[test]
fn helper_crash_writer() {
    let Some(spec) = std::env::var_os(WRITER_ENV) else {
        return;
    };
    let spec = spec.to_string_lossy().into_owned();
    let (path, run) = spec.rsplit_once('|').unwrap();
    let db = Db::open(Path::new(path), &keys()).unwrap();
    let vault = Vaults::new(&db).open("crash").unwrap();
    let mut out = std::io::stdout().lock();
    // Bounded: the parent kills it long before this ends.
    for i in 0..100_000u32 {
        let name = format!("run-{run}/secret-{i}");
        let value = format!("value-{run}-{i}");
        vault
            .write_secret(&db, &keys(), &name, value.as_bytes())
            .unwrap();
        writeln!(out, "ack {name} {value}").unwrap();
        out.flush().unwrap();
    }
}

/// The git id of a blob holding `bytes`.
fn blob_id(bytes: &[u8]) -> String {
    use sha1::Digest;
    let mut hash = sha1::Sha1::new();
    hash.update(format!("blob {}\0", bytes.len()));
    hash.update(bytes);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn next(state: &mut u64) -> u64 {
    // xorshift64: a tiny deterministic generator, seeded and printed below.
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    {
        let db = Db::create(&path, &keys()).unwrap();
        Vaults::new(&db).create("crash", &keys()).unwrap();
    }
    let mut seed = seed_for("write");
    let mut acknowledged: Vec<(String, String)> = Vec::new();

    for run in 0..RUNS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::helper_crash_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WRITER_ENV, format!("{}|{run}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("ack ") {
                    let (name, value) = rest.split_once(' ').unwrap();
                    if tx.send((name.to_owned(), value.to_owned())).is_err() {
                        break;
                    }
                }
            }
        });
        // Wait for the first acknowledged write, then kill at a random moment.
        let first = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the writer made progress");
        let delay = next(&mut seed) % 120;
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL on Unix.
        child.wait().unwrap();
        reader.join().unwrap();
        let run_acks: Vec<_> = std::iter::once(first).chain(rx.try_iter()).collect();
        assert!(!run_acks.is_empty());
        acknowledged.extend(run_acks);

        // After every crash: the store opens and every acknowledged write
        // is there (by its content's git id; every tenth run and the last
        // read each value back and verify every commit's signature too).
        let db = Db::open(&path, &keys()).unwrap();
        let vault = Vaults::new(&db).open("crash").unwrap();
        let files: std::collections::HashMap<String, String> =
            vault.files(&db).unwrap().into_iter().collect();
        for (name, value) in &acknowledged {
            assert_eq!(
                files.get(name),
                Some(&blob_id(value.as_bytes())),
                "run {run}: acknowledged {name} is missing or wrong"
            );
        }
        if run % 10 == 9 || run + 1 == RUNS {
            for (name, value) in &acknowledged {
                assert_eq!(
                    vault.get(&db, name).unwrap().as_slice(),
                    value.as_bytes(),
                    "run {run}: acknowledged {name} reads back wrong"
                );
            }
            vault.verify_history(&db).unwrap();
        }
        let log = vault.log(&db, None).unwrap();
        assert!(
            log.len() > acknowledged.len(),
            "one commit per write plus the first"
        );
    }
}

const HOLDER_ENV: &str = "POLYKEY_TEST_CRASH_HOLDER";

/// Not a test of its own: run by the tests below as the child process,
/// with `compact|<path>` or `collect|<path>`. It says when it starts that
/// work on the store, then does it.
#[test]
fn helper_crash_holder() {
    let Some(spec) = std::env::var_os(HOLDER_ENV) else {
        return;
    };
    let spec = spec.to_string_lossy().into_owned();
    let (work, path) = spec.split_once('|').unwrap();
    let mut db = Db::open(Path::new(path), &keys()).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "started").unwrap();
    out.flush().unwrap();
    match work {
        "compact" => db.compact().unwrap(),
        _ => {
            Vaults::collect_garbage(&mut db).unwrap();
        }
    }
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
}

/// Kill `work` (see [`helper_crash_holder`]) on the store at `path` at
/// random moments within `window`, eight times, each from `template`,
/// and `check` the store after each kill.
fn kill_during(
    work: &str,
    (template, path): (&Path, &Path),
    window: Duration,
    seed: &mut u64,
    check: impl Fn(&str),
) {
    let window = window.as_micros().max(1) as u64;
    for run in 0..8 {
        std::fs::copy(template, path).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::helper_crash_holder",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HOLDER_ENV, format!("{work}|{}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Past the test harness's own lines, to the child's word (after
        // the harness's "test … " on the same line).
        let started = lines
            .map_while(Result::ok)
            .any(|line| line.ends_with("started"));
        assert!(started, "run {run}: the child began to {work}");
        std::thread::sleep(Duration::from_micros(next(seed) % window));
        child.kill().unwrap(); // SIGKILL on Unix.
        child.wait().unwrap();
        check(&format!("after a kill in run {run}"));
    }
}

/// A seed for a test's random moments, printed so a failure can be run
/// again.
fn seed_for(what: &str) -> u64 {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("{what} crash test seed {seed}");
    seed
}

/// `n` logins to keep through the crashes.
fn logins(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                format!("logins/site-{i:03}"),
                format!("pw-{i}").into_bytes(),
            )
        })
        .collect()
}

/// Vault "kept" of the store at `path` holds every one of `kept`, its
/// history verifies; returns the store and the vault for more checks.
fn check_kept(path: &Path, kept: &[(String, Vec<u8>)], when: &str) -> (Db, Vault) {
    let db = Db::open(path, &keys()).unwrap();
    let vault = Vaults::new(&db).open("kept").unwrap();
    for (name, value) in kept.iter().step_by(7) {
        assert_eq!(
            vault.get(&db, name).unwrap().as_slice(),
            value.as_slice(),
            "{when}: {name}"
        );
    }
    assert_eq!(vault.files(&db).unwrap().len(), kept.len(), "{when}");
    vault.verify_history(&db).unwrap();
    (db, vault)
}

#[test]
fn sigkill_during_compaction_loses_nothing_and_a_whole_one_gives_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let mut seed = seed_for("compaction");
    // A vault that stays, and one whose 16 MiB go: deleted, then purged
    // past its recovery window.
    let kept = logins(500);
    {
        let db = Db::create(&path, &keys()).unwrap();
        let vaults = Vaults::new(&db);
        let vault = vaults.create("kept", &keys()).unwrap();
        let pairs: Vec<(&str, &[u8])> = kept
            .iter()
            .map(|(p, v)| (p.as_str(), v.as_slice()))
            .collect();
        vault.write_secrets(&db, &keys(), &pairs).unwrap();
        let gone = vaults.create("gone", &keys()).unwrap();
        for chunk in 0..4 {
            let files: Vec<(String, Vec<u8>)> = (0..512)
                .map(|i| {
                    let value: Vec<u8> = (0..1024)
                        .flat_map(|_| next(&mut seed).to_le_bytes())
                        .collect();
                    (format!("big/{chunk}-{i}"), value)
                })
                .collect();
            let pairs: Vec<(&str, &[u8])> = files
                .iter()
                .map(|(p, v)| (p.as_str(), v.as_slice()))
                .collect();
            gone.write_secrets(&db, &keys(), &pairs).unwrap();
        }
        vaults.delete("gone", &keys()).unwrap();
        let later = polykey_vaults::RECOVERY_WINDOW_MS * 2
            + SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
        assert_eq!(vaults.purge_expired(later).unwrap(), 1);
        let space = db.space().unwrap();
        assert!(space.fragmented_bytes > 16 * 1024 * 1024, "{space:?}");
    }
    // Every run starts from this fragmented store.
    let template = dir.path().join("template.redb");
    std::fs::copy(&path, &template).unwrap();
    let full = std::fs::metadata(&path).unwrap().len();
    let check = |when: &str| {
        let (db, _) = check_kept(&path, &kept, when);
        assert!(Vaults::new(&db).open("gone").is_err(), "{when}");
    };

    // A compaction that runs to its end gives the purged vault's space back.
    let mut db = Db::open(&path, &keys()).unwrap();
    let started = std::time::Instant::now();
    db.compact().unwrap();
    let took = started.elapsed();
    drop(db);
    let compacted = std::fs::metadata(&path).unwrap().len();
    assert!(
        compacted + 12 * 1024 * 1024 < full,
        "{full} bytes before, {compacted} after"
    );
    check("after a whole compaction");

    // Killed at random moments within that time, a compaction loses
    // nothing: each run starts again from the fragmented store.
    kill_during("compact", (&template, &path), took, &mut seed, check);
}

#[test]
fn sigkill_during_a_collection_loses_nothing_and_a_whole_one_frees_the_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let mut seed = seed_for("collection");
    // A vault with a history, and 16 MiB of objects no version of it
    // reaches (another device's, as a transfer let go leaves them).
    let kept = logins(300);
    {
        let db = Db::create(&path, &keys()).unwrap();
        let vault = Vaults::new(&db).create("kept", &keys()).unwrap();
        for batch in kept.chunks(30) {
            let pairs: Vec<(&str, &[u8])> = batch
                .iter()
                .map(|(p, v)| (p.as_str(), v.as_slice()))
                .collect();
            vault.write_secrets(&db, &keys(), &pairs).unwrap();
        }
        let garbage: Vec<RawObject> = (0..4)
            .map(|_| RawObject {
                kind: gix::objs::Kind::Blob,
                data: (0..(512 << 10))
                    .flat_map(|_| next(&mut seed).to_le_bytes())
                    .collect(),
                base: None,
            })
            .collect();
        vault.import(&db, &garbage).unwrap();
    }
    let template = dir.path().join("template.redb");
    std::fs::copy(&path, &template).unwrap();
    let stored = || {
        Db::open(&path, &keys())
            .unwrap()
            .space()
            .unwrap()
            .stored_bytes
    };
    let full = stored();
    let check = |when: &str| {
        let (db, vault) = check_kept(&path, &kept, when);
        assert_eq!(vault.log(&db, None).unwrap().len(), 11, "{when}");
    };

    let mut db = Db::open(&path, &keys()).unwrap();
    let started = std::time::Instant::now();
    let collected = Vaults::collect_garbage(&mut db).unwrap();
    let took = started.elapsed();
    drop(db);
    assert!(collected.bytes >= 16 << 20, "{collected:?}");
    let after = stored();
    assert!(
        after + (16 << 20) <= full,
        "{full} bytes before, {after} after"
    );
    check("after a whole collection");

    // Killed at random moments within that time, a collection loses
    // nothing, and frees all of the garbage or none of it.
    kill_during("collect", (&template, &path), took, &mut seed, |when| {
        check(when);
        let now = stored();
        assert!(
            now <= after + 4096 || now + 4096 >= full,
            "{when}: {now} bytes ({after} or {full})"
        );
    });
}

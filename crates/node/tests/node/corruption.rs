//! A damaged node directory: random byte flips, zeroed pages and
//! truncations of `db.redb` and `root_key.json` (200 cases from a printed
//! seed; `POLYKEY_CORRUPTION_SEED` repeats one run). Every open, unlock and
//! read either gives back exactly what was written or a clear error; never
//! a wrong value, and no panic but the storage engine's own on a damaged
//! file, which the node turns into a sentence.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use polykey_node::Node;
use zeroize::Zeroizing;

use crate::{open, options, PASSWORD};

const CASES: usize = 200;
const SECRETS: usize = 20;

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Damage `file` one way, chosen by `state`; says how.
fn damage(file: &Path, state: &mut u64) -> String {
    let mut bytes = std::fs::read(file).unwrap();
    let len = bytes.len() as u64;
    let how = match next(state) % 4 {
        0 | 1 => {
            let flips = 1 + next(state) % 8;
            for _ in 0..flips {
                let at = (next(state) % len) as usize;
                bytes[at] ^= 1 + (next(state) % 255) as u8;
            }
            format!("{flips} bytes flipped")
        }
        2 => {
            let page = (next(state) % len.div_ceil(4096)) as usize * 4096;
            let end = (page + 4096).min(bytes.len());
            bytes[page..end].fill(0);
            format!("page at {page} zeroed")
        }
        _ => {
            let keep = (next(state) % len) as usize;
            bytes.truncate(keep);
            format!("cut to {keep} bytes")
        }
    };
    std::fs::write(file, bytes).unwrap();
    how
}

/// What the damaged directory gives back: an error's words, or checked
/// values. A panic anywhere fails the test through the hook.
async fn check(dir: &Path, expected: &BTreeMap<String, String>) -> Result<(), String> {
    let node = Node::open(dir, options())
        .await
        .map_err(|e| e.to_string())?;
    node.unlock(PASSWORD.into())
        .await
        .map_err(|e| e.to_string())?;
    let names = node
        .list_secrets("v".into(), None)
        .await
        .map_err(|e| e.to_string())?;
    let listed: Vec<&String> = expected.keys().collect();
    assert_eq!(names.iter().collect::<Vec<_>>(), listed, "a wrong listing");
    for (name, value) in expected {
        let got = node
            .get_secret("v".into(), name.clone(), None)
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(got.as_slice(), value.as_bytes(), "a wrong value for {name}");
    }
    Ok(())
}

#[tokio::test]
async fn a_damaged_store_or_key_file_gives_right_values_or_a_clear_error() {
    let pristine = tempfile::tempdir().unwrap();
    let mut expected = BTreeMap::new();
    {
        let node = open(pristine.path()).await;
        node.create(PASSWORD.into()).await.unwrap();
        node.create_vault("v".into()).await.unwrap();
        let secrets: Vec<(String, Zeroizing<Vec<u8>>)> = (0..SECRETS)
            .map(|i| {
                let value = format!("secret number {i} {}", "x".repeat(i * 40));
                expected.insert(format!("s{i:02}"), value.clone());
                (format!("s{i:02}"), Zeroizing::new(value.into_bytes()))
            })
            .collect();
        node.write_secrets("v".into(), secrets).await.unwrap();
        node.lock().await.unwrap();
    }
    check(pristine.path(), &expected).await.unwrap();

    let panics = Arc::new(Mutex::new(Vec::<String>::new()));
    let previous = std::panic::take_hook();
    {
        let panics = panics.clone();
        std::panic::set_hook(Box::new(move |info| {
            // The storage engine (redb) can panic on a damaged file: the
            // node catches that and says so (checked below); a panic
            // anywhere else is a defect.
            let in_redb = info.location().is_some_and(|l| l.file().contains("/redb-"));
            if !in_redb {
                eprintln!("{info}");
                panics.lock().unwrap().push(info.to_string());
            }
        }));
    }
    let seed = std::env::var("POLYKEY_CORRUPTION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        | 1;
    eprintln!("corruption test seed {seed}");
    let mut state = seed;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let scratch = tempfile::tempdir().unwrap();
    for case in 0..CASES {
        let dir = scratch.path().join(case.to_string());
        copy_dir(pristine.path(), &dir);
        let file = if next(&mut state).is_multiple_of(4) {
            "root_key.json"
        } else {
            "db.redb"
        };
        let how = damage(&dir.join(file), &mut state);
        // Each case on its own task: a panic is caught there and reported
        // with the damage that caused it.
        let (dir_for, expected_for) = (dir.clone(), expected.clone());
        let outcome = tokio::spawn(async move { check(&dir_for, &expected_for).await }).await;
        let outcome = match outcome {
            Ok(Ok(())) => "right values".to_owned(),
            Ok(Err(words)) => {
                assert!(!words.trim().is_empty(), "{file}, {how}: an empty error");
                assert!(
                    !words.contains("panicked") && !words.contains("RUST_BACKTRACE"),
                    "{file}, {how}: {words}"
                );
                words
            }
            Err(e) => panic!("{file}, {how}: {e} (seed {seed})"),
        };
        *outcomes.entry(format!("{file}: {outcome}")).or_default() += 1;
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::panic::set_hook(previous);
    for (outcome, n) in &outcomes {
        eprintln!("{n:4}  {outcome}");
    }
    let panics = panics.lock().unwrap();
    assert!(panics.is_empty(), "panics (seed {seed}): {panics:?}");
}

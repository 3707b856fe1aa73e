//! Merge properties over random divergent histories (proptest): copies
//! that write, edit, rename and remove secrets and directories, and sync
//! in any order, end with the same head and tree, every version ever
//! committed anywhere in history, nothing to add on a re-sync, and at most
//! one kept copy per secret. `POLYKEY_PROPTEST_CASES` sets the cases (1,000
//! by default).

use std::collections::{BTreeMap, BTreeSet};

use polykey_db::Db;
use polykey_keys::RootKeypair;
use polykey_vaults::{conflict_original, MergeOutcome, Vault, VaultError, Vaults};
use proptest::prelude::*;

use crate::merge::merge_both_ways;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// The names the histories use: files, files in directories, and a file
/// and a directory of the same name ("dir"), so every kind of collision
/// comes up.
const NAMES: [&str; 6] = ["a", "b", "dir", "dir/c", "dir/d", "e/f"];

#[derive(Clone, Debug)]
enum Op {
    Write { on: usize, name: usize },
    Remove { on: usize, name: usize },
    Rename { on: usize, from: usize, to: usize },
    Sync { from: usize, to: usize },
}

fn op(copies: usize) -> impl Strategy<Value = Op> {
    let name = 0..NAMES.len();
    prop_oneof![
        4 => (0..copies, name.clone()).prop_map(|(on, name)| Op::Write { on, name }),
        1 => (0..copies, name.clone()).prop_map(|(on, name)| Op::Remove { on, name }),
        1 => (0..copies, name.clone(), name)
            .prop_map(|(on, from, to)| Op::Rename { on, from, to }),
        2 => (0..copies, 0..copies).prop_map(|(from, to)| Op::Sync { from, to }),
    ]
}

fn cases() -> u32 {
    std::env::var("POLYKEY_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}

struct Copy {
    _dir: tempfile::TempDir,
    db: Db,
    keys: RootKeypair,
    vault: Vault,
}

/// A temporary directory in memory where there is one: every commit is
/// durable, and thousands of cases would otherwise wait on the disk.
fn scratch() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

/// `n` copies of one vault, each on its own device.
fn copies(n: usize) -> Vec<Copy> {
    let mut out: Vec<Copy> = Vec::new();
    for i in 0..n {
        let dir = scratch();
        let keys = RootKeypair::from_seed(&[i as u8 + 1; 32]);
        let db = Db::create(&dir.path().join("db.redb"), &keys).unwrap();
        let vault = match out.first() {
            None => {
                let vault = Vaults::new(&db).create("shared", &keys).unwrap();
                vault.write_secret(&db, &keys, "a", b"base").unwrap();
                vault
            }
            Some(first) => {
                let (head, objects) = first.vault.objects_for(&first.db, &[]).unwrap();
                Vaults::new(&db)
                    .clone_vault("shared", &first.vault.id().to_string(), &head, &objects)
                    .unwrap()
            }
        };
        out.push(Copy {
            _dir: dir,
            db,
            keys,
            vault,
        });
    }
    out
}

/// What `to` lacks from `from`, sent and merged there.
fn sync(copies: &[Copy], from: usize, to: usize) -> MergeOutcome {
    let (from, to) = (&copies[from], &copies[to]);
    let theirs = to.vault.head(&to.db).unwrap();
    let (head, objects) = from.vault.objects_for(&from.db, &[theirs]).unwrap();
    to.vault.import(&to.db, &objects).unwrap();
    to.vault.merge(&to.db, &to.keys, &head).unwrap()
}

/// Apply `op`; a local change the vault refuses (no such secret, a name
/// taken, a file where a directory is) changes nothing. Returns the head
/// it made, if any.
fn apply(copies: &[Copy], step: usize, op: &Op) -> Option<(usize, String)> {
    let result = match *op {
        Op::Write { on, name } => {
            let c = &copies[on];
            let value = format!("written on {on} at step {step}");
            (
                on,
                c.vault
                    .write_secret(&c.db, &c.keys, NAMES[name], value.as_bytes()),
            )
        }
        Op::Remove { on, name } => {
            let c = &copies[on];
            (on, c.vault.remove(&c.db, &c.keys, NAMES[name], true))
        }
        Op::Rename { on, from, to } => {
            let c = &copies[on];
            (on, c.vault.rename(&c.db, &c.keys, NAMES[from], NAMES[to]))
        }
        Op::Sync { from, to } => {
            if from != to {
                sync(copies, from, to);
            }
            return Some((to, copies[to].vault.head(&copies[to].db).unwrap()));
        }
    };
    match result {
        (on, Ok(_)) => Some((on, copies[on].vault.head(&copies[on].db).unwrap())),
        (
            _,
            Err(
                VaultError::NotFound(_)
                | VaultError::AlreadyExists(_)
                | VaultError::InvalidPath(_)
                | VaultError::WrongKind(..)
                | VaultError::DirectoryNotEmpty(_),
            ),
        ) => None,
        (_, Err(e)) => panic!("{op:?} failed: {e}"),
    }
}

fn files(c: &Copy) -> BTreeMap<String, String> {
    c.vault.files(&c.db).unwrap().into_iter().collect()
}

/// Every name is a secret, or at most one kept copy of one, never a copy
/// of a copy.
fn one_copy_each(files: &BTreeMap<String, String>) -> Result<(), TestCaseError> {
    let mut copies: BTreeMap<&str, usize> = BTreeMap::new();
    for path in files.keys() {
        prop_assert!(
            path.matches(".conflict-").count() <= 1,
            "a copy of a copy: {path}"
        );
        if let Some(original) = conflict_original(path) {
            *copies.entry(original).or_default() += 1;
        }
    }
    for (original, n) in copies {
        prop_assert!(n <= 1, "{n} copies of {original} in {files:?}");
    }
    Ok(())
}

/// Run the ops on `n` copies, then sync them all until they agree.
fn histories(n: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let copies = copies(n);
    let mut committed: BTreeSet<String> = BTreeSet::new();
    committed.insert(copies[0].vault.head(&copies[0].db).unwrap());
    for (step, op) in ops.iter().enumerate() {
        if let Some((_, head)) = apply(&copies, step, op) {
            committed.insert(head);
        }
    }
    // Converge: every copy from every other, a few rounds at most.
    let heads = |copies: &[Copy]| -> BTreeSet<String> {
        copies
            .iter()
            .map(|c| c.vault.head(&c.db).unwrap())
            .collect()
    };
    for _ in 0..4 {
        if heads(&copies).len() == 1 {
            break;
        }
        for from in 0..n {
            for to in (0..n).filter(|to| *to != from) {
                sync(&copies, from, to);
                committed.insert(copies[to].vault.head(&copies[to].db).unwrap());
            }
        }
    }
    prop_assert_eq!(heads(&copies).len(), 1, "the copies did not converge");
    let reference = files(&copies[0]);
    for c in &copies[1..] {
        prop_assert_eq!(&files(c), &reference);
    }
    // Every version committed anywhere is in the history.
    let history: BTreeSet<String> = copies[0]
        .vault
        .log(&copies[0].db, None)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    for version in &committed {
        prop_assert!(history.contains(version), "version {version} was lost");
    }
    // A re-sync adds nothing.
    for from in 0..n {
        for to in (0..n).filter(|to| *to != from) {
            prop_assert_eq!(sync(&copies, from, to), MergeOutcome::UpToDate);
        }
    }
    one_copy_each(&reference)?;
    copies[0].vault.verify_history(&copies[0].db).unwrap();
    Ok(())
}

#[test]
fn two_copies_in_any_order_converge_and_lose_nothing() {
    let mut runner = TestRunner::new(Config::with_cases(cases()));
    runner
        .run(&prop::collection::vec(op(2), 1..16), |ops| {
            histories(2, &ops)
        })
        .unwrap();
}

#[test]
fn three_copies_in_any_order_converge_and_lose_nothing() {
    let mut runner = TestRunner::new(Config::with_cases(cases()));
    runner
        .run(&prop::collection::vec(op(3), 1..20), |ops| {
            histories(3, &ops)
        })
        .unwrap();
}

/// Two copies that diverged and each merge the other at once (as two
/// devices do when they sync both ways) reach the same tree.
#[test]
fn merging_either_way_gives_the_same_tree() {
    let mut runner = TestRunner::new(Config::with_cases(cases()));
    let edits = prop::collection::vec(
        prop_oneof![
            3 => (0..2usize, 0..NAMES.len()).prop_map(|(on, name)| Op::Write { on, name }),
            1 => (0..2usize, 0..NAMES.len()).prop_map(|(on, name)| Op::Remove { on, name }),
            1 => (0..2usize, 0..NAMES.len(), 0..NAMES.len())
                .prop_map(|(on, from, to)| Op::Rename { on, from, to }),
        ],
        1..12,
    );
    runner
        .run(&edits, |ops| {
            let copies = copies(2);
            for (step, op) in ops.iter().enumerate() {
                apply(&copies, step, op);
            }
            let [x, y] = &copies[..] else {
                unreachable!("two copies")
            };
            merge_both_ways((&x.db, &x.keys, &x.vault), (&y.db, &y.keys, &y.vault));
            prop_assert_eq!(files(&copies[0]), files(&copies[1]));
            one_copy_each(&files(&copies[0]))?;
            Ok(())
        })
        .unwrap();
}

//! Directories stored as deltas against their earlier versions: an edit in
//! a large directory stores about one entry, and the vault still reads,
//! verifies and exports as plain git.

use std::collections::BTreeMap;

use polykey_vaults::Vaults;

use crate::export::{git, verify_every_commit};
use crate::{fixture, Fixture};

fn stored(f: &Fixture) -> u64 {
    f.db.space().unwrap().stored_bytes
}

#[test]
fn edits_in_a_large_directory_store_little_and_export_as_plain_git() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    let mut expected: BTreeMap<String, Vec<u8>> = (0..1_000)
        .map(|i| {
            (
                format!("logins/site-{i:04}"),
                format!("pw-{i}").into_bytes(),
            )
        })
        .collect();
    let pairs: Vec<(&str, &[u8])> = expected
        .iter()
        .map(|(path, value)| (path.as_str(), value.as_slice()))
        .collect();
    vault.write_secrets(&f.db, &f.keys, &pairs).unwrap();
    let before = stored(&f);

    let edits = 60;
    let mut middle = None;
    for i in 0..edits {
        let path = format!("logins/site-{:04}", (i * 37) % 1_000);
        match i % 10 {
            3 => {
                vault.remove(&f.db, &f.keys, &path, false).unwrap();
                expected.remove(&path);
            }
            6 => {
                let to = format!("logins/renamed-{i}");
                if let Some(value) = expected.remove(&path) {
                    vault.rename(&f.db, &f.keys, &path, &to).unwrap();
                    expected.insert(to, value);
                }
            }
            _ => {
                let value = format!("edit-{i}").into_bytes();
                vault.write_secret(&f.db, &f.keys, &path, &value).unwrap();
                expected.insert(path, value);
            }
        }
        if i == edits / 2 {
            middle = Some((vault.head(&f.db).unwrap(), expected.clone()));
        }
    }
    // The directory's listing is ~45 KB: stored whole, 60 versions of it
    // would add ~2.7 MB. As deltas, with the signed commit and the blob,
    // an edit stores ~1.4 KB.
    let grown = stored(&f).saturating_sub(before);
    assert!(
        grown < 60 * 3_000,
        "{edits} edits in a directory of 1,000 secrets grew the store by {grown} bytes"
    );

    // Every version rebuilds to its id (each read checks), and git agrees.
    vault.verify_history(&f.db).unwrap();
    let out = f.dir.path().join("export.git");
    vault.export_bare(&f.db, &out).unwrap();
    git(&out, &["fsck", "--strict", "--no-dangling"]);
    verify_every_commit(&out, &f.keys);
    let (middle_head, middle_expected) = middle.unwrap();
    for (commit, want) in [
        (vault.head(&f.db).unwrap(), &expected),
        (middle_head, &middle_expected),
    ] {
        let listed = git(&out, &["ls-tree", "-r", "--name-only", &commit]);
        assert_eq!(
            listed.lines().collect::<Vec<_>>(),
            want.keys().map(String::as_str).collect::<Vec<_>>()
        );
        for (path, value) in want.iter().step_by(97) {
            assert_eq!(
                git(&out, &["show", &format!("{commit}:{path}")]).as_bytes(),
                value.as_slice()
            );
        }
    }
    for (path, value) in expected.iter().step_by(89) {
        assert_eq!(vault.get(&f.db, path).unwrap().as_slice(), value.as_slice());
    }
}

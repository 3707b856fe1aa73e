use polykey_vaults::{ChangeKind, Vaults};

use crate::fixture;

#[test]
fn every_mutation_is_one_signed_commit_with_a_message() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    vault.write_secret(&f.db, &f.keys, "a", b"1").unwrap();
    vault.write_secret(&f.db, &f.keys, "a", b"2").unwrap();
    vault.rename(&f.db, &f.keys, "a", "b").unwrap();
    vault.remove(&f.db, &f.keys, "b", false).unwrap();
    let log = vault.log(&f.db, None).unwrap();
    let messages: Vec<&str> = log.iter().map(|c| c.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "Remove b",
            "Rename a to b",
            "Update secret a",
            "Add secret a",
            "Create vault"
        ]
    );
    assert!(log.iter().all(|c| c.author == f.keys.node_id().to_string()));
    assert_eq!(log[0].parents, [log[1].id.clone()]);
    assert_eq!(vault.log(&f.db, Some(2)).unwrap().len(), 2);
    assert_eq!(vault.verify_history(&f.db).unwrap(), [f.keys.node_id()]);
}

#[test]
fn read_at_a_version_and_diff_between_versions() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    let v1 = vault.write_secret(&f.db, &f.keys, "a", b"one").unwrap();
    vault.write_secret(&f.db, &f.keys, "b", b"bee").unwrap();
    vault.write_secret(&f.db, &f.keys, "a", b"two").unwrap();
    let v4 = vault.remove(&f.db, &f.keys, "b", false).unwrap();
    vault.write_secret(&f.db, &f.keys, "c", b"sea").unwrap();

    assert_eq!(vault.get_at(&f.db, &v1, "a").unwrap().as_slice(), b"one");
    assert_eq!(
        vault.get_at(&f.db, &v1[..8], "a").unwrap().as_slice(),
        b"one"
    );
    assert_eq!(vault.get_at(&f.db, "HEAD", "a").unwrap().as_slice(), b"two");
    assert!(vault.get_at(&f.db, &v4, "b").is_err());

    let changes = vault.diff(&f.db, &v1, "HEAD").unwrap();
    let summary: Vec<(&str, ChangeKind)> =
        changes.iter().map(|c| (c.path.as_str(), c.kind)).collect();
    assert_eq!(
        summary,
        [("a", ChangeKind::Modified), ("c", ChangeKind::Added)]
    );
    let back = vault.diff(&f.db, "HEAD", &v1).unwrap();
    assert_eq!(back[1].kind, ChangeKind::Deleted);
}

#[test]
fn restore_is_a_new_commit_that_keeps_later_history() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    let v1 = vault
        .write_secret(&f.db, &f.keys, "a", b"original")
        .unwrap();
    vault.write_secret(&f.db, &f.keys, "a", b"changed").unwrap();
    vault.write_secret(&f.db, &f.keys, "b", b"later").unwrap();
    let before = vault.log(&f.db, None).unwrap().len();

    vault.restore_secret(&f.db, &f.keys, &v1, "a").unwrap();
    assert_eq!(vault.get(&f.db, "a").unwrap().as_slice(), b"original");
    assert_eq!(
        vault.get(&f.db, "b").unwrap().as_slice(),
        b"later",
        "other secrets untouched"
    );
    let log = vault.log(&f.db, None).unwrap();
    assert_eq!(log.len(), before + 1);
    assert!(log[0].message.starts_with("Restore a to version"));
    assert_eq!(
        vault.get_at(&f.db, &log[1].id, "a").unwrap().as_slice(),
        b"changed"
    );

    vault.restore_vault(&f.db, &f.keys, &v1).unwrap();
    assert_eq!(vault.list(&f.db, None).unwrap(), ["a"]);
    let log = vault.log(&f.db, None).unwrap();
    assert_eq!(
        log.len(),
        before + 2,
        "restoring the vault deletes no history"
    );
    assert_eq!(
        vault.get_at(&f.db, &log[1].id, "b").unwrap().as_slice(),
        b"later"
    );
}

#[test]
fn history_of_one_secret_lists_only_its_versions() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    vault.write_secret(&f.db, &f.keys, "a", b"1").unwrap();
    vault.write_secret(&f.db, &f.keys, "b", b"x").unwrap();
    vault.write_secret(&f.db, &f.keys, "a", b"2").unwrap();
    let messages: Vec<String> = vault
        .history_of(&f.db, "a")
        .unwrap()
        .into_iter()
        .map(|c| c.message)
        .collect();
    assert_eq!(messages, ["Update secret a", "Add secret a"]);
}

#[test]
fn history_follows_a_secret_through_renames_and_folder_moves() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    let v1 = vault
        .write_secret(&f.db, &f.keys, "GitHub", b"one")
        .unwrap();
    vault
        .write_secret(&f.db, &f.keys, "GitHub", b"two")
        .unwrap();
    vault
        .rename(&f.db, &f.keys, "GitHub", "work/GitHub")
        .unwrap();
    vault
        .write_secret(&f.db, &f.keys, "work/GitHub", b"three")
        .unwrap();
    vault.rename(&f.db, &f.keys, "work", "jobs/acme").unwrap();
    // Another secret once had the new name: its history is not this one's.
    vault.write_secret(&f.db, &f.keys, "other", b"x").unwrap();
    vault.remove(&f.db, &f.keys, "other", false).unwrap();

    let history = vault.history_with_paths(&f.db, "jobs/acme/GitHub").unwrap();
    let seen: Vec<(&str, &str)> = history
        .iter()
        .map(|(c, p)| (c.message.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("Rename work to jobs/acme", "jobs/acme/GitHub"),
            ("Update secret work/GitHub", "work/GitHub"),
            ("Rename GitHub to work/GitHub", "work/GitHub"),
            ("Update secret GitHub", "GitHub"),
            ("Add secret GitHub", "GitHub"),
        ]
    );
    // The first version reads and restores by the name it has now.
    assert_eq!(
        vault
            .get_at(&f.db, &v1, "jobs/acme/GitHub")
            .unwrap()
            .as_slice(),
        b"one"
    );
    vault
        .restore_secret(&f.db, &f.keys, &v1, "jobs/acme/GitHub")
        .unwrap();
    assert_eq!(
        vault.get(&f.db, "jobs/acme/GitHub").unwrap().as_slice(),
        b"one"
    );
    assert!(
        vault.get(&f.db, "GitHub").is_err(),
        "restored in place, not at the old path"
    );
    // A rename of something else never redirects it.
    vault.write_secret(&f.db, &f.keys, "b", b"bee").unwrap();
    vault.rename(&f.db, &f.keys, "b", "c").unwrap();
    assert_eq!(vault.history_of(&f.db, "c").unwrap().len(), 2);
    assert!(vault.get_at(&f.db, &v1, "c").is_err());
}

/// A name given to another secret later: each version listed in the new
/// one's history reads and restores the new one, never the secret that
/// had the name then.
#[test]
fn a_reused_name_reads_the_secret_it_names_now_at_every_version() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    vault
        .write_secret(&f.db, &f.keys, "GitHub", b"old")
        .unwrap();
    vault.write_secret(&f.db, &f.keys, "new", b"mine").unwrap();
    vault
        .write_secret(&f.db, &f.keys, "GitHub", b"old, edited")
        .unwrap();
    vault.remove(&f.db, &f.keys, "GitHub", false).unwrap();
    vault.rename(&f.db, &f.keys, "new", "GitHub").unwrap();

    let history = vault.history_with_paths(&f.db, "GitHub").unwrap();
    let seen: Vec<(&str, &str)> = history
        .iter()
        .map(|(c, p)| (c.message.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("Rename new to GitHub", "GitHub"),
            ("Add secret new", "new")
        ]
    );
    for (version, _) in &history {
        assert_eq!(
            vault
                .get_at(&f.db, &version.id, "GitHub")
                .unwrap()
                .as_slice(),
            b"mine",
            "{}",
            version.message
        );
    }
    let added = &history[1].0.id;
    vault
        .write_secret(&f.db, &f.keys, "GitHub", b"changed")
        .unwrap();
    vault
        .restore_secret(&f.db, &f.keys, added, "GitHub")
        .unwrap();
    assert_eq!(vault.get(&f.db, "GitHub").unwrap().as_slice(), b"mine");
}

#[test]
fn changed_since_finds_each_paths_last_change_in_nested_folders_within_a_budget() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    for path in ["dir/a", "dir/b", "c", "deep/x/y"] {
        vault.write_secret(&f.db, &f.keys, path, b"1").unwrap();
    }
    vault.write_secret(&f.db, &f.keys, "dir/a", b"2").unwrap();
    let latest = vault.log(&f.db, Some(1)).unwrap()[0].time;
    let paths: Vec<String> = ["dir/a", "dir/b", "c", "deep/x/y", "never"]
        .map(String::from)
        .to_vec();

    let (changed, complete) = vault.changed_since(&f.db, &paths, 0, 10_000).unwrap();
    assert!(complete);
    let mut found: Vec<&str> = changed.keys().map(String::as_str).collect();
    found.sort();
    assert_eq!(found, ["c", "deep/x/y", "dir/a", "dir/b"]);
    assert_eq!(changed["dir/a"], latest);

    // Nothing read before `since`: from the future, nothing changed.
    let (changed, complete) = vault
        .changed_since(&f.db, &paths, latest + 1, 10_000)
        .unwrap();
    assert!(complete && changed.is_empty());

    // Out of budget: said so, and only what was reached.
    let (changed, complete) = vault.changed_since(&f.db, &paths, 0, 2).unwrap();
    assert!(!complete);
    assert!(changed.len() <= 1, "{changed:?}");
}

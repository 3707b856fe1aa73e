//! What a removed device committed unseen by its remover is undone, once,
//! and taken back when the device is no longer removed.

use polykey_keys::RootKeypair;
use polykey_vaults::{Removed, Vault, Vaults};

use crate::{fixture, Fixture};

fn text(f: &Fixture, vault: &Vault, path: &str) -> Option<String> {
    vault
        .get(&f.db, path)
        .ok()
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
}

fn thief() -> RootKeypair {
    RootKeypair::from_seed(&[7; 32])
}

#[test]
fn a_removed_devices_unseen_commits_are_undone_once_and_its_seen_ones_stand() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("Personal", &f.keys).unwrap();
    let thief = thief();
    vault.write_secret(&f.db, &f.keys, "github", b"pw").unwrap();
    // Before the theft the device wrote "wifi": its remover saw that.
    let seen = vault
        .write_secret(&f.db, &thief, "wifi", b"from-c")
        .unwrap();
    // After it, unseen by the remover: an edit, a deletion, a new secret.
    vault
        .write_secret(&f.db, &thief, "wifi", b"stolen")
        .unwrap();
    vault.remove(&f.db, &thief, "github", false).unwrap();
    vault.write_secret(&f.db, &thief, "planted", b"x").unwrap();
    // Someone else edits a secret after the thief: that edit stands.
    vault.write_secret(&f.db, &thief, "bank", b"thief").unwrap();
    vault.write_secret(&f.db, &f.keys, "bank", b"mine").unwrap();

    let removed = [Removed {
        node: thief.node_id(),
        seen: Some(seen),
    }];
    let head = vault.undo_removed(&f.db, &f.keys, &removed).unwrap();
    assert!(head.is_some());
    assert_eq!(text(&f, &vault, "github").as_deref(), Some("pw"));
    assert_eq!(text(&f, &vault, "wifi").as_deref(), Some("from-c"));
    assert_eq!(text(&f, &vault, "planted"), None);
    assert_eq!(text(&f, &vault, "bank").as_deref(), Some("mine"));
    // Once: a second pass finds it done.
    assert_eq!(vault.undo_removed(&f.db, &f.keys, &removed).unwrap(), None);
    let log = vault.log(&f.db, Some(1)).unwrap();
    assert_eq!(log[0].author, f.keys.node_id().to_string());
}

#[test]
fn a_remover_with_no_copy_leaves_none_of_its_commits_and_an_unknown_version_waits() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("Personal", &f.keys).unwrap();
    let thief = thief();
    vault.write_secret(&f.db, &f.keys, "github", b"pw").unwrap();
    vault
        .write_secret(&f.db, &thief, "github", b"stolen")
        .unwrap();
    let unknown = Removed {
        node: thief.node_id(),
        seen: Some("1".repeat(40)),
    };
    assert_eq!(
        vault.undo_removed(&f.db, &f.keys, &[unknown]).unwrap(),
        None,
        "decided only once the remover's version is here"
    );
    let none_seen = Removed {
        node: thief.node_id(),
        seen: None,
    };
    vault
        .undo_removed(&f.db, &f.keys, &[none_seen])
        .unwrap()
        .unwrap();
    assert_eq!(text(&f, &vault, "github").as_deref(), Some("pw"));
}

#[test]
fn an_undo_is_taken_back_when_the_device_is_no_longer_removed_and_made_again_if_removed_again() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("Personal", &f.keys).unwrap();
    let thief = thief();
    let seen = vault.write_secret(&f.db, &f.keys, "github", b"pw").unwrap();
    vault
        .write_secret(&f.db, &thief, "github", b"theirs")
        .unwrap();
    let removed = [Removed {
        node: thief.node_id(),
        seen: Some(seen),
    }];
    vault
        .undo_removed(&f.db, &f.keys, &removed)
        .unwrap()
        .unwrap();
    assert_eq!(text(&f, &vault, "github").as_deref(), Some("pw"));
    // The removal fell (say its remover was itself removed): taken back.
    vault.undo_removed(&f.db, &f.keys, &[]).unwrap().unwrap();
    assert_eq!(text(&f, &vault, "github").as_deref(), Some("theirs"));
    assert_eq!(vault.undo_removed(&f.db, &f.keys, &[]).unwrap(), None);
    // Removed again: undone again.
    vault
        .undo_removed(&f.db, &f.keys, &removed)
        .unwrap()
        .unwrap();
    assert_eq!(text(&f, &vault, "github").as_deref(), Some("pw"));
}

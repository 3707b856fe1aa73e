use polykey_db::Db;
use polykey_keys::RootKeypair;
use polykey_vaults::{MergeOutcome, RawObject, Vault, VaultError, Vaults};

struct Device {
    _dir: tempfile::TempDir,
    db: Db,
    keys: RootKeypair,
}

fn device(seed: u8) -> Device {
    let dir = tempfile::tempdir().unwrap();
    let keys = RootKeypair::from_seed(&[seed; 32]);
    let db = Db::create(&dir.path().join("db.redb"), &keys).unwrap();
    Device {
        _dir: dir,
        db,
        keys,
    }
}

/// Laptop has a vault; phone clones it.
fn two_devices() -> (Device, Vault, Device, Vault) {
    let laptop = device(1);
    let phone = device(2);
    let vault = Vaults::new(&laptop.db)
        .create("shared", &laptop.keys)
        .unwrap();
    vault
        .write_secret(&laptop.db, &laptop.keys, "wifi", b"base-wifi")
        .unwrap();
    vault
        .write_secret(&laptop.db, &laptop.keys, "bank", b"base-bank")
        .unwrap();
    let (head, objects) = vault.objects_for(&laptop.db, &[]).unwrap();
    let copy = Vaults::new(&phone.db)
        .clone_vault("shared", &vault.id().to_string(), &head, &objects)
        .unwrap();
    assert_eq!(copy.head(&phone.db).unwrap(), head);
    (laptop, vault, phone, copy)
}

/// Send what `to` lacks from `from`, and merge it there.
fn sync(from: (&Device, &Vault), to: (&Device, &Vault)) -> MergeOutcome {
    let their_head = to.1.head(&to.0.db).unwrap();
    let (head, objects) = from.1.objects_for(&from.0.db, &[their_head]).unwrap();
    to.1.import(&to.0.db, &objects).unwrap();
    to.1.merge(&to.0.db, &to.0.keys, &head).unwrap()
}

#[test]
fn edits_of_different_secrets_merge_and_converge() {
    let (laptop, a, phone, b) = two_devices();
    a.write_secret(&laptop.db, &laptop.keys, "wifi", b"laptop-wifi")
        .unwrap();
    b.write_secret(&phone.db, &phone.keys, "bank", b"phone-bank")
        .unwrap();
    b.write_secret(&phone.db, &phone.keys, "new", b"phone-new")
        .unwrap();

    let MergeOutcome::Merged { head, conflicts } = sync((&phone, &b), (&laptop, &a)) else {
        panic!("expected a merge commit")
    };
    assert!(conflicts.is_empty());
    assert_eq!(
        a.get(&laptop.db, "wifi").unwrap().as_slice(),
        b"laptop-wifi"
    );
    assert_eq!(a.get(&laptop.db, "bank").unwrap().as_slice(), b"phone-bank");
    assert_eq!(a.get(&laptop.db, "new").unwrap().as_slice(), b"phone-new");
    assert_eq!(a.log(&laptop.db, Some(1)).unwrap()[0].parents.len(), 2);

    // The phone catches up by fast-forward: both now have the same head.
    assert_eq!(
        sync((&laptop, &a), (&phone, &b)),
        MergeOutcome::FastForward { head: head.clone() }
    );
    assert_eq!(b.head(&phone.db).unwrap(), head);
    // Syncing again adds no commit, either way.
    assert_eq!(sync((&laptop, &a), (&phone, &b)), MergeOutcome::UpToDate);
    assert_eq!(sync((&phone, &b), (&laptop, &a)), MergeOutcome::UpToDate);
    assert_eq!(a.head(&laptop.db).unwrap(), head);
    let signers = a.verify_history(&laptop.db).unwrap();
    assert!(signers.contains(&laptop.keys.node_id()) && signers.contains(&phone.keys.node_id()));
}

#[test]
fn the_same_secret_edited_on_both_sides_keeps_both_versions() {
    let (laptop, a, phone, b) = two_devices();
    a.write_secret(&laptop.db, &laptop.keys, "wifi", b"laptop-wifi")
        .unwrap();
    b.write_secret(&phone.db, &phone.keys, "wifi", b"phone-wifi")
        .unwrap();
    a.write_secret(&laptop.db, &laptop.keys, "bank", b"laptop-bank")
        .unwrap();
    b.remove(&phone.db, &phone.keys, "bank", false).unwrap();

    let MergeOutcome::Merged { conflicts, .. } = sync((&phone, &b), (&laptop, &a)) else {
        panic!("expected a merge commit")
    };
    assert_eq!(conflicts.len(), 2, "{conflicts:?}");
    let wifi = conflicts.iter().find(|c| c.path == "wifi").unwrap();
    assert_eq!(wifi.reason, "edited on both sides");
    let theirs = wifi.theirs_path.clone().unwrap();
    assert_eq!(
        a.get(&laptop.db, "wifi").unwrap().as_slice(),
        b"laptop-wifi"
    );
    assert_eq!(
        a.get(&laptop.db, &theirs).unwrap().as_slice(),
        b"phone-wifi"
    );
    let bank = conflicts.iter().find(|c| c.path == "bank").unwrap();
    assert_eq!(bank.reason, "edited here, deleted there");
    assert_eq!(
        a.get(&laptop.db, "bank").unwrap().as_slice(),
        b"laptop-bank"
    );
    let message = &a.log(&laptop.db, Some(1)).unwrap()[0].message;
    assert!(message.contains("wifi (edited on both sides)"), "{message}");

    // After the phone takes the merge, both hold both versions.
    sync((&laptop, &a), (&phone, &b));
    assert_eq!(b.get(&phone.db, &theirs).unwrap().as_slice(), b"phone-wifi");
    assert_eq!(a.head(&laptop.db).unwrap(), b.head(&phone.db).unwrap());
}

#[test]
fn hostile_objects_are_refused_and_nothing_is_stored() {
    let (laptop, a, phone, b) = two_devices();
    b.write_secret(&phone.db, &phone.keys, "x", b"1").unwrap();
    let (head, mut objects) = b
        .objects_for(&phone.db, &[a.head(&laptop.db).unwrap()])
        .unwrap();

    // A tree entry named "..".
    let evil_tree = {
        let mut data = b"100644 ..\0".to_vec();
        data.extend_from_slice(&[0x11; 20]);
        RawObject {
            base: None,
            kind: gix::objs::Kind::Tree,
            data,
        }
    };
    let before = a.head(&laptop.db).unwrap();
    let err = a.import(&laptop.db, &[evil_tree]).unwrap_err();
    assert!(matches!(err, VaultError::InvalidPath(_)), "{err}");

    // A commit whose signature no longer matches its content.
    let commit = objects
        .iter_mut()
        .find(|o| o.kind == gix::objs::Kind::Commit)
        .unwrap();
    let text = String::from_utf8(commit.data.clone())
        .unwrap()
        .replace("Add secret x", "Add secret y");
    commit.data = text.into_bytes();
    assert!(matches!(
        a.import(&laptop.db, &objects),
        Err(VaultError::Corrupt(_))
    ));
    assert!(matches!(
        a.merge(&laptop.db, &laptop.keys, &head),
        Err(VaultError::UnknownVersion(_))
    ));
    assert_eq!(a.head(&laptop.db).unwrap(), before);
}

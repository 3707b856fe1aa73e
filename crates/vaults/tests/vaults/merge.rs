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
    let copy = clone_of((&laptop, &vault), &phone);
    assert_eq!(
        copy.head(&phone.db).unwrap(),
        vault.head(&laptop.db).unwrap()
    );
    (laptop, vault, phone, copy)
}

/// A clone on `to` of `from`'s vault as it is now.
fn clone_of(from: (&Device, &Vault), to: &Device) -> Vault {
    let (head, objects) = from.1.objects_for(&from.0.db, &[]).unwrap();
    Vaults::new(&to.db)
        .clone_vault("shared", &from.1.id().to_string(), &head, &objects)
        .unwrap()
}

/// A copy of a vault on one device.
pub type On<'a> = (&'a Db, &'a RootKeypair, &'a Vault);

/// Two copies that diverged each take the other's head and merge it at
/// once, as two devices syncing both ways do.
pub fn merge_both_ways(x: On<'_>, y: On<'_>) {
    let (head_x, head_y) = (x.2.head(x.0).unwrap(), y.2.head(y.0).unwrap());
    let (_, to_y) = x.2.objects_for(x.0, std::slice::from_ref(&head_y)).unwrap();
    let (_, to_x) = y.2.objects_for(y.0, std::slice::from_ref(&head_x)).unwrap();
    x.2.import(x.0, &to_x).unwrap();
    y.2.import(y.0, &to_y).unwrap();
    x.2.merge(x.0, x.1, &head_y).unwrap();
    y.2.merge(y.0, y.1, &head_x).unwrap();
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
    // One version in place, the other beside it: which is which is the
    // same on every device, whoever merges.
    let mut kept = [
        a.get(&laptop.db, "wifi").unwrap().to_vec(),
        a.get(&laptop.db, &theirs).unwrap().to_vec(),
    ];
    kept.sort();
    assert_eq!(kept, [b"laptop-wifi".to_vec(), b"phone-wifi".to_vec()]);
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
    assert_eq!(
        b.get(&phone.db, &theirs).unwrap(),
        a.get(&laptop.db, &theirs).unwrap()
    );
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

#[test]
fn however_many_versions_collide_a_secret_keeps_one_copy_and_history_keeps_all() {
    let (laptop, a, phone, b) = two_devices();
    let tablet = device(3);
    let c = clone_of((&laptop, &a), &tablet);
    let devices = [(&laptop, &a), (&phone, &b), (&tablet, &c)];
    let mut written = Vec::new();
    // Three rounds: all three edit the Wi-Fi password at once, then sync
    // every way (faster than a person could review the conflicts).
    for round in 0..3 {
        for (i, (device, vault)) in devices.iter().enumerate() {
            let value = format!("wifi {round} from {i}");
            vault
                .write_secret(&device.db, &device.keys, "wifi", value.as_bytes())
                .unwrap();
            written.push(value);
        }
        for _ in 0..2 {
            for from in devices {
                for to in devices {
                    if !std::ptr::eq(from.1, to.1) {
                        sync(from, to);
                    }
                }
            }
        }
    }
    let names = a.list(&laptop.db, None).unwrap();
    let copies: Vec<&String> = names.iter().filter(|n| n.contains(".conflict-")).collect();
    assert_eq!(copies.len(), 1, "one copy of the Wi-Fi password: {names:?}");
    assert_eq!(a.conflicts(&laptop.db).unwrap().len(), 1);
    // Every device shows the same.
    for (device, vault) in &devices[1..] {
        assert_eq!(vault.list(&device.db, None).unwrap(), names);
        assert_eq!(
            vault.get(&device.db, "wifi").unwrap(),
            a.get(&laptop.db, "wifi").unwrap()
        );
        assert_eq!(
            vault.get(&device.db, copies[0]).unwrap(),
            a.get(&laptop.db, copies[0]).unwrap()
        );
    }
    // Each of the nine versions is in history.
    let mut seen = std::collections::BTreeSet::new();
    for commit in a.log(&laptop.db, None).unwrap() {
        for path in ["wifi", copies[0].as_str()] {
            if let Ok(value) = a.get_at(&laptop.db, &commit.id, path) {
                seen.insert(String::from_utf8(value.to_vec()).unwrap());
            }
        }
    }
    for value in &written {
        assert!(
            seen.contains(value),
            "{value} was lost; history holds {seen:?}"
        );
    }
}

#[test]
fn two_devices_merging_each_other_at_once_reach_the_same_secrets() {
    let (laptop, a, phone, b) = two_devices();
    a.write_secret(&laptop.db, &laptop.keys, "wifi", b"laptop-wifi")
        .unwrap();
    b.write_secret(&phone.db, &phone.keys, "wifi", b"phone-wifi")
        .unwrap();
    merge_both_ways((&laptop.db, &laptop.keys, &a), (&phone.db, &phone.keys, &b));
    assert_eq!(a.files(&laptop.db).unwrap(), b.files(&phone.db).unwrap());
    // And the next sync settles it with no new conflict.
    let MergeOutcome::Merged { conflicts, .. } = sync((&phone, &b), (&laptop, &a)) else {
        panic!("expected a merge of the two merges")
    };
    assert!(conflicts.is_empty(), "{conflicts:?}");
    sync((&laptop, &a), (&phone, &b));
    assert_eq!(a.head(&laptop.db).unwrap(), b.head(&phone.db).unwrap());
}

/// The tag a merge gives the one copy it keeps beside `path`.
fn tag_of(path: &str) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(path.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_secret_where_the_other_side_made_directories_of_its_name_and_its_copy_moves_to_a_free_name() {
    // Laptop saves a secret `x`; the phone (a paired device that may be
    // hostile) makes `x` a directory and takes the name of x's copy for a
    // directory too. The merge used to put x's copy where a directory is
    // and fail on every try, so the vault stopped syncing.
    let slot = format!("x.conflict-{}", tag_of("x"));
    // Either side may be the one that merges.
    for laptop_merges in [true, false] {
        let (laptop, a, phone, b) = two_devices();
        a.write_secret(&laptop.db, &laptop.keys, "x", b"laptop-x")
            .unwrap();
        b.write_secret(&phone.db, &phone.keys, "x/a", b"phone-a")
            .unwrap();
        b.write_secret(&phone.db, &phone.keys, &format!("{slot}/b"), b"phone-b")
            .unwrap();
        let (to, from) = if laptop_merges {
            ((&laptop, &a), (&phone, &b))
        } else {
            ((&phone, &b), (&laptop, &a))
        };
        let MergeOutcome::Merged { conflicts, .. } = sync(from, to) else {
            panic!("expected a merge commit")
        };
        let (device, vault) = to;
        let moved = conflicts
            .iter()
            .find(|c| c.path == "x")
            .and_then(|c| c.theirs_path.clone())
            .expect("x moved aside");
        assert!(!moved.starts_with(&format!("{slot}/")), "{moved}");
        assert_eq!(vault.get(&device.db, &moved).unwrap().to_vec(), b"laptop-x");
        assert_eq!(vault.get(&device.db, "x/a").unwrap().to_vec(), b"phone-a");
        assert_eq!(
            vault
                .get(&device.db, &format!("{slot}/b"))
                .unwrap()
                .to_vec(),
            b"phone-b"
        );
    }
}

#[test]
fn a_secret_moved_aside_for_a_directory_is_listed_for_review() {
    let (laptop, a, phone, b) = two_devices();
    a.write_secret(&laptop.db, &laptop.keys, "mail", b"laptop-mail")
        .unwrap();
    b.write_secret(&phone.db, &phone.keys, "mail/work", b"phone-work")
        .unwrap();
    sync((&phone, &b), (&laptop, &a));
    let copy = format!("mail.conflict-{}", tag_of("mail"));
    assert_eq!(a.get(&laptop.db, &copy).unwrap().to_vec(), b"laptop-mail");
    assert_eq!(
        a.conflicts(&laptop.db).unwrap(),
        vec![("mail".to_owned(), copy.clone())]
    );
    // The copy cannot replace a directory: a clear refusal, nothing lost.
    assert!(matches!(
        a.resolve_conflict(&laptop.db, &laptop.keys, "mail", &copy, true),
        Err(VaultError::WrongKind(..))
    ));
    assert_eq!(a.get(&laptop.db, &copy).unwrap().to_vec(), b"laptop-mail");
    // Keeping the directory drops the copy (it stays in history).
    a.resolve_conflict(&laptop.db, &laptop.keys, "mail", &copy, false)
        .unwrap();
    assert!(a.conflicts(&laptop.db).unwrap().is_empty());
    assert_eq!(
        a.get(&laptop.db, "mail/work").unwrap().to_vec(),
        b"phone-work"
    );
}

#[test]
fn a_directory_named_like_a_copy_never_replaces_its_secret() {
    let (laptop, a, _phone, _b) = two_devices();
    a.write_secret(&laptop.db, &laptop.keys, "mail", b"mine")
        .unwrap();
    let copy = format!("mail.conflict-{}", tag_of("mail"));
    a.write_secret(&laptop.db, &laptop.keys, &format!("{copy}/inner"), b"x")
        .unwrap();
    let head = a.head(&laptop.db).unwrap();
    // As a file in the secret's place, the directory would make every
    // other copy refuse the vault.
    assert!(matches!(
        a.resolve_conflict(&laptop.db, &laptop.keys, "mail", &copy, true),
        Err(VaultError::WrongKind(..))
    ));
    assert_eq!(a.head(&laptop.db).unwrap(), head);
    assert_eq!(a.get(&laptop.db, "mail").unwrap().to_vec(), b"mine");
    a.verify_history(&laptop.db).unwrap();
}

#[test]
fn a_secret_named_like_a_copy_is_not_a_conflict() {
    let (laptop, a, _phone, _b) = two_devices();
    a.write_secret(&laptop.db, &laptop.keys, "notes.conflict-0123abcd", b"mine")
        .unwrap();
    a.write_secret(&laptop.db, &laptop.keys, "notes", b"other")
        .unwrap();
    assert!(a.conflicts(&laptop.db).unwrap().is_empty());
}

#[test]
fn a_secret_moved_aside_for_an_empty_directory_is_listed_for_review() {
    let (laptop, a, phone, b) = two_devices();
    a.write_secret(&laptop.db, &laptop.keys, "bank", b"laptop-edit")
        .unwrap();
    b.remove(&phone.db, &phone.keys, "bank", false).unwrap();
    b.mkdir(&phone.db, &phone.keys, "bank").unwrap();
    sync((&phone, &b), (&laptop, &a));
    let copy = format!("bank.conflict-{}", tag_of("bank"));
    assert_eq!(a.get(&laptop.db, &copy).unwrap().to_vec(), b"laptop-edit");
    assert_eq!(
        a.conflicts(&laptop.db).unwrap(),
        vec![("bank".to_owned(), copy)]
    );
}

/// A copy that diverged asks for the other's head naming its own head and
/// the last version it was given. Only the commits it lacks come: not the
/// history below a branch another device forked earlier and that was
/// merged since. The walk stopped only at the versions named, so the
/// older branch led it down to the first commit, and every sync of two
/// diverged copies sent (and read) the whole history again: under ten
/// devices merging, syncs took seconds each.
#[test]
fn a_diverged_copy_is_sent_only_the_commits_it_lacks() {
    let laptop = device(1);
    let (phone, tablet) = (device(2), device(3));
    let vault = Vaults::new(&laptop.db)
        .create("shared", &laptop.keys)
        .unwrap();
    let count = |versions: std::ops::Range<u32>| {
        for i in versions {
            vault
                .write_secret(
                    &laptop.db,
                    &laptop.keys,
                    "counter",
                    format!("{i}").as_bytes(),
                )
                .unwrap();
        }
    };
    count(0..100);
    // The tablet forks here; the phone a hundred versions later.
    let on_tablet = clone_of((&laptop, &vault), &tablet);
    count(100..200);
    let on_phone = clone_of((&laptop, &vault), &phone);
    let told = vault.head(&laptop.db).unwrap();
    // The tablet's edit is merged on the laptop beside one of its own;
    // the phone makes one of its own meanwhile.
    on_tablet
        .write_secret(&tablet.db, &tablet.keys, "tablet", b"t")
        .unwrap();
    vault
        .write_secret(&laptop.db, &laptop.keys, "laptop", b"l")
        .unwrap();
    assert!(matches!(
        sync((&tablet, &on_tablet), (&laptop, &vault)),
        MergeOutcome::Merged { .. }
    ));
    on_phone
        .write_secret(&phone.db, &phone.keys, "phone", b"p")
        .unwrap();

    let want = vault.head(&laptop.db).unwrap();
    let phone_head = on_phone.head(&phone.db).unwrap();
    let objects = vault
        .objects_between(&laptop.db, &want, &[phone_head, told])
        .unwrap();
    let commits = objects
        .iter()
        .filter(|(_, o)| o.kind == gix::objs::Kind::Commit)
        .count();
    // The laptop's edit, the tablet's and the merge.
    assert_eq!(commits, 3, "{} objects sent", objects.len());
    // And they are all the phone lacked: it merges.
    let objects: Vec<RawObject> = objects.into_iter().map(|(_, o)| o).collect();
    on_phone.import(&phone.db, &objects).unwrap();
    assert!(matches!(
        on_phone.merge(&phone.db, &phone.keys, &want).unwrap(),
        MergeOutcome::Merged { .. }
    ));
    assert_eq!(on_phone.get(&phone.db, "tablet").unwrap().as_slice(), b"t");
}

/// A blob's git id, as bytes.
fn blob_id(data: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {}\0", data.len()).as_bytes());
    hasher.update(data);
    hasher.finalize().into()
}

/// The first of `prefix-0`, `prefix-1`… whose blob id `fits`.
fn value_whose_id(prefix: &str, fits: impl Fn(&[u8; 20]) -> bool) -> Vec<u8> {
    (0..)
        .map(|i| format!("{prefix}-{i}").into_bytes())
        .find(|v| fits(&blob_id(v)))
        .unwrap()
}

/// A writer edits a secret and, at once, writes the secret's copy itself,
/// both with ids greater than ours (ids are hashes: a writer can make
/// them so): our concurrent edit is still kept, in the copy, on both
/// sides alike. (The copy kept the greater id, the writer's; our edit
/// was in history only, while the merge said both versions were kept.)
#[test]
fn a_writer_filling_a_secrets_copy_itself_does_not_hide_our_concurrent_edit() {
    let (laptop, a, phone, b) = two_devices();
    let ours = value_whose_id("ours", |id| id[0] < 0x10);
    let theirs = value_whose_id("theirs", |id| id[0] >= 0xf0);
    let planted = value_whose_id("planted", |id| id[0] >= 0xf0);
    a.write_secret(&laptop.db, &laptop.keys, "wifi", &ours)
        .unwrap();
    let copy = polykey_vaults::conflict_copy_path("wifi");
    b.write_secret(&phone.db, &phone.keys, "wifi", &theirs)
        .unwrap();
    b.write_secret(&phone.db, &phone.keys, &copy, &planted)
        .unwrap();
    let expect = [
        ("wifi", theirs.as_slice(), "their edit is not in place"),
        (
            copy.as_str(),
            ours.as_slice(),
            "our edit is not in the copy",
        ),
    ];
    merged_both_ways_hold((&laptop, &a), (&phone, &b), &expect);

    // The copy planted a version before (both devices have it), and then
    // both edit the secret: ours still goes to the copy.
    let (laptop, a, phone, b) = two_devices();
    b.write_secret(&phone.db, &phone.keys, &copy, &planted)
        .unwrap();
    sync((&phone, &b), (&laptop, &a));
    let ours = value_whose_id("ours-again", |id| id[0] < 0x10);
    a.write_secret(&laptop.db, &laptop.keys, "wifi", &ours)
        .unwrap();
    b.write_secret(&phone.db, &phone.keys, "wifi", &theirs)
        .unwrap();
    let expect_ours = [(
        copy.as_str(),
        ours.as_slice(),
        "our edit is not in the copy planted before",
    )];
    merged_both_ways_hold((&laptop, &a), (&phone, &b), &expect_ours);

    // The writer makes a directory of the secret's name instead (our
    // edited secret moves aside, to the copy it planted).
    let (laptop, a, phone, b) = two_devices();
    let ours = value_whose_id("ours-moved", |id| id[0] < 0x10);
    a.write_secret(&laptop.db, &laptop.keys, "wifi", &ours)
        .unwrap();
    b.remove(&phone.db, &phone.keys, "wifi", false).unwrap();
    b.write_secret(&phone.db, &phone.keys, "wifi/x", b"dir")
        .unwrap();
    b.write_secret(&phone.db, &phone.keys, &copy, &planted)
        .unwrap();
    let expect = [
        ("wifi/x", b"dir".as_slice(), "the directory is not kept"),
        (
            copy.as_str(),
            ours.as_slice(),
            "our edit moved aside is not in the copy",
        ),
    ];
    merged_both_ways_hold((&laptop, &a), (&phone, &b), &expect);
}

/// Merge the two copies both ways at once; then each holds every
/// `(path, value, why not)` expected, and both hold the same secrets.
fn merged_both_ways_hold(
    (laptop, a): (&Device, &Vault),
    (phone, b): (&Device, &Vault),
    expected: &[(&str, &[u8], &str)],
) {
    merge_both_ways((&laptop.db, &laptop.keys, a), (&phone.db, &phone.keys, b));
    for (device, vault) in [(laptop, a), (phone, b)] {
        for (path, value, why) in expected {
            assert_eq!(
                vault.get(&device.db, path).unwrap().as_slice(),
                *value,
                "{why}"
            );
        }
    }
    assert_eq!(a.files(&laptop.db).unwrap(), b.files(&phone.db).unwrap());
}

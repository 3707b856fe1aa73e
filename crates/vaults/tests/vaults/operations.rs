use polykey_vaults::{EntryKind, VaultError, Vaults, MAX_SECRET_SIZE};

use crate::fixture;

#[test]
fn vaults_are_created_listed_renamed_and_deleted() {
    let f = fixture();
    let vaults = Vaults::new(&f.db);
    let work = vaults.create("Work", &f.keys).unwrap();
    vaults.create("personal", &f.keys).unwrap();
    let names: Vec<String> = vaults.list().unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["personal", "Work"]);

    assert!(matches!(
        vaults.create("Work", &f.keys),
        Err(VaultError::VaultExists(_))
    ));
    assert!(matches!(
        vaults.create("  ", &f.keys),
        Err(VaultError::InvalidVaultName(_))
    ));

    work.write_secret(&f.db, &f.keys, "db/password", b"hunter2")
        .unwrap();
    vaults.rename("Work", "Job").unwrap();
    assert!(matches!(
        vaults.open("Work"),
        Err(VaultError::UnknownVault(_))
    ));
    let job = vaults.open("Job").unwrap();
    assert_eq!(job.id(), work.id(), "renaming keeps the id");
    assert_eq!(
        job.get(&f.db, "db/password").unwrap().as_slice(),
        b"hunter2"
    );
    assert_eq!(vaults.open(&work.id().to_string()).unwrap().name(), "Job");
    assert!(matches!(
        vaults.rename("Job", "personal"),
        Err(VaultError::VaultExists(_))
    ));
    // A vault named (by a device, a restore) with another vault's id does
    // not take its place where it is opened by id, nor has that name: it
    // gets a mark, so a view opening vaults by name never opens the other.
    let work_id = work.id().to_string();
    vaults.rename("personal", &work_id).unwrap();
    assert_eq!(vaults.open(&work_id).unwrap().id(), work.id());
    let marked = format!("{work_id} (name)");
    let personal = vaults.open(&marked).unwrap();
    assert_ne!(personal.id(), work.id());
    let names: Vec<String> = vaults.list().unwrap().into_iter().map(|v| v.name).collect();
    assert!(!names.contains(&work_id), "{names:?}");
    let id = personal.id().to_string();
    assert!(vaults
        .adopt_name(&personal.id(), &work_id.to_uppercase(), i64::MAX)
        .unwrap());
    assert_eq!(
        vaults.open(&id).unwrap().name(),
        format!("{} (name)", work_id.to_uppercase())
    );
    vaults.rename(&id, "personal").unwrap();
    assert_eq!(vaults.open("personal").unwrap().id().to_string(), id);

    vaults.delete("Job", &f.keys).unwrap();
    assert!(matches!(
        vaults.open("Job"),
        Err(VaultError::UnknownVault(_))
    ));
    assert_eq!(vaults.list().unwrap().len(), 1);
    assert!(matches!(
        vaults.delete("Job", &f.keys),
        Err(VaultError::UnknownVault(_))
    ));
}

#[test]
fn secrets_are_created_read_listed_and_stated() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    vault
        .create_secret(&f.db, &f.keys, "email/work", b"pw1")
        .unwrap();
    vault
        .create_secret(&f.db, &f.keys, "email/home", b"pw2")
        .unwrap();
    vault.create_secret(&f.db, &f.keys, "top", b"t").unwrap();
    assert!(matches!(
        vault.create_secret(&f.db, &f.keys, "top", b"again"),
        Err(VaultError::AlreadyExists(_))
    ));

    assert_eq!(vault.get(&f.db, "email/home").unwrap().as_slice(), b"pw2");
    assert_eq!(
        vault.list(&f.db, None).unwrap(),
        ["email/home", "email/work", "top"]
    );
    assert_eq!(
        vault.list(&f.db, Some("email")).unwrap(),
        ["email/home", "email/work"]
    );
    let stat = vault.stat(&f.db, "email/work").unwrap();
    assert_eq!((stat.kind, stat.size), (EntryKind::Secret, 3));
    let stat = vault.stat(&f.db, "email").unwrap();
    assert_eq!((stat.kind, stat.size), (EntryKind::Directory, 2));
    assert!(matches!(
        vault.get(&f.db, "email"),
        Err(VaultError::WrongKind(..))
    ));
    assert!(matches!(
        vault.get(&f.db, "nope"),
        Err(VaultError::NotFound(_))
    ));
}

#[test]
fn write_edit_mkdir_rename_and_remove() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    assert!(matches!(
        vault.edit_secret(&f.db, &f.keys, "a", b"x"),
        Err(VaultError::NotFound(_))
    ));
    vault.write_secret(&f.db, &f.keys, "a", b"1").unwrap();
    vault.edit_secret(&f.db, &f.keys, "a", b"2").unwrap();
    assert_eq!(vault.get(&f.db, "a").unwrap().as_slice(), b"2");

    vault.mkdir(&f.db, &f.keys, "empty/dir").unwrap();
    assert_eq!(
        vault.stat(&f.db, "empty/dir").unwrap().kind,
        EntryKind::Directory
    );
    assert!(
        vault.list(&f.db, None).unwrap() == ["a"],
        "directory markers are hidden"
    );
    assert!(matches!(
        vault.mkdir(&f.db, &f.keys, "a"),
        Err(VaultError::AlreadyExists(_))
    ));
    assert!(matches!(
        vault.write_secret(&f.db, &f.keys, "a/child", b"x"),
        Err(VaultError::WrongKind(..))
    ));

    vault.rename(&f.db, &f.keys, "a", "empty/dir/a").unwrap();
    assert!(matches!(
        vault.get(&f.db, "a"),
        Err(VaultError::NotFound(_))
    ));
    assert_eq!(vault.get(&f.db, "empty/dir/a").unwrap().as_slice(), b"2");
    vault.rename(&f.db, &f.keys, "empty", "moved").unwrap();
    assert_eq!(vault.list(&f.db, None).unwrap(), ["moved/dir/a"]);
    assert!(matches!(
        vault.rename(&f.db, &f.keys, "moved", "moved/inside"),
        Err(VaultError::InvalidPath(_))
    ));

    assert!(matches!(
        vault.remove(&f.db, &f.keys, "moved", false),
        Err(VaultError::DirectoryNotEmpty(_))
    ));
    vault.remove(&f.db, &f.keys, "moved", true).unwrap();
    assert!(vault.list(&f.db, None).unwrap().is_empty());
    assert!(matches!(
        vault.remove(&f.db, &f.keys, "moved", true),
        Err(VaultError::NotFound(_))
    ));
}

#[test]
fn bad_input_gets_distinct_errors_and_changes_nothing() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    vault.write_secret(&f.db, &f.keys, "keep", b"safe").unwrap();
    let head = vault.head(&f.db).unwrap();
    for path in [
        "../escape",
        "/etc/passwd",
        "a//b",
        "a\0b",
        "",
        ".git/config",
    ] {
        let err = vault.write_secret(&f.db, &f.keys, path, b"x").unwrap_err();
        assert!(matches!(err, VaultError::InvalidPath(_)), "{path:?}: {err}");
    }
    let big = vec![0u8; MAX_SECRET_SIZE + 1];
    assert!(matches!(
        vault.write_secret(&f.db, &f.keys, "big", &big),
        Err(VaultError::TooLarge { .. })
    ));
    assert!(matches!(
        Vaults::new(&f.db).open("nope"),
        Err(VaultError::UnknownVault(_))
    ));
    assert!(matches!(
        vault.get_at(&f.db, "deadbeef", "keep"),
        Err(VaultError::UnknownVersion(_))
    ));
    assert_eq!(vault.head(&f.db).unwrap(), head, "nothing was committed");
    assert_eq!(vault.list(&f.db, None).unwrap(), ["keep"]);
}

#[test]
fn writing_the_same_content_makes_no_commit() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    let first = vault.write_secret(&f.db, &f.keys, "a", b"same").unwrap();
    let second = vault.write_secret(&f.db, &f.keys, "a", b"same").unwrap();
    assert_eq!(first, second);
    assert_eq!(vault.log(&f.db, None).unwrap().len(), 2);
}

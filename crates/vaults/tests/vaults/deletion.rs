//! Deleting a vault is a signed, dated, reversible record (issue 11, item 3).

use std::time::{SystemTime, UNIX_EPOCH};

use polykey_db::Db;
use polykey_keys::{NodeId, RootKeypair};
use polykey_vaults::{
    Deletion, Vault, VaultError, Vaults, MAX_CLOCK_SKEW_MS, RECOVERY_WINDOW_MS,
    TOMBSTONE_LIFETIME_MS,
};

use crate::{fixture, Fixture};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap()
}

/// A second device of the same person: its own key and redb file.
fn other_device(seed: u8) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let keys = RootKeypair::from_seed(&[seed; 32]);
    let db = Db::create(&dir.path().join("db.redb"), &keys).unwrap();
    Fixture { dir, db, keys }
}

fn anyone(_: &NodeId) -> bool {
    true
}

fn anyone_at(_: &NodeId, _: i64) -> bool {
    true
}

/// Copy `vault` at `version` from `from` to `to` as sync does for a vault
/// `to` does not hold.
fn receive_whole(
    from: &Fixture,
    vault: &Vault,
    version: &str,
    to: &Fixture,
) -> Result<Vault, VaultError> {
    let objects = vault.objects_between(&from.db, version, &[]).unwrap();
    Vaults::new(&to.db).receive_vault(
        vault.name(),
        &vault.id().to_string(),
        vault.info().renamed_at,
        version,
        &objects,
        &anyone_at,
    )
}

/// Bring `to`'s copy of `vault` (deleted there or not) up to `from`'s head,
/// as sync does: fetch what it lacks, then merge.
fn pull(from: &Fixture, vault: &Vault, to: &Fixture) {
    let head = vault.head(&from.db).unwrap();
    let copy = Vaults::new(&to.db).open_any(&vault.id()).unwrap();
    let ours = copy.head(&to.db).unwrap();
    let objects = vault.objects_between(&from.db, &head, &[ours]).unwrap();
    copy.receive(&to.db, &head, &objects, &anyone_at).unwrap();
    copy.merge(&to.db, &to.keys, &head).unwrap();
}

fn names(vaults: &Vaults<'_>) -> Vec<String> {
    vaults.list().unwrap().into_iter().map(|v| v.name).collect()
}

#[test]
fn delete_then_restore_keeps_history_and_secrets() {
    let f = fixture();
    let vaults = Vaults::new(&f.db);
    let work = vaults.create("Work", &f.keys).unwrap();
    work.write_secret(&f.db, &f.keys, "db/password", b"hunter2")
        .unwrap();
    work.write_secret(&f.db, &f.keys, "mail", b"pw").unwrap();
    let history = work.log(&f.db, None).unwrap();
    let head = work.head(&f.db).unwrap();

    let deletion = vaults.delete("Work", &f.keys).unwrap();
    deletion.verify().unwrap();
    assert_eq!(deletion.vault, work.id());
    assert_eq!(deletion.head, head);
    assert_eq!(deletion.by, f.keys.node_id());

    // Gone for the user: not listed, not opened by name or id, name free.
    assert!(names(&vaults).is_empty());
    assert!(matches!(
        vaults.open("Work"),
        Err(VaultError::UnknownVault(_))
    ));
    assert!(matches!(
        vaults.open(&work.id().to_string()),
        Err(VaultError::UnknownVault(_))
    ));
    assert!(matches!(
        vaults.delete("Work", &f.keys),
        Err(VaultError::UnknownVault(_))
    ));
    let newer = vaults.create("Work", &f.keys).unwrap();

    // …but in "Recently deleted", with everything kept.
    let deleted = vaults.deleted_vaults().unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].info.id, work.id());
    assert_eq!(deleted[0].info.name, "Work");
    assert_eq!(deleted[0].deletion, deletion);
    assert_eq!(
        deleted[0].purge_at,
        deletion.deleted_at + RECOVERY_WINDOW_MS
    );
    let kept = vaults.open_any(&work.id()).unwrap();
    assert_eq!(
        kept.get(&f.db, "db/password").unwrap().as_slice(),
        b"hunter2"
    );

    // Restored: a live vault took its name, so it gets a free one.
    let restored = vaults.restore(&work.id(), &f.keys).unwrap();
    assert_eq!(restored.id(), work.id());
    assert_eq!(restored.name(), "Work (2)");
    assert_eq!(names(&vaults), ["Work", "Work (2)"]);
    assert_eq!(vaults.open("Work").unwrap().id(), newer.id());
    assert_eq!(
        restored.get(&f.db, "db/password").unwrap().as_slice(),
        b"hunter2"
    );
    assert_eq!(restored.get(&f.db, "mail").unwrap().as_slice(), b"pw");
    let log = restored.log(&f.db, None).unwrap();
    assert_eq!(&log[1..], history.as_slice(), "the whole history is kept");
    assert!(vaults.deleted_vaults().unwrap().is_empty());
    assert_eq!(
        vaults.deletions_page(None, 10).unwrap(),
        (Vec::new(), false)
    );

    // With its name free, a restored vault gets it back.
    vaults.delete("Work", &f.keys).unwrap();
    vaults.delete("Work (2)", &f.keys).unwrap();
    assert_eq!(vaults.restore(&newer.id(), &f.keys).unwrap().name(), "Work");
}

#[test]
fn a_restore_is_a_new_signed_commit_that_reaches_other_devices_as_an_edit() {
    let (laptop, phone) = (fixture(), other_device(7));
    let vault = Vaults::new(&laptop.db)
        .create("Shared", &laptop.keys)
        .unwrap();
    vault
        .write_secret(&laptop.db, &laptop.keys, "a", b"1")
        .unwrap();
    let head = vault.head(&laptop.db).unwrap();
    receive_whole(&laptop, &vault, &head, &phone).unwrap();

    // The phone deletes; the laptop takes its signed deletion.
    let deletion = Vaults::new(&phone.db)
        .delete("Shared", &phone.keys)
        .unwrap();
    assert!(Vaults::new(&laptop.db)
        .apply_deletion(&deletion, &anyone, now_ms())
        .unwrap());
    assert!(names(&Vaults::new(&laptop.db)).is_empty());

    // The laptop restores: one commit, same tree, parent = the deleted head,
    // signed by the laptop.
    let restored = Vaults::new(&laptop.db)
        .restore(&vault.id(), &laptop.keys)
        .unwrap();
    let log = restored.log(&laptop.db, Some(1)).unwrap();
    assert_eq!(log[0].message, "Restore vault");
    assert_eq!(log[0].parents, std::slice::from_ref(&head));
    assert_eq!(log[0].author, laptop.keys.node_id().to_string());
    assert!(restored.diff(&laptop.db, &head, "HEAD").unwrap().is_empty());
    assert!(restored
        .verify_history(&laptop.db)
        .unwrap()
        .contains(&laptop.keys.node_id()));

    // Syncing that edit revives the vault on the phone too.
    pull(&laptop, &restored, &phone);
    let phone_vaults = Vaults::new(&phone.db);
    assert_eq!(names(&phone_vaults), ["Shared"]);
    assert!(phone_vaults.deleted_vaults().unwrap().is_empty());
    assert_eq!(
        phone_vaults.deletions_page(None, 10).unwrap(),
        (Vec::new(), false),
        "a deletion the vault moved past is not served"
    );
    assert_eq!(
        phone_vaults
            .purge_expired(now_ms() + RECOVERY_WINDOW_MS)
            .unwrap(),
        0
    );
    assert_eq!(names(&phone_vaults), ["Shared"]);
}

#[test]
fn a_forged_or_unsigned_deletion_is_refused() {
    let f = fixture();
    let vaults = Vaults::new(&f.db);
    let vault = vaults.create("Work", &f.keys).unwrap();
    let head = vault.head(&f.db).unwrap();
    let good = Deletion::sign(vault.id(), &head, now_ms(), &f.keys);
    let stranger = RootKeypair::from_seed(&[9; 32]);

    let mut unsigned = good.clone();
    unsigned.signature.clear();
    let mut wrong_bytes = good.clone();
    wrong_bytes.signature[0] ^= 1;
    let mut other_signer = Deletion::sign(vault.id(), &head, now_ms(), &stranger);
    other_signer.by = f.keys.node_id();
    let mut redated = good.clone();
    redated.deleted_at = 0;
    let mut other_head = good.clone();
    other_head.head = "0".repeat(40);
    let mut malformed_head = Deletion::sign(vault.id(), "HEAD\nx", now_ms(), &f.keys);
    malformed_head.head = "HEAD\nx".into();

    for forged in [
        unsigned,
        wrong_bytes,
        other_signer,
        redated,
        other_head,
        malformed_head,
    ] {
        assert!(forged.verify().is_err());
        assert!(matches!(
            vaults.apply_deletion(&forged, &anyone, now_ms()),
            Err(VaultError::Refused(_))
        ));
    }
    assert_eq!(names(&vaults), ["Work"]);
    assert!(vaults.apply_deletion(&good, &anyone, now_ms()).unwrap());
    assert!(names(&vaults).is_empty());
}

#[test]
fn a_deletion_by_a_node_may_delete_refuses_is_refused() {
    let f = fixture();
    let vaults = Vaults::new(&f.db);
    let vault = vaults.create("Work", &f.keys).unwrap();
    let head = vault.head(&f.db).unwrap();
    let outsider = RootKeypair::from_seed(&[9; 32]);
    let deletion = Deletion::sign(vault.id(), &head, now_ms(), &outsider);
    deletion.verify().unwrap();
    let members = [f.keys.node_id()];
    let may_delete = |node: &NodeId| members.contains(node);
    assert!(matches!(
        vaults.apply_deletion(&deletion, &may_delete, now_ms()),
        Err(VaultError::Refused(_))
    ));
    assert_eq!(names(&vaults), ["Work"]);
    assert!(vaults.deletions_page(None, 10).unwrap().0.is_empty());
}

#[test]
fn a_deletion_at_an_old_head_does_not_delete_a_vault_edited_since() {
    let (laptop, phone) = (fixture(), other_device(7));
    let vault = Vaults::new(&laptop.db)
        .create("Shared", &laptop.keys)
        .unwrap();
    let head = vault.head(&laptop.db).unwrap();
    receive_whole(&laptop, &vault, &head, &phone).unwrap();

    // The phone deletes the version both have; the laptop edited since.
    let deletion = Vaults::new(&phone.db)
        .delete("Shared", &phone.keys)
        .unwrap();
    vault
        .write_secret(&laptop.db, &laptop.keys, "new", b"edit")
        .unwrap();
    let laptop_vaults = Vaults::new(&laptop.db);
    assert!(!laptop_vaults
        .apply_deletion(&deletion, &anyone, now_ms())
        .unwrap());
    assert_eq!(names(&laptop_vaults), ["Shared"]);
    assert!(laptop_vaults.deletions_page(None, 10).unwrap().0.is_empty());

    // The edit reaches the phone: it wins over the deletion there too.
    pull(&laptop, &vault, &phone);
    let phone_vaults = Vaults::new(&phone.db);
    assert_eq!(names(&phone_vaults), ["Shared"]);
    assert_eq!(
        phone_vaults
            .open("Shared")
            .unwrap()
            .get(&phone.db, "new")
            .unwrap()
            .as_slice(),
        b"edit"
    );
    // The stale record is dropped, and the phone's old deletion, offered
    // back to it, does not delete the edited vault either.
    assert!(!phone_vaults
        .apply_deletion(&deletion, &anyone, now_ms())
        .unwrap());
    assert!(phone_vaults.deletions_page(None, 10).unwrap().0.is_empty());

    // A deletion of a vault this node does not hold stores nothing.
    let elsewhere = other_device(8);
    let unknown = Vaults::new(&elsewhere.db)
        .create("Theirs", &elsewhere.keys)
        .unwrap();
    let far = Vaults::new(&elsewhere.db)
        .delete("Theirs", &elsewhere.keys)
        .unwrap();
    assert_eq!(far.vault, unknown.id());
    assert!(!laptop_vaults
        .apply_deletion(&far, &anyone, now_ms())
        .unwrap());
    assert!(laptop_vaults.deletions_page(None, 10).unwrap().0.is_empty());
}

#[test]
fn a_deletion_dated_zero_is_not_purged_before_thirty_days_of_local_time() {
    let (laptop, rogue) = (fixture(), other_device(7));
    let vaults = Vaults::new(&laptop.db);
    let vault = vaults.create("Work", &laptop.keys).unwrap();
    let head = vault.head(&laptop.db).unwrap();
    let arrived = now_ms();

    let backdated = Deletion::sign(vault.id(), &head, 0, &rogue.keys);
    assert!(vaults.apply_deletion(&backdated, &anyone, arrived).unwrap());
    assert!(!vaults
        .apply_deletion(&backdated, &anyone, arrived + 5)
        .unwrap());
    let deleted = vaults.deleted_vaults().unwrap();
    assert_eq!(deleted[0].purge_at, arrived + RECOVERY_WINDOW_MS);

    assert_eq!(vaults.purge_expired(arrived).unwrap(), 0);
    assert_eq!(
        vaults
            .purge_expired(arrived + RECOVERY_WINDOW_MS - 1)
            .unwrap(),
        0
    );
    let restored = vaults.restore(&vault.id(), &laptop.keys).unwrap();
    assert_eq!(names(&vaults), ["Work"]);

    // A date far in the future is shown as the time it arrived.
    let head = restored.head(&laptop.db).unwrap();
    let future = Deletion::sign(vault.id(), &head, i64::MAX, &rogue.keys);
    let arrived = now_ms();
    assert!(vaults.apply_deletion(&future, &anyone, arrived).unwrap());
    let shown = &vaults.deleted_vaults().unwrap()[0];
    assert_eq!(shown.deletion.deleted_at, arrived);
    assert_eq!(shown.purge_at, arrived + RECOVERY_WINDOW_MS);
    // The original, signed, is what peers are served.
    let (served, _) = vaults.deletions_page(None, 10).unwrap();
    assert_eq!(served, [future]);
    served[0].verify().unwrap();
    assert_eq!(
        vaults.purge_expired(arrived + RECOVERY_WINDOW_MS).unwrap(),
        1
    );
}

#[test]
fn purge_frees_the_vault_and_keeps_a_tombstone_that_refuses_the_same_head_not_a_newer_one() {
    let (laptop, phone) = (fixture(), other_device(7));
    let vault = Vaults::new(&laptop.db)
        .create("Shared", &laptop.keys)
        .unwrap();
    vault
        .write_secret(&laptop.db, &laptop.keys, "a", b"1")
        .unwrap();
    let older = vault.head(&laptop.db).unwrap();
    vault
        .write_secret(&laptop.db, &laptop.keys, "b", b"2")
        .unwrap();
    let deleted_head = vault.head(&laptop.db).unwrap();
    let copy = receive_whole(&laptop, &vault, &deleted_head, &phone).unwrap();
    let blobs: Vec<String> = copy
        .files(&phone.db)
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect();

    let phone_vaults = Vaults::new(&phone.db);
    let deletion = phone_vaults.delete("Shared", &phone.keys).unwrap();
    let deleted_at = deletion.deleted_at;
    assert_eq!(phone_vaults.purge_expired(deleted_at).unwrap(), 0);
    assert_eq!(
        phone_vaults
            .purge_expired(deleted_at + RECOVERY_WINDOW_MS + 60_000)
            .unwrap(),
        1
    );

    // The record and every object are gone.
    assert!(matches!(
        phone_vaults.open_any(&vault.id()),
        Err(VaultError::UnknownVault(_))
    ));
    assert!(phone_vaults.restore(&vault.id(), &phone.keys).is_err());
    assert!(copy.head(&phone.db).is_err(), "the refs table is dropped");
    assert!(copy.blobs(&phone.db, &blobs).is_err(), "the objects too");
    assert!(phone_vaults.list_for_sync().unwrap().is_empty());
    assert!(phone_vaults.deleted_vaults().unwrap().is_empty());
    // The tombstone stays, and is served.
    assert_eq!(
        phone_vaults.deletions_page(None, 10).unwrap(),
        (vec![deletion.clone()], false)
    );

    // A stale device offering the deleted version, or an older one, does
    // not bring it back.
    for stale in [&deleted_head, &older] {
        assert!(matches!(
            receive_whole(&laptop, &vault, stale, &phone),
            Err(VaultError::UnknownVault(_))
        ));
        assert!(phone_vaults.open_any(&vault.id()).is_err());
    }
    assert_eq!(phone_vaults.deletions_page(None, 10).unwrap().0.len(), 1);
    // A purged vault's deletion is not taken again either.
    assert!(!phone_vaults
        .apply_deletion(&deletion, &anyone, now_ms())
        .unwrap());

    // An edit made after the deletion is accepted, and ends the tombstone.
    vault
        .write_secret(&laptop.db, &laptop.keys, "c", b"3")
        .unwrap();
    let edited = vault.head(&laptop.db).unwrap();
    let back = receive_whole(&laptop, &vault, &edited, &phone).unwrap();
    assert_eq!(back.get(&phone.db, "c").unwrap().as_slice(), b"3");
    assert_eq!(names(&phone_vaults), ["Shared"]);
    assert_eq!(
        phone_vaults.deletions_page(None, 10).unwrap(),
        (Vec::new(), false)
    );
}

#[test]
fn tombstones_expire() {
    let (laptop, phone) = (fixture(), other_device(7));
    let vault = Vaults::new(&laptop.db)
        .create("Shared", &laptop.keys)
        .unwrap();
    let head = vault.head(&laptop.db).unwrap();
    receive_whole(&laptop, &vault, &head, &phone).unwrap();

    let phone_vaults = Vaults::new(&phone.db);
    let recorded = now_ms();
    let deletion = Deletion::sign(vault.id(), &head, recorded, &laptop.keys);
    assert!(phone_vaults
        .apply_deletion(&deletion, &anyone, recorded)
        .unwrap());
    assert_eq!(
        phone_vaults
            .purge_expired(recorded + RECOVERY_WINDOW_MS)
            .unwrap(),
        1
    );
    assert_eq!(
        phone_vaults
            .purge_expired(recorded + TOMBSTONE_LIFETIME_MS - 1)
            .unwrap(),
        0
    );
    assert_eq!(phone_vaults.deletions_page(None, 10).unwrap().0.len(), 1);
    assert_eq!(phone_vaults.deletions_page(None, 10).unwrap().0.len(), 1);

    phone_vaults
        .purge_expired(recorded + TOMBSTONE_LIFETIME_MS)
        .unwrap();
    assert_eq!(
        phone_vaults.deletions_page(None, 10).unwrap(),
        (Vec::new(), false)
    );
    assert!(phone_vaults.deletions_page(None, 10).unwrap().0.is_empty());
    // Forgotten: the vault can be received again.
    receive_whole(&laptop, &vault, &head, &phone).unwrap();
    assert_eq!(names(&phone_vaults), ["Shared"]);
}

#[test]
fn deletions_page_in_vault_id_order_with_whether_more_follow() {
    let f = fixture();
    let vaults = Vaults::new(&f.db);
    let mut deletions = Vec::new();
    let delete_new = |name: &str| {
        vaults.create(name, &f.keys).unwrap();
        vaults.delete(name, &f.keys).unwrap()
    };
    // Four purged to tombstones, two restorable, one restored (not served).
    for n in 0..4 {
        deletions.push(delete_new(&format!("old {n}")));
    }
    vaults
        .purge_expired(now_ms() + RECOVERY_WINDOW_MS + 60_000)
        .unwrap();
    for n in 0..3 {
        deletions.push(delete_new(&format!("new {n}")));
    }
    let restored = deletions.pop().unwrap();
    vaults.restore(&restored.vault, &f.keys).unwrap();
    assert_eq!(vaults.deleted_vaults().unwrap().len(), 2);
    deletions.sort_by_key(|d| d.vault);

    let (first, more) = vaults.deletions_page(None, 4).unwrap();
    assert_eq!(first, deletions[..4]);
    assert!(more);
    let (rest, more) = vaults.deletions_page(Some(&first[3].vault), 4).unwrap();
    assert_eq!(rest, deletions[4..]);
    assert!(!more);
    let (exact, more) = vaults.deletions_page(None, 6).unwrap();
    assert_eq!(exact, deletions);
    assert!(!more);
    assert_eq!(vaults.deletions_page(None, 0).unwrap(), (Vec::new(), true));
    let last = deletions.last().unwrap().vault;
    assert_eq!(
        vaults.deletions_page(Some(&last), 10).unwrap(),
        (Vec::new(), false)
    );
}

#[test]
fn deleted_secrets_are_listed_newest_first_and_restore_from_their_version() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("Work", &f.keys).unwrap();
    let start = now_ms() - 1_000;
    vault.write_secret(&f.db, &f.keys, "a", b"1").unwrap();
    vault.write_secret(&f.db, &f.keys, "dir/b", b"2").unwrap();
    vault.write_secret(&f.db, &f.keys, "dir/c", b"3").unwrap();
    vault.write_secret(&f.db, &f.keys, "back", b"4").unwrap();
    vault.remove(&f.db, &f.keys, "a", false).unwrap();
    vault.remove(&f.db, &f.keys, "back", false).unwrap();
    vault.write_secret(&f.db, &f.keys, "back", b"5").unwrap();
    vault.remove(&f.db, &f.keys, "dir", true).unwrap();
    vault.mkdir(&f.db, &f.keys, "empty").unwrap();
    vault.remove(&f.db, &f.keys, "empty", false).unwrap();

    let deleted = vault.recently_deleted(&f.db, start, 10).unwrap();
    let paths: Vec<&str> = deleted.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        ["dir/b", "dir/c", "a"],
        "newest first; secrets back in the vault and directory markers are not listed"
    );
    for d in &deleted {
        assert!(d.deleted_at >= start && d.deleted_at <= now_ms());
    }
    assert_eq!(vault.recently_deleted(&f.db, start, 1).unwrap().len(), 1);
    assert!(vault
        .recently_deleted(&f.db, now_ms() + 60_000, 10)
        .unwrap()
        .is_empty());

    let a = deleted.iter().find(|d| d.path == "a").unwrap();
    vault
        .restore_secret(&f.db, &f.keys, &a.version, &a.path)
        .unwrap();
    assert_eq!(vault.get(&f.db, "a").unwrap().as_slice(), b"1");
    let paths: Vec<String> = vault
        .recently_deleted(&f.db, start, 10)
        .unwrap()
        .into_iter()
        .map(|d| d.path)
        .collect();
    assert_eq!(paths, ["dir/b", "dir/c"]);
}

#[test]
fn sync_sees_deleted_vaults_and_can_open_them() {
    let f = fixture();
    let vaults = Vaults::new(&f.db);
    let kept = vaults.create("Kept", &f.keys).unwrap();
    let gone = vaults.create("Gone", &f.keys).unwrap();
    let deletion = vaults.delete("Gone", &f.keys).unwrap();

    let mut listed = vaults.list_for_sync().unwrap();
    listed.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].0.id, gone.id());
    assert_eq!(listed[0].1, gone.head(&f.db).unwrap());
    assert_eq!(listed[0].2, Some(deletion));
    assert_eq!(listed[1].0.id, kept.id());
    assert_eq!(listed[1].2, None);
    assert!(vaults.open(&gone.id().to_string()).is_err());
    assert_eq!(vaults.open_any(&gone.id()).unwrap().id(), gone.id());
}

#[test]
fn a_rename_time_of_i64_max_neither_pins_the_name_nor_panics() {
    let f = fixture();
    let vaults = Vaults::new(&f.db);
    let vault = vaults.create("Work", &f.keys).unwrap();

    assert!(vaults.adopt_name(&vault.id(), "Pinned", i64::MAX).unwrap());
    let info = vaults.open("Pinned").unwrap().info().clone();
    assert!(
        info.renamed_at <= now_ms() + MAX_CLOCK_SKEW_MS,
        "clamped to now + skew"
    );
    // A rename here after it neither overflows nor loses.
    vaults.rename("Pinned", "Mine").unwrap();
    let mine = vaults.open("Mine").unwrap().info().renamed_at;
    assert!(mine > info.renamed_at);
    // An honest rename made later elsewhere wins over it.
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert!(vaults
        .adopt_name(&vault.id(), "Later", now_ms() + MAX_CLOCK_SKEW_MS)
        .unwrap());
    assert_eq!(names(&vaults), ["Later"]);
    vaults.rename("Later", "Again").unwrap();

    // A vault received whole with that time is clamped too.
    let phone = other_device(7);
    let other = Vaults::new(&phone.db).create("Phone", &phone.keys).unwrap();
    let head = other.head(&phone.db).unwrap();
    let objects = other.objects_between(&phone.db, &head, &[]).unwrap();
    let received = vaults
        .receive_vault(
            "Phone",
            &other.id().to_string(),
            i64::MAX,
            &head,
            &objects,
            &anyone_at,
        )
        .unwrap();
    assert!(received.info().renamed_at <= now_ms() + MAX_CLOCK_SKEW_MS);
    vaults.rename("Phone", "Phone 2").unwrap();
}

#[test]
fn a_purged_vault_back_through_an_unchecked_path_stays_deleted_and_is_purged_again() {
    let (laptop, phone) = (fixture(), other_device(7));
    let vault = Vaults::new(&laptop.db)
        .create("Shared", &laptop.keys)
        .unwrap();
    let older = vault.head(&laptop.db).unwrap();
    vault
        .write_secret(&laptop.db, &laptop.keys, "a", b"1")
        .unwrap();
    let head = vault.head(&laptop.db).unwrap();
    receive_whole(&laptop, &vault, &head, &phone).unwrap();
    let phone_vaults = Vaults::new(&phone.db);
    let deletion = phone_vaults.delete("Shared", &phone.keys).unwrap();
    let later = deletion.deleted_at + RECOVERY_WINDOW_MS;
    assert_eq!(phone_vaults.purge_expired(later).unwrap(), 1);

    // `clone_vault` does not ask about tombstones; whatever it brings back
    // that does not descend from the deleted version is still deleted.
    let (_, objects) = vault.objects_for(&laptop.db, &[]).unwrap();
    let id = vault.id().to_string();
    phone_vaults
        .clone_vault("Shared", &id, &head, &objects)
        .unwrap();
    assert!(names(&phone_vaults).is_empty());
    assert!(phone_vaults.open(&id).is_err());
    assert_eq!(
        phone_vaults.deletions_page(None, 10).unwrap().0,
        std::slice::from_ref(&deletion)
    );
    assert_eq!(phone_vaults.purge_expired(later).unwrap(), 1);
    assert!(phone_vaults.open_any(&vault.id()).is_err());

    phone_vaults
        .clone_vault("Shared", &id, &older, &objects)
        .unwrap();
    assert!(names(&phone_vaults).is_empty(), "an older version neither");
    assert_eq!(phone_vaults.purge_expired(later).unwrap(), 1);
    assert_eq!(phone_vaults.deletions_page(None, 10).unwrap().0, [deletion]);
}

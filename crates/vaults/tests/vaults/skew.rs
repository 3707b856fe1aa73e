//! Devices whose clocks disagree (by an hour, by a day) merge by the shape
//! of the history, never by commit times: a merge whose newest common
//! ancestor by time is not the nearest one still keeps a deletion and sees
//! each edit once.

use gix::hash::ObjectId;
use polykey_keys::RootKeypair;
use polykey_vaults::{MergeOutcome, Vaults};

use crate::bounds::{blob, commit_at, id_of, tree, FILE};
use crate::fixture;

fn skewed_merge_keeps_the_deletion(skew: i64) {
    let f = fixture();
    let (phone, tablet) = (
        RootKeypair::from_seed(&[7; 32]),
        RootKeypair::from_seed(&[8; 32]),
    );
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    vault.write_secret(&f.db, &f.keys, "s", b"v0").unwrap();
    let x = vault.write_secret(&f.db, &f.keys, "z", b"z0").unwrap();
    let x = ObjectId::from_hex(x.as_bytes()).unwrap();
    let now = vault.log(&f.db, Some(1)).unwrap()[0].time;
    let (v0, v1, z0, z1) = (blob(b"v0"), blob(b"v1"), blob(b"z0"), blob(b"z1"));
    let root = |s: &polykey_vaults::RawObject, z: &polykey_vaults::RawObject| {
        tree(&[(FILE, b"s", id_of(s)), (FILE, b"z", id_of(z))])
    };
    // The phone, its clock `skew` behind, edits s; this device takes that
    // and then deletes s.
    let y_tree = root(&v1, &z0);
    let y = commit_at(&phone, id_of(&y_tree), vec![x], now - skew);
    let y_id = id_of(&y);
    vault.import(&f.db, &[v1.clone(), y_tree, y]).unwrap();
    assert!(matches!(
        vault.merge(&f.db, &f.keys, &y_id.to_string()).unwrap(),
        MergeOutcome::FastForward { .. }
    ));
    vault.remove(&f.db, &f.keys, "s", false).unwrap();
    // A tablet with the right time edits z from the older version; the
    // phone merges the two, dated by its clock.
    let z_tree = root(&v0, &z1);
    let z = commit_at(&tablet, id_of(&z_tree), vec![x], now + 5);
    let h_tree = root(&v1, &z1);
    let h = commit_at(
        &phone,
        id_of(&h_tree),
        vec![y_id, id_of(&z)],
        now - skew + 10,
    );
    let h_id = id_of(&h);
    vault.import(&f.db, &[z1, z_tree, z, h_tree, h]).unwrap();
    let MergeOutcome::Merged { conflicts, .. } =
        vault.merge(&f.db, &f.keys, &h_id.to_string()).unwrap()
    else {
        panic!("expected a merge")
    };
    assert!(conflicts.is_empty(), "{conflicts:?}");
    assert_eq!(
        vault.list(&f.db, None).unwrap(),
        ["z"],
        "the deletion stands"
    );
    assert_eq!(vault.get(&f.db, "z").unwrap().as_slice(), b"z1");
}

#[test]
fn an_hour_behind_merges_by_history_not_by_clock() {
    skewed_merge_keeps_the_deletion(3600);
}

#[test]
fn a_day_behind_merges_by_history_not_by_clock() {
    skewed_merge_keeps_the_deletion(86_400);
}

//! What no version of a vault needs goes at a collection; whatever a
//! version needs stays, and the vault reads, exports and syncs as before.

use polykey_vaults::{kind_of_tag, Incoming, Page, RawObject, Vault, Vaults};

use crate::compact::{anyone, large_directory, noise, objects_of, pull, stored};
use crate::{fixture, Fixture};

/// A vault of 30 versions on `source`, and its copy received whole on a
/// new device.
fn source_and_copy() -> (Fixture, Vault, Fixture, Vault) {
    let source = fixture();
    let original = large_directory(&source, 30);
    let head = original.head(&source.db).unwrap();
    let id = original.id().to_string();
    let target = fixture();
    let copy = Vaults::new(&target.db)
        .begin_receive_vault("v", &id, 0)
        .unwrap();
    let (incoming, _) = pull((&source, &original), (&target, &copy), &head, &[]);
    let copy = Vaults::new(&target.db)
        .finish_receive_vault(&id, incoming, &head)
        .unwrap();
    (source, original, target, copy)
}

#[test]
fn what_no_version_needs_goes_and_every_version_still_reads() {
    let (source, original, mut target, copy) = source_and_copy();
    let head = copy.head(&target.db).unwrap();
    // The copy's own work: an edit, and a secret stored in chunks.
    copy.write_secret(&target.db, &target.keys, "logins/site-0001", b"mine")
        .unwrap();
    let big = noise(3 << 20, 9);
    copy.write_secret(&target.db, &target.keys, "big", &big)
        .unwrap();
    assert_eq!(
        Vaults::collect_garbage(&mut target.db).unwrap(),
        Default::default(),
        "every record is needed"
    );
    let kept = objects_of(&target, &copy, "before.git");
    let before = stored(&target);

    // The other device goes on; the copy takes every page of that, and
    // the transfer never ends (let go before its last step, or dropped
    // there by a hostile writer).
    for i in 0..20 {
        original
            .write_secret(
                &source.db,
                &source.keys,
                &format!("logins/site-{:04}", 500 + i),
                format!("later-{i}").as_bytes(),
            )
            .unwrap();
    }
    let other_big = noise(2 << 20, 3);
    original
        .write_secret(&source.db, &source.keys, "other-big", &other_big)
        .unwrap();
    let new_head = original.head(&source.db).unwrap();
    let mut incoming = Incoming::new(&copy);
    let haves = [head.clone()];
    loop {
        let (page, total) = original
            .objects_page(&source.db, &new_head, &haves, incoming.objects(), 16 * 1024)
            .unwrap();
        copy.receive_page(&target.db, &mut incoming, &page, &anyone)
            .unwrap();
        if incoming.objects() >= total {
            break;
        }
    }
    drop(incoming);
    let left = stored(&target) - before;
    assert!(left > 2 << 20, "the transfer stored {left} bytes");

    let collected = Vaults::collect_garbage(&mut target.db).unwrap();
    assert_eq!(collected.skipped, 0);
    assert!(
        collected.bytes >= left - left / 20,
        "{collected:?} of the {left} bytes the transfer left"
    );
    assert!(stored(&target) <= before + 1024);
    copy.verify_history(&target.db).unwrap();
    assert_eq!(objects_of(&target, &copy, "after.git"), kept);
    assert_eq!(copy.get(&target.db, "big").unwrap().as_slice(), big);
    assert_eq!(Vaults::collect_garbage(&mut target.db).unwrap().records, 0);

    // The transfer begun again brings all of it, and the two versions
    // merge; what the merge reaches is needed from then on.
    let (incoming, _) = pull((&source, &original), (&target, &copy), &new_head, &haves);
    copy.finish_receive(&target.db, incoming, &new_head)
        .unwrap();
    copy.merge(&target.db, &target.keys, &new_head).unwrap();
    assert_eq!(
        copy.get(&target.db, "other-big").unwrap().as_slice(),
        other_big
    );
    assert_eq!(
        Vaults::collect_garbage(&mut target.db).unwrap(),
        Default::default()
    );
    copy.verify_history(&target.db).unwrap();
    objects_of(&target, &copy, "merged.git");
}

/// A collection while a transfer is under way (a node unlocked collects
/// at a quiet moment) takes the pages it stored, which no version names
/// yet: its next page is refused, not taken on top of what is gone, and
/// the transfer begun again arrives whole.
#[test]
fn a_transfer_under_way_when_its_pages_are_collected_begins_again() {
    let (source, original, mut target, copy) = source_and_copy();
    let head = copy.head(&target.db).unwrap();
    for i in 0..40 {
        original
            .write_secret(
                &source.db,
                &source.keys,
                &format!("logins/site-{:04}", 600 + i),
                format!("later-{i}").as_bytes(),
            )
            .unwrap();
    }
    let new_head = original.head(&source.db).unwrap();
    let haves = [head.clone()];
    let page = |incoming: &Incoming| {
        original
            .objects_page(&source.db, &new_head, &haves, incoming.objects(), 8 * 1024)
            .unwrap()
    };
    let mut incoming = Incoming::new(&copy);
    let (first, total) = page(&incoming);
    copy.receive_page(&target.db, &mut incoming, &first, &anyone)
        .unwrap();
    assert!(incoming.objects() < total, "the transfer has more pages");

    let collected = Vaults::collect_garbage(&mut target.db).unwrap();
    assert!(collected.records > 0, "{collected:?}");
    let (next, _) = page(&incoming);
    let refused = copy
        .receive_page(&target.db, &mut incoming, &next, &anyone)
        .unwrap_err();
    assert!(
        refused.to_string().contains("during this transfer"),
        "{refused}"
    );
    assert_eq!(copy.head(&target.db).unwrap(), head);
    copy.verify_history(&target.db).unwrap();

    let (incoming, _) = pull((&source, &original), (&target, &copy), &new_head, &haves);
    copy.finish_receive(&target.db, incoming, &new_head)
        .unwrap();
    copy.merge(&target.db, &target.keys, &new_head).unwrap();
    assert_eq!(copy.head(&target.db).unwrap(), new_head);
    assert_eq!(
        copy.get(&target.db, "logins/site-0639").unwrap().as_slice(),
        b"later-39"
    );
    copy.verify_history(&target.db).unwrap();
    objects_of(&target, &copy, "whole.git");
}

/// A secret arriving in parts that another transfer stores whole while
/// they come (then let go of it) is taken as held from there, its last
/// parts writing nothing: a collection taking it meanwhile makes the
/// transfer begin again, never end naming a secret that is gone.
#[test]
fn a_secret_in_parts_found_stored_part_way_and_then_collected_is_not_counted_on() {
    let (source, original, mut target, copy) = source_and_copy();
    let had = copy.head(&target.db).unwrap();
    let big = noise(3 << 20, 21);
    original
        .write_secret(&source.db, &source.keys, "big", &big)
        .unwrap();
    let head = original.head(&source.db).unwrap();
    let plan = original
        .send_plan(&source.db, &head, std::slice::from_ref(&had))
        .unwrap();
    let mut incoming = Incoming::new(&copy);
    let (mut skip, mut offset, mut parts, mut collected) = (0, 0, 0, false);
    let outcome = loop {
        if skip >= plan.total() {
            break copy.finish_receive(&target.db, incoming, &head);
        }
        let taken = match original
            .planned_part_page(&source.db, &plan, (skip, offset), 256 * 1024)
            .unwrap()
        {
            Page::Part(part) => {
                offset = part.offset + part.data.len();
                if offset == part.len {
                    (skip, offset) = (skip + 1, 0);
                }
                parts += 1;
                let taken = copy.receive_part(&target.db, &mut incoming, &part);
                if parts == 1 {
                    // Another transfer brings the whole secret, and is
                    // let go of: stored, reached by no version.
                    let whole = RawObject {
                        kind: kind_of_tag(1).unwrap(),
                        data: big.clone(),
                        base: None,
                    };
                    copy.import(&target.db, &[whole]).unwrap();
                }
                if parts == 2 {
                    let swept = Vaults::collect_garbage(&mut target.db).unwrap();
                    assert!(swept.bytes > 3 << 20, "{swept:?}");
                    collected = true;
                }
                taken
            }
            Page::Objects(page) => {
                skip += page.len();
                copy.receive_page(&target.db, &mut incoming, &page, &anyone)
                    .map(|_| ())
            }
        };
        if let Err(refused) = taken {
            break Err(refused);
        }
    };
    assert!(collected && parts > 3, "{parts} parts");
    let refused = outcome.unwrap_err();
    assert!(
        refused.to_string().contains("during this transfer"),
        "{refused}"
    );
    assert_eq!(copy.head(&target.db).unwrap(), had);

    // Begun again, it arrives whole.
    let (incoming, _) = pull((&source, &original), (&target, &copy), &head, &[had]);
    copy.finish_receive(&target.db, incoming, &head).unwrap();
    copy.merge(&target.db, &target.keys, &head).unwrap();
    assert_eq!(copy.get(&target.db, "big").unwrap().as_slice(), big);
    copy.verify_history(&target.db).unwrap();
}

/// A collection asked to stop (a lock waiting behind it) stops before the
/// next vault, and is due still, also when what it deleted before it
/// stopped shrank the store; what it deleted counts (the handle renewed).
#[test]
fn a_collection_asked_to_stop_stops_and_is_due_still() {
    let (_source, _original, mut target, copy) = source_and_copy();
    let other = Vaults::new(&target.db).create("w", &target.keys).unwrap();
    other
        .write_secret(&target.db, &target.keys, "s", b"kept")
        .unwrap();
    for (vault, seed) in [(&copy, 5), (&other, 6)] {
        let garbage = RawObject {
            kind: kind_of_tag(1).unwrap(),
            data: noise(1 << 20, seed),
            base: None,
        };
        vault.import(&target.db, &[garbage]).unwrap();
    }
    let before = stored(&target);
    let far = 1 << 40;
    assert!(Vaults::collection_due(&target.db, 0).unwrap());
    let stopped = Vaults::collect_garbage_after(&mut target.db, 0, &|| true)
        .unwrap()
        .expect("due");
    assert!(stopped.stopped && stopped.records == 0, "{stopped:?}");
    assert!(stored(&target) >= before, "nothing went");
    assert!(Vaults::collection_due(&target.db, far).unwrap());

    // Stopped after one vault: that one's garbage went.
    let handle = target.db.handle();
    let looked = std::cell::Cell::new(0);
    let after_one = || {
        looked.set(looked.get() + 1);
        looked.get() > 1
    };
    let part = Vaults::collect_garbage_after(&mut target.db, 0, &after_one)
        .unwrap()
        .expect("due");
    assert!(part.stopped && part.bytes >= 1 << 20, "{part:?}");
    assert_ne!(target.db.handle(), handle, "what went counts");
    assert!(stored(&target) < before);
    assert!(
        Vaults::collection_due(&target.db, far).unwrap(),
        "due still"
    );
    let rest = Vaults::collect_garbage_after(&mut target.db, 0, &|| false)
        .unwrap()
        .expect("due");
    assert!(!rest.stopped && rest.bytes >= 1 << 20, "{rest:?}");
    assert!(!Vaults::collection_due(&target.db, 1 << 20).unwrap());
    assert_eq!(other.get(&target.db, "s").unwrap().as_slice(), b"kept");
}

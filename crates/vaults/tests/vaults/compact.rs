//! Directories stored as deltas against their earlier versions: an edit in
//! a large directory stores about one entry, and the vault still reads,
//! verifies and exports as plain git.

use std::collections::BTreeMap;

use polykey_vaults::{Incoming, Page, Part, RawObject, Vault, VaultError, Vaults, PART_CHUNKS};

use crate::export::{git, verify_every_commit};
use crate::{fixture, Fixture};

pub(crate) fn stored(f: &Fixture) -> u64 {
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

pub(crate) fn anyone(_: &polykey_keys::NodeId, _: i64) -> bool {
    true
}

/// A vault of 1,000 secrets in one directory, then `edits` single edits.
pub(crate) fn large_directory(f: &Fixture, edits: usize) -> Vault {
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    let names: Vec<String> = (0..1_000).map(|i| format!("logins/site-{i:04}")).collect();
    let pairs: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), b"pw".as_slice()))
        .collect();
    vault.write_secrets(&f.db, &f.keys, &pairs).unwrap();
    for i in 0..edits {
        vault
            .write_secret(
                &f.db,
                &f.keys,
                &names[(i * 37) % 1_000],
                format!("e{i}").as_bytes(),
            )
            .unwrap();
    }
    vault
}

/// Everything `to` lacks of `want`, page by page; returns the transfer and
/// the objects sent (deltas as they went).
pub(crate) fn pull(
    from: (&Fixture, &Vault),
    to: (&Fixture, &Vault),
    want: &str,
    haves: &[String],
) -> (Incoming, Vec<RawObject>) {
    let mut incoming = Incoming::new(to.1);
    let mut sent = Vec::new();
    loop {
        let (page, total) = from
            .1
            .objects_page(&from.0.db, want, haves, incoming.objects(), 256 * 1024)
            .unwrap();
        to.1.receive_page(&to.0.db, &mut incoming, &page, &anyone)
            .unwrap();
        sent.extend(page.into_iter().map(|(_, o)| o));
        if incoming.objects() >= total {
            break;
        }
    }
    (incoming, sent)
}

pub(crate) fn objects_of(f: &Fixture, vault: &Vault, name: &str) -> String {
    let out = f.dir.path().join(name);
    vault.export_bare(&f.db, &out).unwrap();
    git(&out, &["fsck", "--strict", "--no-dangling"]);
    git(&out, &["cat-file", "--batch-all-objects", "--batch-check"])
}

#[test]
fn a_clone_gets_directory_versions_as_deltas_and_is_identical() {
    let source = fixture();
    let original = large_directory(&source, 60);
    let head = original.head(&source.db).unwrap();
    let id = original.id().to_string();

    let target = fixture();
    let vaults = Vaults::new(&target.db);
    let copy = vaults.begin_receive_vault("v", &id, 0).unwrap();
    let before = stored(&target);
    let (incoming, sent) = pull((&source, &original), (&target, &copy), &head, &[]);
    let copy = vaults.finish_receive_vault(&id, incoming, &head).unwrap();
    let deltas = sent.iter().filter(|o| o.base.is_some()).count();
    let wire: usize = sent.iter().map(|o| o.data.len()).sum();
    // 61 versions of a ~45 KB directory: ~2.7 MB whole.
    assert_eq!(deltas, 60, "every edit's directory went as a delta");
    assert!(wire < 300_000, "{wire} bytes sent");
    let stored = stored(&target) - before;
    assert!(stored < 400_000, "the copy stored {stored} bytes");

    copy.verify_history(&target.db).unwrap();
    assert_eq!(copy.head(&target.db).unwrap(), head);
    assert_eq!(
        objects_of(&target, &copy, "copy.git"),
        objects_of(&source, &original, "original.git"),
        "the same objects, byte for byte (git ids)"
    );

    // Later edits go as deltas against what the copy has.
    for i in 0..5 {
        original
            .write_secret(
                &source.db,
                &source.keys,
                &format!("logins/site-{i:04}"),
                format!("later-{i}").as_bytes(),
            )
            .unwrap();
    }
    let new_head = original.head(&source.db).unwrap();
    let (incoming, sent) = pull((&source, &original), (&target, &copy), &new_head, &[head]);
    assert_eq!(sent.len(), 20, "a blob, two trees and a commit per edit");
    assert_eq!(sent.iter().filter(|o| o.base.is_some()).count(), 5);
    copy.finish_receive(&target.db, incoming, &new_head)
        .unwrap();
    copy.merge(&target.db, &target.keys, &new_head).unwrap();
    assert_eq!(
        copy.files(&target.db).unwrap(),
        original.files(&source.db).unwrap()
    );
}

#[test]
fn a_hostile_delta_is_refused_and_stores_nothing() {
    let source = fixture();
    let original = large_directory(&source, 3);
    let head = original.head(&source.db).unwrap();
    let previous = original.log(&source.db, Some(2)).unwrap()[1].id.clone();
    let target = fixture();
    let id = original.id().to_string();
    let vaults = Vaults::new(&target.db);
    let copy = vaults.begin_receive_vault("v", &id, 0).unwrap();
    let (incoming, _) = pull((&source, &original), (&target, &copy), &previous, &[]);
    let copy = vaults
        .finish_receive_vault(&id, incoming, &previous)
        .unwrap();

    let (honest, _) = original
        .objects_page(
            &source.db,
            &head,
            std::slice::from_ref(&previous),
            0,
            1 << 20,
        )
        .unwrap();
    let at = honest.iter().position(|(_, o)| o.base.is_some()).unwrap();
    let tamper = |change: &dyn Fn(&mut RawObject)| {
        let mut page = honest.clone();
        change(&mut page[at].1);
        page
    };
    let blob = honest
        .iter()
        .position(|(_, o)| o.kind == gix::objs::Kind::Blob)
        .unwrap();
    let mut on_a_blob = honest.clone();
    on_a_blob[blob].1.base = honest[at].1.base.clone();
    let mut against_itself = honest.clone();
    let base_id = honest[at].1.base.clone().unwrap();
    against_itself[at].1.base = Some(honest[at].0.clone());
    let hostile = [
        (
            "an unknown base",
            tamper(&|o| o.base = Some("ab".repeat(20))),
        ),
        (
            "a changed insert",
            tamper(&|o| {
                let last = o.data.len() - 1;
                o.data[last] ^= 1;
            }),
        ),
        ("an unknown op", tamper(&|o| o.data.push(7))),
        (
            "a copy past the base",
            tamper(&|o| o.data.extend_from_slice(&[0, 0x80, 0x80, 0x40, 10])),
        ),
        (
            "a malformed base id",
            tamper(&|o| o.base = Some("not hex".into())),
        ),
        ("a delta of a blob", on_a_blob),
        ("a delta against itself", against_itself),
    ];
    for (what, page) in hostile {
        let mut incoming = Incoming::new(&copy);
        let refused = copy.receive_page(&target.db, &mut incoming, &page, &anyone);
        assert!(
            matches!(
                refused,
                Err(VaultError::Refused(_) | VaultError::Corrupt(_))
            ),
            "{what}: {refused:?}"
        );
        assert_eq!(copy.head(&target.db).unwrap(), previous, "{what}");
    }
    assert_ne!(base_id, honest[at].0);
    // Nothing of them was stored: the honest page brings all four (a blob,
    // the directory, the root and the commit).
    let mut incoming = Incoming::new(&copy);
    let added = copy
        .receive_page(&target.db, &mut incoming, &honest, &anyone)
        .unwrap();
    assert_eq!((added, honest.len()), (4, 4));
    copy.finish_receive(&target.db, incoming, &head).unwrap();
    copy.merge(&target.db, &target.keys, &head).unwrap();
    copy.verify_history(&target.db).unwrap();
}

/// A tree of `count` files named `{prefix}NNN`, all holding `blob`.
fn flat_tree(prefix: &str, count: usize, blob: gix::ObjectId) -> RawObject {
    let names: Vec<String> = (0..count).map(|i| format!("{prefix}{i:03}")).collect();
    let entries: Vec<(&str, &[u8], gix::ObjectId)> = names
        .iter()
        .map(|n| (crate::bounds::FILE, n.as_bytes(), blob))
        .collect();
    crate::bounds::tree(&entries)
}

/// `target` sent as a delta against `base` that inserts its bytes in the
/// given pieces (a valid delta: it rebuilds to `target`).
fn delta_of(base: &RawObject, target: &RawObject, pieces: &[usize]) -> (String, RawObject) {
    let mut data = Vec::new();
    let mut at = 0;
    for &end in pieces.iter().chain(std::iter::once(&target.data.len())) {
        let piece = &target.data[at..end];
        data.push(1u8);
        let mut n = piece.len();
        while n >= 0x80 {
            data.push((n as u8) | 0x80);
            n >>= 7;
        }
        data.push(n as u8);
        data.extend_from_slice(piece);
        at = end;
    }
    let id = crate::bounds::id_of(target).to_string();
    let object = RawObject {
        kind: gix::objs::Kind::Tree,
        data,
        base: Some(crate::bounds::id_of(base).to_string()),
    };
    (id, object)
}

#[test]
fn deltas_against_a_stored_chain_never_grow_past_what_reads_accept() {
    let f = fixture();
    let id = Vaults::new(&fixture().db)
        .create("elsewhere", &f.keys)
        .unwrap()
        .id()
        .to_string();
    let vault = Vaults::new(&f.db).begin_receive_vault("v", &id, 0).unwrap();
    let blob = crate::bounds::blob(b"same");
    let blob_id = crate::bounds::id_of(&blob);
    // Page 1: T0 whole, then T1…T24 each a delta against the one before.
    let t: Vec<RawObject> = (0..25).map(|k| flat_tree("t", k + 1, blob_id)).collect();
    let mut page = crate::bounds::with_ids(vec![blob.clone(), t[0].clone()]);
    for k in 1..25 {
        page.push(delta_of(&t[k - 1], &t[k], &[]));
    }
    let mut incoming = Incoming::new(&vault);
    vault
        .receive_page(&f.db, &mut incoming, &page, &anyone)
        .unwrap();
    // Page 2: T24 again, sent whole (already stored 24 deltas deep), then
    // U1…U17 chained on it, and a commit of U17.
    let u: Vec<RawObject> = (0..18).map(|k| flat_tree("u", k + 1, blob_id)).collect();
    let mut page = crate::bounds::with_ids(vec![t[24].clone()]);
    page.push(delta_of(&t[24], &u[1], &[]));
    for k in 2..18 {
        page.push(delta_of(&u[k - 1], &u[k], &[]));
    }
    let commit = crate::bounds::commit(&f.keys, crate::bounds::id_of(&u[17]), vec![]);
    let head = crate::bounds::id_of(&commit).to_string();
    page.extend(crate::bounds::with_ids(vec![commit]));
    vault
        .receive_page(&f.db, &mut incoming, &page, &anyone)
        .unwrap();
    let vault = Vaults::new(&f.db)
        .finish_receive_vault(&id, incoming, &head)
        .unwrap();
    // U17 reads back: it is not 24 + 17 deltas from a whole object.
    assert_eq!(
        vault.get_at(&f.db, &head, "u017").unwrap().as_slice(),
        b"same"
    );
}

#[test]
fn a_peers_delta_that_splits_entries_is_kept_whole_and_served_on() {
    let peer = fixture();
    let here = fixture();
    let vault = Vaults::new(&here.db).create("v", &here.keys).unwrap();
    let blob = crate::bounds::blob(b"same");
    let blob_id = crate::bounds::id_of(&blob);
    let t0 = flat_tree("t", 200, blob_id);
    let t1 = flat_tree("t", 201, blob_id);
    let c0 = crate::bounds::commit(&peer.keys, crate::bounds::id_of(&t0), vec![]);
    let c1 = crate::bounds::commit(
        &peer.keys,
        crate::bounds::id_of(&t1),
        vec![crate::bounds::id_of(&c0)],
    );
    let head = crate::bounds::id_of(&c1).to_string();
    let mut page = crate::bounds::with_ids(vec![blob, t0.clone(), c0]);
    // A valid delta whose first insert ends in the middle of an entry.
    page.push(delta_of(&t0, &t1, &[10]));
    page.extend(crate::bounds::with_ids(vec![c1]));
    let mut incoming = Incoming::new(&vault);
    vault
        .receive_page(&here.db, &mut incoming, &page, &anyone)
        .unwrap();
    vault.finish_receive(&here.db, incoming, &head).unwrap();

    // This node serves that history on, to a third copy.
    let third = fixture();
    let copy = Vaults::new(&third.db)
        .begin_receive_vault("v", &vault.id().to_string(), 0)
        .unwrap();
    let (incoming, _) = pull((&here, &vault), (&third, &copy), &head, &[]);
    let copy = Vaults::new(&third.db)
        .finish_receive_vault(&vault.id().to_string(), incoming, &head)
        .unwrap();
    assert_eq!(
        copy.get_at(&third.db, &head, "t200").unwrap().as_slice(),
        b"same"
    );
}

#[test]
fn many_cheap_deltas_against_one_large_base_cost_one_read_of_it() {
    let f = fixture();
    let vault = large_directory(&f, 0);
    let head = vault.head(&f.db).unwrap();
    let (objects, _) = vault
        .objects_page(&f.db, &head, &[], 0, usize::MAX)
        .unwrap();
    let (big, _) = objects
        .iter()
        .filter(|(_, o)| o.kind == gix::objs::Kind::Tree)
        .max_by_key(|(_, o)| o.data.len())
        .unwrap();
    // 5,000 deltas of no ops against the stored 45 KB directory: each
    // rebuilds to the empty tree, a few bytes on the wire each.
    let empty = gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Tree, b"")
        .unwrap()
        .to_string();
    let page: Vec<(String, RawObject)> = (0..5_000)
        .map(|_| {
            let object = RawObject {
                kind: gix::objs::Kind::Tree,
                data: Vec::new(),
                base: Some(big.clone()),
            };
            (empty.clone(), object)
        })
        .collect();
    let started = std::time::Instant::now();
    let mut incoming = Incoming::new(&vault);
    vault
        .receive_page(&f.db, &mut incoming, &page, &anyone)
        .unwrap();
    // Read, rebuilt and hashed once, not 5,000 times (~225 MB, more than a
    // page may cost).
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_delta_is_checked_where_it_differs_from_its_base() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    let blob = crate::bounds::blob(b"same");
    let blob_id = crate::bounds::id_of(&blob);
    let t0 = flat_tree("t", 3, blob_id);
    let sub = flat_tree("s", 1, blob_id);
    let mut incoming = Incoming::new(&vault);
    vault
        .receive_page(
            &f.db,
            &mut incoming,
            &crate::bounds::with_ids(vec![blob, t0.clone(), sub.clone()]),
            &anyone,
        )
        .unwrap();
    // A directory as gix also reads it, but neither git writes it nor
    // `git fsck --strict` takes it (nor does a delta's sender, which would
    // take it for a file and never send what is in it).
    let padded = [
        b"040000 zz\0".as_slice(),
        crate::bounds::id_of(&sub).as_bytes(),
    ]
    .concat();
    let entry = |name: &str| [b"100644 ", name.as_bytes(), b"\0", blob_id.as_bytes()].concat();
    let one = entry("t000").len() as u8;
    let whole = t0.data.len() as u8;
    // Ops: copy (0, start, len) and insert (1, len, bytes), lengths < 128.
    let cases: [(&str, Vec<u8>, Vec<u8>); 5] = [
        (
            "an inserted directory spelled 040000",
            [vec![0, 0, whole, 1, padded.len() as u8], padded.clone()].concat(),
            [t0.data.clone(), padded.clone()].concat(),
        ),
        (
            "an entry of the base copied twice",
            [vec![0, 0, one], vec![0, 0, whole]].concat(),
            [&t0.data[..one as usize], &t0.data[..]].concat(),
        ),
        (
            "an inserted '..'",
            [vec![0, 0, whole, 1, entry("..").len() as u8], entry("..")].concat(),
            [t0.data.clone(), entry("..")].concat(),
        ),
        (
            "an inserted name held by a copied entry",
            [vec![0, 0, whole, 1, one], entry("t001")].concat(),
            [t0.data.clone(), entry("t001")].concat(),
        ),
        (
            "an inserted '.git'",
            [
                vec![1, entry(".GIT").len() as u8],
                entry(".GIT"),
                vec![0, 0, whole],
            ]
            .concat(),
            [entry(".GIT"), t0.data.clone()].concat(),
        ),
    ];
    let as_delta = |ops: &[u8], tree: &[u8]| {
        let rebuilt = RawObject {
            kind: gix::objs::Kind::Tree,
            data: tree.to_vec(),
            base: None,
        };
        let id = crate::bounds::id_of(&rebuilt).to_string();
        let object = RawObject {
            kind: gix::objs::Kind::Tree,
            data: ops.to_vec(),
            base: Some(crate::bounds::id_of(&t0).to_string()),
        };
        vec![(id, object)]
    };
    for (what, ops, tree) in &cases {
        let mut incoming = Incoming::new(&vault);
        let refused = vault.receive_page(&f.db, &mut incoming, &as_delta(ops, tree), &anyone);
        assert!(
            matches!(
                refused,
                Err(VaultError::Refused(_) | VaultError::Corrupt(_))
            ),
            "{what}: {refused:?}"
        );
    }
    // Nor is such a directory taken in a tree sent whole.
    let whole_padded = RawObject {
        kind: gix::objs::Kind::Tree,
        data: [t0.data.clone(), padded.clone()].concat(),
        base: None,
    };
    let mut incoming = Incoming::new(&vault);
    let refused = vault.receive_page(
        &f.db,
        &mut incoming,
        &crate::bounds::with_ids(vec![whole_padded]),
        &anyone,
    );
    assert!(
        matches!(
            refused,
            Err(VaultError::Refused(_) | VaultError::Corrupt(_))
        ),
        "{refused:?}"
    );
    // The same delta with a good name is taken.
    let good = [t0.data.clone(), entry("t003")].concat();
    let ops = [vec![0, 0, whole, 1, one], entry("t003")].concat();
    let mut incoming = Incoming::new(&vault);
    let added = vault
        .receive_page(&f.db, &mut incoming, &as_delta(&ops, &good), &anyone)
        .unwrap();
    assert_eq!(added, 1);
}

#[test]
fn a_planned_transfer_sends_the_pages_a_fresh_walk_sends() {
    let f = fixture();
    let vault = large_directory(&f, 40);
    let head = vault.head(&f.db).unwrap();
    let log = vault.log(&f.db, Some(30)).unwrap();
    // From nothing, and from a version 29 edits back.
    for haves in [vec![], vec![log[29].id.clone()]] {
        let plan = vault.send_plan(&f.db, &head, &haves).unwrap();
        // The first page with its plan, from one walk.
        let (first, first_plan) = vault.first_page(&f.db, &head, &haves, 8 * 1024).unwrap();
        assert_eq!(first_plan.total(), plan.total());
        let mut skip = 0;
        let mut pages = 0;
        while skip < plan.total() {
            let (walked, total) = vault
                .objects_page(&f.db, &head, &haves, skip, 8 * 1024)
                .unwrap();
            let planned = vault.planned_page(&f.db, &plan, skip, 8 * 1024).unwrap();
            assert_eq!(total, plan.total());
            assert_eq!(planned, walked, "page from {skip}");
            if skip == 0 {
                let Page::Objects(first) = &first else {
                    panic!("no secret here goes in parts");
                };
                assert_eq!(first, &walked, "the first page");
            } else {
                let after_first = vault
                    .planned_page(&f.db, &first_plan, skip, 8 * 1024)
                    .unwrap();
                assert_eq!(after_first, walked, "page from {skip} after the first");
            }
            assert!(!planned.is_empty());
            skip += planned.len();
            pages += 1;
        }
        assert!(pages > 2, "{pages} pages");
    }
    // A plan is for its own vault only.
    let other = Vaults::new(&f.db).create("other", &f.keys).unwrap();
    let plan = vault.send_plan(&f.db, &head, &[]).unwrap();
    assert!(other.planned_page(&f.db, &plan, 0, 1024).is_err());
}

#[test]
fn a_page_of_small_secrets_holds_one_object_for_each_64_bytes_of_its_budget() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("many", &f.keys).unwrap();
    let names: Vec<String> = (0..300).map(|i| format!("s{i:03}")).collect();
    let secrets: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), n.as_bytes())).collect();
    vault.write_secrets(&f.db, &f.keys, &secrets).unwrap();
    let head = vault.head(&f.db).unwrap();
    let plan = vault.send_plan(&f.db, &head, &[]).unwrap();
    // 302 objects of a few bytes each: an 8 KiB page would hold them all
    // by their bytes; it holds 128.
    let budget = 8 * 1024;
    let cap = budget / polykey_vaults::PAGE_BYTES_PER_OBJECT;
    let mut skip = 0;
    let mut sizes = Vec::new();
    while skip < plan.total() {
        let page = vault.planned_page(&f.db, &plan, skip, budget).unwrap();
        assert!(!page.is_empty());
        skip += page.len();
        sizes.push(page.len());
    }
    // (The directory of 300 names, 9 KiB, ends the third by its bytes.)
    assert_eq!(sizes[..2], [cap, cap], "{sizes:?}");
    assert!(sizes.iter().all(|n| *n <= cap), "{sizes:?}");
}

/// `len` bytes that do not repeat (so no two chunks of a secret are alike).
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Bytes of the file's pages in use.
fn in_use(f: &Fixture) -> u64 {
    f.db.space().unwrap().allocated_bytes
}

#[test]
fn a_large_secret_takes_about_its_size_on_disk_and_survives_every_copy() {
    let source = fixture();
    let vault = Vaults::new(&source.db).create("v", &source.keys).unwrap();
    vault
        .write_secret(&source.db, &source.keys, "small", b"x")
        .unwrap();
    let before = in_use(&source);
    let big = noise(10 << 20, 1);
    vault
        .write_secret(&source.db, &source.keys, "big", &big)
        .unwrap();
    // Stored as one record, the 10 MiB secret took a page of 16 MiB.
    let grown = in_use(&source) - before;
    assert!(
        grown < 11 << 20,
        "a 10 MiB secret took {grown} bytes of the file"
    );
    assert_eq!(vault.get(&source.db, "big").unwrap().as_slice(), big);

    // Sizes at and around the edges of a piece of the store's own size.
    let edges = [
        (1 << 20) - 4097,
        (1 << 20) - 4096,
        (1 << 20) - 4095,
        3 << 20,
    ];
    for (i, len) in edges.into_iter().enumerate() {
        let secret = noise(len, 2 + i as u64);
        vault
            .write_secret(&source.db, &source.keys, &format!("edge-{i}"), &secret)
            .unwrap();
        assert_eq!(
            vault
                .get(&source.db, &format!("edge-{i}"))
                .unwrap()
                .as_slice(),
            secret
        );
    }
    vault.verify_history(&source.db).unwrap();
    let sent_objects = objects_of(&source, &vault, "source.git");
    let out = source.dir.path().join("source.git");
    verify_every_commit(&out, &source.keys);
    // fsck hashed every object; the secret is there at its length.
    assert_eq!(
        git(&out, &["cat-file", "-s", "HEAD:big"]).trim(),
        big.len().to_string()
    );

    // A copy receives it (in pages smaller than the secret) and stores it
    // the same way: the same objects, the same bytes.
    let copy = fixture();
    let id = vault.id().to_string();
    let vaults = Vaults::new(&copy.db);
    let receiving = vaults.begin_receive_vault("v", &id, 0).unwrap();
    let head = vault.head(&source.db).unwrap();
    let before = in_use(&copy);
    let (incoming, _) = pull((&source, &vault), (&copy, &receiving), &head, &[]);
    let cloned = vaults.finish_receive_vault(&id, incoming, &head).unwrap();
    let grown = in_use(&copy) - before;
    let secrets = (big.len() + edges.iter().sum::<usize>()) as u64;
    assert!(
        grown < secrets + secrets / 10,
        "the copy took {grown} bytes of its file for {secrets} bytes of secrets"
    );
    assert_eq!(cloned.get(&copy.db, "big").unwrap().as_slice(), big);
    assert_eq!(objects_of(&copy, &cloned, "copy.git"), sent_objects);
}

/// Every page of the transfer of `want` from `from` to `to`, as devices
/// send them: a blob stored in chunks goes in parts. Returns the transfer
/// and how many parts went.
fn pull_in_parts(
    from: (&Fixture, &Vault),
    to: (&Fixture, &Vault),
    want: &str,
) -> (Incoming, usize) {
    let mut incoming = Incoming::new(to.1);
    let parts = take_pages(from, to, &mut incoming, want, |incoming, (skip, _)| {
        assert_eq!(incoming.objects(), skip);
        None
    })
    .unwrap();
    (incoming, parts)
}

/// The pages of the transfer of `want` from `from` into `to` through
/// `incoming`, as [`pull_in_parts`] takes them; after each, `then` is
/// told how far it came (objects taken in, bytes of a blob sent in parts)
/// and may hand the rest to another vault. Returns how many parts went,
/// or the first refusal.
fn take_pages<'v>(
    from: (&Fixture, &Vault),
    (to, mut into): (&Fixture, &'v Vault),
    incoming: &mut Incoming,
    want: &str,
    mut then: impl FnMut(&Incoming, (usize, usize)) -> Option<&'v Vault>,
) -> Result<usize, VaultError> {
    let plan = from.1.send_plan(&from.0.db, want, &[]).unwrap();
    let (mut skip, mut offset, mut parts) = (0, 0, 0);
    while skip < plan.total() {
        match from
            .1
            .planned_part_page(&from.0.db, &plan, (skip, offset), 256 * 1024)
            .unwrap()
        {
            Page::Part(part) => {
                into.receive_part(&to.db, incoming, &part)?;
                parts += 1;
                offset = part.offset + part.data.len();
                if offset == part.len {
                    (skip, offset) = (skip + 1, 0);
                }
            }
            Page::Objects(page) => {
                assert_eq!(offset, 0);
                into.receive_page(&to.db, incoming, &page, &anyone)?;
                skip += page.len();
            }
        }
        if let Some(other) = then(incoming, (skip, offset)) {
            into = other;
        }
    }
    Ok(parts)
}

fn part(id: &str, offset: usize, len: usize, data: &[u8]) -> Part {
    Part {
        id: id.to_owned(),
        offset,
        len,
        data: polykey_keys::Plain::new(data.to_vec()),
    }
}

/// The parts the one blob stored in chunks of `vault`'s version `head`
/// goes in, as a device asking for whole pages gets them.
fn parts_of_big(source: &Fixture, vault: &Vault, head: &str) -> Vec<Part> {
    let plan = vault.send_plan(&source.db, head, &[]).unwrap();
    let at = (0..plan.total())
        .find(|skip| {
            matches!(
                vault.planned_part_page(&source.db, &plan, (*skip, 0), 8 << 20),
                Ok(Page::Part(_))
            )
        })
        .unwrap();
    let mut parts = Vec::new();
    let mut from = 0;
    loop {
        let Page::Part(part) = vault
            .planned_part_page(&source.db, &plan, (at, from), 8 << 20)
            .unwrap()
        else {
            panic!("in parts");
        };
        from = part.offset + part.data.len();
        let last = from >= part.len;
        parts.push(part);
        if last {
            return parts;
        }
    }
}

/// A store with one vault holding `size` bytes of noise (`seed`) as "big".
fn holding_big(size: usize, seed: u64) -> (Fixture, Vault, Vec<u8>) {
    let source = fixture();
    let vault = Vaults::new(&source.db).create("v", &source.keys).unwrap();
    let big = noise(size, seed);
    vault
        .write_secret(&source.db, &source.keys, "big", &big)
        .unwrap();
    (source, vault, big)
}

/// A transfer's pages are committed without a flush, and what it learns
/// of the store holds only while the store's file stays open on the same
/// handle: opened again (after a disk error, or locked and unlocked), a
/// page not flushed may be lost. Here one transfer brings a large secret
/// whole, in a page not flushed; another, sending it in parts, finds it
/// here and only hashes them. Once the store is opened again, the second
/// transfer is refused at its end (it counted on a blob that might be
/// gone), and a new one ends on the new handle with the secret whole.
#[test]
fn a_transfer_that_counted_on_the_store_before_it_was_opened_again_is_refused() {
    let (source, vault, big) = holding_big(3 << 20, 11);
    let head = vault.head(&source.db).unwrap();
    let Fixture { dir, db, keys } = fixture();
    let into = Vaults::new(&db).create("copy", &keys).unwrap();
    let (whole, _) = vault
        .objects_page(&source.db, &head, &[], 0, 64 << 20)
        .unwrap();
    let mut first = Incoming::new(&into);
    into.receive_page(&db, &mut first, &whole, &anyone).unwrap();
    let mut second = Incoming::new(&into);
    for part in parts_of_big(&source, &vault, &head) {
        into.receive_part(&db, &mut second, &part).unwrap();
    }
    assert_eq!(second.added(), 0, "found here, only hashed");
    drop(db);
    let db = polykey_db::Db::open(&dir.path().join("db.redb"), &keys).unwrap();
    let refused = into.finish_receive(&db, second, &head).unwrap_err();
    assert!(
        refused.to_string().contains("during this transfer"),
        "{refused}"
    );
    let mut again = Incoming::new(&into);
    into.receive_page(&db, &mut again, &whole, &anyone).unwrap();
    into.finish_receive(&db, again, &head).unwrap();
    into.merge(&db, &keys, &head).unwrap();
    assert_eq!(into.get(&db, "big").unwrap().as_slice(), big);
}

/// A large secret goes to another device in parts, each hashed and sealed
/// as it comes, and is stored once whole and hashing to its id; a peer's
/// parts out of order, misshapen, or not adding up to the blob named are
/// refused, and nothing of them is stored.
#[test]
fn a_large_secret_goes_in_parts_and_bad_parts_are_refused() {
    let (source, vault, big) = holding_big(5 << 20, 9);
    vault
        .write_secret(&source.db, &source.keys, "small", b"s")
        .unwrap();
    let head = vault.head(&source.db).unwrap();
    let id = vault.id().to_string();

    let copy = fixture();
    let vaults = Vaults::new(&copy.db);
    let receiving = vaults.begin_receive_vault("v", &id, 0).unwrap();
    let (incoming, parts) = pull_in_parts((&source, &vault), (&copy, &receiving), &head);
    // Pages of 256 KiB: parts of one chunk (a page of two chunks or more
    // takes parts of `PART_CHUNKS`).
    let chunk = (1 << 20) - 4096;
    assert_eq!(parts, big.len().div_ceil(chunk));
    let cloned = vaults.finish_receive_vault(&id, incoming, &head).unwrap();
    assert_eq!(cloned.get(&copy.db, "big").unwrap().as_slice(), big);
    assert_eq!(
        objects_of(&copy, &cloned, "copy.git"),
        objects_of(&source, &vault, "source.git")
    );

    // The sender answers only parts that exist.
    let plan = vault.send_plan(&source.db, &head, &[]).unwrap();
    let at = (0..plan.total())
        .find(|skip| {
            matches!(
                vault.planned_part_page(&source.db, &plan, (*skip, 0), 256 * 1024),
                Ok(Page::Part(_))
            )
        })
        .unwrap();
    // A whole page (8 MiB, as a device asks): parts of two chunks.
    let first = |from| vault.planned_part_page(&source.db, &plan, (at, from), 8 << 20);
    for from in [1, chunk - 1, big.len(), 10 * chunk] {
        let err = first(from).unwrap_err();
        assert!(matches!(err, VaultError::Refused(_)), "{err}");
    }
    let after = vault.planned_part_page(&source.db, &plan, (at + 1, chunk), 256 * 1024);
    assert!(matches!(after, Err(VaultError::Refused(_))), "{after:?}");
    let Page::Part(part0) = first(0).unwrap() else {
        panic!("the large secret goes first, in parts");
    };
    assert_eq!(part0.data.len(), PART_CHUNKS * chunk);
    let Page::Part(part1) = first(part0.data.len()).unwrap() else {
        panic!("in parts");
    };
    let Page::Part(part2) = first(2 * part0.data.len()).unwrap() else {
        panic!("in parts");
    };
    assert_eq!(part2.offset + part2.data.len(), big.len());
    let blob = part0.id.clone();

    // Each attack on a fresh transfer into a fresh vault.
    let attack = |steps: &[Part], refusal: &str| {
        let target = fixture();
        let into = Vaults::new(&target.db)
            .begin_receive_vault("v", &id, 0)
            .unwrap();
        let before = stored(&target);
        let mut incoming = Incoming::new(&into);
        let mut outcome = Ok(());
        for step in steps {
            outcome = into.receive_part(&target.db, &mut incoming, step);
            if outcome.is_err() {
                break;
            }
        }
        let err = outcome.expect_err(refusal);
        assert!(err.to_string().contains(refusal), "{refusal}: {err}");
        assert!(matches!(err, VaultError::Refused(_)), "{err}");
        // Refused for good; nothing of the blob was stored.
        let again = into.receive_part(&target.db, &mut incoming, &steps[0]);
        assert!(again.unwrap_err().to_string().contains("already refused"));
        assert_eq!(stored(&target), before);
    };
    let len = big.len();
    let mut flipped = part1.data.to_vec();
    flipped[77] ^= 1;
    attack(
        &[
            part(&blob, 0, len, &part0.data),
            part(&blob, part1.offset, len, &flipped),
            part(&blob, part2.offset, len, &part2.data),
        ],
        "does not match its id",
    );
    attack(
        &[part(&blob, part1.offset, len, &part1.data)],
        "out of order",
    );
    attack(
        &[
            part(&blob, 0, len, &part0.data),
            part(&blob, part2.offset, len, &part2.data),
        ],
        "out of order",
    );
    attack(
        &[
            part(&blob, 0, len, &part0.data),
            part(&blob, part1.offset, len + chunk, &part1.data),
        ],
        "out of order",
    );
    attack(&[part(&blob, 0, len, &part0.data[1..])], "malformed");
    attack(&[part(&blob, 0, chunk, &part0.data[..chunk])], "malformed");
    attack(&[part(&blob, 0, 64 << 20, &part0.data)], "malformed");
    attack(
        &[part(
            &blob,
            0,
            4 * chunk,
            &[&part0.data[..], &part0.data].concat(),
        )],
        "malformed",
    );
    attack(
        &[part("not an id", 0, len, &part0.data)],
        "does not match its id",
    );

    // Into the copy that holds the secret: parts that do not add up to
    // it are refused, and it still reads.
    let mut into_copy = Incoming::new(&cloned);
    for step in [
        part(&blob, 0, len, &part0.data),
        part(&blob, part1.offset, len, &flipped),
    ] {
        cloned
            .receive_part(&copy.db, &mut into_copy, &step)
            .unwrap();
    }
    let last = part(&blob, part2.offset, len, &part2.data);
    let err = cloned
        .receive_part(&copy.db, &mut into_copy, &last)
        .unwrap_err();
    assert!(err.to_string().contains("does not match its id"), "{err}");
    assert_eq!(cloned.get(&copy.db, "big").unwrap().as_slice(), big);
    // Its own parts are taken in and add nothing.
    let before = stored(&copy);
    let mut into_copy = Incoming::new(&cloned);
    for step in [&part0, &part1, &part2] {
        cloned.receive_part(&copy.db, &mut into_copy, step).unwrap();
    }
    assert_eq!((into_copy.objects(), into_copy.added()), (1, 0));
    assert_eq!(stored(&copy), before);
    assert_eq!(cloned.get(&copy.db, "big").unwrap().as_slice(), big);

    // Half a blob, then a page of objects, or the end of the transfer; or
    // the transfer dropped there (the link lost): nothing of it is left
    // once swept. Its parts were stored as they came (only while none is
    // the last).
    let target = fixture();
    let into = Vaults::new(&target.db)
        .begin_receive_vault("v", &id, 0)
        .unwrap();
    let before = stored(&target);
    let mut incoming = Incoming::new(&into);
    into.receive_part(&target.db, &mut incoming, &part0)
        .unwrap();
    into.receive_part(&target.db, &mut incoming, &part1)
        .unwrap();
    assert_eq!(incoming.part_bytes(), 0, "held as it came, not in memory");
    assert!(stored(&target) > before + part0.data.len() as u64);
    // Not while the transfer may go on.
    assert_eq!(Vaults::new(&target.db).sweep_parts().unwrap(), 0);
    drop(incoming);
    assert_eq!(Vaults::new(&target.db).sweep_parts().unwrap(), 1);
    assert_eq!(stored(&target), before);
    let mut incoming = Incoming::new(&into);
    into.receive_part(&target.db, &mut incoming, &part0)
        .unwrap();
    let (page, _) = vault
        .objects_page(&source.db, &head, &[], 1, 256 * 1024)
        .unwrap();
    let err = into
        .receive_page(&target.db, &mut incoming, &page, &anyone)
        .unwrap_err();
    assert!(err.to_string().contains("before the rest"), "{err}");
    let mut incoming = Incoming::new(&into);
    into.receive_part(&target.db, &mut incoming, &part0)
        .unwrap();
    let err = into
        .finish_receive(&target.db, incoming, &head)
        .unwrap_err();
    assert!(err.to_string().contains("inside a blob"), "{err}");
}

/// The parts of a blob are stored as they come by one transfer at a time;
/// another transfer of the same blob into the same copy holds its parts
/// until its last. A hostile transfer storing its parts cannot spoil the
/// blob an honest one stores whole meanwhile: from then on it only hashes,
/// and its refusal deletes nothing of the blob. And what a transfer stored
/// when its process ended is swept once the store is opened again.
#[test]
fn a_transfer_storing_parts_as_they_come_spoils_no_blob_and_leaves_nothing_behind() {
    let (source, vault, big) = holding_big(5 << 20, 11);
    let head = vault.head(&source.db).unwrap();
    let id = vault.id().to_string();
    let parts = parts_of_big(&source, &vault, &head);
    assert_eq!(parts.len(), 3);
    let blob = parts[0].id.clone();
    let len = big.len();
    let mut spoiled = parts[1].data.to_vec();
    spoiled[5] ^= 1;

    // The hostile transfer comes first and stores its first part, or its
    // first two (the second spoiled); the honest one stores the blob whole
    // before the hostile one goes on.
    for stored_before in [1, 2] {
        let target = fixture();
        let into = Vaults::new(&target.db)
            .begin_receive_vault("v", &id, 0)
            .unwrap();
        let hostile_parts = [
            part(&blob, 0, len, &parts[0].data),
            part(&blob, parts[1].offset, len, &spoiled),
            part(&blob, parts[2].offset, len, &parts[2].data),
        ];
        let mut hostile = Incoming::new(&into);
        for p in &hostile_parts[..stored_before] {
            into.receive_part(&target.db, &mut hostile, p).unwrap();
        }
        assert_eq!(hostile.part_bytes(), 0, "stored as they came");
        // The honest one holds its parts in memory meanwhile.
        let mut honest = Incoming::new(&into);
        let mut held = false;
        take_pages(
            (&source, &vault),
            (&target, &into),
            &mut honest,
            &head,
            |incoming, _| {
                held |= incoming.part_bytes() > 0;
                None
            },
        )
        .unwrap();
        assert!(held, "held in memory: another transfer stores its parts");
        // The hostile one's spoiled part, if still to come, is only hashed
        // now (writing it would spoil the stored blob); its last is
        // refused, and deletes nothing of the blob stored whole.
        for p in &hostile_parts[stored_before..2] {
            into.receive_part(&target.db, &mut hostile, p).unwrap();
        }
        let err = into
            .receive_part(&target.db, &mut hostile, &hostile_parts[2])
            .unwrap_err();
        assert!(err.to_string().contains("does not match its id"), "{err}");
        drop(hostile);
        assert_eq!(Vaults::new(&target.db).sweep_parts().unwrap(), 0);
        let cloned = Vaults::new(&target.db)
            .finish_receive_vault(&id, honest, &head)
            .unwrap();
        assert_eq!(
            cloned.get(&target.db, "big").unwrap().as_slice(),
            big,
            "{stored_before} stored before"
        );
    }

    // A peer naming a longer blob under the same id stores chunks past the
    // real blob's end: they go when the real blob is stored, by a transfer
    // storing its parts (the peer's let go first) or by one holding them
    // (the peer's still going on, swept after).
    let receive_whole = |to: &Fixture, into: &Vault| {
        let mut incoming = Incoming::new(into);
        take_pages(
            (&source, &vault),
            (to, into),
            &mut incoming,
            &head,
            |_, _| None,
        )
        .unwrap();
        Vaults::new(&to.db)
            .finish_receive_vault(&id, incoming, &head)
            .unwrap();
    };
    let clean = fixture();
    let into = Vaults::new(&clean.db)
        .begin_receive_vault("v", &id, 0)
        .unwrap();
    receive_whole(&clean, &into);
    let chunk = (1 << 20) - 4096;
    let junk = vec![7u8; 2 * chunk];
    for let_go_first in [true, false] {
        let target = fixture();
        let into = Vaults::new(&target.db)
            .begin_receive_vault("v", &id, 0)
            .unwrap();
        let mut longer = Incoming::new(&into);
        for n in 0..8 {
            let p = part(&blob, 2 * n * chunk, 16 * chunk + 1, &junk);
            into.receive_part(&target.db, &mut longer, &p).unwrap();
        }
        let mut longer = Some(longer);
        if let_go_first {
            drop(longer.take());
        }
        receive_whole(&target, &into);
        drop(longer);
        Vaults::new(&target.db).sweep_parts().unwrap();
        // As stored as by the honest transfer alone, but for the store's
        // own structure (a chunk left over would be 1 MiB).
        let (left, alone) = (stored(&target), stored(&clean));
        assert!(
            left.abs_diff(alone) < 4096,
            "let go first: {let_go_first}: {left} bytes stored, {alone} by the honest transfer alone"
        );
    }

    // A transfer whose process ends half way (its store closed with the
    // transfer still holding its parts): swept when opened again.
    let other = fixture();
    let path = other.dir.path().join("db.redb");
    let into = Vaults::new(&other.db)
        .begin_receive_vault("v", &id, 0)
        .unwrap();
    let before = stored(&other);
    let mut cut = Incoming::new(&into);
    into.receive_part(&other.db, &mut cut, &parts[0]).unwrap();
    assert!(stored(&other) > before);
    std::mem::forget(cut);
    drop(into);
    let Fixture { dir, db, keys } = other;
    drop(db);
    let db = polykey_db::Db::open(&path, &keys).unwrap();
    assert_eq!(Vaults::new(&db).sweep_parts().unwrap(), 1);
    assert_eq!(db.space().unwrap().stored_bytes, before);
    drop(dir);
}

/// Two devices' transfers of a new vault into one copy: the other device's
/// stores everything without finishing; this one reaches the large
/// secret (held here already); the other fails, its copy is dropped and
/// begun again, and its retry takes in the first version. This transfer
/// must not go on into the new copy, where the secret it took for held is
/// not (it would finish a vault missing it).
#[test]
fn a_transfer_cannot_go_on_into_a_copy_begun_again_meanwhile() {
    let (source, vault, big) = holding_big(3 << 20, 4);
    let head = vault.head(&source.db).unwrap();
    let id = vault.id().to_string();

    let copy = fixture();
    let vaults = Vaults::new(&copy.db);
    let first = vaults.begin_receive_vault("v", &id, 0).unwrap();
    let _other = pull_in_parts((&source, &vault), (&copy, &first), &head);
    let plan = vault.send_plan(&source.db, &head, &[]).unwrap();
    let again = std::cell::OnceCell::new();
    let mut this = Incoming::new(&first);
    let taken = take_pages(
        (&source, &vault),
        (&copy, &first),
        &mut this,
        &head,
        |_, (_, offset)| {
            if offset == 0 || again.get().is_some() {
                return None;
            }
            assert!(vaults.abort_receive_vault(&id).unwrap());
            let target = again.get_or_init(|| vaults.begin_receive_vault("v", &id, 0).unwrap());
            // The other's retry takes in what comes before the secret.
            let Page::Objects(before) = vault
                .planned_part_page(&source.db, &plan, (0, 0), 256 * 1024)
                .unwrap()
            else {
                panic!("the vault's first version comes before the secret");
            };
            let mut retry = Incoming::new(target);
            target
                .receive_page(&copy.db, &mut retry, &before, &anyone)
                .unwrap();
            Some(target)
        },
    );
    let outcome = taken.and_then(|_| vaults.finish_receive_vault(&id, this, &head).map(|_| ()));
    let err = outcome.expect_err("the copy it began in is gone");
    assert!(matches!(err, VaultError::Refused(_)), "{err}");
    assert!(err.to_string().contains("begun again"), "{err}");
    let target = again.get().expect("begun again");
    // The transfer tried again fills the new copy whole.
    let (incoming, _) = pull_in_parts((&source, &vault), (&copy, target), &head);
    let cloned = vaults.finish_receive_vault(&id, incoming, &head).unwrap();
    assert_eq!(cloned.get(&copy.db, "big").unwrap().as_slice(), big);
}

/// A transfer that stored a large secret from its parts counts on it from
/// then on: once the store is opened again (the node locked and unlocked),
/// a collection at the lock may have taken it, since no version named it
/// yet. The transfer is then refused, never finished with a version
/// naming a secret that is gone.
#[test]
fn a_transfer_that_stored_a_secret_from_its_parts_is_refused_once_the_store_is_opened_again() {
    let source = fixture();
    let vault = Vaults::new(&source.db).create("v", &source.keys).unwrap();
    vault
        .write_secret(&source.db, &source.keys, "small", b"s")
        .unwrap();
    let had = vault.head(&source.db).unwrap();
    let id = vault.id().to_string();
    let Fixture { dir, mut db, keys } = fixture();
    let into = Vaults::new(&db).begin_receive_vault("v", &id, 0).unwrap();
    let (page, _) = vault
        .objects_page(&source.db, &had, &[], 0, 64 << 20)
        .unwrap();
    let mut first = Incoming::new(&into);
    into.receive_page(&db, &mut first, &page, &anyone).unwrap();
    let into = Vaults::new(&db)
        .finish_receive_vault(&id, first, &had)
        .unwrap();
    // The other device adds a large secret: the next transfer begins with
    // it, in parts.
    vault
        .write_secret(&source.db, &source.keys, "big", &noise(3 << 20, 12))
        .unwrap();
    let head = vault.head(&source.db).unwrap();
    let plan = vault.send_plan(&source.db, &head, &[had]).unwrap();
    assert!(matches!(
        vault.planned_part_page(&source.db, &plan, (0, 0), 256 * 1024),
        Ok(Page::Part(_))
    ));
    let mut incoming = Incoming::new(&into);
    let (mut skip, mut offset, mut opened_again) = (0, 0, false);
    let outcome = loop {
        if skip >= plan.total() {
            break into.finish_receive(&db, incoming, &head);
        }
        let taken = match vault
            .planned_part_page(&source.db, &plan, (skip, offset), 256 * 1024)
            .unwrap()
        {
            Page::Part(part) => {
                offset = part.offset + part.data.len();
                let whole = offset == part.len;
                if whole {
                    (skip, offset) = (skip + 1, 0);
                }
                let taken = into.receive_part(&db, &mut incoming, &part);
                if whole && !opened_again {
                    assert_eq!(incoming.added(), 1, "stored from its parts");
                    drop(db);
                    db = polykey_db::Db::open(&dir.path().join("db.redb"), &keys).unwrap();
                    let collected = Vaults::collect_garbage(&mut db).unwrap();
                    assert!(collected.bytes > 3 << 20, "{collected:?}");
                    opened_again = true;
                }
                taken
            }
            Page::Objects(page) => {
                skip += page.len();
                into.receive_page(&db, &mut incoming, &page, &anyone)
                    .map(|_| ())
            }
        };
        if let Err(refused) = taken {
            break Err(refused);
        }
    };
    assert!(opened_again);
    let refused = outcome.unwrap_err();
    assert!(
        refused.to_string().contains("during this transfer"),
        "{refused}"
    );
    assert_eq!(
        into.log(&db, None).unwrap().len(),
        2,
        "the copy stays as it was"
    );
}

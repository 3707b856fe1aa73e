//! Bounds on everything another copy of a vault sends: hostile objects
//! built by hand (gix's encoding, signed with the real SSH signature code)
//! against a real redb file. Each test sends one past a bound.

use gix::hash::ObjectId;
use gix::objs::{Kind, WriteTo};
use polykey_db::Db;
use polykey_keys::{NodeId, RootKeypair};
use polykey_vaults::{
    Incoming, MergeOutcome, RawObject, SecretPath, Vault, VaultError, Vaults, MAX_COMMIT_SIZE,
    MAX_IMPORT_OBJECTS, MAX_PARENTS, MAX_PATH_LEN, MAX_RECEIVE_BYTES, MAX_SECRET_SIZE,
    MAX_TREE_DEPTH, MAX_TREE_SIZE, MAX_VERSION_ENTRIES, MAX_VERSION_PATH_BYTES,
};

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

pub fn id_of(object: &RawObject) -> ObjectId {
    gix::objs::compute_hash(gix::hash::Kind::Sha1, object.kind, &object.data).unwrap()
}

pub fn blob(data: &[u8]) -> RawObject {
    RawObject {
        base: None,
        kind: Kind::Blob,
        data: data.to_vec(),
    }
}

pub const FILE: &str = "100644";
const DIR: &str = "40000";

/// A tree encoded by hand, names as given (git's encoding: mode, space,
/// name, NUL, 20-byte id).
pub fn tree(entries: &[(&str, &[u8], ObjectId)]) -> RawObject {
    let mut sorted = entries.to_vec();
    sorted.sort_by(|a, b| a.1.cmp(b.1));
    let mut data = Vec::new();
    for (mode, name, oid) in sorted {
        data.extend_from_slice(mode.as_bytes());
        data.push(b' ');
        data.extend_from_slice(name);
        data.push(0);
        data.extend_from_slice(oid.as_bytes());
    }
    RawObject {
        base: None,
        kind: Kind::Tree,
        data,
    }
}

/// A commit as `write_commit` makes one, but naming `author` and
/// `committer` as given and signed by `signer`.
fn commit_by(
    signer: &RootKeypair,
    author: NodeId,
    committer: NodeId,
    tree: ObjectId,
    parents: Vec<ObjectId>,
    message: &str,
) -> RawObject {
    commit_by_at(
        signer,
        author,
        committer,
        tree,
        parents,
        message,
        1_700_000_000,
    )
}

/// A commit by `signer` dated `seconds`, as a device whose clock says so
/// makes one.
pub fn commit_at(
    signer: &RootKeypair,
    tree: ObjectId,
    parents: Vec<ObjectId>,
    seconds: i64,
) -> RawObject {
    let me = signer.node_id();
    commit_by_at(signer, me, me, tree, parents, "Hand-made", seconds)
}

fn commit_by_at(
    signer: &RootKeypair,
    author: NodeId,
    committer: NodeId,
    tree: ObjectId,
    parents: Vec<ObjectId>,
    message: &str,
    seconds: i64,
) -> RawObject {
    let actor = |node: NodeId| gix::actor::Signature {
        name: node.to_string().into(),
        email: format!("{node}@polykey").into(),
        time: gix::date::Time { seconds, offset: 0 },
    };
    let mut commit = gix::objs::Commit {
        tree,
        parents: parents.into(),
        author: actor(author),
        committer: actor(committer),
        encoding: None,
        message: format!("{message}\n").into(),
        extra_headers: Vec::new(),
    };
    let mut unsigned = Vec::new();
    commit.write_to(&mut unsigned).unwrap();
    let signature = polykey_keys::sshsig::sign(signer, "git", &unsigned);
    commit
        .extra_headers
        .push(("gpgsig".into(), signature.into()));
    let mut data = Vec::new();
    commit.write_to(&mut data).unwrap();
    RawObject {
        base: None,
        kind: Kind::Commit,
        data,
    }
}

pub fn commit(signer: &RootKeypair, tree: ObjectId, parents: Vec<ObjectId>) -> RawObject {
    let me = signer.node_id();
    commit_by(signer, me, me, tree, parents, "Hand-made")
}

pub fn with_ids(objects: Vec<RawObject>) -> Vec<(String, RawObject)> {
    objects
        .into_iter()
        .map(|o| (id_of(&o).to_string(), o))
        .collect()
}

/// A device with a vault holding one secret.
fn with_vault(seed: u8) -> (Device, Vault) {
    let d = device(seed);
    let vault = Vaults::new(&d.db).create("shared", &d.keys).unwrap();
    vault.write_secret(&d.db, &d.keys, "wifi", b"base").unwrap();
    (d, vault)
}

fn head_id(d: &Device, vault: &Vault) -> ObjectId {
    ObjectId::from_hex(vault.head(&d.db).unwrap().as_bytes()).unwrap()
}

/// `objects` plus a commit of `root` on top of the vault's head, signed by
/// `signer`; returns the commit's id and everything with ids.
fn on_top(
    d: &Device,
    vault: &Vault,
    signer: &RootKeypair,
    root: ObjectId,
    mut objects: Vec<(String, RawObject)>,
) -> (String, Vec<(String, RawObject)>) {
    let c = commit(signer, root, vec![head_id(d, vault)]);
    let head = id_of(&c).to_string();
    objects.push((head.clone(), c));
    (head, objects)
}

fn anyone(_: &NodeId, _: i64) -> bool {
    true
}

/// Send `objects` as `head` to the vault; the refusal must say `expect`
/// and leave the vault as it was, still listing and merging.
fn refused(d: &Device, vault: &Vault, head: &str, objects: &[(String, RawObject)], expect: &str) {
    let before = vault.head(&d.db).unwrap();
    let err = vault.receive(&d.db, head, objects, &anyone).unwrap_err();
    assert!(matches!(err, VaultError::Refused(_)), "{err:?}");
    assert!(err.to_string().contains(expect), "{err}");
    assert_eq!(vault.head(&d.db).unwrap(), before);
    assert!(matches!(
        vault.relation(&d.db, head),
        Err(VaultError::UnknownVersion(_))
    ));
    assert_eq!(vault.list(&d.db, None).unwrap(), vec!["wifi".to_owned()]);
}

/// Trees nested `levels` deep, a file `x` at the bottom: the path
/// `d/d/…/x` has `levels` segments. Returns the root and every object.
fn nested(levels: usize) -> (ObjectId, Vec<(String, RawObject)>) {
    let file = blob(b"deep");
    let mut current = tree(&[(FILE, b"x", id_of(&file))]);
    let mut objects = with_ids(vec![file]);
    for _ in 1..levels {
        let id = id_of(&current);
        objects.push((id.to_string(), current));
        current = tree(&[(DIR, b"d", id)]);
    }
    let root = id_of(&current);
    objects.push((root.to_string(), current));
    (root, objects)
}

#[test]
fn a_deeply_nested_tree_is_refused_and_the_vault_keeps_working() {
    let (d, vault) = with_vault(1);
    let (root, objects) = nested(100_000);
    let (head, objects) = on_top(&d, &vault, &d.keys, root, objects);
    refused(&d, &vault, &head, &objects, "nested deeper than 64");
    let plain: Vec<RawObject> = objects.into_iter().map(|(_, o)| o).collect();
    let err = vault.import(&d.db, &plain).unwrap_err();
    assert!(err.to_string().contains("nested deeper than 64"), "{err}");
}

#[test]
fn max_tree_depth_is_accepted_and_one_more_level_is_refused() {
    let (d, vault) = with_vault(2);
    let (root, objects) = nested(MAX_TREE_DEPTH + 1);
    let (head, objects) = on_top(&d, &vault, &d.keys, root, objects);
    refused(&d, &vault, &head, &objects, "nested deeper than 64");

    let (root, objects) = nested(MAX_TREE_DEPTH);
    let (head, objects) = on_top(&d, &vault, &d.keys, root, objects);
    vault.receive(&d.db, &head, &objects, &anyone).unwrap();
    assert_eq!(
        vault.merge(&d.db, &d.keys, &head).unwrap(),
        MergeOutcome::FastForward { head: head.clone() }
    );
    let path = format!("{}x", "d/".repeat(MAX_TREE_DEPTH - 1));
    assert_eq!(vault.list(&d.db, None).unwrap(), vec![path.clone()]);
    assert_eq!(vault.get(&d.db, &path).unwrap().as_slice(), b"deep");
    // A path one level deeper cannot even be named.
    assert!(SecretPath::parse(&format!("d/{path}")).is_err());
    assert!(vault
        .write_secret(&d.db, &d.keys, &format!("d/{path}"), b"x")
        .is_err());
}

/// Trees that share subtrees: `levels` trees name 2^levels files.
fn doubling(levels: usize) -> (ObjectId, Vec<(String, RawObject)>) {
    let file = blob(b"x");
    let mut current = tree(&[(FILE, b"x", id_of(&file))]);
    let mut objects = vec![file];
    for _ in 0..levels {
        let id = id_of(&current);
        objects.push(current);
        current = tree(&[(DIR, b"a", id), (DIR, b"b", id)]);
    }
    let root = id_of(&current);
    objects.push(current);
    (root, with_ids(objects))
}

#[test]
fn trees_that_expand_to_too_many_paths_are_refused() {
    let (d, vault) = with_vault(3);
    // 2^21 files, a little past a million: 23 small objects.
    let (root, objects) = doubling(21);
    const { assert!(1u64 << 21 > MAX_VERSION_ENTRIES) };
    let (head, objects) = on_top(&d, &vault, &d.keys, root, objects);
    refused(&d, &vault, &head, &objects, "more than 1,000,000");
    // 2^60 paths: refused as fast, never walked.
    let (root, objects) = doubling(60);
    let (head, objects) = on_top(&d, &vault, &d.keys, root, objects);
    let started = std::time::Instant::now();
    refused(&d, &vault, &head, &objects, "more than 1,000,000");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // 2^18 files and 2^19 - 2 directories are fine.
    let (root, objects) = doubling(18);
    let (head, objects) = on_top(&d, &vault, &d.keys, root, objects);
    vault.receive(&d.db, &head, &objects, &anyone).unwrap();
}

#[test]
fn names_over_255_bytes_or_with_control_characters_are_refused_at_import() {
    let (d, vault) = with_vault(4);
    let long = vec![b'a'; 256];
    let names: [&[u8]; 7] = [
        &long,
        b"del\x7f",
        "c1\u{85}control".as_bytes(),
        b"tab\there",
        b"not-utf8-\xff",
        b"..",
        b".git",
    ];
    for name in names {
        let file = blob(b"v");
        let root = tree(&[(FILE, name, id_of(&file))]);
        let root_id = id_of(&root);
        let (head, objects) = on_top(&d, &vault, &d.keys, root_id, with_ids(vec![file, root]));
        refused(&d, &vault, &head, &objects, "invalid secret path");
        let plain: Vec<RawObject> = objects.into_iter().map(|(_, o)| o).collect();
        assert!(
            matches!(vault.import(&d.db, &plain), Err(VaultError::InvalidPath(_))),
            "{}",
            String::from_utf8_lossy(name)
        );
    }
}

#[test]
fn a_tree_takes_exactly_the_names_a_secret_path_takes() {
    let (d, vault) = with_vault(5);
    let max = "n".repeat(255);
    let over = "n".repeat(256);
    let names = [
        "plain",
        "café",
        "with space",
        ".hidden",
        "...",
        ".gitkeep",
        &max,
        &over,
        ".",
        "..",
        ".git",
        ".GiT",
        "a\\b",
        "a\0b",
        "a\x1fb",
        "a\x7fb",
        "a\u{9f}b",
        "a\u{2028}b",
    ];
    for name in names {
        let as_path = SecretPath::parse(name).is_ok_and(|p| p.as_str() == name);
        let file = blob(name.as_bytes());
        let root = tree(&[(FILE, name.as_bytes(), id_of(&file))]);
        let as_tree = vault.import(&d.db, &[file, root]).is_ok();
        assert_eq!(as_tree, as_path, "{name:?}");
    }
}

#[test]
fn paths_longer_than_the_path_bound_are_refused() {
    let (d, vault) = with_vault(6);
    // 17 directories of 255-byte names: a path of 4,352 bytes.
    let name = vec![b'n'; 255];
    let file = blob(b"v");
    let mut current = tree(&[(FILE, b"x", id_of(&file))]);
    let mut objects = vec![file];
    for _ in 0..17 {
        let id = id_of(&current);
        objects.push(current);
        current = tree(&[(DIR, &name, id)]);
    }
    let root = id_of(&current);
    objects.push(current);
    const { assert!(17 * 256 > MAX_PATH_LEN) };
    let (head, objects) = on_top(&d, &vault, &d.keys, root, with_ids(objects));
    refused(&d, &vault, &head, &objects, "longer than 4096");
}

#[test]
fn a_commit_signed_by_b_claiming_author_a_is_refused() {
    let (a, vault) = with_vault(7);
    let b = device(8);
    let (a_id, b_id) = (a.keys.node_id(), b.keys.node_id());
    let gestalt = move |n: &NodeId, _: i64| *n == a_id || *n == b_id;
    let file = blob(b"planted");
    let root = tree(&[(FILE, b"wifi", id_of(&file))]);
    let parent = head_id(&a, &vault);
    for (author, committer) in [(a_id, a_id), (a_id, b_id), (b_id, a_id)] {
        let forged = commit_by(
            &b.keys,
            author,
            committer,
            id_of(&root),
            vec![parent],
            "Forged",
        );
        let head = id_of(&forged).to_string();
        let objects = with_ids(vec![file.clone(), root.clone(), forged]);
        let err = vault.receive(&a.db, &head, &objects, &gestalt).unwrap_err();
        assert!(err.to_string().contains("other than its signer"), "{err}");
    }
    // Signed by B as B: accepted, and history shows B.
    let honest = commit(&b.keys, id_of(&root), vec![parent]);
    let head = id_of(&honest).to_string();
    let objects = with_ids(vec![file, root, honest]);
    vault.receive(&a.db, &head, &objects, &gestalt).unwrap();
    vault.merge(&a.db, &a.keys, &head).unwrap();
    assert_eq!(
        vault.log(&a.db, Some(1)).unwrap()[0].author,
        b_id.to_string()
    );
    assert!(vault.verify_history(&a.db).unwrap().contains(&b_id));
}

#[test]
fn a_page_sending_again_trees_the_copy_has_is_taken() {
    // Pages are stored in one go; a tree of the page already stored (sent
    // again, as a peer may when it cannot tell what this copy has) must
    // still be found by the commit that uses it.
    let (d, vault) = with_vault(12);
    let (root, objects) = nested(3);
    let (first, objects) = on_top(&d, &vault, &d.keys, root, objects);
    vault.receive(&d.db, &first, &objects, &anyone).unwrap();
    vault.merge(&d.db, &d.keys, &first).unwrap();
    let again = commit(&d.keys, root, vec![head_id(&d, &vault)]);
    let head = id_of(&again).to_string();
    let mut resent = objects;
    resent.push((head.clone(), again));
    vault.receive(&d.db, &head, &resent, &anyone).unwrap();
    vault.merge(&d.db, &d.keys, &head).unwrap();
    assert_eq!(vault.head(&d.db).unwrap(), head);
}

#[test]
fn objects_of_the_wrong_kind_or_past_their_size_are_refused() {
    let (d, vault) = with_vault(9);
    // A commit whose tree is a file.
    let file = blob(b"not a tree");
    let (head, objects) = on_top(&d, &vault, &d.keys, id_of(&file), with_ids(vec![file]));
    refused(&d, &vault, &head, &objects, "expected a tree");

    // A directory entry that is a file.
    let file = blob(b"v");
    let root = tree(&[(DIR, b"dir", id_of(&file))]);
    let root_id = id_of(&root);
    let (head, objects) = on_top(&d, &vault, &d.keys, root_id, with_ids(vec![file, root]));
    refused(&d, &vault, &head, &objects, "expected a tree");

    // The same name twice.
    let (one, two) = (blob(b"1"), blob(b"2"));
    let root = tree(&[(FILE, b"wifi", id_of(&one)), (FILE, b"wifi", id_of(&two))]);
    let root_id = id_of(&root);
    let (head, objects) = on_top(&d, &vault, &d.keys, root_id, with_ids(vec![one, two, root]));
    refused(&d, &vault, &head, &objects, "same name twice");

    // A well-formed tree just past MAX_TREE_SIZE (entries of 283 bytes).
    // Refused on its size before it is hashed, so its id need not be real.
    let file = blob(b"v");
    let names: Vec<Vec<u8>> = (0..MAX_TREE_SIZE / 283 + 1)
        .map(|i| format!("{i:0>255}").into_bytes())
        .collect();
    let entries: Vec<(&str, &[u8], ObjectId)> = names
        .iter()
        .map(|n| (FILE, n.as_slice(), id_of(&file)))
        .collect();
    let big = tree(&entries);
    assert!(big.data.len() > MAX_TREE_SIZE);
    let unhashed = "1".repeat(40);
    refused(
        &d,
        &vault,
        &unhashed,
        &[(unhashed.clone(), big)],
        "at most 16777216 bytes",
    );

    // A commit past MAX_COMMIT_SIZE.
    let root = tree(&[]);
    let root_id = id_of(&root);
    let me = d.keys.node_id();
    let long = commit_by(
        &d.keys,
        me,
        me,
        root_id,
        vec![head_id(&d, &vault)],
        &"m".repeat(MAX_COMMIT_SIZE),
    );
    let head = id_of(&long).to_string();
    refused(
        &d,
        &vault,
        &head,
        &with_ids(vec![root, long]),
        "at most 1048576",
    );

    // A secret past MAX_SECRET_SIZE.
    let huge = blob(&vec![7; MAX_SECRET_SIZE + 1]);
    refused(
        &d,
        &vault,
        &unhashed,
        &[(unhashed.clone(), huge)],
        "at most 16777216",
    );
}

/// A source device with a vault of a few commits and directories.
fn source() -> (Device, Vault) {
    let s = device(20);
    let vault = Vaults::new(&s.db).create("Work", &s.keys).unwrap();
    for i in 0..30 {
        vault
            .write_secret(
                &s.db,
                &s.keys,
                &format!("group-{}/secret-{i}", i % 4),
                format!("value-{i}").as_bytes(),
            )
            .unwrap();
    }
    (s, vault)
}

/// Receive `want` from `source` into `vault` in pages of about `budget`
/// bytes; returns how many pages it took.
fn pull_pages(
    from: (&Device, &Vault),
    to: (&Device, &Vault),
    want: &str,
    haves: &[String],
    budget: usize,
) -> Result<(Incoming, usize), VaultError> {
    let mut incoming = Incoming::new(to.1);
    let mut pages = 0;
    loop {
        let (page, total) = from
            .1
            .objects_page(&from.0.db, want, haves, incoming.objects(), budget)
            .unwrap();
        if page.is_empty() {
            break;
        }
        to.1.receive_page(&to.0.db, &mut incoming, &page, &anyone)?;
        pages += 1;
        if incoming.objects() >= total {
            break;
        }
    }
    Ok((incoming, pages))
}

#[test]
fn a_vault_arrives_page_by_page_and_later_changes_too() {
    let (s, original) = source();
    let t = device(21);
    let vaults = Vaults::new(&t.db);
    let head = original.head(&s.db).unwrap();
    let id = original.id().to_string();
    let copy = vaults.begin_receive_vault("Work", &id, 0).unwrap();
    let (incoming, pages) = pull_pages((&s, &original), (&t, &copy), &head, &[], 2048).unwrap();
    assert!(pages > 5, "{pages} pages");
    assert!(incoming.added() > 60);
    let copy = vaults.finish_receive_vault(&id, incoming, &head).unwrap();
    assert_eq!(copy.head(&t.db).unwrap(), head);
    assert_eq!(vaults.list().unwrap().len(), 1);
    assert_eq!(
        copy.get(&t.db, "group-1/secret-5").unwrap().as_slice(),
        b"value-5"
    );
    assert_eq!(copy.files(&t.db).unwrap(), original.files(&s.db).unwrap());
    // Finished once: neither begun, finished nor aborted again.
    assert!(vaults.begin_receive_vault("Work", &id, 0).is_err());
    assert!(!vaults.abort_receive_vault(&id).unwrap());
    assert_eq!(copy.head(&t.db).unwrap(), head);

    // Later edits arrive the same way, only what is new.
    original
        .write_secret(&s.db, &s.keys, "group-2/new", b"fresh")
        .unwrap();
    let new_head = original.head(&s.db).unwrap();
    let (incoming, _) =
        pull_pages((&s, &original), (&t, &copy), &new_head, &[head], 1 << 20).unwrap();
    assert_eq!(incoming.objects(), 4, "a blob, two trees and a commit");
    copy.finish_receive(&t.db, incoming, &new_head).unwrap();
    copy.merge(&t.db, &t.keys, &new_head).unwrap();
    assert_eq!(copy.get(&t.db, "group-2/new").unwrap().as_slice(), b"fresh");
}

/// A transfer's pages are committed without a flush; its last
/// transaction, on the same handle of the file, makes them durable. One
/// after the file was opened again (which may have lost them) is refused,
/// and the vault is left as it was; begun again on the new handle, the
/// transfer ends with all it took in.
#[test]
fn a_transfer_whose_pages_may_be_lost_is_refused_at_its_end() {
    let (s, original) = source();
    let head = original.head(&s.db).unwrap();
    let id = original.id().to_string();
    let t = device(25);
    let copy = Vaults::new(&t.db)
        .begin_receive_vault("Work", &id, 0)
        .unwrap();
    let (incoming, pages) = pull_pages((&s, &original), (&t, &copy), &head, &[], 2048).unwrap();
    assert!(pages > 3, "{pages} pages");
    let Device { _dir, db, keys } = t;
    drop(db);
    let db = Db::open(&_dir.path().join("db.redb"), &keys).unwrap();
    let t = Device { _dir, db, keys };
    let vaults = Vaults::new(&t.db);
    let refused = vaults
        .finish_receive_vault(&id, incoming, &head)
        .unwrap_err();
    assert!(
        refused.to_string().contains("during this transfer"),
        "{refused}"
    );
    assert!(vaults.list().unwrap().is_empty());
    let copy = vaults.begin_receive_vault("Work", &id, 0).unwrap();
    let (incoming, _) = pull_pages((&s, &original), (&t, &copy), &head, &[], 2048).unwrap();
    let copy = vaults.finish_receive_vault(&id, incoming, &head).unwrap();
    assert_eq!(copy.files(&t.db).unwrap(), original.files(&s.db).unwrap());
}

#[test]
fn a_large_secret_sent_in_its_own_page_is_not_read_back_for_the_next() {
    // A secret larger than a page comes alone, its directory and commit in
    // the page after. Checking that directory must not open the secret
    // again: it came with this transfer, so its kind is known.
    let s = device(23);
    let original = Vaults::new(&s.db).create("Work", &s.keys).unwrap();
    let large = vec![7u8; 2 << 20];
    original
        .write_secret(&s.db, &s.keys, "archive.bin", &large)
        .unwrap();
    let head = original.head(&s.db).unwrap();
    let t = device(24);
    let copy = Vaults::new(&t.db).create("Copy", &t.keys).unwrap();
    let (incoming, pages) = pull_pages((&s, &original), (&t, &copy), &head, &[], 1 << 20).unwrap();
    assert!(pages >= 2, "the secret came in a page of its own ({pages})");
    assert!(
        incoming.rebuilt() < large.len(),
        "the secret was read back to check its directory ({} bytes)",
        incoming.rebuilt()
    );
    copy.finish_receive(&t.db, incoming, &head).unwrap();
    copy.merge(&t.db, &t.keys, &head).unwrap();
    assert_eq!(copy.get(&t.db, "archive.bin").unwrap().as_slice(), large);
}

#[test]
fn an_unfinished_vault_is_not_listed_and_an_aborted_one_leaves_nothing() {
    let (s, original) = source();
    let t = device(22);
    let vaults = Vaults::new(&t.db);
    let head = original.head(&s.db).unwrap();
    let id = original.id().to_string();
    let copy = vaults.begin_receive_vault("Work", &id, 0).unwrap();
    let (page, _) = original.objects_page(&s.db, &head, &[], 0, 2048).unwrap();
    let mut incoming = Incoming::new(&copy);
    copy.receive_page(&t.db, &mut incoming, &page, &anyone)
        .unwrap();
    // Finishing early: the head is not here yet.
    let early = vaults
        .finish_receive_vault(&id, incoming, &head)
        .unwrap_err();
    assert!(early.to_string().contains("incomplete"), "{early}");
    assert!(vaults.list().unwrap().is_empty());

    assert!(vaults.abort_receive_vault(&id).unwrap());
    assert!(vaults.open(&id).is_err());
    assert!(!vaults.abort_receive_vault(&id).unwrap());
    // And it can be received again from the start.
    let copy = vaults.begin_receive_vault("Work", &id, 0).unwrap();
    let (incoming, _) = pull_pages((&s, &original), (&t, &copy), &head, &[], 4096).unwrap();
    vaults.finish_receive_vault(&id, incoming, &head).unwrap();
    assert_eq!(vaults.list().unwrap().len(), 1);
}

#[test]
fn unfinished_copies_no_transfer_is_receiving_are_dropped_and_free_their_names() {
    let (s, original) = source();
    let t = device(25);
    let vaults = Vaults::new(&t.db);
    let head = original.head(&s.db).unwrap();
    let id = original.id().to_string();
    let kept = vaults.create("Kept", &t.keys).unwrap();
    let copy = vaults.begin_receive_vault("Work", &id, 0).unwrap();
    let (page, _) = original.objects_page(&s.db, &head, &[], 0, 2048).unwrap();
    let mut incoming = Incoming::new(&copy);
    copy.receive_page(&t.db, &mut incoming, &page, &anyone)
        .unwrap();
    let other = polykey_vaults::VaultId::random();
    vaults
        .begin_receive_vault("Other", &other.to_string(), 0)
        .unwrap();
    // Unfinished copies are seen nowhere, but hold their names.
    assert_eq!(vaults.list().unwrap().len(), 1);
    assert!(vaults.create("Other", &t.keys).is_err());
    // The one a transfer is still receiving stays; the other goes.
    let arriving = |v: &polykey_vaults::VaultId| v.to_string() == id;
    assert_eq!(vaults.drop_unfinished(arriving).unwrap(), 1);
    vaults.create("Other", &t.keys).unwrap();
    let (page, _) = original
        .objects_page(&s.db, &head, &[], incoming.objects(), 2048)
        .unwrap();
    copy.receive_page(&t.db, &mut incoming, &page, &anyone)
        .unwrap();
    // Once no transfer receives it, it goes too, with what it stored,
    // and its transfer cannot go on.
    assert_eq!(vaults.drop_unfinished(|_| false).unwrap(), 1);
    assert!(vaults.open(&id).is_err());
    let (page, _) = original
        .objects_page(&s.db, &head, &[], incoming.objects(), 2048)
        .unwrap();
    assert!(copy
        .receive_page(&t.db, &mut incoming, &page, &anyone)
        .is_err());
    vaults.create("Work", &t.keys).unwrap();
    assert_eq!(vaults.drop_unfinished(|_| false).unwrap(), 0);
    let mut names: Vec<String> = vaults.list().unwrap().into_iter().map(|v| v.name).collect();
    names.sort();
    assert_eq!(names, ["Kept", "Other", "Work"]);
    assert!(kept.head(&t.db).is_ok());
}

#[test]
fn a_page_that_needs_objects_not_sent_yet_is_refused_and_the_transfer_stops() {
    let (s, original) = source();
    let t = device(23);
    let vaults = Vaults::new(&t.db);
    let head = original.head(&s.db).unwrap();
    let id = original.id().to_string();
    let copy = vaults.begin_receive_vault("Work", &id, 0).unwrap();
    let mut all = original.objects_between(&s.db, &head, &[]).unwrap();
    // The newest commit first: its tree and parent are not here.
    let last = all.pop().unwrap();
    let mut incoming = Incoming::new(&copy);
    let err = copy
        .receive_page(&t.db, &mut incoming, &[last], &anyone)
        .unwrap_err();
    assert!(err.to_string().contains("incomplete"), "{err}");
    assert_eq!(incoming.objects(), 0);
    // A refused transfer stays refused.
    let err = copy
        .receive_page(&t.db, &mut incoming, &all, &anyone)
        .unwrap_err();
    assert!(err.to_string().contains("already refused"), "{err}");
    assert!(vaults.abort_receive_vault(&id).unwrap());
}

#[test]
fn a_transfer_past_its_object_count_is_refused() {
    let (d, vault) = with_vault(24);
    let empty = blob(b"");
    let id = id_of(&empty).to_string();
    let mut incoming = Incoming::new(&vault);
    let page: Vec<(String, RawObject)> = (0..MAX_IMPORT_OBJECTS)
        .map(|_| (id.clone(), empty.clone()))
        .collect();
    vault
        .receive_page(&d.db, &mut incoming, &page, &anyone)
        .unwrap();
    assert_eq!(incoming.objects(), MAX_IMPORT_OBJECTS);
    let err = vault
        .receive_page(&d.db, &mut incoming, &page[..1], &anyone)
        .unwrap_err();
    assert!(err.to_string().contains("too many objects"), "{err}");
}

#[test]
fn a_transfer_past_its_byte_budget_is_refused_before_it_is_read() {
    let (d, vault) = with_vault(25);
    let mut incoming = Incoming::new(&vault);
    let first = blob(&[1; 1024]);
    vault
        .receive_page(&d.db, &mut incoming, &with_ids(vec![first]), &anyone)
        .unwrap();
    // The rest of the budget and one byte more, in blobs never touched:
    // the page is refused on its sizes alone.
    let mut rest = MAX_RECEIVE_BYTES - 1024 + 1;
    let mut page = Vec::new();
    while rest > 0 {
        let size = rest.min(MAX_SECRET_SIZE);
        page.push((
            "0".repeat(40),
            RawObject {
                base: None,
                kind: Kind::Blob,
                data: vec![0; size],
            },
        ));
        rest -= size;
    }
    let err = vault
        .receive_page(&d.db, &mut incoming, &page, &anyone)
        .unwrap_err();
    assert!(err.to_string().contains("byte budget"), "{err}");
    assert_eq!(incoming.bytes(), 1024);
    // Dropped without zeroizing pages that were never written.
    for (_, object) in &mut page {
        drop(std::mem::take(&mut object.data));
    }
}

#[test]
fn a_conflict_on_a_255_byte_name_still_merges() {
    let laptop = device(30);
    let phone = device(31);
    let name = "é".repeat(127) + "x"; // 255 bytes
    let a = Vaults::new(&laptop.db)
        .create("shared", &laptop.keys)
        .unwrap();
    a.write_secret(&laptop.db, &laptop.keys, &name, b"base")
        .unwrap();
    let (head, objects) = a.objects_for(&laptop.db, &[]).unwrap();
    let b = Vaults::new(&phone.db)
        .clone_vault("shared", &a.id().to_string(), &head, &objects)
        .unwrap();
    a.write_secret(&laptop.db, &laptop.keys, &name, b"laptop")
        .unwrap();
    b.write_secret(&phone.db, &phone.keys, &name, b"phone")
        .unwrap();
    let (their_head, objects) = b
        .objects_for(&phone.db, &[a.head(&laptop.db).unwrap()])
        .unwrap();
    a.import(&laptop.db, &objects).unwrap();
    let MergeOutcome::Merged { conflicts, .. } =
        a.merge(&laptop.db, &laptop.keys, &their_head).unwrap()
    else {
        panic!("expected a merge")
    };
    let theirs = conflicts[0].theirs_path.clone().unwrap();
    assert!(theirs.len() <= 255, "{theirs}");
    let mut kept = [
        a.get(&laptop.db, &name).unwrap().to_vec(),
        a.get(&laptop.db, &theirs).unwrap().to_vec(),
    ];
    kept.sort();
    assert_eq!(kept, [b"laptop".to_vec(), b"phone".to_vec()]);
}

#[test]
fn a_directory_of_many_directories_is_checked_in_linear_time() {
    let (d, vault) = with_vault(32);
    let file = blob(b"v");
    let inner = tree(&[(FILE, b"x", id_of(&file))]);
    let inner_id = id_of(&inner);
    // 100,000 directories, all the same tree: 200,000 paths, within bounds.
    let names: Vec<Vec<u8>> = (0..100_000).map(|i| format!("d{i}").into_bytes()).collect();
    let entries: Vec<(&str, &[u8], ObjectId)> = names
        .iter()
        .map(|n| (DIR, n.as_slice(), inner_id))
        .collect();
    let root = tree(&entries);
    let root_id = id_of(&root);
    let (head, objects) = on_top(
        &d,
        &vault,
        &d.keys,
        root_id,
        with_ids(vec![file, inner, root]),
    );
    let started = std::time::Instant::now();
    vault.receive(&d.db, &head, &objects, &anyone).unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// A member sends a tree naming, as a file, a tree this copy already
/// stores (sent in an earlier transfer). Only an object of this page is
/// checked for its kind; a stored one is taken on trust. Once merged, the
/// secret is listed but reading it fails as corrupt on every device.
#[test]
fn a_file_naming_a_stored_tree_is_refused() {
    let (d, vault) = with_vault(31);
    // First transfer: a directory `dir` holding one file; merged.
    let file = blob(b"v");
    let inner = tree(&[(FILE, b"x", id_of(&file))]);
    let inner_id = id_of(&inner);
    let root = tree(&[(DIR, b"dir", inner_id), (FILE, b"wifi", id_of(&file))]);
    let root_id = id_of(&root);
    let (first, objects) = on_top(
        &d,
        &vault,
        &d.keys,
        root_id,
        with_ids(vec![file, inner, root]),
    );
    vault.receive(&d.db, &first, &objects, &anyone).unwrap();
    vault.merge(&d.db, &d.keys, &first).unwrap();

    // Second: a file `wifi` whose content is that stored tree.
    let bad = tree(&[(FILE, b"wifi", inner_id)]);
    let bad_id = id_of(&bad);
    let (head, objects) = on_top(&d, &vault, &d.keys, bad_id, with_ids(vec![bad]));
    let taken = vault.receive(&d.db, &head, &objects, &anyone);
    if taken.is_ok() {
        vault.merge(&d.db, &d.keys, &head).unwrap();
        let read = vault.get(&d.db, "wifi");
        let listed = vault.list(&d.db, None);
        panic!("taken: reading `wifi` gives {read:?}; the listing gives {listed:?}");
    }
    assert!(matches!(taken, Err(VaultError::Refused(_))), "{taken:?}");
    assert_eq!(vault.head(&d.db).unwrap(), first);
}

/// The same with a stored commit as the file's content.
#[test]
fn a_file_naming_a_stored_commit_is_refused() {
    let (d, vault) = with_vault(32);
    let before = head_id(&d, &vault);
    let bad = tree(&[(FILE, b"wifi", before)]);
    let bad_id = id_of(&bad);
    let (head, objects) = on_top(&d, &vault, &d.keys, bad_id, with_ids(vec![bad]));
    refused(&d, &vault, &head, &objects, "names a non-file as a file");
}

#[test]
fn a_tree_naming_one_large_stored_secret_many_times_opens_it_once() {
    let (d, vault) = with_vault(38);
    let big = blob(&vec![b'x'; MAX_SECRET_SIZE]);
    let big_id = id_of(&big);
    let root = tree(&[(FILE, b"big", big_id), (FILE, b"wifi", big_id)]);
    let (first, objects) = on_top(&d, &vault, &d.keys, id_of(&root), with_ids(vec![big, root]));
    vault.receive(&d.db, &first, &objects, &anyone).unwrap();
    vault.merge(&d.db, &d.keys, &first).unwrap();
    // 20,000 names for it: each opened would be 320 GB decrypted inside
    // the store's write transaction.
    let names: Vec<Vec<u8>> = (0..20_000)
        .map(|i| format!("{i:05}").into_bytes())
        .collect();
    let entries: Vec<(&str, &[u8], ObjectId)> =
        names.iter().map(|n| (FILE, n.as_slice(), big_id)).collect();
    let wide = tree(&entries);
    let (head, objects) = on_top(&d, &vault, &d.keys, id_of(&wide), with_ids(vec![wide]));
    let started = std::time::Instant::now();
    vault.receive(&d.db, &head, &objects, &anyone).unwrap();
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
}

/// A transfer that stops after its first page leaves that page's commit
/// stored but outside the vault's history. Naming it by its whole id must
/// not read a version that never was the vault's (history, restore,
/// diff), as it did not before the whole-id fast path.
#[test]
fn a_commit_outside_the_history_is_no_version() {
    let (d, vault) = with_vault(33);
    let secret = blob(b"planted by a member, never merged");
    let root = tree(&[(FILE, b"wifi", id_of(&secret))]);
    let root_id = id_of(&root);
    let (stray, objects) = on_top(&d, &vault, &d.keys, root_id, with_ids(vec![secret, root]));
    let mut incoming = Incoming::new(&vault);
    vault
        .receive_page(&d.db, &mut incoming, &objects, &anyone)
        .unwrap();
    // The transfer goes no further; the vault is as it was.
    assert_eq!(vault.get(&d.db, "wifi").unwrap().as_slice(), b"base");
    let at = vault.get_at(&d.db, &stray, "wifi");
    assert!(
        matches!(at, Err(VaultError::UnknownVersion(_))),
        "a version outside the history was read: {:?}",
        at.map(|v| String::from_utf8_lossy(&v).into_owned())
    );
    // Its prefix is unknown, as before.
    assert!(vault.get_at(&d.db, &stray[..12], "wifi").is_err());
}

/// Pages of many objects are checked on several threads and stored in one
/// deferred pass: a large page whose tree names one blob that is not sent,
/// or that carries one object under another's id, or a second commit by a
/// signer not allowed, is still refused whole, and stores nothing
/// (defeated: a regression test).
#[test]
fn a_large_page_checked_on_threads_is_refused_whole_for_one_bad_object() {
    let (d, vault) = with_vault(34);
    let blobs: Vec<RawObject> = (0..200).map(|i| blob(format!("s{i}").as_bytes())).collect();
    let names: Vec<String> = (0..blobs.len()).map(|i| format!("s{i}")).collect();
    let missing = blob(b"never sent");
    let mut entries: Vec<(&str, &[u8], ObjectId)> = names
        .iter()
        .zip(&blobs)
        .map(|(n, b)| (FILE, n.as_bytes(), id_of(b)))
        .collect();
    entries.push((FILE, b"zz-missing", id_of(&missing)));
    let root = tree(&entries);
    let root_id = id_of(&root);
    let mut objects = with_ids(blobs.clone());
    objects.push((root_id.to_string(), root));
    let (head, objects) = on_top(&d, &vault, &d.keys, root_id, objects);
    refused(&d, &vault, &head, &objects, "incomplete");

    // One blob sent under another blob's id, deep in the page.
    let entries: Vec<(&str, &[u8], ObjectId)> = names
        .iter()
        .zip(&blobs)
        .map(|(n, b)| (FILE, n.as_bytes(), id_of(b)))
        .collect();
    let root = tree(&entries);
    let root_id = id_of(&root);
    let mut objects = with_ids(blobs.clone());
    objects[150].1 = blob(b"swapped");
    objects.push((root_id.to_string(), root.clone()));
    let (head, swapped) = on_top(&d, &vault, &d.keys, root_id, objects);
    refused(&d, &vault, &head, &swapped, "does not match its id");

    // The same page, honest, with a second commit on top by a signer the
    // gestalt does not allow.
    let mut objects = with_ids(blobs);
    objects.push((root_id.to_string(), root));
    let (first, mut objects) = on_top(&d, &vault, &d.keys, root_id, objects);
    let outsider = RootKeypair::from_seed(&[99; 32]);
    let second = commit(
        &outsider,
        root_id,
        vec![ObjectId::from_hex(first.as_bytes()).unwrap()],
    );
    let head = id_of(&second).to_string();
    objects.push((head.clone(), second));
    let only_me = |n: &NodeId, _: i64| *n == d.keys.node_id();
    let err = vault.receive(&d.db, &head, &objects, &only_me).unwrap_err();
    assert!(err.to_string().contains("outside the gestalt"), "{err}");
    assert!(matches!(
        vault.relation(&d.db, &first),
        Err(VaultError::UnknownVersion(_))
    ));
    assert_eq!(vault.list(&d.db, None).unwrap(), vec!["wifi".to_owned()]);
}

/// A stolen device sends a version adding 40,000 directories (one shared
/// tree, so a few objects) beside a change of ours, so the two must be
/// merged. Each directory the merge wrote scanned every one loaded before
/// it, with an allocation each: O(n²) inside the store's write
/// transaction (50,000 took 152 s here, hours at the version bound), on
/// every try. Now about 13 s, most of it writing the 40,000 trees.
#[test]
fn a_merge_of_many_new_directories_takes_linear_time() {
    let (d, vault) = with_vault(33);
    let file = blob(b"v");
    let inner = tree(&[(FILE, b"x", id_of(&file))]);
    let inner_id = id_of(&inner);
    let names: Vec<Vec<u8>> = (0..40_000).map(|i| format!("d{i}").into_bytes()).collect();
    let mut entries: Vec<(&str, &[u8], ObjectId)> = names
        .iter()
        .map(|n| (DIR, n.as_slice(), inner_id))
        .collect();
    entries.push((FILE, b"wifi", id_of(&blob(b"base"))));
    let root = tree(&entries);
    let root_id = id_of(&root);
    let (theirs, objects) = on_top(
        &d,
        &vault,
        &d.keys,
        root_id,
        with_ids(vec![file, inner, root, blob(b"base")]),
    );
    // Ours moves on meanwhile: the two must merge.
    vault
        .write_secret(&d.db, &d.keys, "ours", b"local")
        .unwrap();
    vault.receive(&d.db, &theirs, &objects, &anyone).unwrap();
    let started = std::time::Instant::now();
    let merged = vault.merge(&d.db, &d.keys, &theirs).unwrap();
    let took = started.elapsed();
    assert!(matches!(merged, MergeOutcome::Merged { .. }), "{merged:?}");
    assert!(took < std::time::Duration::from_secs(40), "{took:?}");
    assert_eq!(vault.get(&d.db, "d39999/x").unwrap().to_vec(), b"v");
    assert_eq!(vault.get(&d.db, "ours").unwrap().to_vec(), b"local");
}

/// A 250-byte name: `index` in `digits` digits, then `fill`.
fn long_name(index: usize, digits: usize, fill: char) -> Vec<u8> {
    let mut name = format!("{index:0digits$}");
    name.extend(std::iter::repeat_n(fill, 250 - digits));
    name.into_bytes()
}

/// A directory of 1,000 files with 250-byte names, all one secret `v`:
/// with a 250-byte name of its own it adds 501,250 bytes of paths.
fn leaf() -> (ObjectId, Vec<RawObject>) {
    let file = blob(b"v");
    let names: Vec<Vec<u8>> = (0..1_000).map(|i| long_name(i, 4, 'x')).collect();
    let entries: Vec<(&str, &[u8], ObjectId)> = names
        .iter()
        .map(|n| (FILE, n.as_slice(), id_of(&file)))
        .collect();
    let leaf = tree(&entries);
    (id_of(&leaf), vec![file, leaf])
}

/// A version of the vault `with_vault` made (the secret `wifi`, `base`)
/// plus `dirs` directories named with `fill`, each the [`leaf`], and the
/// `extra` entries, as a commit on `parent`.
fn wide_version(
    d: &Device,
    parent: ObjectId,
    dirs: usize,
    fill: char,
    extra: &[(&str, &[u8], ObjectId)],
    more: Vec<RawObject>,
) -> (String, Vec<(String, RawObject)>) {
    let (leaf_id, mut objects) = leaf();
    let base = blob(b"base");
    let names: Vec<Vec<u8>> = (0..dirs).map(|i| long_name(i, 3, fill)).collect();
    let mut entries: Vec<(&str, &[u8], ObjectId)> =
        names.iter().map(|n| (DIR, n.as_slice(), leaf_id)).collect();
    entries.push((FILE, b"wifi", id_of(&base)));
    entries.extend_from_slice(extra);
    let root = tree(&entries);
    let c = commit(&d.keys, id_of(&root), vec![parent]);
    let head = id_of(&c).to_string();
    objects.extend([base, root, c]);
    objects.extend(more);
    (head, with_ids(objects))
}

#[test]
fn a_merge_past_the_path_bound_is_refused_and_both_versions_stay_usable() {
    let (d, vault) = with_vault(35);
    let base = head_id(&d, &vault);
    // Each side alone: 70 × 501,250 bytes of paths, 35 MB; together 70
    // MB, past the 64 MiB every copy holds a version to.
    let (ours, objects) = wide_version(&d, base, 70, 'a', &[], Vec::new());
    vault.receive(&d.db, &ours, &objects, &anyone).unwrap();
    assert!(matches!(
        vault.merge(&d.db, &d.keys, &ours).unwrap(),
        MergeOutcome::FastForward { .. }
    ));
    let (theirs, objects) = wide_version(&d, base, 70, 'b', &[], Vec::new());
    vault.receive(&d.db, &theirs, &objects, &anyone).unwrap();
    for _ in 0..2 {
        let err = vault.merge(&d.db, &d.keys, &theirs).unwrap_err();
        assert!(matches!(err, VaultError::OverLimit(_)), "{err:?}");
        assert!(err.to_string().contains("64 MiB"), "{err}");
        assert_eq!(vault.head(&d.db).unwrap(), ours);
    }
    // Nothing was written that a listing or another copy would refuse.
    assert_eq!(vault.list(&d.db, None).unwrap().len(), 70_001);
    vault.write_secret(&d.db, &d.keys, "after", b"ok").unwrap();
    assert_eq!(vault.get(&d.db, "after").unwrap().to_vec(), b"ok");
    assert!(vault.verify_history(&d.db).is_ok());
}

#[test]
fn a_merge_past_the_directory_size_bound_is_refused_and_the_head_stays() {
    let (d, vault) = with_vault(36);
    let base = head_id(&d, &vault);
    let file = blob(b"v");
    // One directory `big` on each side: 70,000 entries of 128 bytes, 9 MB;
    // merged, 18 MB, past the 16 MiB a directory's listing may take.
    let side = |fill: char| {
        let names: Vec<Vec<u8>> = (0..70_000)
            .map(|i| {
                let mut name = format!("{i:05}");
                name.extend(std::iter::repeat_n(fill, 95));
                name.into_bytes()
            })
            .collect();
        let entries: Vec<(&str, &[u8], ObjectId)> = names
            .iter()
            .map(|n| (FILE, n.as_slice(), id_of(&file)))
            .collect();
        let big = tree(&entries);
        let base_blob = blob(b"base");
        let root = tree(&[
            (DIR, b"big", id_of(&big)),
            (FILE, b"wifi", id_of(&base_blob)),
        ]);
        let c = commit(&d.keys, id_of(&root), vec![base]);
        let head = id_of(&c).to_string();
        (head, with_ids(vec![blob(b"v"), base_blob, big, root, c]))
    };
    let (ours, objects) = side('a');
    vault.receive(&d.db, &ours, &objects, &anyone).unwrap();
    vault.merge(&d.db, &d.keys, &ours).unwrap();
    let (theirs, objects) = side('b');
    vault.receive(&d.db, &theirs, &objects, &anyone).unwrap();
    // Merged one at a time, each new secret scanned its directory: O(n²),
    // 110 s here. In bulk, a second or two.
    let started = std::time::Instant::now();
    let err = vault.merge(&d.db, &d.keys, &theirs).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, VaultError::OverLimit(_)), "{err:?}");
    assert!(err.to_string().contains("16 MiB"), "{err}");
    assert!(took < std::time::Duration::from_secs(40), "{took:?}");
    assert_eq!(vault.head(&d.db).unwrap(), ours);
    assert_eq!(vault.list(&d.db, Some("big")).unwrap().len(), 70_000);
}

#[test]
fn a_local_write_past_the_path_bound_is_refused_and_the_vault_keeps_working() {
    let (d, vault) = with_vault(37);
    let base = head_id(&d, &vault);
    // 4 + 133 × 501,250 + (1 + 1,752 × 252) + 105 bytes of paths: 1,000
    // under 64 MiB.
    let file = blob(b"f");
    let names: Vec<Vec<u8>> = (0..1_752).map(|i| long_name(i, 4, 'f')).collect();
    let entries: Vec<(&str, &[u8], ObjectId)> = names
        .iter()
        .map(|n| (FILE, n.as_slice(), id_of(&file)))
        .collect();
    let filler = tree(&entries);
    let extra = "r".repeat(105);
    let (head, objects) = wide_version(
        &d,
        base,
        133,
        'd',
        &[
            (DIR, b"f", id_of(&filler)),
            (FILE, extra.as_bytes(), id_of(&file)),
        ],
        vec![file, filler],
    );
    vault.receive(&d.db, &head, &objects, &anyone).unwrap();
    vault.merge(&d.db, &d.keys, &head).unwrap();
    let held: u64 = 4 + 133 * 501_250 + 1 + 1_752 * 252 + 105;
    assert_eq!(held + 1_000, MAX_VERSION_PATH_BYTES);
    // Five bytes more fit.
    vault.write_secret(&d.db, &d.keys, "short", b"ok").unwrap();
    let before = vault.head(&d.db).unwrap();
    // Four levels of 250-byte names add 2,506 bytes: past the bound.
    let deep = ["a", "b", "c", "d"].map(|c| c.repeat(250)).join("/");
    let err = vault
        .write_secret(&d.db, &d.keys, &deep, b"too much")
        .unwrap_err();
    assert!(matches!(err, VaultError::OverLimit(_)), "{err:?}");
    assert!(err.to_string().contains("64 MiB"), "{err}");
    assert_eq!(vault.head(&d.db).unwrap(), before);
    // The vault lists, reads and takes a smaller change.
    assert_eq!(vault.get(&d.db, "short").unwrap().to_vec(), b"ok");
    vault.remove(&d.db, &d.keys, "short", false).unwrap();
    vault.write_secret(&d.db, &d.keys, "again", b"ok").unwrap();
    assert_eq!(vault.list(&d.db, None).unwrap().len(), 133_000 + 1_752 + 3);
}

#[test]
fn a_merge_removing_a_large_directory_takes_linear_time() {
    let (d, vault) = with_vault(39);
    let file = blob(b"v");
    let base_blob = blob(b"base");
    let names: Vec<Vec<u8>> = (0..70_000)
        .map(|i| format!("secret-{i:05}").into_bytes())
        .collect();
    let entries: Vec<(&str, &[u8], ObjectId)> = names
        .iter()
        .map(|n| (FILE, n.as_slice(), id_of(&file)))
        .collect();
    let big = tree(&entries);
    let root = tree(&[
        (DIR, b"big", id_of(&big)),
        (FILE, b"wifi", id_of(&base_blob)),
    ]);
    let (with_big, objects) = on_top(
        &d,
        &vault,
        &d.keys,
        id_of(&root),
        with_ids(vec![blob(b"v"), blob(b"base"), big, root]),
    );
    vault.receive(&d.db, &with_big, &objects, &anyone).unwrap();
    vault.merge(&d.db, &d.keys, &with_big).unwrap();
    // The other side removes the directory; this one edits meanwhile.
    let bare = tree(&[(FILE, b"wifi", id_of(&base_blob))]);
    let c = commit(&d.keys, id_of(&bare), vec![head_id(&d, &vault)]);
    let theirs = id_of(&c).to_string();
    vault
        .write_secret(&d.db, &d.keys, "local", b"mine")
        .unwrap();
    vault
        .receive(&d.db, &theirs, &with_ids(vec![bare, c]), &anyone)
        .unwrap();
    // One at a time, each removal scanned and shifted the directory:
    // O(n²). In bulk, linear.
    let started = std::time::Instant::now();
    let merged = vault.merge(&d.db, &d.keys, &theirs).unwrap();
    let took = started.elapsed();
    assert!(matches!(merged, MergeOutcome::Merged { .. }), "{merged:?}");
    assert!(took < std::time::Duration::from_secs(40), "{took:?}");
    let mut left = vault.list(&d.db, None).unwrap();
    left.sort();
    assert_eq!(left, ["local", "wifi"]);
}

/// A commit by `signer` on top of the vault's head whose message pads it
/// to exactly `size` bytes.
fn commit_of_size(
    d: &Device,
    vault: &Vault,
    signer: &RootKeypair,
    root: ObjectId,
    size: usize,
) -> RawObject {
    let me = signer.node_id();
    let parents = || vec![head_id(d, vault)];
    let short = commit_by(signer, me, me, root, parents(), "x");
    let message = "x".repeat(1 + size - short.data.len());
    let padded = commit_by(signer, me, me, root, parents(), &message);
    assert_eq!(padded.data.len(), size);
    padded
}

/// An object of a mebibyte or more that comes with its id is hashed on a
/// second thread while it is sealed: it is checked all the same. A secret
/// with one byte changed, or under a malformed id, is refused and nothing
/// is stored; a commit that large still needs a signer the gestalt
/// allows; the honest ones are taken.
#[test]
fn a_large_object_hashed_while_it_is_sealed_is_checked_all_the_same() {
    let (d, vault) = with_vault(36);
    let large = vec![3u8; 2 << 20];
    let honest = blob(&large);
    let root = tree(&[(FILE, b"big", id_of(&honest))]);
    let root_id = id_of(&root);
    let mut changed = large.clone();
    changed[1 << 20] ^= 1;
    for claimed in [id_of(&honest).to_string(), "not an id".to_owned()] {
        let objects = vec![
            (claimed, blob(&changed)),
            (root_id.to_string(), root.clone()),
        ];
        let (head, objects) = on_top(&d, &vault, &d.keys, root_id, objects);
        refused(&d, &vault, &head, &objects, "does not match its id");
    }

    // A commit of exactly the size bound (the threshold of that path), by
    // a node outside the gestalt.
    let only_me = |n: &NodeId, _: i64| *n == d.keys.node_id();
    let outsider = RootKeypair::from_seed(&[98; 32]);
    let objects = with_ids(vec![honest.clone(), root.clone()]);
    let mut sent = objects.clone();
    let outsiders = commit_of_size(&d, &vault, &outsider, root_id, MAX_COMMIT_SIZE);
    let head = id_of(&outsiders).to_string();
    sent.push((head.clone(), outsiders));
    let err = vault.receive(&d.db, &head, &sent, &only_me).unwrap_err();
    assert!(err.to_string().contains("outside the gestalt"), "{err}");
    assert_eq!(vault.list(&d.db, None).unwrap(), vec!["wifi".to_owned()]);

    let mut sent = objects;
    let mine = commit_of_size(&d, &vault, &d.keys, root_id, MAX_COMMIT_SIZE);
    let head = id_of(&mine).to_string();
    sent.push((head.clone(), mine));
    vault.receive(&d.db, &head, &sent, &only_me).unwrap();
    vault.merge(&d.db, &d.keys, &head).unwrap();
    assert_eq!(vault.get(&d.db, "big").unwrap().as_slice(), large);
}

/// A commit naming one parent twice, or more parents than any Polykey
/// merge names, is refused: a writer's commit naming our head 20,000
/// times (a megabyte allows it) made every walk of the history that
/// looks at each parent (Recently deleted, at every opening) pay 20,000
/// times.
#[test]
fn a_commit_naming_a_parent_twice_or_too_many_parents_is_refused() {
    let (d, vault) = with_vault(7);
    let head = head_id(&d, &vault);
    let root = vault_root();
    let twice = commit(&d.keys, root, vec![head, head]);
    let objects = with_ids(vec![twice]);
    refused(
        &d,
        &vault,
        &objects[0].0.clone(),
        &objects,
        "names a parent twice",
    );

    // MAX_PARENTS distinct parents are taken, one more is refused.
    let mut parents = Vec::new();
    let mut objects = Vec::new();
    for i in 0..=MAX_PARENTS {
        let side = commit_at(&d.keys, root, vec![head], 1_700_000_000 + i as i64);
        parents.push(id_of(&side));
        objects.push(side);
    }
    let over = commit(&d.keys, root, parents.clone());
    let mut all = with_ids(objects.clone());
    let over_id = id_of(&over).to_string();
    all.push((over_id.clone(), over));
    refused(&d, &vault, &over_id, &all, "more than 8 parents");

    let most = commit(&d.keys, root, parents[..MAX_PARENTS].to_vec());
    let mut all = with_ids(objects[..MAX_PARENTS].to_vec());
    let most_id = id_of(&most).to_string();
    all.push((most_id.clone(), most));
    vault.receive(&d.db, &most_id, &all, &anyone).unwrap();
}

/// The root tree of `with_vault`'s head (its one secret), as git encodes it.
fn vault_root() -> ObjectId {
    id_of(&tree(&[(FILE, b"wifi", id_of(&blob(b"base")))]))
}

/// A merge counts as removing only what every parent held: one side
/// removed `a` (listed at that side's version), the merge removed `b`,
/// which both sides held (listed at the merge, from its first parent).
#[test]
fn recently_deleted_counts_a_merge_as_removing_only_what_all_its_parents_held() {
    let (d, vault) = with_vault(8);
    let file = |name: &'static [u8], data: &'static [u8]| (FILE, name, id_of(&blob(data)));
    let blobs = with_ids(vec![blob(b"base"), blob(b"A"), blob(b"B"), blob(b"C")]);
    let both = tree(&[file(b"wifi", b"base"), file(b"a", b"A"), file(b"b", b"B")]);
    let first = commit_at(&d.keys, id_of(&both), vec![head_id(&d, &vault)], 100);
    let without_a = tree(&[file(b"wifi", b"base"), file(b"b", b"B")]);
    let x = commit_at(&d.keys, id_of(&without_a), vec![id_of(&first)], 200);
    let with_c = tree(&[
        file(b"wifi", b"base"),
        file(b"a", b"A"),
        file(b"b", b"B"),
        file(b"c", b"C"),
    ]);
    let y = commit_at(&d.keys, id_of(&with_c), vec![id_of(&first)], 300);
    let merged = tree(&[file(b"wifi", b"base"), file(b"c", b"C")]);
    let m = commit_at(&d.keys, id_of(&merged), vec![id_of(&y), id_of(&x)], 400);
    let head = id_of(&m).to_string();
    let mut objects = blobs;
    objects.extend(with_ids(vec![
        both,
        without_a,
        with_c,
        merged,
        first.clone(),
        x,
        y.clone(),
        m,
    ]));
    vault.receive(&d.db, &head, &objects, &anyone).unwrap();
    assert!(matches!(
        vault.merge(&d.db, &d.keys, &head).unwrap(),
        MergeOutcome::FastForward { .. }
    ));
    let deleted: Vec<(String, String, i64)> = vault
        .recently_deleted(&d.db, 0, 10)
        .unwrap()
        .into_iter()
        .map(|s| (s.path, s.version, s.deleted_at))
        .collect();
    assert_eq!(
        deleted,
        [
            ("b".to_owned(), id_of(&y).to_string(), 400_000),
            ("a".to_owned(), id_of(&first).to_string(), 200_000),
        ]
    );
}

//! What a removed device committed unseen by its remover is undone, once,
//! and taken back when the device is no longer removed.

use polykey_keys::RootKeypair;
use polykey_vaults::{RawObject, Removed, Vault, Vaults, UNDOES, UNDOES_DEVICE};

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

/// Whose undo commits count: any device but the thief.
fn honest(author: &str) -> bool {
    author != thief().node_id().to_string()
}

/// Which devices were ever removed here: any (these tests store no
/// revocations; the node answers from its stored ones).
fn once(_: &str) -> bool {
    true
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
        hold: false,
    }];
    let head = vault
        .undo_removed(&f.db, &f.keys, &removed, &honest, &once)
        .unwrap();
    assert!(head.is_some());
    assert_eq!(text(&f, &vault, "github").as_deref(), Some("pw"));
    assert_eq!(text(&f, &vault, "wifi").as_deref(), Some("from-c"));
    assert_eq!(text(&f, &vault, "planted"), None);
    assert_eq!(text(&f, &vault, "bank").as_deref(), Some("mine"));
    // Once: a second pass finds it done.
    assert_eq!(
        vault
            .undo_removed(&f.db, &f.keys, &removed, &honest, &once)
            .unwrap(),
        None
    );
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
        hold: false,
    };
    assert_eq!(
        vault
            .undo_removed(&f.db, &f.keys, &[unknown], &honest, &once)
            .unwrap(),
        None,
        "decided only once the remover's version is here"
    );
    let none_seen = Removed {
        node: thief.node_id(),
        seen: None,
        hold: false,
    };
    vault
        .undo_removed(&f.db, &f.keys, &[none_seen], &honest, &once)
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
        hold: false,
    }];
    vault
        .undo_removed(&f.db, &f.keys, &removed, &honest, &once)
        .unwrap()
        .unwrap();
    assert_eq!(text(&f, &vault, "github").as_deref(), Some("pw"));
    // The removal fell (say its remover was itself removed): taken back.
    vault
        .undo_removed(&f.db, &f.keys, &[], &honest, &once)
        .unwrap()
        .unwrap();
    assert_eq!(text(&f, &vault, "github").as_deref(), Some("theirs"));
    assert_eq!(
        vault
            .undo_removed(&f.db, &f.keys, &[], &honest, &once)
            .unwrap(),
        None
    );
    // Removed again: undone again.
    vault
        .undo_removed(&f.db, &f.keys, &removed, &honest, &once)
        .unwrap()
        .unwrap();
    assert_eq!(text(&f, &vault, "github").as_deref(), Some("pw"));
}

// ---- Attacks on the undo (a stolen device writing its own commits) ----

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The root tree of `version`.
fn tree_of(f: &Fixture, vault: &Vault, version: &str) -> gix::ObjectId {
    let objects = vault.objects_between(&f.db, version, &[]).unwrap();
    let (_, commit) = objects.iter().find(|(id, _)| id == version).unwrap();
    let tree = gix::objs::CommitRef::from_bytes(&commit.data, gix::hash::Kind::Sha1)
        .unwrap()
        .tree();
    tree
}

/// A commit by `author` with the tree of `tree_from`, any `parents` and
/// any `message` (what a stolen device can sign and send), taken in as a
/// sync takes it, the head left where it is. Returns its id.
fn sign_and_import(
    f: &Fixture,
    vault: &Vault,
    author: &RootKeypair,
    tree_from: &str,
    parents: &[&str],
    message: &str,
) -> String {
    use gix::objs::WriteTo;
    let node = author.node_id().to_string();
    let actor = gix::actor::Signature {
        name: node.clone().into(),
        email: format!("{node}@polykey").into(),
        time: gix::date::Time {
            seconds: now_secs(),
            offset: 0,
        },
    };
    let parents: Vec<gix::ObjectId> = parents
        .iter()
        .map(|p| gix::ObjectId::from_hex(p.as_bytes()).unwrap())
        .collect();
    let mut commit = gix::objs::Commit {
        tree: tree_of(f, vault, tree_from),
        parents: parents.into(),
        author: actor.clone(),
        committer: actor,
        encoding: None,
        message: format!("{message}\n").into(),
        extra_headers: Vec::new(),
    };
    let mut unsigned = Vec::new();
    commit.write_to(&mut unsigned).unwrap();
    let signature = polykey_keys::sshsig::sign(author, "git", &unsigned);
    commit
        .extra_headers
        .push(("gpgsig".into(), signature.into()));
    let mut data = Vec::new();
    commit.write_to(&mut data).unwrap();
    let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Commit, &data)
        .unwrap()
        .to_string();
    vault
        .import(
            &f.db,
            &[RawObject {
                base: None,
                kind: gix::objs::Kind::Commit,
                data,
            }],
        )
        .unwrap();
    id
}

/// As [`sign_and_import`], and made the head (a fast-forward: it must
/// descend from the head).
fn forge(
    f: &Fixture,
    vault: &Vault,
    author: &RootKeypair,
    tree_from: &str,
    parents: &[&str],
    message: &str,
) -> String {
    let id = sign_and_import(f, vault, author, tree_from, parents, message);
    vault.merge(&f.db, &f.keys, &id).unwrap();
    assert_eq!(
        vault.head(&f.db).unwrap(),
        id,
        "the forged commit is the head"
    );
    id
}

/// The vault's first version.
fn root(f: &Fixture, vault: &Vault) -> String {
    vault.log(&f.db, None).unwrap().last().unwrap().id.clone()
}

/// The thief, after the theft, changes a secret and then signs a second,
/// empty commit whose message is an undo's ("Polykey-Undoes-Device:" the
/// thief, "Polykey-Undoes:" its first commit). `undo_removed` reads undo
/// trailers from every commit, the removed device's own included, so the
/// first commit counts as undone already, and undoing the empty one
/// changes nothing: the thief's edit stands on every device.
#[test]
fn a_removed_devices_own_undo_trailer_does_not_shield_its_commits() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("Personal", &f.keys).unwrap();
    let thief = thief();
    let seen = vault.write_secret(&f.db, &f.keys, "github", b"pw").unwrap();
    let stolen = vault
        .write_secret(&f.db, &thief, "github", b"stolen")
        .unwrap();
    let message = format!(
        "Tidy up\n\n{UNDOES_DEVICE}{}\n{UNDOES}{stolen}",
        thief.node_id()
    );
    forge(&f, &vault, &thief, &stolen, &[&stolen], &message);

    let removed = [Removed {
        node: thief.node_id(),
        seen: Some(seen),
        hold: false,
    }];
    let _ = vault
        .undo_removed(&f.db, &f.keys, &removed, &honest, &once)
        .unwrap();
    assert_eq!(
        text(&f, &vault, "github").as_deref(),
        Some("pw"),
        "the thief's edit stands"
    );
}

/// A thief still paired (nobody knows yet) signs a commit with the tree
/// of the head, a second parent the vault's first version, and an undo
/// trailer naming any device not removed. Nothing changes, so nobody
/// notices; but the next `undo_removed` on an honest device (run after
/// every pull once anyone was ever removed) "takes back" this "undo" from
/// its first parent: every secret made since the vault's first version is
/// removed, in a commit signed by the honest device. Removing the thief
/// later does not bring them back: the thief's commit is undone against
/// its honest parent, which the vault no longer matches.
#[test]
fn a_thiefs_fake_undo_with_a_forged_parent_takes_back_nothing_honest() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("Personal", &f.keys).unwrap();
    let thief = thief();
    let first = root(&f, &vault);
    vault.write_secret(&f.db, &f.keys, "github", b"pw").unwrap();
    let head = vault.write_secret(&f.db, &f.keys, "bank", b"1234").unwrap();
    let message = format!("Sync\n\n{UNDOES_DEVICE}{}", f.keys.node_id());
    forge(&f, &vault, &thief, &head, &[&first, &head], &message);
    assert_eq!(text(&f, &vault, "github").as_deref(), Some("pw"));

    // Nobody is removed in this vault (another removal exists elsewhere).
    let _ = vault
        .undo_removed(&f.db, &f.keys, &[], &honest, &once)
        .unwrap();
    let after_pass = (text(&f, &vault, "github"), text(&f, &vault, "bank"));
    // The user removes the thief, having seen everything up to `head`.
    let removed = [Removed {
        node: thief.node_id(),
        seen: Some(head),
        hold: false,
    }];
    let _ = vault
        .undo_removed(&f.db, &f.keys, &removed, &honest, &once)
        .unwrap();
    assert_eq!(
        after_pass,
        (Some("pw".into()), Some("1234".into())),
        "an honest device removed the secrets"
    );
    assert_eq!(text(&f, &vault, "github").as_deref(), Some("pw"));
    assert_eq!(text(&f, &vault, "bank").as_deref(), Some("1234"));
}

/// As above without a forged parent: the thief removes every secret in
/// one commit and puts them all back in the next, that one carrying an
/// undo trailer (net change: none). Taking back the "undo" from its real
/// parent removes every secret, signed by the honest device.
#[test]
fn a_thiefs_fake_undo_in_two_plain_commits_takes_back_nothing_honest() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("Personal", &f.keys).unwrap();
    let thief = thief();
    let first = root(&f, &vault);
    vault.write_secret(&f.db, &f.keys, "github", b"pw").unwrap();
    let head = vault.write_secret(&f.db, &f.keys, "bank", b"1234").unwrap();
    let emptied = forge(&f, &vault, &thief, &first, &[&head], "Tidy up");
    let message = format!("Put back\n\n{UNDOES_DEVICE}{}", thief.node_id());
    forge(&f, &vault, &thief, &head, &[&emptied], &message);
    assert_eq!(text(&f, &vault, "github").as_deref(), Some("pw"));

    let _ = vault
        .undo_removed(&f.db, &f.keys, &[], &honest, &once)
        .unwrap();
    assert_eq!(
        text(&f, &vault, "github").as_deref(),
        Some("pw"),
        "an honest device removed the secrets"
    );
    assert_eq!(text(&f, &vault, "bank").as_deref(), Some("1234"));
}

/// A thief (still paired) signs many empty commits, each with an undo
/// trailer: one pass of `undo_removed` on every honest device writes one
/// "take back" commit per fake undo, each flattening the whole vault three
/// times, with no bound (the 500-per-commit bound is for undos only), and
/// each device writes its own. Cost per pass: O(fakes x vault size), and
/// the history grows by fakes x devices.
#[test]
fn a_thiefs_fake_undos_cost_a_bounded_number_of_commits_per_pass() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("Personal", &f.keys).unwrap();
    let thief = thief();
    let mut head = vault.write_secret(&f.db, &f.keys, "github", b"pw").unwrap();
    let message = format!("Sync\n\n{UNDOES_DEVICE}nobody");
    for _ in 0..40 {
        let parent = head.clone();
        head = forge(&f, &vault, &thief, &parent, &[&parent], &message);
    }
    let before = vault.log(&f.db, None).unwrap().len();
    let _ = vault
        .undo_removed(&f.db, &f.keys, &[], &honest, &once)
        .unwrap();
    let made = vault.log(&f.db, None).unwrap().len() - before;
    assert!(made <= 1, "one pass wrote {made} commits");
}

/// The thief, after the theft, replaces the folder `bank` (holding
/// `bank/login`) by a secret `bank`; the user then edits that secret (or
/// anyone but the thief does). Undoing puts `bank/login` back while the
/// secret `bank` stays, and the undo commit fails (`bank` is a secret, not
/// a directory): `undo_removed` errs on every pass, so the node's
/// `settle_removed` errs after every pull (the pull reports failure), and
/// the vaults after this one are never settled.
#[test]
fn an_undo_meeting_a_secret_where_its_folder_was_does_not_fail() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("Personal", &f.keys).unwrap();
    let thief = thief();
    let seen = vault
        .write_secret(&f.db, &f.keys, "bank/login", b"pw")
        .unwrap();
    vault.remove(&f.db, &thief, "bank/login", false).unwrap();
    vault
        .write_secret(&f.db, &thief, "bank", b"planted")
        .unwrap();
    vault.write_secret(&f.db, &f.keys, "bank", b"mine").unwrap();
    let removed = [Removed {
        node: thief.node_id(),
        seen: Some(seen),
        hold: false,
    }];
    let pass = vault.undo_removed(&f.db, &f.keys, &removed, &honest, &once);
    assert!(pass.is_ok(), "the undo pass failed: {pass:?}");
}

/// The user deleted a vault (a signed deletion at its head); a device
/// that committed to it unseen by its remover is removed afterwards. The
/// undo commit is a new head, and a vault is deleted only while its head
/// is the deleted one: the undo brings the deleted vault back.
#[test]
fn an_undo_in_a_deleted_vault_leaves_it_deleted() {
    let f = fixture();
    let vaults = Vaults::new(&f.db);
    let vault = vaults.create("Old", &f.keys).unwrap();
    let thief = thief();
    let seen = vault.write_secret(&f.db, &f.keys, "github", b"pw").unwrap();
    vault
        .write_secret(&f.db, &thief, "github", b"stolen")
        .unwrap();
    vaults.delete("Old", &f.keys).unwrap();
    assert!(vaults.list().unwrap().is_empty());
    let removed = [Removed {
        node: thief.node_id(),
        seen: Some(seen),
        hold: false,
    }];
    let vault = vaults.open_any(&vault.id()).unwrap();
    let _ = vault
        .undo_removed(&f.db, &f.keys, &removed, &honest, &once)
        .unwrap();
    assert!(
        vaults.list().unwrap().is_empty(),
        "the deleted vault is back"
    );
}

/// No thief needed: A (the remover) and B are honest, and so is the
/// device T that the user retires. B edited `wifi` on top of S0 while A
/// committed S1 (also on S0); T, syncing both, merged them (M: parents S1,
/// B1, as any node's merge writes it). A removes T having seen S1 but not
/// yet B's edit. M is T's and unseen, so it is undone "from the state
/// before it", its first parent not T's: S1, which lacks B's edit; so the
/// undo removes `wifi`, B's honest work, on every device.
#[test]
fn undoing_a_removed_devices_merge_keeps_the_work_it_merged_in() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("Personal", &f.keys).unwrap();
    let (b, t) = (RootKeypair::from_seed(&[8; 32]), thief());
    let s0 = vault.write_secret(&f.db, &f.keys, "github", b"pw").unwrap();
    let b1 = vault.write_secret(&f.db, &b, "wifi", b"from-b").unwrap();
    let s1 = sign_and_import(&f, &vault, &f.keys, &s0, &[&s0], "Touch");
    forge(&f, &vault, &t, &b1, &[&s1, &b1], "Merge");
    let removed = [Removed {
        node: t.node_id(),
        seen: Some(s1),
        hold: false,
    }];
    let _ = vault
        .undo_removed(&f.db, &f.keys, &removed, &honest, &once)
        .unwrap();
    assert_eq!(
        text(&f, &vault, "wifi").as_deref(),
        Some("from-b"),
        "B's edit was undone"
    );
}

/// A thief still paired revokes nodes that never committed anything,
/// each revocation naming a different real version of the vault (its
/// `heads`). Every pass of `undo_removed` (one per vault per pull on every
/// device) walks the whole history once per removal before finding that
/// the node has no commit: O(removals x history) per vault per pull, with
/// removals up to a chain's 10,000 claims.
#[test]
fn removals_of_nodes_that_never_committed_cost_no_history_walk() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("Personal", &f.keys).unwrap();
    let versions: Vec<String> = (0..150u32)
        .map(|i| {
            vault
                .write_secret(&f.db, &f.keys, &format!("s{}", i % 10), &i.to_be_bytes())
                .unwrap()
        })
        .collect();
    let time = |removed: &[Removed]| {
        let start = std::time::Instant::now();
        assert_eq!(
            vault
                .undo_removed(&f.db, &f.keys, removed, &honest, &once)
                .unwrap(),
            None
        );
        start.elapsed()
    };
    let alone = (0..3).map(|_| time(&[])).min().unwrap();
    let removed: Vec<Removed> = versions
        .iter()
        .enumerate()
        .map(|(i, version)| {
            let mut seed = [9u8; 32];
            seed[..4].copy_from_slice(&(i as u32).to_be_bytes());
            Removed {
                node: RootKeypair::from_seed(&seed).node_id(),
                seen: Some(version.clone()),
                hold: false,
            }
        })
        .collect();
    let with_removals = time(&removed);
    assert!(
        with_removals < alone * 10 + std::time::Duration::from_millis(50),
        "a pass took {with_removals:?} with 150 removals of nodes that never committed, {alone:?} without"
    );
}

/// A thief still trusted writes an "undo" naming an honest device that was
/// never removed, listing that device's old commits: no device takes it
/// back (a take-back would write those old changes again, signed by an
/// honest device).
#[test]
fn an_undo_naming_a_device_never_removed_is_never_taken_back() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("Personal", &f.keys).unwrap();
    let thief = thief();
    let h = RootKeypair::from_seed(&[8; 32]);
    let first = vault.write_secret(&f.db, &h, "github", b"old").unwrap();
    let head = vault.remove(&f.db, &h, "github", false).unwrap();
    let message = format!("Sync\n\n{UNDOES_DEVICE}{}\n{UNDOES}{first}", h.node_id());
    forge(&f, &vault, &thief, &head, &[&head], &message);
    let never_removed = |device: &str| device != h.node_id().to_string();
    let everyone = |_: &str| true;
    let pass = vault
        .undo_removed(&f.db, &f.keys, &[], &everyone, &never_removed)
        .unwrap();
    assert_eq!(pass, None);
    assert_eq!(
        text(&f, &vault, "github"),
        None,
        "the deleted secret came back"
    );
}

/// Two undo passes (the second once an older version was known) undo a
/// device's two edits of one secret in two parts; when the device is back,
/// both edits come back in their order, whatever order the parts are in.
#[test]
fn a_take_back_of_several_undos_puts_every_edit_back_in_order() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("Personal", &f.keys).unwrap();
    let r = thief();
    let before = vault.write_secret(&f.db, &f.keys, "wifi", b"A").unwrap();
    let r1 = vault.write_secret(&f.db, &r, "wifi", b"B").unwrap();
    vault.write_secret(&f.db, &r, "wifi", b"C").unwrap();
    let removed = |seen: &str| Removed {
        node: r.node_id(),
        seen: Some(seen.to_owned()),
        hold: false,
    };
    vault
        .undo_removed(&f.db, &f.keys, &[removed(&r1)], &honest, &once)
        .unwrap()
        .unwrap();
    assert_eq!(text(&f, &vault, "wifi").as_deref(), Some("B"));
    vault
        .undo_removed(&f.db, &f.keys, &[removed(&before)], &honest, &once)
        .unwrap()
        .unwrap();
    assert_eq!(text(&f, &vault, "wifi").as_deref(), Some("A"));
    vault
        .undo_removed(&f.db, &f.keys, &[], &honest, &once)
        .unwrap()
        .unwrap();
    assert_eq!(text(&f, &vault, "wifi").as_deref(), Some("C"));
}

/// A removal that names no version (a later one, say, without `heads`)
/// still counts: what was undone stays undone, and nothing more is.
#[test]
fn a_removal_with_no_version_holds_what_was_undone() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("Personal", &f.keys).unwrap();
    let r = thief();
    let seen = vault.write_secret(&f.db, &f.keys, "github", b"pw").unwrap();
    vault.write_secret(&f.db, &r, "github", b"stolen").unwrap();
    let removed = |seen: Option<String>, hold: bool| Removed {
        node: r.node_id(),
        seen,
        hold,
    };
    vault
        .undo_removed(
            &f.db,
            &f.keys,
            &[removed(Some(seen), false)],
            &honest,
            &once,
        )
        .unwrap()
        .unwrap();
    vault.write_secret(&f.db, &r, "bank", b"later").unwrap();
    let held = vault
        .undo_removed(&f.db, &f.keys, &[removed(None, true)], &honest, &once)
        .unwrap();
    assert_eq!(held, None);
    assert_eq!(text(&f, &vault, "github").as_deref(), Some("pw"));
}

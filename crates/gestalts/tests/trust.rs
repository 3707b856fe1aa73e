//! Devices learned through other devices, and devices removed: links and
//! revocations adopted only from their issuer's own chain, decided by claim
//! time whatever order they arrive in, and shown to the user.
#![allow(clippy::unwrap_used)]

use polykey_db::Db;
use polykey_gestalts::chains::MAX_CLOCK_SKEW_SECS;
use polykey_gestalts::{
    verify_continuation, ClaimError, ClaimType, GestaltGraph, MemberChains, Sigchain, SignedClaim,
};
use polykey_keys::{NodeId, RootKeypair};

struct Device {
    _dir: tempfile::TempDir,
    keys: RootKeypair,
    db: Db,
}

fn device(seed: u8) -> Device {
    let dir = tempfile::tempdir().unwrap();
    let keys = RootKeypair::from_seed(&[seed; 32]);
    let db = Db::create(&dir.path().join("db.redb"), &keys).unwrap();
    Device {
        _dir: dir,
        keys,
        db,
    }
}

impl Device {
    fn id(&self) -> NodeId {
        self.keys.node_id()
    }
    fn chain(&self) -> Sigchain<'_> {
        Sigchain::new(&self.db, self.id())
    }
    fn graph(&self) -> GestaltGraph<'_> {
        GestaltGraph::new(&self.db)
    }
    fn members(&self) -> Vec<NodeId> {
        self.graph()
            .gestalt_of(self.id())
            .unwrap()
            .into_iter()
            .collect()
    }
    /// Take `other`'s chain (what a sync sends) and adopt its new claims.
    fn adopt_from(&self, other: &Device, now_secs: u64) -> Result<bool, ClaimError> {
        let chains = MemberChains::new(&self.db);
        let head = chains.head(&other.id())?;
        let seq = head.as_ref().map_or(0, |h| h.seq);
        let new = other.chain().claims_after(seq, 1000)?;
        let verified = verify_continuation(&other.id(), head.as_ref(), &new, now_secs)?;
        let adopted = self.graph().adopt(self.id(), other.id(), &verified)?;
        chains.append(&other.id(), head.as_ref(), &verified)?;
        Ok(adopted.changed())
    }
}

const NOW_S: u64 = 1_790_000_000;

/// Pairing: both claims on both chains, both links recorded.
fn pair(x: &Device, y: &Device, at_s: u64) {
    for (issuer, subject) in [(x, y), (y, x)] {
        let payload = issuer
            .chain()
            .next_payload(ClaimType::ClaimLinkNode, subject.id(), at_s * 1000)
            .unwrap();
        let mut claim = SignedClaim::issue(&payload, &issuer.keys).unwrap();
        claim.countersign(&subject.keys).unwrap();
        issuer.chain().append(&claim).unwrap();
        x.graph().add_link(&claim).unwrap();
        y.graph().add_link(&claim).unwrap();
    }
}

fn revoke(issuer: &Device, node: NodeId, at_s: u64) {
    let payload = issuer
        .chain()
        .next_payload(ClaimType::ClaimRevokeNode, node, at_s * 1000)
        .unwrap();
    let claim = SignedClaim::issue(&payload, &issuer.keys).unwrap();
    issuer.chain().append(&claim).unwrap();
    issuer.graph().revoke(issuer.id(), &claim).unwrap();
}

#[test]
fn a_device_added_elsewhere_shows_up_as_a_notice_and_its_removal_sticks() {
    let (a, b, x) = (device(1), device(2), device(3));
    pair(&a, &b, NOW_S);
    // B (perhaps stolen) links a fresh key X.
    pair(&b, &x, NOW_S + 10);
    assert!(a.adopt_from(&b, NOW_S + 20).unwrap());
    assert!(a.members().contains(&x.id()));
    let notices = a.graph().notices(a.id()).unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!((notices[0].device, notices[0].added_by), (x.id(), b.id()));
    assert_eq!(notices[0].added_at, NOW_S + 10);

    // One action removes it: a revocation on A's chain.
    revoke(&a, x.id(), NOW_S + 30);
    assert!(!a.members().contains(&x.id()));
    assert!(a.graph().notices(a.id()).unwrap().is_empty());
    // B's chain offers the old link again (a fresh copy of A's store sees
    // it anew): it stays out.
    let fresh = device(1);
    pair(&fresh, &b, NOW_S);
    fresh.adopt_from(&a, NOW_S + 40).unwrap();
    fresh.adopt_from(&b, NOW_S + 40).unwrap();
    assert!(
        !fresh.members().contains(&x.id()),
        "the revocation wins over the older link"
    );
    // B, learning A's revocation, drops X too.
    b.adopt_from(&a, NOW_S + 40).unwrap();
    assert!(!b.members().contains(&x.id()));
    // Only a newer pairing brings it back.
    pair(&a, &x, NOW_S + 50);
    assert!(a.members().contains(&x.id()));
    b.adopt_from(&a, NOW_S + 60).unwrap();
    assert!(b.members().contains(&x.id()));
}

#[test]
fn claims_from_outside_dated_ahead_or_about_me_change_nothing() {
    let (a, b, stranger) = (device(1), device(2), device(9));
    pair(&a, &b, NOW_S);
    // A stranger's chain linking to B is not adopted: the stranger is not
    // a member, so its claims are not looked at.
    let (s, t) = (device(10), device(11));
    pair(&s, &t, NOW_S);
    assert!(!a.adopt_from(&s, NOW_S).unwrap());
    assert_eq!(a.members().len(), 2);

    // A member revoking this device: ignored here (the others obey it).
    revoke(&b, a.id(), NOW_S + 5);
    a.adopt_from(&b, NOW_S + 6).unwrap();
    assert!(a.members().contains(&a.id()) && a.members().contains(&b.id()));

    // A link dated far ahead (it would outrank every revocation until then)
    // is refused, and nothing of that chain is taken.
    pair(&b, &stranger, NOW_S + 10 * MAX_CLOCK_SKEW_SECS);
    let err = a.adopt_from(&b, NOW_S + 7).unwrap_err();
    assert!(err.to_string().contains("future"), "{err}");
    assert!(!a.members().contains(&stranger.id()));
}

#[test]
fn a_forged_or_broken_continuation_is_refused() {
    let (a, b) = (device(1), device(2));
    pair(&a, &b, NOW_S);
    let claims = b.chain().claims().unwrap();
    // Claimed to be A's chain: issued by another node.
    assert!(verify_continuation(&a.id(), None, &claims, NOW_S).is_err());
    // Skipping the first claim breaks the sequence.
    let mut extra = b.chain().claims().unwrap();
    let payload = b
        .chain()
        .next_payload(ClaimType::ClaimRevokeNode, a.id(), NOW_S * 1000)
        .unwrap();
    extra.push(SignedClaim::issue(&payload, &b.keys).unwrap());
    assert!(verify_continuation(&b.id(), None, &extra[1..], NOW_S).is_err());
    // A revocation countersigned by its subject is not a revocation.
    let mut cosigned = SignedClaim::issue(&payload, &b.keys).unwrap();
    cosigned.countersign(&a.keys).unwrap();
    assert!(cosigned.verify().is_err());
}

/// Adopt `from`'s chains the way a pull does: every chain at once, through
/// [`GestaltGraph::adopt_chains`]. Returns the devices noticed.
fn pull(d: &Device, from: &[&Device], now_secs: u64) -> Vec<NodeId> {
    pull_adopted(d, from, now_secs).noticed
}

/// [`pull`], returning all the adoption reports.
fn pull_adopted(d: &Device, from: &[&Device], now_secs: u64) -> polykey_gestalts::Adopted {
    let chains = MemberChains::new(&d.db);
    let mut updates = Vec::new();
    for other in from {
        let head = chains.head(&other.id()).unwrap();
        let seq = head.as_ref().map_or(0, |h| h.seq);
        let new = other.chain().claims_after(seq, 1000).unwrap();
        if let Ok(claims) = verify_continuation(&other.id(), head.as_ref(), &new, now_secs) {
            updates.push((other.id(), head, claims));
        }
    }
    d.graph().adopt_chains(d.id(), &chains, updates).unwrap()
}

/// A link claim issued by `issuer` about `subject`, countersigned, put on
/// the issuer's chain only (a thief serves whatever chains it likes).
fn link_one_way(issuer: &Device, subject: &Device, at_s: u64) {
    let payload = issuer
        .chain()
        .next_payload(ClaimType::ClaimLinkNode, subject.id(), at_s * 1000)
        .unwrap();
    let mut claim = SignedClaim::issue(&payload, &issuer.keys).unwrap();
    claim.countersign(&subject.keys).unwrap();
    issuer.chain().append(&claim).unwrap();
}

/// A thief holding T's keys makes a fresh key X (a sock puppet) and pairs
/// it with T; B is told "T added X" and adopts X's chain. The puppet's own
/// half of the link is the same link as T's, so it cannot outrank a
/// revocation of T (defeated: a regression test).
#[test]
fn a_thief_s_sock_puppet_link_does_not_void_the_revocation_of_the_thief() {
    let (a, b, t, x) = (device(1), device(2), device(3), device(4));
    pair(&a, &b, NOW_S);
    pair(&a, &t, NOW_S);
    pull(&b, &[&a], NOW_S + 1);
    assert!(b.members().contains(&t.id()));
    // The thief pairs its puppet: both halves, the puppet's dated ahead.
    pair(&t, &x, NOW_S + MAX_CLOCK_SKEW_SECS / 2);
    let noticed = pull(&b, &[&a, &t], NOW_S + 20);
    assert_eq!(noticed, vec![x.id()]);
    pull(&b, &[&x], NOW_S + 21);
    // A's person removes the thief.
    revoke(&a, t.id(), NOW_S + 40);
    pull(&b, &[&a, &t, &x], NOW_S + 50);
    assert!(!b.members().contains(&t.id()));
}

/// Two puppets: T links X, X links Y, and Y links T on Y's chain only,
/// dated a few minutes ahead (within the allowed clock skew). That link is
/// "newer than" A's later removal of T and not made by T, so B drops A's
/// revocation as if a person had paired T afresh, even after B's person
/// removed both puppets.
#[test]

fn a_thief_s_second_puppet_linking_back_does_not_void_the_revocation_of_the_thief() {
    let (a, b, t, x, y) = (device(1), device(2), device(3), device(4), device(5));
    pair(&a, &b, NOW_S);
    pair(&a, &t, NOW_S);
    pull(&b, &[&a], NOW_S + 1);
    pair(&t, &x, NOW_S + 10);
    pull(&b, &[&a, &t], NOW_S + 20);
    pair(&x, &y, NOW_S + 11);
    pull(&b, &[&x], NOW_S + 21);
    link_one_way(&y, &t, NOW_S + MAX_CLOCK_SKEW_SECS / 2);
    pull(&b, &[&y], NOW_S + 22);
    assert!(b.members().contains(&y.id()));
    // B's person removes both puppets; A's person removes the thief.
    revoke(&b, x.id(), NOW_S + 30);
    revoke(&b, y.id(), NOW_S + 31);
    revoke(&a, t.id(), NOW_S + 40);
    pull(&b, &[&a, &t, &x, &y], NOW_S + 50);
    assert!(
        !b.members().contains(&t.id()),
        "A's removal of the thief is lost on B: T is still a member"
    );
    assert!(b.graph().revocation(&t.id()).unwrap().is_some());
}

/// The pairing exchange between `a` (inviter) and `b` (joiner), with the
/// inviter's list of devices replaced by `listed` when given (a thief's
/// inviter can send anything).
fn pair_through(
    a: &Device,
    b: &Device,
    listed: Option<Vec<NodeId>>,
    now: u64,
) -> Result<(), polykey_gestalts::pairing::PairingError> {
    use polykey_gestalts::pairing::{Inviter, Joiner, PairingMessage};
    let mut inviter = Inviter::new(a.id(), vec![], now);
    let words = inviter.invitation().words().to_owned();
    let (mut joiner, hello) = Joiner::start(a.id(), b.id(), &words, None);
    let (mut session, challenge) = inviter.on_hello(hello, now)?;
    let proof = joiner.on_challenge(challenge, &b.keys, &b.chain(), now)?;
    inviter.check_proof(&session, &proof)?;
    let mut claims = inviter.on_proof(&mut session, proof, &a.keys, &a.chain(), &a.graph(), now)?;
    if let (Some(listed), PairingMessage::Claims { devices, .. }) = (listed, &mut claims) {
        *devices = listed;
    }
    let done = joiner.on_claims(claims, &b.keys, &b.chain(), &b.graph())?;
    session.on_done(done, &a.chain(), &a.graph())?;
    Ok(())
}

/// A compromised inviter T lists, as "devices its person knows", a key X
/// that is linked nowhere yet. Later T links X: the new device C must be
/// told, since nobody ever saw X. (The list is taken on the inviter's word,
/// not checked against the inviter's links at the time.)
#[test]

fn an_inviter_cannot_pre_acknowledge_a_device_that_is_not_linked_yet() {
    let (a, t, c, x) = (device(1), device(2), device(3), device(4));
    pair(&a, &t, NOW_S);
    pair_through(&t, &c, Some(vec![a.id(), x.id()]), NOW_S + 5).unwrap();
    pull(&c, &[&t, &a], NOW_S + 6);
    assert!(c.members().contains(&a.id()));
    // Later the thief links its puppet.
    pair(&t, &x, NOW_S + 100);
    let noticed = pull(&c, &[&t], NOW_S + 101);
    assert!(c.members().contains(&x.id()));
    assert_eq!(
        noticed,
        vec![x.id()],
        "X joined C's gestalt without a notice"
    );
}

/// An honest inviter's list leaves no notice for what its person knows
/// (regression test for the list itself).
#[test]
fn the_devices_an_honest_inviter_lists_get_no_notice_on_the_joiner() {
    let (a, b, c) = (device(1), device(2), device(3));
    pair(&a, &b, NOW_S);
    pair_through(&b, &c, None, NOW_S + 5).unwrap();
    let noticed = pull(&c, &[&b, &a], NOW_S + 6);
    assert!(noticed.is_empty(), "{noticed:?}");
    assert!(c.members().contains(&a.id()));
}

/// A list over the bound is refused, and a refused pairing records
/// nothing on the joiner (no claim on its chain, no link).
#[test]

fn an_over_long_device_list_is_refused_before_anything_is_recorded() {
    use polykey_gestalts::pairing::MAX_KNOWN_DEVICES;
    let (a, c) = (device(1), device(3));
    let many: Vec<NodeId> = (0..=MAX_KNOWN_DEVICES)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            RootKeypair::from_seed(&seed).node_id()
        })
        .collect();
    let err = pair_through(&a, &c, Some(many), NOW_S).unwrap_err();
    assert!(err.to_string().contains("too many"), "{err}");
    assert!(
        c.chain().claims().unwrap().is_empty(),
        "the joiner's chain holds a claim of a refused pairing"
    );
    assert!(
        !c.members().contains(&a.id()),
        "the joiner is linked to the inviter of a refused pairing"
    );
}

/// The first claim of a fresh key's chain: a link to `subject`, which
/// countersigns (computed on an empty scratch chain, never stored).
fn first_link(scratch: &Db, issuer: &RootKeypair, subject: &RootKeypair, at_s: u64) -> SignedClaim {
    let payload = Sigchain::new(scratch, issuer.node_id())
        .next_payload(ClaimType::ClaimLinkNode, subject.node_id(), at_s * 1000)
        .unwrap();
    let mut claim = SignedClaim::issue(&payload, issuer).unwrap();
    claim.countersign(subject).unwrap();
    claim
}

/// A thief's puppets, each a member, each linking one more key in the same
/// pull: every chain changes the gestalt. `adopt_chains` used to read the
/// whole graph again (every link's claim decoded) after each one, under the
/// node's state lock: chains × links (386 s here), not the new claims.
#[test]
fn many_puppets_each_adding_a_link_are_adopted_in_time_linear_in_the_new_claims() {
    const PUPPETS: usize = 256;
    const LINKS: usize = 3_000;
    let (a, b, t) = (device(1), device(2), device(3));
    let scratch = device(4);
    pair(&a, &b, NOW_S);
    pair(&a, &t, NOW_S);
    pull(&b, &[&a], NOW_S + 1);
    // The thief links many keys over earlier pulls (a notice each, which
    // nobody has answered yet).
    let keys: Vec<RootKeypair> = (0..LINKS)
        .map(|i| {
            let mut seed = [5u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            RootKeypair::from_seed(&seed)
        })
        .collect();
    for batch in keys.chunks(1_000) {
        for key in batch {
            let payload = t
                .chain()
                .next_payload(ClaimType::ClaimLinkNode, key.node_id(), (NOW_S + 2) * 1000)
                .unwrap();
            let mut claim = SignedClaim::issue(&payload, &t.keys).unwrap();
            claim.countersign(key).unwrap();
            t.chain().append(&claim).unwrap();
        }
        pull(&b, &[&t], NOW_S + 3);
    }
    pull(&b, &[&t], NOW_S + 3);
    assert_eq!(b.members().len(), 3 + LINKS);
    // One pull: PUPPETS of them link one fresh key each.
    let chains = MemberChains::new(&b.db);
    let updates: Vec<_> = keys[..PUPPETS]
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let mut seed = [6u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let fresh = RootKeypair::from_seed(&seed);
            let claim = first_link(&scratch.db, key, &fresh, NOW_S + 4);
            let claims = verify_continuation(&key.node_id(), None, &[claim], NOW_S + 5).unwrap();
            (key.node_id(), None, claims)
        })
        .collect();
    // One chain first, then all the others in one pull: reading the graph
    // once is the same for both, so the second may cost more only by its
    // new claims, not by chains × links.
    let mut updates = updates.into_iter();
    let first: Vec<_> = updates.by_ref().take(1).collect();
    let started = std::time::Instant::now();
    let adopted = b.graph().adopt_chains(b.id(), &chains, first).unwrap();
    let one = started.elapsed();
    assert_eq!(adopted.joined.len(), 1);
    let started = std::time::Instant::now();
    let adopted = b
        .graph()
        .adopt_chains(b.id(), &chains, updates.collect())
        .unwrap();
    let many = started.elapsed();
    assert_eq!(adopted.joined.len(), PUPPETS - 1);
    assert!(
        many < one * 3,
        "adopting {} chains of one new claim over {LINKS} links took {many:?}, one took {one:?}",
        PUPPETS - 1
    );
}

/// As above, but the user removes only the thief (its puppets hang on it
/// alone, so they would go with it), or removes the thief first and its
/// puppets after, in that order on one chain. Y is still a member when A's
/// revocation of T is read, but only through T: a link made by a device
/// reachable only through the revoked node is the revoked node's own doing
/// and must not outrank its revocation.
#[test]
fn a_thief_s_puppets_reachable_only_through_it_do_not_void_its_revocation() {
    for remove_puppets_too in [true, false] {
        let (a, b, t, x, y) = (device(1), device(2), device(3), device(4), device(5));
        pair(&a, &b, NOW_S);
        pair(&a, &t, NOW_S);
        pull(&b, &[&a], NOW_S + 1);
        pair(&t, &x, NOW_S + 10);
        pull(&b, &[&a, &t], NOW_S + 20);
        pair(&x, &y, NOW_S + 11);
        pull(&b, &[&x], NOW_S + 21);
        link_one_way(&y, &t, NOW_S + MAX_CLOCK_SKEW_SECS / 2);
        pull(&b, &[&y], NOW_S + 22);
        revoke(&a, t.id(), NOW_S + 40);
        if remove_puppets_too {
            revoke(&a, x.id(), NOW_S + 41);
            revoke(&a, y.id(), NOW_S + 42);
        }
        pull(&b, &[&a, &t, &x, &y], NOW_S + 50);
        assert!(
            !b.members().contains(&t.id()),
            "A's removal of the thief is lost on B (puppets removed too: {remove_puppets_too})"
        );
    }
}

/// The store with someone's hands in it: the gestalt tables' sets of
/// records are authenticated, so a row deleted or put back with plain redb
/// (no password needed) is refused at the next unlock, never taken as the
/// truth.
mod tampering {
    use std::path::Path;

    use polykey_db::{Db, DbError};
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};

    use super::{device, pair, revoke, Device, NOW_S};
    use polykey_gestalts::MemberChains;

    fn def(table: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
        TableDefinition::new(table)
    }

    /// Close `d`'s store, let `edit` change the file, and open it again.
    fn reopen(d: Device, edit: impl FnOnce(&Path)) -> Result<Device, DbError> {
        let Device { _dir, keys, db } = d;
        drop(db);
        let path = _dir.path().join("db.redb");
        edit(&path);
        let db = Db::open(&path, &keys)?;
        Ok(Device { _dir, keys, db })
    }

    fn rows(path: &Path, table: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let db = redb::Database::open(path).unwrap();
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(def(table)).unwrap();
        t.iter()
            .unwrap()
            .map(|row| {
                let (k, v) = row.unwrap();
                (k.value().to_vec(), v.value().to_vec())
            })
            .collect()
    }

    fn delete_all(path: &Path, table: &str) {
        let doomed = rows(path, table);
        assert!(!doomed.is_empty(), "nothing to delete in {table}");
        let db = redb::Database::open(path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(def(table)).unwrap();
            for (k, _) in &doomed {
                t.remove(k.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
    }

    fn put_back(path: &Path, table: &str, saved: &[(Vec<u8>, Vec<u8>)]) {
        let db = redb::Database::open(path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(def(table)).unwrap();
            for (k, v) in saved {
                t.insert(k.as_slice(), v.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
    }

    fn assert_tampered(result: Result<Device, DbError>, table: &str) {
        match result {
            Err(DbError::Tampered { table: found }) => assert_eq!(found, table),
            Err(e) => panic!("expected tampering in {table}, got {e:?}"),
            Ok(d) => panic!(
                "the tampered store opened; A's gestalt: {:?}",
                d.graph().gestalt_of(d.id())
            ),
        }
    }

    #[test]
    fn revocations_deleted_from_the_file_do_not_bring_a_device_back() {
        let (a, x) = (device(1), device(2));
        pair(&a, &x, NOW_S);
        revoke(&a, x.id(), NOW_S + 10);
        assert!(!a.members().contains(&x.id()));
        // Today's store without the finding: an intact file reopens as it was.
        let a = reopen(a, |_| {}).unwrap();
        assert!(!a.members().contains(&x.id()));
        assert_tampered(
            reopen(a, |path| delete_all(path, "gestalt_revoked")),
            "gestalt_revoked",
        );
    }

    #[test]
    fn a_notice_deleted_from_the_file_is_not_hidden() {
        let (a, b, x) = (device(1), device(2), device(3));
        pair(&a, &b, NOW_S);
        pair(&b, &x, NOW_S + 10);
        a.adopt_from(&b, NOW_S + 20).unwrap();
        assert_eq!(a.graph().notices(a.id()).unwrap().len(), 1);
        assert_tampered(
            reopen(a, |path| delete_all(path, "gestalt_notices")),
            "gestalt_notices",
        );
    }

    #[test]
    fn a_removed_link_put_back_does_not_bring_a_device_back() {
        let (a, x) = (device(1), device(2));
        pair(&a, &x, NOW_S);
        let mut saved = Vec::new();
        let a = reopen(a, |path| saved = rows(path, "gestalt_links")).unwrap();
        assert!(a.graph().remove_link(a.id(), x.id()).unwrap());
        assert!(!a.members().contains(&x.id()));
        assert_tampered(
            reopen(a, |path| put_back(path, "gestalt_links", &saved)),
            "gestalt_links",
        );
    }

    #[test]
    fn a_used_acknowledgement_put_back_does_not_silence_a_notice() {
        let (a, x) = (device(1), device(2));
        a.graph().acknowledge(&[x.id()]).unwrap();
        let mut saved = Vec::new();
        let a = reopen(a, |path| saved = rows(path, "gestalt_acknowledged")).unwrap();
        // The first adoption after pairing uses the list up.
        let copies = MemberChains::new(&a.db);
        a.graph().adopt_chains(a.id(), &copies, Vec::new()).unwrap();
        assert_tampered(
            reopen(a, |path| put_back(path, "gestalt_acknowledged", &saved)),
            "gestalt_acknowledged",
        );
    }

    #[test]
    fn an_untouched_store_still_opens_with_its_gestalt() {
        let (a, b) = (device(1), device(2));
        pair(&a, &b, NOW_S);
        let a = reopen(a, |_| {}).unwrap();
        assert!(a.members().contains(&b.id()));
        assert!(a.graph().revocations().unwrap().is_empty());
    }
}

/// The disputes `d` shows: each device with the devices that removed it.
fn disputes(d: &Device) -> Vec<(NodeId, Vec<NodeId>)> {
    d.graph()
        .disputes(d.id())
        .unwrap()
        .into_iter()
        .map(|x| (x.device, x.removed_by))
        .collect()
}

/// A (the user's) and B are paired, A paired T, which B learns from A. T
/// (stolen) removes A: T hangs on A alone, so B cannot take T's word (T
/// is a device through A only), nor A's: both are out on B, shown as a
/// dispute. A second later the user removes T on A; B, pulling A's chain
/// (still read, A being contested), still cannot tell which of the two is
/// the thief (the chains hold the same shape either way): the dispute
/// stays until the user removes T on B. Then A is a device again there.
#[test]
fn the_user_removing_a_thief_that_removed_them_first_is_a_device_again_elsewhere() {
    let (a, b, t) = (device(1), device(2), device(3));
    pair(&a, &b, NOW_S);
    pair(&a, &t, NOW_S + 10);
    pull(&a, &[&t], NOW_S + 15);
    pull(&b, &[&a], NOW_S + 20);
    assert!(b.members().contains(&t.id()));
    revoke(&t, a.id(), NOW_S + 30);
    pull(&b, &[&t], NOW_S + 40);
    assert!(!b.members().contains(&a.id()), "B takes A out");
    assert!(
        !b.members().contains(&t.id()),
        "and T, a device through A only"
    );
    assert!(b.graph().contested(b.id()).unwrap().contains(&a.id()));
    let mut shown = disputes(&b);
    shown.sort();
    let mut both = vec![(a.id(), vec![t.id()]), (t.id(), vec![])];
    both.sort();
    assert_eq!(shown, both, "B shows the dispute at once");
    // A never obeys a removal of itself, but tells its user of it.
    let on_a = pull_adopted(&a, &[&t], NOW_S + 41);
    assert_eq!(on_a.removed_me, vec![t.id()]);
    assert!(a.members().contains(&t.id()));
    revoke(&a, t.id(), NOW_S + 31);
    pull(&b, &[&a], NOW_S + 50);
    let members = b.members();
    assert!(!members.contains(&a.id()) && !members.contains(&t.id()));
    let mut both = vec![(a.id(), vec![t.id()]), (t.id(), vec![a.id()])];
    both.sort();
    let mut shown = disputes(&b);
    shown.sort();
    assert_eq!(shown, both, "B shows the dispute");
    // On A, its own removal holds.
    assert!(!a.members().contains(&t.id()) && a.members().contains(&b.id()));
    assert!(disputes(&a).is_empty());
    // The user decides on B.
    revoke(&b, t.id(), NOW_S + 60);
    let members = b.members();
    assert!(members.contains(&a.id()), "A is back on B");
    assert!(!members.contains(&t.id()), "the thief is out on B");
    assert!(disputes(&b).is_empty());
}

/// The user removes the thief first; the thief answers by removing the
/// user's device, dated later (and again after each new removal: it
/// always had the last word). On a third device where the thief was
/// paired too, neither stands: the thief's answer cannot make it a device
/// there; a device it removed meanwhile is out there too until the user
/// decides (failing closed), and one decision on a device the thief did
/// not remove settles it everywhere that device stands.
#[test]
fn a_thief_answering_the_users_removal_stands_nowhere() {
    let (a, b, c, t) = (device(1), device(2), device(3), device(4));
    pair(&a, &b, NOW_S);
    pair(&a, &c, NOW_S + 1);
    pair(&b, &c, NOW_S + 2);
    pair(&a, &t, NOW_S + 10);
    pair(&b, &t, NOW_S + 11);
    pull(&a, &[&t], NOW_S + 15);
    pull(&b, &[&a, &t], NOW_S + 20);
    pull(&c, &[&a, &b], NOW_S + 20);
    revoke(&a, t.id(), NOW_S + 30);
    pull(&b, &[&a], NOW_S + 31);
    assert!(!b.members().contains(&t.id()));
    // The thief answers, a minute later, and removes C too.
    revoke(&t, a.id(), NOW_S + 90);
    revoke(&t, c.id(), NOW_S + 91);
    pull(&b, &[&t], NOW_S + 100);
    pull(&c, &[&t, &a], NOW_S + 100);
    let members = b.members();
    assert!(!members.contains(&t.id()), "the thief is not a device of B");
    assert!(
        !members.contains(&a.id()),
        "nor is A until the user decides"
    );
    // Having answered, the thief is heard: its removal of C keeps C out
    // too until the user decides (failing closed).
    assert!(!members.contains(&c.id()), "nor C, which the thief removed");
    assert_eq!(disputes(&b).len(), 3);
    // On C, A and the thief are out, and C stands.
    assert!(!c.members().contains(&t.id()) && !c.members().contains(&a.id()));
    assert_eq!(disputes(&c).len(), 2);
    // One decision on B, which the thief did not remove, settles it there
    // and on C, where B stands.
    revoke(&b, t.id(), NOW_S + 120);
    let members = b.members();
    assert!(members.contains(&a.id()) && members.contains(&c.id()));
    assert!(!members.contains(&t.id()) && disputes(&b).is_empty());
    pull(&c, &[&b], NOW_S + 130);
    let members = c.members();
    assert!(members.contains(&a.id()) && !members.contains(&t.id()));
    assert!(disputes(&c).is_empty());
    // (A decision on C alone would not have: the thief removed C, so C's
    // removal of it is one more dispute on B.)
}

/// The thief links a puppet P and removes it at once (so it never shows as
/// a device), and P, whose chain could be read while it is out, removes
/// the user's devices A and B. When the user removes the thief on C, P's
/// one remover falls and P stands (out of reach, never shown): had P's
/// removals been taken, A and B would have fallen with the thief,
/// unannounced. A node out is heard only once it answered its removers.
#[test]
fn a_puppet_removed_at_once_does_not_lie_in_wait() {
    let (a, b, c, t, p) = (device(1), device(2), device(3), device(4), device(5));
    pair(&a, &b, NOW_S);
    pair(&a, &c, NOW_S + 1);
    pair(&b, &c, NOW_S + 2);
    pair(&a, &t, NOW_S + 10);
    pull(&c, &[&a], NOW_S + 11);
    pull(&c, &[&t], NOW_S + 12);
    pair(&t, &p, NOW_S + 20);
    revoke(&t, p.id(), NOW_S + 21);
    revoke(&p, a.id(), NOW_S + 22);
    revoke(&p, b.id(), NOW_S + 23);
    pull(&c, &[&t], NOW_S + 30);
    pull(&c, &[&p], NOW_S + 31);
    let members = c.members();
    assert!(members.contains(&a.id()) && members.contains(&b.id()));
    revoke(&c, t.id(), NOW_S + 40);
    let members = c.members();
    assert!(!members.contains(&t.id()) && !members.contains(&p.id()));
    assert!(members.contains(&a.id()), "A fell with the thief");
    assert!(members.contains(&b.id()), "B fell with the thief");
}

/// The thief links a puppet P, whose chain A and C take while P is a
/// device: P removes B, and B is out there (P stood). Then the thief
/// removes P (B is back), and the user removes the thief on A. P's one
/// remover falls, but nothing joins P to the user's devices any more: its
/// removal of B neither counts nor is ignored (a laptop paired through a
/// device since removed looks the same). B is disputed with P on A, shown
/// to the user, until the user removes P; then B is back on A and C.
/// (B fell with the thief on A and C, unannounced.)
#[test]
fn a_puppet_whose_removals_were_taken_while_it_was_a_device_does_not_lie_in_wait() {
    let (a, b, c, t, p) = (device(1), device(2), device(3), device(4), device(5));
    pair(&a, &b, NOW_S);
    pair(&a, &c, NOW_S + 1);
    pair(&b, &c, NOW_S + 2);
    pair(&a, &t, NOW_S + 10);
    pull(&c, &[&a], NOW_S + 11);
    pair(&t, &p, NOW_S + 20);
    revoke(&p, b.id(), NOW_S + 21);
    for d in [&a, &c] {
        pull(d, &[&t], NOW_S + 22);
        pull(d, &[&p], NOW_S + 23);
        assert!(d.members().contains(&p.id()));
        assert!(!d.members().contains(&b.id()), "P, a device, removed B");
    }
    revoke(&t, p.id(), NOW_S + 30);
    for d in [&a, &c] {
        pull(d, &[&t], NOW_S + 31);
        assert!(d.members().contains(&b.id()), "P is out, so B is back");
    }
    revoke(&a, t.id(), NOW_S + 40);
    pull(&c, &[&a], NOW_S + 41);
    assert!(!a.members().contains(&b.id()));
    let mut shown = disputes(&a);
    shown.sort();
    let mut expected = vec![(b.id(), vec![p.id()]), (p.id(), vec![])];
    expected.sort();
    assert_eq!(shown, expected, "A shows B removed by P");
    revoke(&a, p.id(), NOW_S + 50);
    pull(&c, &[&a], NOW_S + 51);
    for d in [&a, &c] {
        let members = d.members();
        assert!(!members.contains(&t.id()) && !members.contains(&p.id()));
        assert!(members.contains(&b.id()), "B fell with the thief");
        assert!(disputes(d).is_empty());
    }
}

/// The user's laptop L, paired only through the phone P, removes a stolen
/// tablet T; later the user retires the phone on the desktop D. L is out
/// of reach, but nobody removed it: its removal of T is not dropped (T
/// was a device of D again, unannounced), T is disputed with L on D until
/// the user removes T there.
#[test]
fn a_removal_by_a_device_out_of_reach_keeps_a_thief_out() {
    let (d, p, l, t) = (device(1), device(2), device(3), device(4));
    pair(&d, &p, NOW_S);
    pair(&p, &l, NOW_S + 1);
    pair(&d, &t, NOW_S + 2);
    pull(&d, &[&p], NOW_S + 5);
    revoke(&l, t.id(), NOW_S + 10);
    pull(&d, &[&l], NOW_S + 11);
    assert!(!d.members().contains(&t.id()));
    revoke(&d, p.id(), NOW_S + 20);
    assert!(!d.members().contains(&t.id()), "T is a device again");
    let mut shown = disputes(&d);
    shown.sort();
    let mut expected = vec![(t.id(), vec![l.id()]), (l.id(), vec![])];
    expected.sort();
    assert_eq!(shown, expected);
    revoke(&d, t.id(), NOW_S + 30);
    assert!(!d.members().contains(&t.id()) && disputes(&d).is_empty());
}

/// The user retires the laptop L, which had removed a stolen tablet T: a
/// removed device's removals count for nothing, so T would come back. The
/// graph names what L removed, for the app to ask (and remove with it).
#[test]
fn what_a_retired_device_removed_is_named_before_it_comes_back() {
    let (d, l, t) = (device(1), device(2), device(3));
    pair(&d, &l, NOW_S);
    pair(&d, &t, NOW_S + 1);
    revoke(&l, t.id(), NOW_S + 10);
    pull(&d, &[&l], NOW_S + 11);
    assert!(!d.members().contains(&t.id()));
    assert_eq!(
        d.graph().removal_effect(d.id(), l.id()).unwrap().back,
        vec![(t.id(), false)],
        "T comes back with L's removal"
    );
    // The user keeps T out: removed here first, while L still keeps it
    // out, T is never a device meanwhile; then nothing comes back with L.
    revoke(&d, t.id(), NOW_S + 19);
    assert!(d
        .graph()
        .removal_effect(d.id(), l.id())
        .unwrap()
        .back
        .is_empty());
    revoke(&d, l.id(), NOW_S + 20);
    assert!(!d.members().contains(&t.id()));
    // A device in a dispute with the one removed is named as such.
    let (a, b, x) = (device(4), device(5), device(6));
    pair(&a, &b, NOW_S);
    pair(&b, &x, NOW_S + 1);
    pull(&a, &[&b], NOW_S + 2);
    revoke(&x, b.id(), NOW_S + 10);
    revoke(&b, x.id(), NOW_S + 11);
    pull(&a, &[&x], NOW_S + 12);
    pull(&a, &[&b], NOW_S + 13);
    assert_eq!(
        a.graph().removal_effect(a.id(), x.id()).unwrap().back,
        vec![(b.id(), true)]
    );
    // A device joined only through the one removed goes with it.
    let (p, q, r) = (device(7), device(8), device(9));
    pair(&p, &q, NOW_S);
    pair(&q, &r, NOW_S + 1);
    pull(&p, &[&q], NOW_S + 2);
    let effect = p.graph().removal_effect(p.id(), q.id()).unwrap();
    assert_eq!((effect.back, effect.going), (vec![], vec![r.id()]));
}

/// The thief holds two devices, T1 (paired with A) and T2 (paired with
/// B). T1 removes A, and B obeys; the user removes both thieves on A. B
/// takes A's removals (A answered T1, its remover): T2 is out on B, in
/// the dispute, whichever of the chains B read first. Taking only A's
/// answer (its removal of T1) left T2 a device of B.
#[test]
fn a_cut_off_devices_removal_of_a_second_thief_counts_once_it_answered() {
    for thief_first in [true, false] {
        let (a, b, t1, t2) = (device(1), device(2), device(3), device(4));
        pair(&a, &b, NOW_S);
        pair(&a, &t1, NOW_S + 1);
        pair(&b, &t2, NOW_S + 2);
        pull(&b, &[&a], NOW_S + 5);
        pull(&a, &[&b], NOW_S + 5);
        revoke(&t1, a.id(), NOW_S + 10);
        if thief_first {
            pull(&b, &[&t1], NOW_S + 11);
        }
        revoke(&a, t1.id(), NOW_S + 12);
        revoke(&a, t2.id(), NOW_S + 13);
        pull(&b, &[&a], NOW_S + 20);
        pull(&b, &[&t1], NOW_S + 21);
        let members = b.members();
        assert!(
            !members.contains(&t2.id()),
            "T2 stands on B ({thief_first})"
        );
        assert!(
            !members.contains(&t1.id()),
            "T1 stands on B ({thief_first})"
        );
    }
}

/// What a node's pull of `from` takes, as the node does it: `from`'s own
/// chain and its copies of the other members' chains, after what `d` has.
fn pull_as_node(d: &Device, from: &Device, now_secs: u64) -> bool {
    let chains = MemberChains::new(&d.db);
    let theirs = MemberChains::new(&from.db);
    let mut updates = Vec::new();
    for node in from.members() {
        if node == d.id() {
            continue;
        }
        let head = chains.head(&node).unwrap();
        let seq = head.as_ref().map_or(0, |h| h.seq);
        let new = if node == from.id() {
            from.chain().claims_after(seq, 1000).unwrap()
        } else {
            theirs.claims_after(&node, seq, 1000).unwrap()
        };
        if new.is_empty() {
            continue;
        }
        if let Ok(claims) = verify_continuation(&node, head.as_ref(), &new, now_secs) {
            updates.push((node, head, claims));
        }
    }
    d.graph()
        .adopt_chains(d.id(), &chains, updates)
        .unwrap()
        .changed()
}

/// As above, with chains passed as a node passes them (copies included),
/// the thief's own chain taken from the thief: a dispute on B until the
/// user decides there.
#[test]
fn the_user_removing_a_thief_that_removed_them_first_is_a_device_again_when_chains_travel_as_copies(
) {
    let (a, b, t) = (device(1), device(2), device(3));
    pair(&a, &b, NOW_S);
    pull_as_node(&b, &a, NOW_S + 1);
    pull_as_node(&a, &b, NOW_S + 1);
    pair(&a, &t, NOW_S + 10);
    pull_as_node(&a, &t, NOW_S + 11);
    pull_as_node(&b, &a, NOW_S + 12);
    pull_as_node(&b, &a, NOW_S + 12);
    assert!(b.members().contains(&t.id()));
    revoke(&t, a.id(), NOW_S + 30);
    pull_as_node(&b, &t, NOW_S + 40);
    assert!(!b.members().contains(&a.id()), "B obeys the thief first");
    revoke(&a, t.id(), NOW_S + 31);
    assert!(
        pull_as_node(&b, &a, NOW_S + 50),
        "B takes A's removal of the thief"
    );
    assert_eq!(disputes(&b).len(), 2, "B shows the dispute");
    revoke(&b, t.id(), NOW_S + 60);
    let members = b.members();
    assert!(members.contains(&a.id()), "A is back on B");
    assert!(!members.contains(&t.id()), "the thief is out on B");
}

// ---- Attacks on stored revocations (a stolen device still paired) ----

/// A revocation by `issuer` of `node` naming `heads` (vault id -> commit
/// id), as a node's `revoke_device` writes it (a thief writes any).
fn revoke_with_heads(
    issuer: &Device,
    node: NodeId,
    at_s: u64,
    heads: std::collections::BTreeMap<String, String>,
) {
    let mut payload = issuer
        .chain()
        .next_payload(ClaimType::ClaimRevokeNode, node, at_s * 1000)
        .unwrap();
    payload.heads = Some(heads);
    let claim = SignedClaim::issue(&payload, &issuer.keys).unwrap();
    issuer.chain().append(&claim).unwrap();
    issuer.graph().revoke(issuer.id(), &claim).unwrap();
}

/// The user removed L (an old device, say stolen too) on A. The thief T,
/// still a device, revokes L again a little later, naming no vault
/// version (so, since 0d243e3, every commit L ever made is undone on every
/// device). A node keeps one revocation per node, the newest, so T's
/// replaces the user's, on A itself too; it stands only while T does. When
/// the user removes T, T's revocations fall, and L, whose removal by the
/// user was overwritten, is a device again on A and on B.
#[test]
fn a_thief_re_revoking_a_removed_device_does_not_bring_it_back_when_removed() {
    let (a, b, l, t) = (device(1), device(2), device(3), device(4));
    pair(&a, &b, NOW_S);
    pair(&a, &l, NOW_S + 1);
    pair(&a, &t, NOW_S + 2);
    pull(&b, &[&a], NOW_S + 5);
    revoke(&a, l.id(), NOW_S + 10);
    pull(&b, &[&a], NOW_S + 11);
    assert!(!a.members().contains(&l.id()) && !b.members().contains(&l.id()));
    assert!(b.members().contains(&t.id()));

    revoke_with_heads(&t, l.id(), NOW_S + 20, Default::default());
    pull(&a, &[&t], NOW_S + 21);
    pull(&b, &[&t], NOW_S + 21);
    // The user removes the thief.
    revoke(&a, t.id(), NOW_S + 30);
    pull(&b, &[&a], NOW_S + 31);
    for (name, d) in [("A", &a), ("B", &b)] {
        let members = d.members();
        assert!(
            !members.contains(&t.id()),
            "the thief is a device of {name}"
        );
        assert!(
            !members.contains(&l.id()),
            "L, removed by the user, is a device of {name} again"
        );
    }
}

/// The thief T links a puppet P; P revokes T, dated a few minutes ahead
/// (within the clock skew). A obeys (T is out) and tells the user "If that
/// was not you, remove the device that did it"; the user does so, and
/// removes T as well for good measure. The user's removal of T is older
/// than P's, so it is not kept (`put_revocation` keeps the newest, and
/// `revoke` ignores that it kept nothing); with P removed, P's revocation
/// falls, and T is a device of A again.
#[test]
fn a_puppets_revocation_of_the_thief_dated_ahead_does_not_void_the_users() {
    let (a, b, t, p) = (device(1), device(2), device(3), device(4));
    pair(&a, &b, NOW_S);
    pair(&a, &t, NOW_S + 1);
    pair(&t, &p, NOW_S + 2);
    pull(&a, &[&t], NOW_S + 5);
    assert!(a.members().contains(&p.id()));
    revoke(&p, t.id(), NOW_S + 300);
    pull(&a, &[&p], NOW_S + 10);
    // The user follows the notification's advice, and removes T too.
    revoke(&a, p.id(), NOW_S + 20);
    revoke(&a, t.id(), NOW_S + 21);
    pull(&b, &[&a], NOW_S + 30);
    for (name, d) in [("A", &a), ("B", &b)] {
        assert!(
            !d.members().contains(&t.id()),
            "the thief the user removed is a device of {name}"
        );
    }
}

/// A thief still paired revokes nodes that never were devices, each
/// revocation naming vault versions (up to 2,000, about 200 KB; a claim
/// may be 256 KiB, a chain 10,000 claims). Every removal is kept (which
/// ones were kept used to depend on arrival order, see below), but what
/// the graph stores and reads for each is a small record, whatever the
/// claim names: the claim stays on the chain's copy.
#[test]
fn a_thiefs_revocations_of_strangers_cost_a_small_record_each() {
    let (a, t) = (device(1), device(2));
    pair(&a, &t, NOW_S);
    let heads: std::collections::BTreeMap<String, String> = (0..40u32)
        .map(|i| (format!("{i:032x}"), format!("{i:040x}")))
        .collect();
    let made = 300;
    for i in 0..made {
        let mut seed = [100u8; 32];
        seed[..4].copy_from_slice(&(i as u32).to_be_bytes());
        let stranger = RootKeypair::from_seed(&seed).node_id();
        revoke_with_heads(&t, stranger, NOW_S + 10, heads.clone());
    }
    pull(&a, &[&t], NOW_S + 30);
    let kept = a.graph().revocations().unwrap();
    assert_eq!(kept.len(), made);
    let bytes = serde_json::to_vec(&kept).unwrap().len();
    assert!(
        bytes < made * 400,
        "{bytes} bytes read for {made} removals naming 40 versions each"
    );
    // The versions are still there, on the copy of T's chain.
    let (payload, _) = a
        .graph()
        .revocation_claim(a.id(), &kept[0])
        .unwrap()
        .expect("the claim behind a removal");
    assert_eq!(payload.heads.as_ref(), Some(&heads));
}

/// A thief still paired fills its chain with removals naming 2,000 vault
/// versions each (about 200 KB a claim): every device stored the whole
/// chain, up to 10,000 claims, 2.5 GB. The copy of one chain is now held
/// to `MAX_CHAIN_COPY_BYTES`, and stops at the same claim on a device that
/// took the chain whole and on one that took it in parts.
#[test]
fn a_thiefs_chain_of_huge_removals_is_held_to_a_bound_alike_everywhere() {
    use polykey_gestalts::chains::MAX_CHAIN_COPY_BYTES;
    use polykey_gestalts::claims::MAX_REVOCATION_HEADS;
    let (a, t, c, d, e) = (device(1), device(2), device(3), device(4), device(5));
    pair(&a, &t, NOW_S);
    pair(&a, &c, NOW_S);
    pair(&a, &d, NOW_S);
    pair(&a, &e, NOW_S);
    pull(&c, &[&a], NOW_S + 1);
    pull(&d, &[&a], NOW_S + 1);
    pull(&e, &[&a], NOW_S + 1);
    let heads: std::collections::BTreeMap<String, String> = (0..MAX_REVOCATION_HEADS as u32)
        .map(|i| (format!("{i:032x}"), format!("{i:040x}")))
        .collect();
    let mut made_bytes = 0u64;
    let mut i = 0u32;
    while made_bytes <= MAX_CHAIN_COPY_BYTES + MAX_CHAIN_COPY_BYTES / 4 {
        let mut seed = [100u8; 32];
        seed[..4].copy_from_slice(&i.to_be_bytes());
        revoke_with_heads(
            &t,
            RootKeypair::from_seed(&seed).node_id(),
            NOW_S + 5,
            heads.clone(),
        );
        let last = t
            .chain()
            .claims_after(t.chain().head().unwrap().unwrap().seq - 1, 1)
            .unwrap();
        made_bytes += last[0].payload.len() as u64;
        i += 1;
    }
    // C takes T's chain whole, D in parts of 7 claims.
    pull(&c, &[&t], NOW_S + 10);
    // E took T's first claims before copies counted their bytes: its copy's
    // head is stored in the old shape, with no count.
    let copies = MemberChains::new(&e.db);
    let first = t.chain().claims_after(0, 100).unwrap();
    let claims = verify_continuation(&t.id(), None, &first, NOW_S + 10).unwrap();
    e.graph()
        .adopt_chains(e.id(), &copies, vec![(t.id(), None, claims)])
        .unwrap();
    {
        use polykey_db::Table;
        const HEADS: Table<serde_json::Value> = Table::new("member_chain_heads");
        let key = e.db.record_key("member_chain_heads", t.id().as_bytes());
        let mut txn = e.db.write().unwrap();
        let mut head = txn.get(&HEADS, &key).unwrap().unwrap();
        head.as_object_mut().unwrap().remove("bytes");
        txn.put(&HEADS, &key, &head).unwrap();
        txn.commit().unwrap();
    }
    pull(&e, &[&t], NOW_S + 10);
    let copies = MemberChains::new(&d.db);
    loop {
        let head = copies.head(&t.id()).unwrap();
        let seq = head.as_ref().map_or(0, |h| h.seq);
        let new = t.chain().claims_after(seq, 7).unwrap();
        let claims = verify_continuation(&t.id(), head.as_ref(), &new, NOW_S + 10).unwrap();
        d.graph()
            .adopt_chains(d.id(), &copies, vec![(t.id(), head.clone(), claims)])
            .unwrap();
        if new.is_empty() || copies.head(&t.id()).unwrap() == head {
            break;
        }
    }
    let held = |on: &Device| {
        MemberChains::new(&on.db)
            .head(&t.id())
            .unwrap()
            .unwrap()
            .seq
    };
    let total = t.chain().head().unwrap().unwrap().seq;
    assert!(
        held(&c) < total,
        "C holds all {total} claims, {made_bytes} bytes"
    );
    assert_eq!(held(&c), held(&d), "C and D stopped at different claims");
    // C never asks for T's chain again (it would fetch and check up to
    // 1,000 huge claims on every sync, all refused).
    let asked = MemberChains::new(&c.db).positions().unwrap();
    assert!(asked.contains(&(t.id(), u64::MAX)), "{asked:?}");
    assert_eq!(
        held(&c),
        held(&e),
        "C and E (its copy older) stopped at different claims"
    );
    let stored: u64 = MemberChains::new(&c.db)
        .claims_after(&t.id(), 0, 20_000)
        .unwrap()
        .iter()
        .map(|claim| claim.payload.len() as u64)
        .sum();
    assert!(
        stored <= MAX_CHAIN_COPY_BYTES,
        "C stores {stored} bytes of T's chain"
    );
}

/// A node another device removed is "contested": its chain is still read
/// for removals, but its copy does not move, so a thief could send a new
/// fork of its chain on every pull, each with up to 1,000 removals of made-up
/// nodes, and every device kept them all: a store growing without end,
/// read whole by every graph read.
#[test]
fn a_contested_thiefs_forks_add_a_bounded_number_of_removals() {
    use polykey_gestalts::graph::MAX_CONTESTED_REVOCATIONS;
    let (a, b, t) = (device(1), device(2), device(3));
    pair(&a, &b, NOW_S);
    pair(&a, &t, NOW_S);
    pull(&b, &[&a], NOW_S + 1);
    pull(&a, &[&b, &t], NOW_S + 1);
    revoke(&b, t.id(), NOW_S + 10);
    pull(&a, &[&b], NOW_S + 11);
    assert!(!a.members().contains(&t.id()));
    // The same keys in another store: a second fork of T's chain.
    let fork = device(3);
    for claim in t.chain().claims().unwrap() {
        fork.chain().append(&claim).unwrap();
    }
    for (chain, first) in [(&t, 0u32), (&fork, 1_000u32)] {
        for i in first..first + 150 {
            let mut seed = [100u8; 32];
            seed[..4].copy_from_slice(&i.to_be_bytes());
            let payload = chain
                .chain()
                .next_payload(
                    ClaimType::ClaimRevokeNode,
                    RootKeypair::from_seed(&seed).node_id(),
                    (NOW_S + 20) * 1000,
                )
                .unwrap();
            let claim = SignedClaim::issue(&payload, &chain.keys).unwrap();
            chain.chain().append(&claim).unwrap();
        }
        pull(&a, &[chain], NOW_S + 30);
    }
    let kept = a.graph().revocations().unwrap().len();
    assert!(
        kept <= MAX_CONTESTED_REVOCATIONS + 1,
        "A keeps {kept} removals from the contested thief's two forks"
    );
}

/// Revocation records written before they pointed at their claim held the
/// claim itself: a store from then still keeps its removals (the record is
/// read the same; renaming its table lost every removal on upgrade, and
/// the removed devices were devices again).
#[test]
fn a_removal_stored_the_old_way_still_counts() {
    use polykey_db::Table;
    const OLD: Table<serde_json::Value> = Table::authenticated("gestalt_revoked");
    let (a, t) = (device(1), device(2));
    pair(&a, &t, NOW_S);
    let payload = a
        .chain()
        .next_payload(ClaimType::ClaimRevokeNode, t.id(), (NOW_S + 10) * 1000)
        .unwrap();
    let claim = SignedClaim::issue(&payload, &a.keys).unwrap();
    a.chain().append(&claim).unwrap();
    let old = serde_json::json!({
        "node": t.id(),
        "by": a.id(),
        "at": NOW_S + 10,
        "claim": claim,
    });
    let mut name = t.id().as_bytes().to_vec();
    name.extend_from_slice(a.id().as_bytes());
    let key = a.db.record_key("gestalt_revoked", &name);
    let mut txn = a.db.write().unwrap();
    txn.put(&OLD, &key, &old).unwrap();
    txn.commit().unwrap();

    assert!(!a.members().contains(&t.id()), "T is a device again");
    let kept = a.graph().revocations().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].seq, payload.seq);
    let (found, _) = a
        .graph()
        .revocation_claim(a.id(), &kept[0])
        .unwrap()
        .unwrap();
    assert_eq!(found.sub, t.id());
}

/// With more than 256 removals of never-linked nodes by one issuer, the
/// rest were dropped as they arrived: a device that heard of X's link
/// before the thief's removal of X kept the removal (X was linked), one
/// that heard of it after dropped it (X was not linked yet), and the two
/// disagreed for good on whether X is a device.
#[test]
fn which_removals_are_kept_does_not_depend_on_arrival_order() {
    let (a, t, x, c, d) = (device(1), device(2), device(3), device(4), device(5));
    pair(&a, &t, NOW_S);
    pair(&a, &c, NOW_S);
    pair(&a, &d, NOW_S);
    pull(&c, &[&a], NOW_S + 1);
    pull(&d, &[&a], NOW_S + 1);
    pair(&a, &x, NOW_S + 1);
    for i in 0..300u32 {
        let mut seed = [100u8; 32];
        seed[..4].copy_from_slice(&i.to_be_bytes());
        revoke(&t, RootKeypair::from_seed(&seed).node_id(), NOW_S + 5);
    }
    revoke(&t, x.id(), NOW_S + 6);
    // C hears of X's link first, D of the thief's removals first.
    pull(&c, &[&a], NOW_S + 10);
    pull(&c, &[&t], NOW_S + 11);
    pull(&d, &[&t], NOW_S + 10);
    pull(&d, &[&a], NOW_S + 11);
    let removed = |on: &Device| {
        on.graph()
            .revocations_in_force(on.id())
            .unwrap()
            .iter()
            .any(|r| r.node == x.id())
    };
    assert_eq!(removed(&c), removed(&d), "C and D disagree on X");
    assert!(removed(&c), "the thief stands, so its removal of X counts");
}

/// The user removes T on A and on B in the same second (each device names
/// the vault versions it had). A node keeps one revocation per node and a
/// later one replaces it only if strictly newer (by the second), so C,
/// hearing A first, keeps A's, and D, hearing B first, keeps B's, for
/// good: they disagree on which vault versions stand (what the undo keeps)
/// and on whose standing T's removal rests; if A is removed later, T is a
/// device again on C but not on D, and the undo and its take-back go back
/// and forth between them on every sync.
#[test]
fn two_removals_of_one_device_in_one_second_are_kept_alike_everywhere() {
    let (a, b, c, d, t) = (device(1), device(2), device(3), device(4), device(5));
    pair(&a, &b, NOW_S);
    pair(&a, &c, NOW_S + 1);
    pair(&a, &d, NOW_S + 2);
    pair(&a, &t, NOW_S + 3);
    pull(&b, &[&a], NOW_S + 5);
    pull(&c, &[&a], NOW_S + 5);
    pull(&d, &[&a], NOW_S + 5);
    let heads = |commit: &str| {
        std::iter::once(("0".repeat(32), commit.repeat(40)))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    revoke_with_heads(&a, t.id(), NOW_S + 10, heads("a"));
    revoke_with_heads(&b, t.id(), NOW_S + 10, heads("b"));
    pull(&c, &[&a], NOW_S + 20);
    pull(&c, &[&b], NOW_S + 21);
    pull(&d, &[&b], NOW_S + 20);
    pull(&d, &[&a], NOW_S + 21);
    // Both removals are kept; the one that counts is the same everywhere.
    let kept = |x: &Device| {
        let r = x.graph().revocations_in_force(x.id()).unwrap();
        r.iter().find(|r| r.node == t.id()).map(|r| (r.by, r.seq))
    };
    assert_eq!(kept(&c), kept(&d), "C and D keep different removals of T");
}

/// A removed thief keeps removing an honest device H, dated ahead (within
/// the clock skew). H must still be able to pair a new device, and the
/// others must take that device.
#[test]
fn a_fallen_thiefs_removal_dated_ahead_does_not_stop_pairing() {
    let (a, b, h, t, n) = (device(1), device(2), device(3), device(4), device(5));
    pair(&a, &b, NOW_S);
    pair(&a, &h, NOW_S + 1);
    pair(&a, &t, NOW_S + 2);
    pull(&b, &[&a], NOW_S + 5);
    pull(&h, &[&a], NOW_S + 5);
    revoke(&a, t.id(), NOW_S + 10);
    pull(&b, &[&a], NOW_S + 11);
    pull(&h, &[&a], NOW_S + 11);
    revoke(&t, h.id(), NOW_S + 500);
    pull(&b, &[&t], NOW_S + 12);
    pull(&h, &[&t], NOW_S + 12);
    assert!(b.members().contains(&h.id()), "H stands: its remover fell");
    // H pairs N (the helper records the link on both, as pairing does).
    pair(&h, &n, NOW_S + 20);
    pull(&b, &[&h], NOW_S + 21);
    assert!(b.members().contains(&n.id()), "B takes H's new device");
}

/// A thief still standing removes a device N just paired on A; B hears the
/// thief first, then A's link to N. Once the user removes the thief, N is
/// a device on B too (its link was kept, not dropped).
#[test]
fn a_link_held_back_by_a_thiefs_removal_counts_once_the_thief_falls() {
    let (a, b, t, n) = (device(1), device(2), device(3), device(4));
    pair(&a, &b, NOW_S);
    pair(&a, &t, NOW_S + 1);
    pull(&b, &[&a], NOW_S + 5);
    pair(&a, &n, NOW_S + 20);
    revoke(&t, n.id(), NOW_S + 25);
    pull(&b, &[&t], NOW_S + 26);
    pull(&b, &[&a], NOW_S + 27);
    assert!(
        !b.members().contains(&n.id()),
        "the thief's removal stands for now"
    );
    revoke(&a, t.id(), NOW_S + 30);
    pull(&b, &[&a], NOW_S + 31);
    let members = b.members();
    assert!(!members.contains(&t.id()));
    assert!(
        members.contains(&n.id()),
        "N, paired by the user, is back on B"
    );
}

/// Every device's chain, verified from its first claim, as a person's node
/// answers another person for its gestalt.
fn chains_of(
    devices: &[&Device],
) -> Vec<(NodeId, Vec<(polykey_gestalts::ClaimPayload, SignedClaim)>)> {
    devices
        .iter()
        .map(|d| {
            let claims = d.chain().claims().unwrap();
            let verified = verify_continuation(&d.id(), None, &claims, NOW_S + 100).unwrap();
            (d.id(), verified)
        })
        .collect()
}

/// Another person's gestalt seen from one of their nodes (a person trusted
/// by a NodeId): their devices linked through their own chains, not one
/// they removed, and nothing a stranger's chain in the answer says.
#[test]
fn another_persons_gestalt_is_what_their_chains_show_and_no_stranger_changes_it() {
    use polykey_gestalts::gestalt_of_chains;
    let (b1, b2, b3, b4) = (device(1), device(2), device(3), device(4));
    let (stranger, puppet) = (device(5), device(6));
    pair(&b1, &b2, NOW_S);
    // B3 joined through B2: reached from B1 through B2's chain.
    pair(&b2, &b3, NOW_S + 1);
    pair(&b3, &b4, NOW_S + 2);
    let all = |ids: &[&Device]| {
        ids.iter()
            .map(|d| d.id())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let gestalt = gestalt_of_chains(b1.id(), &chains_of(&[&b1, &b2, &b3, &b4]));
    assert_eq!(gestalt, all(&[&b1, &b2, &b3, &b4]));

    // A stranger's chain in the answer, removing B2 and linking itself to a
    // puppet and (one way) to B1: it counts for nothing.
    revoke(&stranger, b2.id(), NOW_S + 3);
    link_one_way(&stranger, &b1, NOW_S + 3);
    pair(&stranger, &puppet, NOW_S + 3);
    let gestalt = gestalt_of_chains(
        b1.id(),
        &chains_of(&[&b1, &b2, &b3, &b4, &stranger, &puppet]),
    );
    assert_eq!(gestalt, all(&[&b1, &b2, &b3, &b4]));

    // B1 removes B3: B3 is out, and B4, reached only through it, too; its
    // links (a puppet dated after the removal) bring nothing back.
    revoke(&b1, b3.id(), NOW_S + 4);
    pair(&b3, &puppet, NOW_S + 5);
    let gestalt = gestalt_of_chains(b1.id(), &chains_of(&[&b1, &b2, &b3, &b4, &puppet]));
    assert_eq!(gestalt, all(&[&b1, &b2]));

    // A chain missing from the answer leaves out only what it links.
    let gestalt = gestalt_of_chains(b1.id(), &chains_of(&[&b1]));
    assert_eq!(gestalt, all(&[&b1, &b2]), "B1's own chain links B2");
}

/// The devices `d` shows notices of.
fn noticed(d: &Device) -> Vec<NodeId> {
    d.graph()
        .notices(d.id())
        .unwrap()
        .iter()
        .map(|n| n.device)
        .collect()
}

/// A thief's device T links P and X, then removes P; P's chain removes X.
/// P's removal is not in force (T, who removed P, stands), so X stays a
/// device, and stays shown for the user to keep or remove. (The removal
/// deleted X's notice as it was stored, in force or not: X stayed with
/// no question asked, and B was told another device had removed it.)
/// The same when the thief times it: P removes X while P stands (X is
/// out), and only a pull later T removes P (X is back): shown again.
#[test]
fn a_removal_not_in_force_leaves_the_notice_of_the_device_it_names() {
    let (a, b, t, p, x) = (device(1), device(2), device(3), device(4), device(5));
    pair(&a, &b, NOW_S);
    pair(&a, &t, NOW_S);
    pull(&b, &[&a], NOW_S + 1);
    pair(&t, &p, NOW_S + 2);
    pair(&t, &x, NOW_S + 3);
    revoke(&t, p.id(), NOW_S + 4);
    revoke(&p, x.id(), NOW_S + 5);
    let adopted = pull_adopted(&b, &[&a, &t, &p, &x], NOW_S + 10);
    let members = b.members();
    assert!(members.contains(&x.id()) && !members.contains(&p.id()));
    assert!(
        !adopted.revoked.contains(&x.id()),
        "X is reported removed: {:?}",
        adopted.revoked
    );
    assert!(
        noticed(&b).contains(&x.id()),
        "X is a device with no notice"
    );
    pull(&b, &[&a, &t, &p, &x], NOW_S + 20);
    assert!(b.members().contains(&x.id()) && noticed(&b).contains(&x.id()));

    // Timed: X out for a pull, then back.
    let (a, b, t, p, x) = (device(6), device(7), device(8), device(9), device(10));
    pair(&a, &b, NOW_S);
    pair(&a, &t, NOW_S);
    pull(&b, &[&a], NOW_S + 1);
    pair(&t, &p, NOW_S + 2);
    pair(&t, &x, NOW_S + 3);
    pull(&b, &[&a, &t], NOW_S + 4);
    pull(&b, &[&p, &x], NOW_S + 4);
    assert!(noticed(&b).contains(&x.id()));
    revoke(&p, x.id(), NOW_S + 5);
    pull(&b, &[&a, &t, &p, &x], NOW_S + 6);
    assert!(!b.members().contains(&x.id()));
    assert!(!noticed(&b).contains(&x.id()), "a device out is not shown");
    revoke(&t, p.id(), NOW_S + 7);
    pull(&b, &[&a, &t, &p, &x], NOW_S + 8);
    assert!(b.members().contains(&x.id()) && !b.members().contains(&p.id()));
    assert!(
        noticed(&b).contains(&x.id()),
        "X is back, unshown: {:?}",
        noticed(&b)
    );
}

/// B added X, the user removed X on B, and then paired X again on A: A
/// does not ask about B's old addition (kept, hidden, while X was out),
/// nor does a device added and removed in one pull get announced.
#[test]
fn a_device_paired_again_here_is_not_asked_about_and_one_gone_at_once_is_not_announced() {
    let (a, b, x) = (device(1), device(2), device(3));
    pair(&a, &b, NOW_S);
    pair(&b, &x, NOW_S + 1);
    pull(&a, &[&b], NOW_S + 2);
    assert_eq!(noticed(&a), vec![x.id()]);
    revoke(&b, x.id(), NOW_S + 3);
    pull(&a, &[&b], NOW_S + 4);
    assert!(noticed(&a).is_empty());
    pair(&a, &x, NOW_S + 5);
    assert!(a.members().contains(&x.id()));
    assert!(
        noticed(&a).is_empty(),
        "asked about a device just paired here"
    );

    let (a, b, y) = (device(4), device(5), device(6));
    pair(&a, &b, NOW_S);
    pair(&b, &y, NOW_S + 1);
    revoke(&b, y.id(), NOW_S + 2);
    let announced = pull(&a, &[&b], NOW_S + 3);
    assert!(announced.is_empty(), "{announced:?}");
    assert!(!a.members().contains(&y.id()) && noticed(&a).is_empty());
}

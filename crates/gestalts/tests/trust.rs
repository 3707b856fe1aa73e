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
    let notices = a.graph().notices().unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!((notices[0].device, notices[0].added_by), (x.id(), b.id()));
    assert_eq!(notices[0].added_at, NOW_S + 10);

    // One action removes it: a revocation on A's chain.
    revoke(&a, x.id(), NOW_S + 30);
    assert!(!a.members().contains(&x.id()));
    assert!(a.graph().notices().unwrap().is_empty());
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

//! Sigchains and the gestalt graph on real databases: linking two devices
//! the way pairing does, and every way a hostile or broken claim is refused.
#![allow(clippy::unwrap_used)]

use polykey_db::Db;
use polykey_gestalts::claims::{ClaimSignature, MAX_CLAIM_BYTES};
use polykey_gestalts::{
    verify_chain, ClaimError, ClaimPayload, ClaimType, GestaltGraph, Sigchain, SignedClaim,
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
}

const NOW: u64 = 1_790_000_000_000;

/// What pairing does: each side issues a link claim on its own chain, the
/// other countersigns, each appends its own. Returns the two claims.
fn link(x: &Device, y: &Device) -> (SignedClaim, SignedClaim) {
    let mut claims = Vec::new();
    for (issuer, subject) in [(x, y), (y, x)] {
        let payload = issuer
            .chain()
            .next_payload(ClaimType::ClaimLinkNode, subject.id(), NOW)
            .unwrap();
        let mut claim = SignedClaim::issue(&payload, &issuer.keys).unwrap();
        // Sent to the subject, which checks the issuer's signature and signs.
        let received = SignedClaim::from_json(&claim.to_json()).unwrap();
        assert!(received.signers().unwrap().contains(&issuer.id()));
        claim = received;
        claim.countersign(&subject.keys).unwrap();
        issuer.chain().append(&claim).unwrap();
        claims.push(claim);
    }
    (claims.remove(0), claims.remove(0))
}

#[test]
fn two_devices_link_with_doubly_signed_claims_on_both_chains() {
    let (a, b) = (device(1), device(2));
    let (ab, ba) = link(&a, &b);
    let payload = ab.verify().unwrap();
    assert_eq!((payload.iss, payload.sub, payload.seq), (a.id(), b.id(), 1));
    assert_eq!(payload.prev_claim_id, None);
    assert_eq!(ab.signers().unwrap().len(), 2);
    assert_eq!(ba.verify().unwrap().iss, b.id());

    // The wire format is Polykey's: a base64url payload and JWS signatures
    // naming their signer's NodeId.
    let json: serde_json::Value = serde_json::from_slice(&ab.to_json()).unwrap();
    assert!(json["payload"].is_string());
    let header = data_encoding::BASE64URL_NOPAD
        .decode(
            json["signatures"][0]["protected"]
                .as_str()
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], a.id().to_string());

    // A second link extends the chain, hash-linked to the first.
    let c = device(3);
    link(&a, &c);
    let chain = a.chain().claims().unwrap();
    assert_eq!(chain.len(), 2);
    let second = chain[1].verify().unwrap();
    assert_eq!(second.seq, 2);
    assert_eq!(second.prev_claim_id.as_deref(), Some(payload.jti.as_str()));
    assert_eq!(second.prev_digest, Some(chain[0].digest()));
    // A third party can check the whole chain.
    assert_eq!(verify_chain(&a.id(), &chain).unwrap().len(), 2);
    assert_eq!(a.chain().head().unwrap().unwrap().seq, 2);
}

#[test]
fn forged_tampered_or_half_signed_claims_are_refused() {
    let (a, b, stranger) = (device(1), device(2), device(9));
    let payload = a
        .chain()
        .next_payload(ClaimType::ClaimLinkNode, b.id(), NOW)
        .unwrap();

    // Only the issuer can issue; only issuer or subject can sign.
    assert!(matches!(
        SignedClaim::issue(&payload, &stranger.keys),
        Err(ClaimError::BadSignature(_))
    ));
    let mut claim = SignedClaim::issue(&payload, &a.keys).unwrap();
    assert!(claim.countersign(&stranger.keys).is_err());

    // Half-signed: the subject has not signed yet.
    assert!(matches!(claim.verify(), Err(ClaimError::BadSignature(_))));
    assert!(a.chain().append(&claim).is_err());
    assert!(GestaltGraph::new(&a.db).add_link(&claim).is_err());

    claim.countersign(&b.keys).unwrap();
    claim.verify().unwrap();

    // Tampering with the payload (another subject) breaks both signatures.
    let mut tampered = claim.clone();
    let mut forged = payload.clone();
    forged.sub = stranger.id();
    tampered.payload = data_encoding::BASE64URL_NOPAD.encode(&serde_json::to_vec(&forged).unwrap());
    assert!(matches!(
        tampered.verify(),
        Err(ClaimError::BadSignature(_))
    ));

    // A stranger's valid signature added by hand is refused.
    let mut extra = claim.clone();
    let mut signed_by_stranger = SignedClaim::issue(
        &ClaimPayload {
            iss: stranger.id(),
            ..payload.clone()
        },
        &stranger.keys,
    )
    .unwrap();
    extra
        .signatures
        .push(signed_by_stranger.signatures.remove(0));
    assert!(extra.verify().is_err());

    // A signature moved to another claim does not verify.
    let mut swapped = claim.clone();
    swapped.signatures[1] = ClaimSignature {
        protected: swapped.signatures[1].protected.clone(),
        signature: swapped.signatures[0].signature.clone(),
    };
    assert!(matches!(swapped.verify(), Err(ClaimError::BadSignature(_))));

    // Garbage never panics and is a clear error.
    for junk in [
        &b"not json"[..],
        br#"{"payload":"!!!","signatures":[]}"#,
        br#"{"payload":"e30","signatures":[{"protected":"e30","signature":"AA"}]}"#,
        br#"{"payload":"e30","signatures":[],"extra":1}"#,
    ] {
        assert!(SignedClaim::from_json(junk).is_err());
    }
    assert!(SignedClaim::from_json(&vec![b' '; MAX_CLAIM_BYTES + 1]).is_err());
}

#[test]
fn a_chain_only_grows_by_its_next_claim() {
    let (a, b) = (device(1), device(2));
    link(&a, &b);
    let chain = a.chain().claims().unwrap();

    // Replaying the first claim, or skipping ahead, is refused; nothing changes.
    assert!(matches!(
        a.chain().append(&chain[0]),
        Err(ClaimError::BrokenChain(_))
    ));
    let mut ahead = a
        .chain()
        .next_payload(ClaimType::ClaimLinkNode, b.id(), NOW)
        .unwrap();
    ahead.seq += 1;
    let mut skipped = SignedClaim::issue(&ahead, &a.keys).unwrap();
    skipped.countersign(&b.keys).unwrap();
    assert!(matches!(
        a.chain().append(&skipped),
        Err(ClaimError::BrokenChain(_))
    ));
    // B's claim cannot go on A's chain.
    let theirs = b.chain().claims().unwrap();
    assert!(a.chain().append(&theirs[0]).is_err());
    assert_eq!(a.chain().claims().unwrap(), chain);

    // A received chain must be A's, complete and in order.
    let c = device(3);
    link(&a, &c);
    let chain = a.chain().claims().unwrap();
    assert!(verify_chain(&b.id(), &chain).is_err());
    assert!(verify_chain(&a.id(), &[chain[1].clone()]).is_err());
    assert!(verify_chain(&a.id(), &[chain[1].clone(), chain[0].clone()]).is_err());
}

#[test]
fn linked_nodes_form_a_gestalt_that_persists() {
    let (a, b, c, d) = (device(1), device(2), device(3), device(4));
    let (ab, _) = link(&a, &b);
    let (bc, _) = link(&b, &c);
    let graph = GestaltGraph::new(&a.db);
    graph.add_link(&ab).unwrap();
    graph.add_link(&bc).unwrap();
    assert_eq!(
        graph.gestalt_of(a.id()).unwrap(),
        [a.id(), b.id(), c.id()].into_iter().collect()
    );
    assert_eq!(graph.gestalt_of(d.id()).unwrap().len(), 1);
    assert_eq!(graph.link_claim(c.id(), b.id()).unwrap(), Some(bc));

    assert!(graph.remove_link(c.id(), b.id()).unwrap());
    assert!(!graph.remove_link(c.id(), b.id()).unwrap());
    assert_eq!(
        graph.gestalt_of(c.id()).unwrap(),
        [c.id()].into_iter().collect()
    );

    // Reopened, the graph is as it was.
    let (a_id, b_id) = (a.id(), b.id());
    let path = a._dir.path().join("db.redb");
    let keys = RootKeypair::from_seed(&[1; 32]);
    let Device { _dir, db, .. } = a;
    drop(db);
    let db = Db::open(&path, &keys).unwrap();
    let expected = if a_id <= b_id {
        (a_id, b_id)
    } else {
        (b_id, a_id)
    };
    assert_eq!(GestaltGraph::new(&db).links().unwrap(), vec![expected]);
}

#[test]
fn only_a_revocation_may_be_larger_than_a_small_claim() {
    use polykey_gestalts::claims::MAX_SMALL_CLAIM_BYTES;
    let (x, y) = (device(61), device(62));
    let heads: std::collections::BTreeMap<String, String> = (0..200u32)
        .map(|i| (format!("{i:032x}"), format!("{i:040x}")))
        .collect();
    for typ in [ClaimType::ClaimLinkNode, ClaimType::ClaimRevokeNode] {
        let mut payload = x
            .chain()
            .next_payload(typ, y.keys.node_id(), 1_790_000_000_000)
            .unwrap();
        payload.heads = Some(heads.clone());
        let claim = SignedClaim::issue(&payload, &x.keys).unwrap();
        assert!(claim.payload.len() > MAX_SMALL_CLAIM_BYTES);
        let decoded = claim.decode();
        match typ {
            ClaimType::ClaimRevokeNode => assert!(decoded.is_ok(), "{decoded:?}"),
            _ => assert!(
                decoded.is_err(),
                "a {typ:?} of {} bytes",
                claim.payload.len()
            ),
        }
    }
}

//! `ClaimLinkIdentity`: a node claims a digital identity (`provider:login`)
//! on its own sigchain, signed by itself alone; every other shape of it is
//! refused, and no other claim may name an identity.
#![allow(clippy::unwrap_used)]

use polykey_db::Db;
use polykey_gestalts::claims::{identity_id, parse_identity, MAX_IDENTITY_BYTES};
use polykey_gestalts::{
    verify_continuation, ClaimError, ClaimPayload, ClaimType, GestaltGraph, MemberChains, Sigchain,
    SignedClaim,
};
use polykey_keys::RootKeypair;

const NOW: u64 = 1_790_000_000_000;

fn identity_payload(keys: &RootKeypair, identity: &str) -> ClaimPayload {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(&dir.path().join("db.redb"), keys).unwrap();
    let mut payload = Sigchain::new(&db, keys.node_id())
        .next_payload(ClaimType::ClaimLinkIdentity, keys.node_id(), NOW)
        .unwrap();
    payload.identity = Some(identity.to_owned());
    payload
}

#[test]
fn an_identity_claim_verifies_and_joins_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let keys = RootKeypair::from_seed(&[1; 32]);
    let db = Db::create(&dir.path().join("db.redb"), &keys).unwrap();
    let chain = Sigchain::new(&db, keys.node_id());
    let mut payload = chain
        .next_payload(ClaimType::ClaimLinkIdentity, keys.node_id(), NOW)
        .unwrap();
    assert_eq!(payload.identity, None, "next_payload names no identity");
    payload.identity = Some(identity_id("github.com", "alice").unwrap());
    let claim = SignedClaim::issue(&payload, &keys).unwrap();
    let received = SignedClaim::from_json(&claim.to_json()).unwrap();
    let verified = received.verify().unwrap();
    assert_eq!(verified.identity.as_deref(), Some("github.com:alice"));
    assert_eq!(verified.typ, ClaimType::ClaimLinkIdentity);
    chain.append(&claim).unwrap();
    assert_eq!(chain.head().unwrap().unwrap().seq, 1);
}

#[test]
fn the_identity_field_is_absent_from_other_claims_json() {
    let keys = RootKeypair::from_seed(&[2; 32]);
    let other = RootKeypair::from_seed(&[3; 32]);
    let mut payload = identity_payload(&keys, "github.com:alice");
    payload.typ = ClaimType::ClaimRevokeNode;
    payload.sub = other.node_id();
    payload.identity = None;
    let json = serde_json::to_string(&payload).unwrap();
    assert!(!json.contains("identity"), "{json}");
    // And a payload without the field parses (claims made before it).
    let back: ClaimPayload = serde_json::from_str(&json).unwrap();
    assert_eq!(back.identity, None);
}

#[test]
fn malformed_identity_claims_are_refused() {
    let keys = RootKeypair::from_seed(&[4; 32]);
    let other = RootKeypair::from_seed(&[5; 32]);

    // No identity at all.
    let mut none = identity_payload(&keys, "github.com:alice");
    none.identity = None;
    let claim = SignedClaim::issue(&none, &keys).unwrap();
    assert!(matches!(claim.verify(), Err(ClaimError::Malformed(_))));

    // Identities that are not provider:login, or too long, or odd characters.
    let long = format!("github.com:{}", "a".repeat(MAX_IDENTITY_BYTES));
    for bad in [
        "alice",
        ":alice",
        "github.com:",
        "GitHub.com:alice",
        "github.com:al ice",
        "github.com:alice/evil",
        "github.com:al:ice",
        "github.com:alice\n",
        long.as_str(),
    ] {
        let claim = SignedClaim::issue(&identity_payload(&keys, bad), &keys).unwrap();
        assert!(
            matches!(claim.verify(), Err(ClaimError::Malformed(_))),
            "{bad:?} accepted"
        );
    }

    // About another node: an identity claim is about its issuer only.
    let mut about_other = identity_payload(&keys, "github.com:alice");
    about_other.sub = other.node_id();
    let claim = SignedClaim::issue(&about_other, &keys).unwrap();
    assert!(claim.verify().is_err());
    // Even countersigned by that node.
    let mut both = claim.clone();
    both.countersign(&other).unwrap();
    assert!(both.verify().is_err());

    // Vault versions on it.
    let mut heads = identity_payload(&keys, "github.com:alice");
    heads.heads = Some(Default::default());
    let claim = SignedClaim::issue(&heads, &keys).unwrap();
    assert!(matches!(claim.verify(), Err(ClaimError::Malformed(_))));
}

#[test]
fn a_stranger_cannot_sign_or_alter_an_identity_claim() {
    let keys = RootKeypair::from_seed(&[6; 32]);
    let stranger = RootKeypair::from_seed(&[7; 32]);
    let payload = identity_payload(&keys, "github.com:alice");

    // Only the issuer issues.
    assert!(SignedClaim::issue(&payload, &stranger).is_err());

    // A stranger's signature added by hand is refused.
    let claim = SignedClaim::issue(&payload, &keys).unwrap();
    let mut theirs = SignedClaim::issue(
        &ClaimPayload {
            iss: stranger.node_id(),
            sub: stranger.node_id(),
            ..payload.clone()
        },
        &stranger,
    )
    .unwrap();
    let mut extra = claim.clone();
    extra.signatures.push(theirs.signatures.remove(0));
    assert!(extra.verify().is_err());

    // The identity changed after signing: the signature no longer holds.
    let mut altered_payload = claim.decode().unwrap();
    altered_payload.identity = Some("github.com:mallory".into());
    let mut altered = claim.clone();
    altered.payload =
        data_encoding::BASE64URL_NOPAD.encode(&serde_json::to_vec(&altered_payload).unwrap());
    assert!(matches!(altered.verify(), Err(ClaimError::BadSignature(_))));
}

#[test]
fn claims_of_nodes_cannot_name_an_identity() {
    let keys = RootKeypair::from_seed(&[8; 32]);
    let other = RootKeypair::from_seed(&[9; 32]);
    for typ in [ClaimType::ClaimLinkNode, ClaimType::ClaimRevokeNode] {
        let mut payload = identity_payload(&keys, "github.com:alice");
        payload.typ = typ;
        payload.sub = other.node_id();
        let mut claim = SignedClaim::issue(&payload, &keys).unwrap();
        if typ == ClaimType::ClaimLinkNode {
            claim.countersign(&other).unwrap();
        }
        assert!(
            matches!(claim.verify(), Err(ClaimError::Malformed(_))),
            "{typ:?} with an identity accepted"
        );
    }
}

#[test]
fn identity_ids_are_checked() {
    assert_eq!(
        identity_id("github.com", "Alice-1").unwrap(),
        "github.com:Alice-1"
    );
    assert_eq!(
        parse_identity("github.com:alice").unwrap(),
        ("github.com", "alice")
    );
    assert!(identity_id("", "alice").is_err());
    assert!(identity_id("github.com", "").is_err());
    assert!(identity_id("git:hub", "alice").is_err());
    assert!(identity_id("github.com", &"a".repeat(65)).is_err());
    assert!(identity_id("github.com", "ali\u{e9}").is_err());
    assert!(parse_identity("github.com").is_err());
}

#[test]
fn an_identity_claim_on_a_devices_chain_passes_a_pull_and_links_no_node() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = RootKeypair::from_seed(&[10; 32]);
    let b = RootKeypair::from_seed(&[11; 32]);
    let da = Db::create(&dirs[0].path().join("db.redb"), &a).unwrap();
    let db = Db::create(&dirs[1].path().join("db.redb"), &b).unwrap();
    let chain_a = Sigchain::new(&da, a.node_id());
    let chain_b = Sigchain::new(&db, b.node_id());
    // Paired, as pairing leaves them.
    for (issuer, subject, chain) in [(&a, &b, &chain_a), (&b, &a, &chain_b)] {
        let payload = chain
            .next_payload(ClaimType::ClaimLinkNode, subject.node_id(), NOW)
            .unwrap();
        let mut claim = SignedClaim::issue(&payload, issuer).unwrap();
        claim.countersign(subject).unwrap();
        chain.append(&claim).unwrap();
    }
    GestaltGraph::new(&db)
        .adopt(
            b.node_id(),
            b.node_id(),
            &chain_b
                .claims_after(0, 10)
                .unwrap()
                .into_iter()
                .map(|c| (c.verify().unwrap(), c))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    // A claims github.com:alice on its chain.
    let mut payload = chain_a
        .next_payload(ClaimType::ClaimLinkIdentity, a.node_id(), NOW + 1000)
        .unwrap();
    payload.identity = Some("github.com:alice".into());
    chain_a
        .append(&SignedClaim::issue(&payload, &a).unwrap())
        .unwrap();

    // B pulls A's chain: both claims verify and are adopted; the gestalt is
    // A and B, and nothing else.
    let copies = MemberChains::new(&db);
    let head = copies.head(&a.node_id()).unwrap();
    let new = chain_a.claims_after(0, 10).unwrap();
    assert_eq!(new.len(), 2);
    let verified = verify_continuation(&a.node_id(), head.as_ref(), &new, NOW / 1000 + 10).unwrap();
    GestaltGraph::new(&db)
        .adopt_chains(b.node_id(), &copies, vec![(a.node_id(), head, verified)])
        .unwrap();
    assert_eq!(copies.head(&a.node_id()).unwrap().unwrap().seq, 2);
    let gestalt = GestaltGraph::new(&db).gestalt_of(b.node_id()).unwrap();
    assert_eq!(gestalt, [a.node_id(), b.node_id()].into_iter().collect());
}

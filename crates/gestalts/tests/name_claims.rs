//! `ClaimNameNode`: a device names itself ("Laptop") on its own chain,
//! signed by itself alone; every other shape is refused, no other claim
//! carries a name, and the graph of nodes is unchanged by one.
#![allow(clippy::unwrap_used)]

use polykey_db::Db;
use polykey_gestalts::claims::{device_name, MAX_DEVICE_NAME_BYTES};
use polykey_gestalts::{ClaimError, ClaimPayload, ClaimType, Sigchain, SignedClaim};
use polykey_keys::RootKeypair;

const NOW: u64 = 1_790_000_000_000;

fn name_payload(keys: &RootKeypair, name: &str) -> ClaimPayload {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(&dir.path().join("db.redb"), keys).unwrap();
    let mut payload = Sigchain::new(&db, keys.node_id())
        .next_payload(ClaimType::ClaimNameNode, keys.node_id(), NOW)
        .unwrap();
    payload.name = Some(name.to_owned());
    payload
}

#[test]
fn a_name_claim_verifies_and_joins_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let keys = RootKeypair::from_seed(&[1; 32]);
    let db = Db::create(&dir.path().join("db.redb"), &keys).unwrap();
    let chain = Sigchain::new(&db, keys.node_id());
    let mut payload = chain
        .next_payload(ClaimType::ClaimNameNode, keys.node_id(), NOW)
        .unwrap();
    assert_eq!(payload.name, None, "next_payload names nothing");
    payload.name = Some("Ada's laptop ✓".into());
    let claim = SignedClaim::issue(&payload, &keys).unwrap();
    let received = SignedClaim::from_json(&claim.to_json()).unwrap();
    assert_eq!(
        received.verify().unwrap().name.as_deref(),
        Some("Ada's laptop ✓")
    );
    chain.append(&claim).unwrap();
    assert_eq!(chain.head().unwrap().unwrap().seq, 1);
}

#[test]
fn device_names_are_one_trimmed_line_of_bounded_length() {
    assert_eq!(device_name("  Laptop ").unwrap(), "Laptop");
    assert_eq!(
        device_name(&"é".repeat(MAX_DEVICE_NAME_BYTES / 2))
            .unwrap()
            .len(),
        MAX_DEVICE_NAME_BYTES
    );
    for bad in [
        String::new(),
        " \t ".into(),
        "a\nb".into(),
        "bell\u{7}".into(),
        "potpaL\u{202E}".into(),
        "Lap\u{200B}top".into(),
        "Laptop\u{2028}online".into(),
        "\u{3164}".into(),
        "Lap\u{E0041}top".into(),
        "x".repeat(MAX_DEVICE_NAME_BYTES + 1),
    ] {
        assert!(device_name(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn malformed_name_claims_are_refused() {
    let keys = RootKeypair::from_seed(&[4; 32]);
    let other = RootKeypair::from_seed(&[5; 32]);
    let refused = |payload: &ClaimPayload, signer: &RootKeypair| {
        SignedClaim::issue(payload, signer)
            .unwrap()
            .verify()
            .is_err()
    };

    let mut none = name_payload(&keys, "Laptop");
    none.name = None;
    assert!(refused(&none, &keys), "a name claim without a name");
    for bad in [
        "",
        " Laptop",
        "Laptop\n",
        &"x".repeat(MAX_DEVICE_NAME_BYTES + 1),
    ] {
        assert!(refused(&name_payload(&keys, bad), &keys), "{bad:?}");
    }
    let mut about_another = name_payload(&keys, "Laptop");
    about_another.sub = other.node_id();
    assert!(refused(&about_another, &keys), "a device names only itself");
    let mut with_heads = name_payload(&keys, "Laptop");
    with_heads.heads = Some(Default::default());
    assert!(refused(&with_heads, &keys), "no vault versions");

    // No other claim carries a name.
    let mut revocation = name_payload(&keys, "Laptop");
    revocation.typ = ClaimType::ClaimRevokeNode;
    revocation.sub = other.node_id();
    let claim = SignedClaim::issue(&revocation, &keys).unwrap();
    assert!(matches!(
        claim.verify(),
        Err(ClaimError::Malformed("a device name on another claim"))
    ));
}

#[test]
fn the_name_field_is_absent_from_other_claims_json() {
    let keys = RootKeypair::from_seed(&[2; 32]);
    let mut payload = name_payload(&keys, "Laptop");
    payload.typ = ClaimType::ClaimLinkIdentity;
    payload.name = None;
    payload.identity = Some("github.com:alice".into());
    let json = serde_json::to_string(&payload).unwrap();
    assert!(!json.contains("\"name\""), "{json}");
}

//! Pairing two devices with the invitation code or the typed words, message
//! by message as the network carries them (serialized in between), and every
//! way it must refuse: wrong words, expiry, reuse, too many attempts, a
//! tampered claim. Nothing is recorded unless pairing completes.
#![allow(clippy::unwrap_used)]

use polykey_db::Db;
use polykey_gestalts::pairing::{
    Invitation, Inviter, Joiner, PairingError, PairingMessage, CODE_LIFETIME_SECS, MAX_ATTEMPTS,
};
use polykey_gestalts::{GestaltGraph, Sigchain};
use polykey_keys::{NodeId, RootKeypair};

const NOW: u64 = 1_790_000_000;

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
}

/// Over the wire: every message is serialized and parsed again.
fn wire(message: PairingMessage) -> PairingMessage {
    serde_json::from_slice(&serde_json::to_vec(&message).unwrap()).unwrap()
}

/// Run the whole exchange; returns both fingerprints.
fn pair(
    inviter: &mut Inviter,
    a: &Device,
    b: &Device,
    words: &str,
    now: u64,
) -> Result<(String, String), PairingError> {
    pair_with(inviter, a, b, words, None, now)
}

/// The exchange with the full code's secret (or without, as typed words).
fn pair_with(
    inviter: &mut Inviter,
    a: &Device,
    b: &Device,
    words: &str,
    secret: Option<&str>,
    now: u64,
) -> Result<(String, String), PairingError> {
    let (mut joiner, hello) = Joiner::start(a.id(), b.id(), words, secret);
    let (mut session, challenge) = inviter.on_hello(wire(hello), now)?;
    let proof = joiner.on_challenge(wire(challenge), &b.keys, &b.chain(), now)?;
    // The inviter checks the proof and shows the digits before recording
    // anything; nothing is on either chain yet.
    inviter.check_proof(&session, &proof)?;
    assert_eq!(session.fingerprint(&a.id()), joiner.fingerprint().unwrap());
    assert!(b.chain().claims().unwrap().is_empty());
    let claims = inviter.on_proof(
        &mut session,
        wire(proof),
        &a.keys,
        &a.chain(),
        &a.graph(),
        now,
    )?;
    let done = joiner.on_claims(wire(claims), &b.keys, &b.chain(), &b.graph())?;
    session.on_done(wire(done), &a.chain(), &a.graph())?;
    Ok((session.fingerprint(&a.id()), joiner.fingerprint().unwrap()))
}

fn linked(d: &Device, other: &Device) -> bool {
    d.graph().gestalt_of(d.id()).unwrap().contains(&other.id())
}

#[test]
fn a_pasted_code_pairs_two_devices_into_one_gestalt() {
    let (a, b) = (device(1), device(2));
    let mut inviter = Inviter::new(a.id(), vec!["/ip4/127.0.0.1/tcp/4100".into()], NOW);
    let code = inviter.invitation().to_code();
    assert!(code.starts_with("polykey-pair:"));

    // The new device reads the code: the inviter's id, addresses and words.
    let read = Invitation::from_code(&format!("  {code}\n")).unwrap();
    assert_eq!(read.inviter, a.id());
    assert_eq!(read.addresses, ["/ip4/127.0.0.1/tcp/4100"]);
    assert_eq!(read.words().split(' ').count(), 4);
    assert!(!format!("{read:?}").contains(read.words()));

    let (fa, fb) = pair(&mut inviter, &a, &b, read.words(), NOW + 5).unwrap();
    assert_eq!(fa, fb, "both screens show the same fingerprint");
    assert_eq!(fa.len(), 7);

    // Both chains hold one doubly-signed link claim; both graphs know the link.
    for (d, other) in [(&a, &b), (&b, &a)] {
        let chain = d.chain().claims().unwrap();
        assert_eq!(chain.len(), 1);
        let payload = chain[0].verify().unwrap();
        assert_eq!((payload.iss, payload.sub), (d.id(), other.id()));
        assert!(linked(d, other));
    }

    // The code works once.
    let c = device(3);
    let err = pair(&mut inviter, &a, &c, read.words(), NOW + 6).unwrap_err();
    assert!(matches!(err, PairingError::AlreadyUsed), "{err}");
    assert!(!linked(&a, &c) && !linked(&c, &a));
}

#[test]
fn typed_words_pair_loosely_formatted_and_wrong_words_are_refused() {
    let (a, b) = (device(1), device(2));
    let mut inviter = Inviter::new(a.id(), vec![], NOW);
    let words = inviter.invitation().words().to_owned();

    // A wrong guess: refused, nothing recorded, the code stays usable.
    let err = pair(&mut inviter, &a, &b, "abandon ability able about", NOW).unwrap_err();
    assert!(matches!(err, PairingError::WrongCode), "{err}");
    assert!(b.chain().claims().unwrap().is_empty());
    assert!(a.graph().links().unwrap().is_empty());

    // Typed with capitals and dashes: still the same words.
    let typed = words.to_uppercase().replace(' ', " - ");
    let (fa, fb) = pair(&mut inviter, &a, &b, &typed, NOW + 1).unwrap();
    assert_eq!(fa, fb);
    assert!(linked(&a, &b));
}

#[test]
fn an_expired_or_exhausted_code_is_refused() {
    let (a, b) = (device(1), device(2));
    let mut expired = Inviter::new(a.id(), vec![], NOW);
    let words = expired.invitation().words().to_owned();
    let err = pair(&mut expired, &a, &b, &words, NOW + CODE_LIFETIME_SECS).unwrap_err();
    assert!(matches!(err, PairingError::Expired), "{err}");

    let mut guessed = Inviter::new(a.id(), vec![], NOW);
    let words = guessed.invitation().words().to_owned();
    for _ in 0..MAX_ATTEMPTS {
        assert!(matches!(
            pair(&mut guessed, &a, &b, "zoo zoo zoo zoo", NOW),
            Err(PairingError::WrongCode)
        ));
    }
    // Burned: even the right words no longer work.
    let err = pair(&mut guessed, &a, &b, &words, NOW).unwrap_err();
    assert!(matches!(err, PairingError::TooManyAttempts), "{err}");
    assert!(!linked(&a, &b) && !linked(&b, &a));
}

#[test]
fn strangers_guessing_words_cannot_burn_the_code_for_its_holder() {
    let (a, b, stranger) = (device(1), device(2), device(9));
    let mut inviter = Inviter::new(a.id(), vec![], NOW);
    let code = Invitation::from_code(&inviter.invitation().to_code()).unwrap();
    let secret = code.secret().unwrap().to_owned();
    for _ in 0..MAX_ATTEMPTS {
        let err = pair(&mut inviter, &a, &stranger, "zoo zoo zoo zoo", NOW).unwrap_err();
        assert!(matches!(err, PairingError::WrongCode), "{err}");
    }
    // A wrong secret counts as a word attempt, and those are spent.
    let err = pair_with(
        &mut inviter,
        &a,
        &stranger,
        "zoo zoo zoo zoo",
        Some("AAAA"),
        NOW,
    );
    assert!(matches!(err, Err(PairingError::TooManyAttempts)));
    // The device holding the code still pairs.
    let (fa, fb) = pair_with(&mut inviter, &a, &b, code.words(), Some(&secret), NOW).unwrap();
    assert_eq!(fa, fb);
    assert!(linked(&a, &b));
    assert!(!linked(&a, &stranger));
}

#[test]
fn a_man_in_the_middle_without_the_words_learns_nothing_useful() {
    // Mallory relays B's hello to A but answers B herself with a guess:
    // B refuses her challenge, and A never sees a valid proof.
    let (a, b, mallory) = (device(1), device(2), device(9));
    let inviter = Inviter::new(a.id(), vec![], NOW);
    let words = inviter.invitation().words().to_owned();
    let (mut joiner, _hello) = Joiner::start(a.id(), b.id(), &words, None);
    let mut fake = Inviter::new(a.id(), vec![], NOW);
    let (_, hello_from_mallory) = Joiner::start(a.id(), mallory.id(), "zoo zoo zoo zoo", None);
    let (_, fake_challenge) = fake.on_hello(hello_from_mallory, NOW).unwrap();
    let err = joiner
        .on_challenge(fake_challenge, &b.keys, &b.chain(), NOW)
        .unwrap_err();
    assert!(matches!(err, PairingError::WrongCode), "{err}");
    assert!(b.chain().claims().unwrap().is_empty());
    drop(inviter);
}

#[test]
fn damaged_codes_and_out_of_order_messages_are_clear_errors() {
    for bad in [
        "",
        "hello",
        "polykey-pair:",
        "polykey-pair:!!!",
        "polykey-pair:e30",
        &"polykey-pair:".repeat(1000),
    ] {
        assert!(matches!(
            Invitation::from_code(bad),
            Err(PairingError::Malformed(_))
        ));
    }
    let (a, b) = (device(1), device(2));
    let mut inviter = Inviter::new(a.id(), vec![], NOW);
    let done = PairingMessage::Done {
        inviter_claim: polykey_gestalts::SignedClaim {
            payload: String::new(),
            signatures: vec![],
        },
    };
    assert!(matches!(
        inviter.on_hello(done, NOW),
        Err(PairingError::Malformed(_))
    ));
    let (mut joiner, hello) = Joiner::start(a.id(), b.id(), "a b c d", None);
    assert!(matches!(
        joiner.on_challenge(hello, &b.keys, &b.chain(), NOW),
        Err(PairingError::Malformed(_))
    ));
}

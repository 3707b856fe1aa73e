//! Pairing a new device into a gestalt, transport-agnostic: the messages
//! below travel over whatever connects the two nodes (the network crate's
//! pairing protocol).
//!
//! The inviter shows an [`Invitation`]: its NodeId, its addresses, a
//! four-word code and an expiry, as a QR code or text to paste; the words
//! alone are the typed alternative. Both sides run SPAKE2 with the words as
//! the password and both NodeIds as identities, so a short code is safe: a
//! guess costs an online attempt, and the inviter allows
//! [`MAX_ATTEMPTS`]. Each side proves the shared key with a MAC over the
//! transcript; both show the same short fingerprint, and the person
//! confirms on both devices that they match before anything is recorded
//! (the joiner sends its proof only then; the inviter answers
//! [`PairingMessage::Waiting`] until its person confirmed). Then each issues
//! a `ClaimLinkNode` on its own sigchain, the other countersigns, and both
//! record the link in their gestalt graph. An invitation works once and
//! expires after [`CODE_LIFETIME_SECS`].
//!
//! The full code (QR or pasted) also carries a random secret the words do
//! not: a joiner presenting it has its own [`MAX_ATTEMPTS`], so strangers
//! guessing words cannot burn the invitation for the device holding it.

use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, Mac};
use polykey_keys::{NodeId, RootKeypair};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::Zeroizing;

use crate::claims::{ClaimType, SignedClaim};
use crate::error::ClaimError;
use crate::graph::GestaltGraph;
use crate::sigchain::Sigchain;

/// How long an invitation is valid.
pub const CODE_LIFETIME_SECS: u64 = 600;
/// How many joiners may try an invitation's code before it is burned.
pub const MAX_ATTEMPTS: u32 = 3;
/// Words in a pairing code (BIP39 English: 44 bits).
pub const CODE_WORDS: usize = 4;
/// What every pairing code starts with.
pub const CODE_PREFIX: &str = "polykey-pair:";
const MAX_CODE_LEN: usize = 4096;
const MAX_ADDRESSES: usize = 16;
/// Most devices an inviter lists as known to the joiner.
pub const MAX_KNOWN_DEVICES: usize = 1_000;
/// Bytes of the invitation's secret (only in the full code).
const SECRET_BYTES: usize = 16;

/// Why pairing stopped. Nothing is recorded unless pairing completes.
#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    /// The invitation's time is up.
    #[error("this pairing code has expired; show a new one")]
    Expired,
    /// The invitation was used already.
    #[error("this pairing code was already used; show a new one")]
    AlreadyUsed,
    /// Too many wrong attempts: the invitation is burned.
    #[error("too many attempts with this pairing code; show a new one")]
    TooManyAttempts,
    /// The two sides do not share the code (or someone is in the middle).
    #[error("the pairing code does not match")]
    WrongCode,
    /// The code text or a message is not well-formed.
    #[error("malformed pairing data: {0}")]
    Malformed(&'static str),
    /// A claim was refused.
    #[error(transparent)]
    Claim(#[from] ClaimError),
}

/// What the inviting device shows.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// The inviting node.
    #[serde(rename = "n")]
    pub inviter: NodeId,
    /// Where it listens (multiaddrs).
    #[serde(rename = "a")]
    pub addresses: Vec<String>,
    /// The code words, space-separated.
    #[serde(rename = "w")]
    words: String,
    /// Expiry, seconds since the Unix epoch.
    #[serde(rename = "e")]
    pub expires_at: u64,
    /// The secret a holder of the full code presents (base64url).
    #[serde(rename = "s", default)]
    secret: String,
}

impl std::fmt::Debug for Invitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Invitation({}, <code redacted>)", self.inviter)
    }
}

impl Drop for Invitation {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.words);
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

fn random_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    polykey_keys::random_bytes(&mut bytes);
    BASE64URL_NOPAD.encode(&bytes)
}

/// Compare two secrets in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_words() -> String {
    let list = bip39::Language::English.word_list();
    (0..CODE_WORDS)
        .map(|_| {
            let mut b = [0u8; 2];
            polykey_keys::random_bytes(&mut b);
            // 2048 words: 11 bits, no bias from 16 random bits masked.
            list[usize::from(u16::from_be_bytes(b) & 0x07ff)]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Normalise typed words: lower case, single spaces, no punctuation.
fn normalise(words: &str) -> String {
    words
        .split(|c: char| c.is_whitespace() || c == '-' || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Invitation {
    /// The words to type on the other device.
    pub fn words(&self) -> &str {
        &self.words
    }

    /// The secret only the full code carries (none when typed as words).
    pub fn secret(&self) -> Option<&str> {
        (!self.secret.is_empty()).then_some(self.secret.as_str())
    }

    /// The text a QR code holds, or to paste.
    pub fn to_code(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{CODE_PREFIX}{}", BASE64URL_NOPAD.encode(&json))
    }

    /// Read a pasted or scanned code.
    pub fn from_code(code: &str) -> Result<Self, PairingError> {
        let code = code.trim();
        if code.len() > MAX_CODE_LEN {
            return Err(PairingError::Malformed("code too long"));
        }
        let body = code
            .strip_prefix(CODE_PREFIX)
            .ok_or(PairingError::Malformed("not a Polykey pairing code"))?;
        let json = BASE64URL_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| PairingError::Malformed("damaged code"))?;
        let mut invitation: Self =
            serde_json::from_slice(&json).map_err(|_| PairingError::Malformed("damaged code"))?;
        if invitation.addresses.len() > MAX_ADDRESSES {
            return Err(PairingError::Malformed("too many addresses"));
        }
        invitation.words = normalise(&invitation.words);
        if invitation.words.split(' ').count() != CODE_WORDS {
            return Err(PairingError::Malformed("wrong number of code words"));
        }
        if invitation.secret.len() > 2 * SECRET_BYTES {
            return Err(PairingError::Malformed("damaged code"));
        }
        Ok(invitation)
    }
}

/// A message of the pairing exchange.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PairingMessage {
    /// Joiner → inviter: who joins, and its SPAKE2 message.
    Hello {
        /// The joining node.
        joiner: NodeId,
        /// SPAKE2 message (side B).
        pake: Vec<u8>,
        /// The invitation's secret, when the joiner has the full code.
        #[serde(default)]
        secret: Option<String>,
    },
    /// Inviter → joiner: its SPAKE2 message and key confirmation.
    Challenge {
        /// SPAKE2 message (side A).
        pake: Vec<u8>,
        /// MAC proving the inviter holds the key.
        confirm: Vec<u8>,
    },
    /// Joiner → inviter: key confirmation and the joiner's link claim.
    Proof {
        /// MAC proving the joiner holds the key.
        confirm: Vec<u8>,
        /// Issued by the joiner about the inviter, signed by the joiner.
        claim: SignedClaim,
    },
    /// Inviter → joiner: the joiner's claim countersigned, and the
    /// inviter's own claim signed by the inviter.
    Claims {
        /// The joiner's claim, now signed by both.
        joiner_claim: SignedClaim,
        /// Issued by the inviter about the joiner.
        inviter_claim: SignedClaim,
        /// The inviter's other devices as the pairing completes (not those
        /// still waiting for its person's keep-or-remove): the person who
        /// just paired knows them, so the joiner adopts them from the
        /// chains without a notice each. At most [`MAX_KNOWN_DEVICES`].
        #[serde(default)]
        devices: Vec<NodeId>,
    },
    /// Joiner → inviter: the inviter's claim countersigned.
    Done {
        /// The inviter's claim, now signed by both.
        inviter_claim: SignedClaim,
    },
    /// Inviter → joiner, for a proof: the person at the inviting device has
    /// not confirmed the digits yet; send the proof again shortly.
    Waiting,
    /// Joiner → inviter: the person cancelled (the digits differ).
    Cancel,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], label: &[u8], inviter: &NodeId, joiner: &NodeId) -> Vec<u8> {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(label);
    m.update(inviter.as_bytes());
    m.update(joiner.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn check_mac(key: &[u8], label: &[u8], inviter: &NodeId, joiner: &NodeId, tag: &[u8]) -> bool {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(label);
    m.update(inviter.as_bytes());
    m.update(joiner.as_bytes());
    m.verify_slice(tag).is_ok()
}

/// Six digits both screens show, derived from the shared key.
fn fingerprint(key: &[u8], inviter: &NodeId, joiner: &NodeId) -> String {
    let tag = mac(key, b"polykey pairing fingerprint", inviter, joiner);
    let n = u32::from_be_bytes([tag[0], tag[1], tag[2], tag[3]]) % 1_000_000;
    format!("{:03} {:03}", n / 1000, n % 1000)
}

const INVITER_CONFIRM: &[u8] = b"polykey pairing inviter";
const JOINER_CONFIRM: &[u8] = b"polykey pairing joiner";

fn now_ms(now: u64) -> u64 {
    now.saturating_mul(1000)
}

/// The inviting device's side: one per invitation shown.
pub struct Inviter {
    invitation: Invitation,
    /// Attempts by joiners presenting the full code's secret.
    holder_attempts: u32,
    /// Attempts by joiners with the words only (or a wrong secret).
    word_attempts: u32,
    used: bool,
}

/// An inviter's exchange with one joiner, after the key agreement.
pub struct InviterSession {
    joiner: NodeId,
    key: Zeroizing<Vec<u8>>,
    confirmed: bool,
    holder: bool,
}

impl Inviter {
    /// A new invitation from `inviter`, reachable at `addresses`, valid for
    /// [`CODE_LIFETIME_SECS`] from `now` (seconds since the Unix epoch).
    pub fn new(inviter: NodeId, addresses: Vec<String>, now: u64) -> Self {
        Self {
            invitation: Invitation {
                inviter,
                addresses,
                words: random_words(),
                expires_at: now + CODE_LIFETIME_SECS,
                secret: random_secret(),
            },
            holder_attempts: 0,
            word_attempts: 0,
            used: false,
        }
    }

    /// What to show.
    pub fn invitation(&self) -> &Invitation {
        &self.invitation
    }

    /// Whether `secret` is this invitation's secret.
    pub fn holds_secret(&self, secret: Option<&str>) -> bool {
        secret.is_some_and(|s| same_secret(s.as_bytes(), self.invitation.secret.as_bytes()))
    }

    /// Answer a joiner's hello (each hello is one attempt: of the holders
    /// of the full code, or of the word typers, each class with its own
    /// [`MAX_ATTEMPTS`]).
    pub fn on_hello(
        &mut self,
        message: PairingMessage,
        now: u64,
    ) -> Result<(InviterSession, PairingMessage), PairingError> {
        let PairingMessage::Hello {
            joiner,
            pake,
            secret,
        } = message
        else {
            return Err(PairingError::Malformed("expected a hello"));
        };
        if self.used {
            return Err(PairingError::AlreadyUsed);
        }
        if now >= self.invitation.expires_at {
            return Err(PairingError::Expired);
        }
        let holder = self.holds_secret(secret.as_deref());
        let attempts = if holder {
            &mut self.holder_attempts
        } else {
            &mut self.word_attempts
        };
        if *attempts >= MAX_ATTEMPTS {
            return Err(PairingError::TooManyAttempts);
        }
        *attempts += 1;
        let inviter = self.invitation.inviter;
        let (state, ours) = Spake2::<Ed25519Group>::start_a(
            &Password::new(self.invitation.words.as_bytes()),
            &Identity::new(inviter.as_bytes()),
            &Identity::new(joiner.as_bytes()),
        );
        let key = Zeroizing::new(
            state
                .finish(&pake)
                .map_err(|_| PairingError::Malformed("bad key exchange message"))?,
        );
        let confirm = mac(&key, INVITER_CONFIRM, &inviter, &joiner);
        Ok((
            InviterSession {
                joiner,
                key,
                confirmed: false,
                holder,
            },
            PairingMessage::Challenge {
                pake: ours,
                confirm,
            },
        ))
    }

    /// Check the joiner's proof without recording anything: the joiner
    /// holds the key (so both screens show the same digits) and its claim
    /// links it to this node. The node then asks its person to confirm.
    pub fn check_proof(
        &self,
        session: &InviterSession,
        message: &PairingMessage,
    ) -> Result<(), PairingError> {
        let PairingMessage::Proof { confirm, claim } = message else {
            return Err(PairingError::Malformed("expected a proof"));
        };
        if self.used {
            return Err(PairingError::AlreadyUsed);
        }
        let inviter = self.invitation.inviter;
        if !check_mac(
            &session.key,
            JOINER_CONFIRM,
            &inviter,
            &session.joiner,
            confirm,
        ) {
            return Err(PairingError::WrongCode);
        }
        let payload = claim.decode()?;
        if payload.typ != ClaimType::ClaimLinkNode
            || payload.iss != session.joiner
            || payload.sub != inviter
        {
            return Err(
                ClaimError::WrongType("the joiner's claim must link it to this node").into(),
            );
        }
        if !claim.signers()?.contains(&session.joiner) {
            return Err(ClaimError::BadSignature("the joiner did not sign its claim").into());
        }
        Ok(())
    }

    /// Check the joiner's proof; on success the invitation is used up, the
    /// joiner's claim is countersigned and recorded, and this node issues
    /// its own claim for the joiner to countersign. Call it only once the
    /// person confirmed the digits.
    pub fn on_proof(
        &mut self,
        session: &mut InviterSession,
        message: PairingMessage,
        keys: &RootKeypair,
        sigchain: &Sigchain<'_>,
        graph: &GestaltGraph<'_>,
        now: u64,
    ) -> Result<PairingMessage, PairingError> {
        let PairingMessage::Proof { confirm, claim } = message else {
            return Err(PairingError::Malformed("expected a proof"));
        };
        let inviter = self.invitation.inviter;
        if self.used {
            return Err(PairingError::AlreadyUsed);
        }
        if !check_mac(
            &session.key,
            JOINER_CONFIRM,
            &inviter,
            &session.joiner,
            &confirm,
        ) {
            return Err(PairingError::WrongCode);
        }
        let payload = claim.decode()?;
        if payload.typ != ClaimType::ClaimLinkNode
            || payload.iss != session.joiner
            || payload.sub != inviter
        {
            return Err(
                ClaimError::WrongType("the joiner's claim must link it to this node").into(),
            );
        }
        if !claim.signers()?.contains(&session.joiner) {
            return Err(ClaimError::BadSignature("the joiner did not sign its claim").into());
        }
        self.used = true;
        session.confirmed = true;
        let mut joiner_claim = claim;
        joiner_claim.countersign(keys)?;
        graph.add_link(&joiner_claim)?;
        let ours = sigchain.next_payload(ClaimType::ClaimLinkNode, session.joiner, now_ms(now))?;
        let inviter_claim = SignedClaim::issue(&ours, keys)?;
        let waiting: Vec<NodeId> = graph
            .notices(inviter)?
            .into_iter()
            .map(|n| n.device)
            .collect();
        let devices = graph
            .gestalt_of(inviter)?
            .into_iter()
            .filter(|d| *d != inviter && *d != session.joiner && !waiting.contains(d))
            .take(MAX_KNOWN_DEVICES)
            .collect();
        Ok(PairingMessage::Claims {
            joiner_claim,
            inviter_claim,
            devices,
        })
    }
}

impl InviterSession {
    /// The joining node.
    pub fn joiner(&self) -> NodeId {
        self.joiner
    }

    /// The digits to compare with the joiner's screen.
    pub fn fingerprint(&self, inviter: &NodeId) -> String {
        fingerprint(&self.key, inviter, &self.joiner)
    }

    /// Whether the joiner presented the full code's secret.
    pub fn holder(&self) -> bool {
        self.holder
    }

    /// Take the countersigned claim back and put it on this node's chain.
    pub fn on_done(
        &self,
        message: PairingMessage,
        sigchain: &Sigchain<'_>,
        graph: &GestaltGraph<'_>,
    ) -> Result<(), PairingError> {
        let PairingMessage::Done { inviter_claim } = message else {
            return Err(PairingError::Malformed("expected done"));
        };
        if !self.confirmed {
            return Err(PairingError::WrongCode);
        }
        let payload = inviter_claim.verify()?;
        if payload.sub != self.joiner {
            return Err(ClaimError::WrongType("the claim is about another node").into());
        }
        sigchain.append(&inviter_claim)?;
        graph.add_link(&inviter_claim)?;
        Ok(())
    }
}

/// The joining device's side.
pub struct Joiner {
    inviter: NodeId,
    joiner: NodeId,
    state: Option<Spake2<Ed25519Group>>,
    key: Option<Zeroizing<Vec<u8>>>,
    sent: Option<SignedClaim>,
}

impl Joiner {
    /// Start joining `inviter` with the code `words` (from a scanned or
    /// pasted [`Invitation`], with its `secret`, or typed, without). Returns
    /// the hello to send.
    pub fn start(
        inviter: NodeId,
        joiner: NodeId,
        words: &str,
        secret: Option<&str>,
    ) -> (Self, PairingMessage) {
        let words = Zeroizing::new(normalise(words));
        let (state, pake) = Spake2::<Ed25519Group>::start_b(
            &Password::new(words.as_bytes()),
            &Identity::new(inviter.as_bytes()),
            &Identity::new(joiner.as_bytes()),
        );
        (
            Self {
                inviter,
                joiner,
                state: Some(state),
                key: None,
                sent: None,
            },
            PairingMessage::Hello {
                joiner,
                pake,
                secret: secret.map(str::to_owned),
            },
        )
    }

    /// Check the inviter's challenge; answer with our proof and our claim.
    pub fn on_challenge(
        &mut self,
        message: PairingMessage,
        keys: &RootKeypair,
        sigchain: &Sigchain<'_>,
        now: u64,
    ) -> Result<PairingMessage, PairingError> {
        let PairingMessage::Challenge { pake, confirm } = message else {
            return Err(PairingError::Malformed("expected a challenge"));
        };
        let state = self
            .state
            .take()
            .ok_or(PairingError::Malformed("challenge out of order"))?;
        let key = Zeroizing::new(
            state
                .finish(&pake)
                .map_err(|_| PairingError::Malformed("bad key exchange message"))?,
        );
        if !check_mac(&key, INVITER_CONFIRM, &self.inviter, &self.joiner, &confirm) {
            return Err(PairingError::WrongCode);
        }
        let proof = mac(&key, JOINER_CONFIRM, &self.inviter, &self.joiner);
        self.key = Some(key);
        let payload = sigchain.next_payload(ClaimType::ClaimLinkNode, self.inviter, now_ms(now))?;
        let claim = SignedClaim::issue(&payload, keys)?;
        self.sent = Some(claim.clone());
        Ok(PairingMessage::Proof {
            confirm: proof,
            claim,
        })
    }

    /// The digits to compare with the inviter's screen (after the challenge).
    pub fn fingerprint(&self) -> Option<String> {
        self.key
            .as_ref()
            .map(|key| fingerprint(key, &self.inviter, &self.joiner))
    }

    /// Record both claims and return the inviter's, countersigned.
    pub fn on_claims(
        &mut self,
        message: PairingMessage,
        keys: &RootKeypair,
        sigchain: &Sigchain<'_>,
        graph: &GestaltGraph<'_>,
    ) -> Result<PairingMessage, PairingError> {
        let PairingMessage::Claims {
            joiner_claim,
            mut inviter_claim,
            devices,
        } = message
        else {
            return Err(PairingError::Malformed("expected the claims"));
        };
        if devices.len() > MAX_KNOWN_DEVICES {
            return Err(PairingError::Malformed("too many devices listed"));
        }
        let sent = self
            .sent
            .take()
            .ok_or(PairingError::Malformed("claims out of order"))?;
        if joiner_claim.payload != sent.payload {
            return Err(ClaimError::WrongType("the inviter changed our claim").into());
        }
        let theirs = inviter_claim.decode()?;
        if theirs.typ != ClaimType::ClaimLinkNode
            || theirs.iss != self.inviter
            || theirs.sub != self.joiner
            || !inviter_claim.signers()?.contains(&self.inviter)
        {
            return Err(ClaimError::WrongType("the inviter's claim must link it to us").into());
        }
        sigchain.append(&joiner_claim)?;
        graph.add_link(&joiner_claim)?;
        inviter_claim.countersign(keys)?;
        graph.add_link(&inviter_claim)?;
        graph.acknowledge(&devices)?;
        Ok(PairingMessage::Done { inviter_claim })
    }
}

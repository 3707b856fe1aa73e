//! Claims as signed JSON tokens (JWS general serialization, EdDSA), like
//! Polykey's: `{"payload": b64url(json), "signatures": [{"protected":
//! b64url({"alg":"EdDSA","kid":NodeId}), "signature": b64url(sig)}]}`, each
//! signature over `protected || "." || payload`.

use std::collections::{BTreeMap, BTreeSet};

use data_encoding::{Encoding, BASE32HEX_NOPAD, BASE64URL_NOPAD};
use polykey_keys::{NodeId, RootKeypair, Signature};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ClaimError;

/// The largest encoded claim accepted (bytes of its JSON). A revocation
/// naming [`MAX_REVOCATION_HEADS`] vaults' versions fits; every other claim
/// is held to [`MAX_SMALL_CLAIM_BYTES`].
pub const MAX_CLAIM_BYTES: usize = 256 * 1024;
/// The largest claim other than a revocation.
pub const MAX_SMALL_CLAIM_BYTES: usize = 8 * 1024;
/// The most vaults a revocation names the version of (see
/// [`ClaimPayload::heads`]).
pub const MAX_REVOCATION_HEADS: usize = 2_000;
/// The most signatures a claim may carry.
pub const MAX_SIGNATURES: usize = 4;
/// The longest identity a `ClaimLinkIdentity` names (`provider:login`,
/// bytes).
pub const MAX_IDENTITY_BYTES: usize = 128;
/// The longest provider id in an identity (e.g. `github.com`).
pub const MAX_PROVIDER_BYTES: usize = 64;
/// The longest login in an identity.
pub const MAX_LOGIN_BYTES: usize = 64;
/// Longest device name (bytes) a `ClaimNameNode` may carry.
pub const MAX_DEVICE_NAME_BYTES: usize = 64;

/// What a claim asserts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimType {
    /// The issuer and the subject are nodes of the same gestalt; signed by
    /// both.
    ClaimLinkNode,
    /// The issuer removed the subject from its gestalt: every device of the
    /// gestalt refuses the subject from then on. Signed by the issuer alone.
    ClaimRevokeNode,
    /// The issuer (a node, also the subject) claims a digital identity,
    /// named in [`ClaimPayload::identity`] as `provider:login` (e.g.
    /// `github.com:alice`), and publishes the claim under that account.
    /// Signed by the node alone.
    ClaimLinkIdentity,
    /// The issuer (a node, also the subject) names itself for people: the
    /// device name in [`ClaimPayload::name`] ("Laptop"), shown by its
    /// gestalt's devices instead of its NodeId. The latest on its chain
    /// counts. Signed by the node alone.
    ClaimNameNode,
}

/// A claim's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimPayload {
    /// Claim id: time-sortable, unique.
    pub jti: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Not before, seconds since the Unix epoch.
    pub nbf: u64,
    /// Position in the issuer's sigchain, from 1.
    pub seq: u64,
    /// Id of the previous claim in the chain (none for the first).
    #[serde(rename = "prevClaimId")]
    pub prev_claim_id: Option<String>,
    /// Digest of the previous claim (none for the first).
    #[serde(rename = "prevDigest")]
    pub prev_digest: Option<String>,
    /// What is claimed.
    pub typ: ClaimType,
    /// The issuing node (whose chain this claim belongs to).
    pub iss: NodeId,
    /// The node the claim is about.
    pub sub: NodeId,
    /// A revocation's record of what its issuer had seen: each vault's id
    /// (32 hex) and the version (commit id, 40 hex) the issuer had when
    /// removing `sub`. What `sub` committed outside those versions is
    /// undone wherever it turns up, as its dates are its own to write. Only
    /// on a `ClaimRevokeNode`, at most [`MAX_REVOCATION_HEADS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<BTreeMap<String, String>>,
    /// The identity a `ClaimLinkIdentity` claims, as `provider:login` (see
    /// [`identity_id`]). Only on a `ClaimLinkIdentity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The device name a `ClaimNameNode` gives its issuer (see
    /// [`device_name`]). Only on a `ClaimNameNode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `name` as a device name, if it is one: trimmed, 1 to
/// [`MAX_DEVICE_NAME_BYTES`] bytes, no control characters and no invisible
/// ones that reorder or hide text.
pub fn device_name(name: &str) -> Result<String, ClaimError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ClaimError::Malformed("a device name is empty"));
    }
    if name.len() > MAX_DEVICE_NAME_BYTES {
        return Err(ClaimError::Malformed("a device name is too long"));
    }
    // Nor invisible characters that change how the rest reads.
    if name.chars().any(polykey_keys::text::hides_text) {
        return Err(ClaimError::Malformed(
            "a device name has control characters",
        ));
    }
    Ok(name.to_owned())
}

/// The identity `provider:login` as a `ClaimLinkIdentity` names it, if both
/// parts are well-formed: a provider of 1 to [`MAX_PROVIDER_BYTES`] of
/// `a-z 0-9 . -` and a login of 1 to [`MAX_LOGIN_BYTES`] of
/// `A-Z a-z 0-9 _ . -`.
pub fn identity_id(provider: &str, login: &str) -> Result<String, ClaimError> {
    let provider_ok = !provider.is_empty()
        && provider.len() <= MAX_PROVIDER_BYTES
        && provider
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-'));
    if !provider_ok {
        return Err(ClaimError::Malformed("an identity's provider"));
    }
    let login_ok = !login.is_empty()
        && login.len() <= MAX_LOGIN_BYTES
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !login_ok {
        return Err(ClaimError::Malformed("an identity's login"));
    }
    Ok(format!("{provider}:{login}"))
}

/// An identity `provider:login` split into its provider and login, if it is
/// well-formed (see [`identity_id`]).
pub fn parse_identity(identity: &str) -> Result<(&str, &str), ClaimError> {
    if identity.len() > MAX_IDENTITY_BYTES {
        return Err(ClaimError::Malformed("an identity is too long"));
    }
    let (provider, login) = identity
        .split_once(':')
        .ok_or(ClaimError::Malformed("an identity is not provider:login"))?;
    identity_id(provider, login)?;
    Ok((provider, login))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Protected {
    alg: String,
    kid: NodeId,
}

/// One signature on a claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSignature {
    /// base64url of `{"alg":"EdDSA","kid":NodeId}`.
    pub protected: String,
    /// base64url of the Ed25519 signature.
    pub signature: String,
}

/// A signed claim, as stored and sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedClaim {
    /// base64url of the payload's JSON.
    pub payload: String,
    /// One per signer.
    pub signatures: Vec<ClaimSignature>,
}

fn base32hex_lower() -> Encoding {
    let mut spec = BASE32HEX_NOPAD.specification();
    spec.symbols = spec.symbols.to_lowercase();
    spec.encoding().unwrap_or_else(|_| BASE32HEX_NOPAD.clone())
}

/// A new claim id: 48-bit milliseconds then 80 random bits, multibase
/// base32hex (`v…`), so ids sort by time.
pub fn new_claim_id(now_ms: u64) -> String {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&now_ms.to_be_bytes()[2..]);
    polykey_keys::random_bytes(&mut bytes[6..]);
    format!("v{}", base32hex_lower().encode(&bytes))
}

/// The milliseconds a claim id carries (see [`new_claim_id`]), if it is one.
pub fn claim_id_ms(jti: &str) -> Option<u64> {
    let bytes = base32hex_lower()
        .decode(jti.strip_prefix('v')?.as_bytes())
        .ok()?;
    let mut ms = [0u8; 8];
    ms[2..].copy_from_slice(bytes.get(..6)?);
    Some(u64::from_be_bytes(ms))
}

impl SignedClaim {
    /// Sign `payload` as its issuer. The issuer must be the signer.
    pub fn issue(payload: &ClaimPayload, issuer: &RootKeypair) -> Result<Self, ClaimError> {
        if payload.iss != issuer.node_id() {
            return Err(ClaimError::BadSignature(
                "only the issuer can issue a claim",
            ));
        }
        let json = serde_json::to_vec(payload).map_err(|_| ClaimError::Malformed("payload"))?;
        let mut claim = Self {
            payload: BASE64URL_NOPAD.encode(&json),
            signatures: Vec::new(),
        };
        claim.add_signature(issuer)?;
        Ok(claim)
    }

    /// Add `signer`'s signature (a countersignature by the subject).
    pub fn countersign(&mut self, signer: &RootKeypair) -> Result<(), ClaimError> {
        let payload = self.decode()?;
        if signer.node_id() != payload.sub && signer.node_id() != payload.iss {
            return Err(ClaimError::BadSignature(
                "only the issuer or the subject may sign a claim",
            ));
        }
        if self.signers()?.contains(&signer.node_id()) {
            return Ok(());
        }
        self.add_signature(signer)
    }

    fn add_signature(&mut self, signer: &RootKeypair) -> Result<(), ClaimError> {
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(ClaimError::Malformed("too many signatures"));
        }
        let protected = serde_json::to_vec(&Protected {
            alg: "EdDSA".into(),
            kid: signer.node_id(),
        })
        .map_err(|_| ClaimError::Malformed("header"))?;
        let protected = BASE64URL_NOPAD.encode(&protected);
        let signature = signer.sign(signing_input(&protected, &self.payload).as_bytes());
        self.signatures.push(ClaimSignature {
            protected,
            signature: BASE64URL_NOPAD.encode(&signature.0),
        });
        Ok(())
    }

    /// Parse a claim received from elsewhere, checking its size.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ClaimError> {
        if bytes.len() > MAX_CLAIM_BYTES {
            return Err(ClaimError::Malformed("too large"));
        }
        let claim: Self = serde_json::from_slice(bytes)
            .map_err(|_| ClaimError::Malformed("not a claim token"))?;
        claim.decode()?;
        Ok(claim)
    }

    /// The claim as JSON bytes (what is stored, sent and digested).
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The payload, decoded (not verified: see [`SignedClaim::verify`]).
    pub fn decode(&self) -> Result<ClaimPayload, ClaimError> {
        if self.payload.len() > MAX_CLAIM_BYTES || self.signatures.len() > MAX_SIGNATURES {
            return Err(ClaimError::Malformed("too large"));
        }
        let json = BASE64URL_NOPAD
            .decode(self.payload.as_bytes())
            .map_err(|_| ClaimError::Malformed("payload is not base64url"))?;
        let payload: ClaimPayload =
            serde_json::from_slice(&json).map_err(|_| ClaimError::Malformed("payload fields"))?;
        if payload.typ != ClaimType::ClaimRevokeNode && self.payload.len() > MAX_SMALL_CLAIM_BYTES {
            return Err(ClaimError::Malformed("too large"));
        }
        Ok(payload)
    }

    /// Every node whose signature verifies; any bad signature fails.
    pub fn signers(&self) -> Result<BTreeSet<NodeId>, ClaimError> {
        let mut signers = BTreeSet::new();
        for sig in &self.signatures {
            let header = BASE64URL_NOPAD
                .decode(sig.protected.as_bytes())
                .map_err(|_| ClaimError::Malformed("header is not base64url"))?;
            let header: Protected = serde_json::from_slice(&header)
                .map_err(|_| ClaimError::Malformed("header fields"))?;
            if header.alg != "EdDSA" {
                return Err(ClaimError::BadSignature("unsupported algorithm"));
            }
            let raw = BASE64URL_NOPAD
                .decode(sig.signature.as_bytes())
                .map_err(|_| ClaimError::Malformed("signature is not base64url"))?;
            let raw: [u8; 64] = raw
                .try_into()
                .map_err(|_| ClaimError::Malformed("signature length"))?;
            polykey_keys::root::verify(
                &header.kid,
                signing_input(&sig.protected, &self.payload).as_bytes(),
                &Signature(raw),
            )
            .map_err(|_| ClaimError::BadSignature("a signature does not verify"))?;
            if !signers.insert(header.kid) {
                return Err(ClaimError::Malformed("the same node signed twice"));
            }
        }
        Ok(signers)
    }

    /// Decode and check every signature; the issuer must have signed, and
    /// for a `ClaimLinkNode` the subject too (and they must differ). A
    /// `ClaimLinkIdentity` is about its issuer, names a well-formed identity
    /// and is signed by its issuer alone; no other claim names an identity.
    pub fn verify(&self) -> Result<ClaimPayload, ClaimError> {
        let payload = self.decode()?;
        let signers = self.signers()?;
        if !signers.contains(&payload.iss) {
            return Err(ClaimError::BadSignature("the issuer did not sign"));
        }
        if payload.typ != ClaimType::ClaimLinkIdentity && payload.identity.is_some() {
            return Err(ClaimError::Malformed("an identity on a claim of nodes"));
        }
        if payload.typ != ClaimType::ClaimNameNode && payload.name.is_some() {
            return Err(ClaimError::Malformed("a device name on another claim"));
        }
        match payload.typ {
            ClaimType::ClaimNameNode => {
                let name = payload
                    .name
                    .as_deref()
                    .ok_or(ClaimError::Malformed("a name claim names nothing"))?;
                if device_name(name)? != name {
                    return Err(ClaimError::Malformed("a device name is not trimmed"));
                }
                if payload.heads.is_some() {
                    return Err(ClaimError::Malformed("vault versions on a name claim"));
                }
                if payload.iss != payload.sub || signers.len() != 1 {
                    return Err(ClaimError::Malformed(
                        "a name claim is about its issuer, signed by it alone",
                    ));
                }
            }
            ClaimType::ClaimLinkIdentity => {
                let identity = payload
                    .identity
                    .as_deref()
                    .ok_or(ClaimError::Malformed("an identity claim names no identity"))?;
                parse_identity(identity)?;
                if payload.heads.is_some() {
                    return Err(ClaimError::Malformed("vault versions on an identity claim"));
                }
                if payload.iss != payload.sub {
                    return Err(ClaimError::Malformed(
                        "an identity claim is about its issuer",
                    ));
                }
                if signers.len() != 1 {
                    return Err(ClaimError::BadSignature(
                        "an identity claim is signed by its node alone",
                    ));
                }
            }
            ClaimType::ClaimLinkNode => {
                if payload.heads.is_some() {
                    return Err(ClaimError::Malformed("vault versions on a link"));
                }
                if payload.iss == payload.sub {
                    return Err(ClaimError::Malformed("a node cannot link to itself"));
                }
                if !signers.contains(&payload.sub) {
                    return Err(ClaimError::BadSignature("the linked node did not sign"));
                }
            }
            ClaimType::ClaimRevokeNode => {
                if payload.iss == payload.sub {
                    return Err(ClaimError::Malformed("a node cannot revoke itself"));
                }
                let hex = |s: &str, len: usize| {
                    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                };
                if let Some(heads) = &payload.heads {
                    if heads.len() > MAX_REVOCATION_HEADS
                        || !heads.iter().all(|(v, c)| hex(v, 32) && hex(c, 40))
                    {
                        return Err(ClaimError::Malformed("a revocation's vault versions"));
                    }
                }
                if signers.len() != 1 {
                    return Err(ClaimError::BadSignature(
                        "a revocation is signed by its issuer alone",
                    ));
                }
            }
        }
        if signers
            .iter()
            .any(|s| *s != payload.iss && *s != payload.sub)
        {
            return Err(ClaimError::BadSignature(
                "signed by a node the claim is not about",
            ));
        }
        Ok(payload)
    }

    /// The claim's digest (SHA-256 of its JSON), multibase base32hex.
    pub fn digest(&self) -> String {
        format!(
            "v{}",
            base32hex_lower().encode(&Sha256::digest(self.to_json()))
        )
    }
}

fn signing_input(protected: &str, payload: &str) -> String {
    format!("{protected}.{payload}")
}

//! A node's own sigchain, in its encrypted database: claims by sequence
//! number and the chain's head, updated in one transaction so the chain is
//! never torn.

use polykey_db::{Db, RecordKey, Table};
use polykey_keys::NodeId;
use serde::{Deserialize, Serialize};

use crate::claims::{new_claim_id, ClaimPayload, ClaimType, SignedClaim};
use crate::error::ClaimError;

/// The most claims [`verify_chain`] accepts from a peer in one go.
pub const MAX_CHAIN_LEN: usize = 10_000;

/// The latest claim of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Its sequence number.
    pub seq: u64,
    /// Its id.
    pub claim_id: String,
    /// Its digest.
    pub digest: String,
}

const CLAIMS: Table<SignedClaim> = Table::new("sigchain_claims");
const HEAD: Table<ChainHead> = Table::new("sigchain_head");

fn claim_key(db: &Db, seq: u64) -> RecordKey {
    db.record_key("sigchain_claims", &seq.to_be_bytes())
}

fn head_key(db: &Db) -> RecordKey {
    db.record_key("sigchain_head", b"head")
}

/// Check that `payload` continues a chain whose head is `head`.
pub(crate) fn continues(
    head: Option<&ChainHead>,
    payload: &ClaimPayload,
) -> Result<(), ClaimError> {
    let (seq, prev_id, prev_digest) = match head {
        None => (1, None, None),
        Some(h) => (h.seq + 1, Some(&h.claim_id), Some(&h.digest)),
    };
    if payload.seq != seq {
        return Err(ClaimError::BrokenChain("sequence number"));
    }
    if payload.prev_claim_id.as_ref() != prev_id || payload.prev_digest.as_ref() != prev_digest {
        return Err(ClaimError::BrokenChain("previous claim"));
    }
    Ok(())
}

/// This node's sigchain.
pub struct Sigchain<'db> {
    db: &'db Db,
    owner: NodeId,
}

impl<'db> Sigchain<'db> {
    /// The chain of `owner` (this node) in `db`.
    pub fn new(db: &'db Db, owner: NodeId) -> Self {
        Self { db, owner }
    }

    /// The latest claim, if any.
    pub fn head(&self) -> Result<Option<ChainHead>, ClaimError> {
        Ok(self.db.read()?.get(&HEAD, &head_key(self.db))?)
    }

    /// The payload of the next claim of type `typ` about `sub`, continuing
    /// the chain as it is now; sign it with [`SignedClaim::issue`].
    pub fn next_payload(
        &self,
        typ: ClaimType,
        sub: NodeId,
        now_ms: u64,
    ) -> Result<ClaimPayload, ClaimError> {
        let head = self.head()?;
        Ok(ClaimPayload {
            jti: new_claim_id(now_ms),
            iat: now_ms / 1000,
            nbf: now_ms / 1000,
            seq: head.as_ref().map_or(1, |h| h.seq + 1),
            prev_claim_id: head.as_ref().map(|h| h.claim_id.clone()),
            prev_digest: head.map(|h| h.digest),
            typ,
            iss: self.owner,
            sub,
            heads: None,
            identity: None,
            name: None,
        })
    }

    /// Append a fully signed claim issued by this node. It must verify and
    /// continue the chain exactly; otherwise nothing changes.
    pub fn append(&self, claim: &SignedClaim) -> Result<ChainHead, ClaimError> {
        let payload = claim.verify()?;
        if payload.iss != self.owner {
            return Err(ClaimError::BrokenChain("issued by another node"));
        }
        let mut txn = self.db.write()?;
        let head = txn.get(&HEAD, &head_key(self.db))?;
        continues(head.as_ref(), &payload)?;
        let new_head = ChainHead {
            seq: payload.seq,
            claim_id: payload.jti,
            digest: claim.digest(),
        };
        txn.put(&CLAIMS, &claim_key(self.db, payload.seq), claim)?;
        txn.put(&HEAD, &head_key(self.db), &new_head)?;
        txn.commit()?;
        Ok(new_head)
    }

    /// The claims after sequence number `seq`, at most `limit`, in order.
    pub fn claims_after(&self, seq: u64, limit: usize) -> Result<Vec<SignedClaim>, ClaimError> {
        let txn = self.db.read()?;
        let Some(head) = txn.get(&HEAD, &head_key(self.db))? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut next = seq.saturating_add(1);
        while next <= head.seq && out.len() < limit {
            out.push(
                txn.get(&CLAIMS, &claim_key(self.db, next))?
                    .ok_or(ClaimError::BrokenChain("a claim is missing"))?,
            );
            next += 1;
        }
        Ok(out)
    }

    /// Every claim, in order.
    pub fn claims(&self) -> Result<Vec<SignedClaim>, ClaimError> {
        let txn = self.db.read()?;
        let Some(head) = txn.get(&HEAD, &head_key(self.db))? else {
            return Ok(Vec::new());
        };
        (1..=head.seq)
            .map(|seq| {
                txn.get(&CLAIMS, &claim_key(self.db, seq))?
                    .ok_or(ClaimError::BrokenChain("a claim is missing"))
            })
            .collect()
    }
}

/// Verify a chain received from `owner`: every claim signed as required,
/// issued by `owner`, numbered from 1 and linked to the one before.
/// Returns the payloads.
pub fn verify_chain(
    owner: &NodeId,
    claims: &[SignedClaim],
) -> Result<Vec<ClaimPayload>, ClaimError> {
    if claims.len() > MAX_CHAIN_LEN {
        return Err(ClaimError::Malformed("chain too long"));
    }
    let mut head: Option<ChainHead> = None;
    let mut payloads = Vec::with_capacity(claims.len());
    for claim in claims {
        let payload = claim.verify()?;
        if payload.iss != *owner {
            return Err(ClaimError::BrokenChain("issued by another node"));
        }
        continues(head.as_ref(), &payload)?;
        head = Some(ChainHead {
            seq: payload.seq,
            claim_id: payload.jti.clone(),
            digest: claim.digest(),
        });
        payloads.push(payload);
    }
    Ok(payloads)
}

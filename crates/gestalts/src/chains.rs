//! Copies of the sigchains of the other nodes of the gestalt, kept so a
//! device adopts a link or a revocation only from its issuer's own chain
//! (where it stays for everyone to see), and so new claims are checked once:
//! a sync sends only the claims after the copy's head, and verifying them
//! costs one signature check per new claim, outside any lock
//! ([`verify_continuation`] is pure).

use polykey_db::{Db, RecordKey, Table, WriteTxn};
use polykey_keys::NodeId;
use serde::{Deserialize, Serialize};

use crate::claims::{ClaimPayload, SignedClaim};
use crate::error::ClaimError;
use crate::sigchain::{continues, ChainHead, MAX_CHAIN_LEN};

/// How far in the future a claim's issued-at may be (seconds): clocks
/// differ a little, but a claim dated later could outrank every
/// revocation made before that date.
pub const MAX_CLOCK_SKEW_SECS: u64 = 600;
/// Most new claims of one chain taken in one go.
pub const MAX_NEW_CLAIMS: usize = 1_000;
/// Bytes the copy of one node's chain may hold. A chain may be 10,000
/// claims and a revocation 256 KiB (its vault versions), so a thief still
/// paired could make every device store 2.5 GB; past this its chain stops
/// at the same claim on every device. An honest device's chain is links
/// and a few removals: kilobytes.
pub const MAX_CHAIN_COPY_BYTES: u64 = 32 * 1024 * 1024;

/// What a claim costs a copy, in bytes (its payload and signatures).
fn claim_bytes(claim: &SignedClaim) -> u64 {
    (claim.payload.len() + claim.signatures.len() * 160) as u64
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredHead {
    node: NodeId,
    head: ChainHead,
    /// What the copy's claims cost so far (see [`MAX_CHAIN_COPY_BYTES`]).
    #[serde(default)]
    bytes: u64,
    /// The next claim did not fit: the copy is as long as it gets.
    #[serde(default)]
    full: bool,
}

const CLAIMS: Table<SignedClaim> = Table::new("member_chain_claims");
const HEADS: Table<StoredHead> = Table::new("member_chain_heads");

fn claim_key(db: &Db, node: &NodeId, seq: u64) -> RecordKey {
    let mut name = node.as_bytes().to_vec();
    name.extend_from_slice(&seq.to_be_bytes());
    db.record_key("member_chain_claims", &name)
}

fn head_key(db: &Db, node: &NodeId) -> RecordKey {
    db.record_key("member_chain_heads", node.as_bytes())
}

/// Check that `claims` continue `owner`'s chain after `head`: each signed
/// as its type requires, issued by `owner`, numbered and linked in order,
/// and not dated more than [`MAX_CLOCK_SKEW_SECS`] after `now_secs`.
/// Returns the payloads with their claims, in order.
pub fn verify_continuation(
    owner: &NodeId,
    head: Option<&ChainHead>,
    claims: &[SignedClaim],
    now_secs: u64,
) -> Result<Vec<(ClaimPayload, SignedClaim)>, ClaimError> {
    if claims.len() > MAX_NEW_CLAIMS {
        return Err(ClaimError::Malformed("too many new claims"));
    }
    let mut head = head.cloned();
    let mut out = Vec::with_capacity(claims.len());
    for claim in claims {
        let payload = claim.verify()?;
        if payload.iss != *owner {
            return Err(ClaimError::BrokenChain("issued by another node"));
        }
        if payload.iat > now_secs.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(ClaimError::Malformed("a claim is dated in the future"));
        }
        continues(head.as_ref(), &payload)?;
        if payload.seq > MAX_CHAIN_LEN as u64 {
            return Err(ClaimError::Malformed("chain too long"));
        }
        head = Some(ChainHead {
            seq: payload.seq,
            claim_id: payload.jti.clone(),
            digest: claim.digest(),
        });
        out.push((payload, claim.clone()));
    }
    Ok(out)
}

/// The copies of other nodes' chains in a node's database.
pub struct MemberChains<'db> {
    db: &'db Db,
}

impl<'db> MemberChains<'db> {
    /// The copies in `db`.
    pub fn new(db: &'db Db) -> Self {
        Self { db }
    }

    /// The head of the copy of `node`'s chain, if any.
    pub fn head(&self, node: &NodeId) -> Result<Option<ChainHead>, ClaimError> {
        Ok(self
            .db
            .read()?
            .get(&HEADS, &head_key(self.db, node))?
            .map(|h| h.head))
    }

    /// [`MemberChains::head`] as `txn` sees it.
    pub(crate) fn head_in(
        &self,
        txn: &WriteTxn<'_>,
        node: &NodeId,
    ) -> Result<Option<ChainHead>, ClaimError> {
        Ok(txn.get(&HEADS, &head_key(self.db, node))?.map(|h| h.head))
    }

    /// Every copy's node and last sequence number.
    pub fn positions(&self) -> Result<Vec<(NodeId, u64)>, ClaimError> {
        let mut out: Vec<(NodeId, u64)> = self
            .db
            .read()?
            .entries(&HEADS)?
            .into_iter()
            // A full copy is never asked for more: what it would take
            // does not fit, and fetching and checking it again on every
            // sync (up to 1,000 claims of 256 KiB) is work a thief makes.
            .map(|(_, h)| (h.node, if h.full { u64::MAX } else { h.head.seq }))
            .collect();
        out.sort();
        Ok(out)
    }

    /// The claims of the copy of `node`'s chain after `seq`, at most `limit`.
    pub fn claims_after(
        &self,
        node: &NodeId,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<SignedClaim>, ClaimError> {
        let txn = self.db.read()?;
        let Some(head) = txn.get(&HEADS, &head_key(self.db, node))? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut next = seq.saturating_add(1);
        while next <= head.head.seq && out.len() < limit {
            match txn.get(&CLAIMS, &claim_key(self.db, node, next))? {
                Some(claim) => out.push(claim),
                None => return Err(ClaimError::BrokenChain("a claim is missing")),
            }
            next += 1;
        }
        Ok(out)
    }

    /// Append claims checked by [`verify_continuation`] against the head
    /// this copy still has (otherwise nothing changes and the chain is
    /// reported broken: someone appended meanwhile).
    pub fn append(
        &self,
        node: &NodeId,
        from: Option<&ChainHead>,
        claims: &[(ClaimPayload, SignedClaim)],
    ) -> Result<(), ClaimError> {
        let mut txn = self.db.write()?;
        self.append_in(&mut txn, node, from, claims)?;
        txn.commit()?;
        Ok(())
    }

    /// [`MemberChains::append`] inside `txn`.
    pub(crate) fn append_in(
        &self,
        txn: &mut WriteTxn<'_>,
        node: &NodeId,
        from: Option<&ChainHead>,
        claims: &[(ClaimPayload, SignedClaim)],
    ) -> Result<(), ClaimError> {
        let Some((last, last_claim)) = claims.last() else {
            return Ok(());
        };
        let stored = txn.get(&HEADS, &head_key(self.db, node))?;
        if stored.as_ref().map(|h| &h.head) != from {
            return Err(ClaimError::BrokenChain("the copy changed meanwhile"));
        }
        let mut bytes = self.bytes_in(txn, node, stored.as_ref())?;
        for (payload, claim) in claims {
            bytes = bytes.saturating_add(claim_bytes(claim));
            if bytes > MAX_CHAIN_COPY_BYTES {
                return Err(ClaimError::Malformed("a chain past its bytes"));
            }
            txn.put(&CLAIMS, &claim_key(self.db, node, payload.seq), claim)?;
        }
        txn.put(
            &HEADS,
            &head_key(self.db, node),
            &StoredHead {
                node: *node,
                head: ChainHead {
                    seq: last.seq,
                    claim_id: last.jti.clone(),
                    digest: last_claim.digest(),
                },
                bytes,
                full: false,
            },
        )?;
        Ok(())
    }

    /// Record that the copy of `node`'s chain is full (see
    /// [`MemberChains::positions`]).
    pub(crate) fn mark_full_in(
        &self,
        txn: &mut WriteTxn<'_>,
        node: &NodeId,
    ) -> Result<(), ClaimError> {
        let key = head_key(self.db, node);
        if let Some(mut stored) = txn.get(&HEADS, &key)? {
            if !stored.full {
                stored.full = true;
                txn.put(&HEADS, &key, &stored)?;
            }
        }
        Ok(())
    }

    /// What the copy of `node`'s chain holds, in bytes. A copy stored
    /// before copies counted their bytes is counted once here, so every
    /// device stops a chain at the same claim.
    fn bytes_in(
        &self,
        txn: &WriteTxn<'_>,
        node: &NodeId,
        stored: Option<&StoredHead>,
    ) -> Result<u64, ClaimError> {
        let Some(stored) = stored else {
            return Ok(0);
        };
        if stored.bytes > 0 {
            return Ok(stored.bytes);
        }
        let mut bytes = 0u64;
        for seq in 1..=stored.head.seq {
            if let Some(claim) = txn.get(&CLAIMS, &claim_key(self.db, node, seq))? {
                bytes = bytes.saturating_add(claim_bytes(&claim));
            }
        }
        Ok(bytes)
    }

    /// How many of `claims` (continuing the copy of `node`'s chain) fit in
    /// its [`MAX_CHAIN_COPY_BYTES`]: the same claims on every device,
    /// however the chain arrived in parts.
    pub(crate) fn fitting_in(
        &self,
        txn: &WriteTxn<'_>,
        node: &NodeId,
        claims: &[(ClaimPayload, SignedClaim)],
    ) -> Result<usize, ClaimError> {
        let stored = txn.get(&HEADS, &head_key(self.db, node))?;
        let mut bytes = self.bytes_in(txn, node, stored.as_ref())?;
        Ok(claims
            .iter()
            .take_while(|(_, claim)| {
                bytes = bytes.saturating_add(claim_bytes(claim));
                bytes <= MAX_CHAIN_COPY_BYTES
            })
            .count())
    }
}

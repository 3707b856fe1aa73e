//! The gestalt graph: nodes joined by verified `ClaimLinkNode` claims, minus
//! the nodes a member revoked. A gestalt is a connected set of nodes (one
//! person's or agent's devices); each link keeps the claim that proves it.
//!
//! Links and revocations are decided by claim time, the same way on every
//! device whatever order the claims arrive in: a revocation of a node wins
//! over every link of it made before, and only a newer link made by another
//! node (a fresh pairing by a device still trusted) brings it back — never
//! one the revoked node dated ahead itself. A revocation counts only while
//! its issuer is a device (joined to this one through devices, not
//! revoked), so a thief's revocations end with the thief; one by a device
//! nothing joins to this one any more, that nobody revoked, makes a
//! dispute. When devices revoke each other (the user's device and a thief
//! answering it, whichever struck first) neither stands on the other
//! devices: both are out there and shown to the user as a dispute, until
//! the user removes the one they distrust on a device that stands (each
//! device's own revocations always hold there). A device removed by
//! another device is "contested": its chain is still read for revocations
//! once it answered (removed a device that removed it), so the user's
//! removal of the thief reaches a device the thief cut off.
//! A device added (or brought back) by another device is recorded with a
//! notice for the user.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use polykey_db::{Db, RecordKey, Table, WriteTxn};
use polykey_keys::NodeId;
use serde::{Deserialize, Serialize};

use crate::chains::MemberChains;
use crate::claims::{ClaimPayload, ClaimType, SignedClaim};
use crate::error::ClaimError;
use crate::sigchain::ChainHead;

/// One link between two nodes and its proof.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Link {
    a: NodeId,
    b: NodeId,
    claim: SignedClaim,
}

impl Link {
    /// When the link was claimed (seconds) and by whom, from its already
    /// verified claim.
    fn claimed(&self) -> (u64, Option<NodeId>) {
        self.claim
            .decode()
            .map(|p| (p.iat, Some(p.iss)))
            .unwrap_or((0, None))
    }
}

/// A node removed from the gestalt, and where the claim that removed it
/// is: on the remover's chain (this node's own, or the copy of another's),
/// which keeps it whole. The record itself stays small whatever the claim
/// names, so every removal a chain holds is kept (the same ones on every
/// device, whatever order chains arrive in) and reading them all is cheap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredRevocation")]
pub struct Revocation {
    /// The removed node.
    pub node: NodeId,
    /// The member that removed it.
    pub by: NodeId,
    /// When, seconds since the Unix epoch (the claim's issued-at).
    pub at: u64,
    /// When in milliseconds: the claim id's, when they fall in its
    /// issued-at second, so the later of two removals in one second is
    /// known; else the second.
    pub at_ms: u64,
    /// The claim's place on the remover's chain.
    pub seq: u64,
    /// Whether the claim names the vault versions its remover had.
    pub names_heads: bool,
}

/// A revocation as stored: today's record, or one written before records
/// pointed at their claim (which held the claim itself; read the same).
#[derive(Deserialize)]
struct StoredRevocation {
    node: NodeId,
    by: NodeId,
    at: u64,
    #[serde(default)]
    at_ms: Option<u64>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    names_heads: Option<bool>,
    #[serde(default)]
    claim: Option<SignedClaim>,
}

impl From<StoredRevocation> for Revocation {
    fn from(r: StoredRevocation) -> Self {
        let claimed = r.claim.as_ref().and_then(|c| c.decode().ok());
        Self {
            node: r.node,
            by: r.by,
            at: r.at,
            at_ms: claimed
                .as_ref()
                .map(claimed_ms)
                .or(r.at_ms)
                .unwrap_or(r.at.saturating_mul(1000)),
            seq: claimed.as_ref().map(|p| p.seq).or(r.seq).unwrap_or(0),
            names_heads: claimed
                .as_ref()
                .map(|p| p.heads.is_some())
                .or(r.names_heads)
                .unwrap_or(false),
        }
    }
}

/// A device another device of the gestalt added, for the user to see (and
/// keep or remove).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNotice {
    /// The new device.
    pub device: NodeId,
    /// The member whose chain links it.
    pub added_by: NodeId,
    /// The link's issued-at, seconds since the Unix epoch.
    pub added_at: u64,
}

/// A device out because devices removed each other (see
/// [`GestaltGraph::disputes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dispute {
    /// The device.
    pub device: NodeId,
    /// The disputed devices that removed it (devices of the gestalt but
    /// for the dispute).
    pub removed_by: Vec<NodeId>,
    /// When the latest of them did, seconds since the Unix epoch.
    pub at: u64,
}

/// What removing a device would change (see
/// [`GestaltGraph::removal_effect`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemovalEffect {
    /// The nodes that are not devices now and would be (a removed device's
    /// removals count for nothing), each with whether it is in a dispute
    /// now. Nodes also removed by another device that stays, or by `me`,
    /// stay out and are not named.
    pub back: Vec<(NodeId, bool)>,
    /// The devices that would go with it: joined to this one only through
    /// it, or removed by a device coming back.
    pub going: Vec<NodeId>,
}

/// Who is in and out as one node sees it (see
/// [`GestaltGraph::judgement`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// The gestalt ([`GestaltGraph::gestalt_of`]).
    pub members: BTreeSet<NodeId>,
    /// The revocations in force ([`GestaltGraph::revocations_in_force`]).
    pub in_force: Vec<Revocation>,
    /// The disputed nodes ([`GestaltGraph::disputed`]).
    pub disputed: BTreeSet<NodeId>,
}

/// What adopting a member's claims changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Nodes that joined the gestalt.
    pub joined: Vec<NodeId>,
    /// Of those, the ones shown to the user: all but those the inviter
    /// listed when this device joined.
    pub noticed: Vec<NodeId>,
    /// Nodes that were removed (not those in a new dispute).
    pub revoked: Vec<NodeId>,
    /// Devices newly out because devices removed each other (see
    /// [`GestaltGraph::disputes`]): for the user to decide.
    pub disputed: Vec<NodeId>,
    /// Members whose chain removed this device (never obeyed here; other
    /// devices may follow it): for the user to know.
    pub removed_me: Vec<NodeId>,
    /// Revocations recorded, of members or not: one of a node outside the
    /// gestalt (a thief that removed a device first) changes who stands,
    /// and so the gestalt, without removing anyone from it.
    pub revocations: usize,
}

impl Adopted {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        !self.joined.is_empty() || !self.revoked.is_empty() || self.revocations > 0
    }

    /// Add what `other` changed to this.
    pub fn absorb(&mut self, other: Adopted) {
        self.joined.extend(other.joined);
        self.noticed.extend(other.noticed);
        self.revoked.extend(other.revoked);
        self.disputed.extend(other.disputed);
        self.removed_me.extend(other.removed_me);
        self.revocations += other.revocations;
    }
}

/// Every stored removal, and every stored link's two nodes.
type Stored = (Vec<Revocation>, Vec<(NodeId, NodeId)>);

/// A link's two nodes, its claim time and its issuer.
type LinkTime = (NodeId, NodeId, u64, Option<NodeId>);

// Every table that decides who is a member or what the user is told is
// authenticated as a set (see `polykey_db::Table::authenticated`): each
// record is sealed, but with plain redb anyone who can write the file could
// otherwise delete a revocation (the device is back), delete a notice (a
// device added elsewhere goes unseen), put back a link the user removed
// (the device is back) or put back a used acknowledgement (a device joins
// without a notice). Deleting a link by itself only removes a device,
// which is safe, but links are authenticated too: for the removed link put
// back, and because all digests live in one record, whose deletion is
// accepted only if every authenticated table is empty: with links among
// them, deleting the digest and every revocation leaves no gestalt at all
// instead of bringing the revoked back. These tables hold a few records
// per device ever linked (a notice stays while its device is out, hidden,
// until the user answers it or pairs the device again), so verifying them
// at each transaction's first access is cheap.
const LINKS: Table<Link> = Table::authenticated("gestalt_links");
const REVOKED: Table<Revocation> = Table::authenticated("gestalt_revoked");
const NOTICES: Table<DeviceNotice> = Table::authenticated("gestalt_notices");
/// Devices the inviter listed when this device joined, not adopted yet.
const ACKNOWLEDGED: Table<NodeId> = Table::authenticated("gestalt_acknowledged");

fn pair(x: NodeId, y: NodeId) -> (NodeId, NodeId) {
    if x <= y {
        (x, y)
    } else {
        (y, x)
    }
}

fn link_key(db: &Db, (a, b): (NodeId, NodeId)) -> RecordKey {
    let mut name = a.as_bytes().to_vec();
    name.extend_from_slice(b.as_bytes());
    db.record_key("gestalt_links", &name)
}

/// One record per (revoked node, issuer): several devices may remove the
/// same node, and each removal counts while its issuer stands (a thief's
/// later removal of a node must not replace the user's).
fn revoked_key(db: &Db, node: &NodeId, issuer: &NodeId) -> RecordKey {
    let mut name = node.as_bytes().to_vec();
    name.extend_from_slice(issuer.as_bytes());
    db.record_key("gestalt_revoked", &name)
}

/// Every stored revocation of `node`.
fn revocations_of(txn: &WriteTxn<'_>, node: &NodeId) -> Result<Vec<Revocation>, ClaimError> {
    Ok(txn
        .entries(&REVOKED)?
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.node == *node)
        .collect())
}

/// Forget every revocation of `node` (a newer link brought it back).
fn forget_revocations(
    db: &Db,
    txn: &mut WriteTxn<'_>,
    revocations: &[Revocation],
) -> Result<(), ClaimError> {
    for r in revocations {
        txn.delete(&REVOKED, &revoked_key(db, &r.node, &r.by))?;
    }
    Ok(())
}

fn notice_key(db: &Db, node: &NodeId) -> RecordKey {
    db.record_key("gestalt_notices", node.as_bytes())
}

fn acknowledged_key(db: &Db, node: &NodeId) -> RecordKey {
    db.record_key("gestalt_acknowledged", node.as_bytes())
}

/// Removals a contested node (one another device removed) may add while
/// contested: its own device's removal of a thief is one or two; a thief
/// sending a new fork of its frozen chain on every pull adds no more.
pub const MAX_CONTESTED_REVOCATIONS: usize = 64;

/// The gestalt graph stored in a node's database.
pub struct GestaltGraph<'db> {
    db: &'db Db,
}

impl<'db> GestaltGraph<'db> {
    /// The graph in `db`.
    pub fn new(db: &'db Db) -> Self {
        Self { db }
    }

    /// Record the link a `ClaimLinkNode` proves, after verifying it (both
    /// nodes signed), as a pairing does: a pairing both people confirmed
    /// brings both nodes back from any removal. Returns the two nodes.
    pub fn add_link(&self, claim: &SignedClaim) -> Result<(NodeId, NodeId), ClaimError> {
        let payload = claim.verify()?;
        if payload.typ != ClaimType::ClaimLinkNode {
            return Err(ClaimError::WrongType("only node links join gestalts"));
        }
        let mut txn = self.db.write()?;
        // A pairing both people confirmed brings both nodes back, whatever
        // removals are stored (a thief's, dated ahead, used to make this
        // device unable to pair anything).
        for node in [payload.iss, payload.sub] {
            let revocations = revocations_of(&txn, &node)?;
            forget_revocations(self.db, &mut txn, &revocations)?;
            // The person just confirmed it: a notice of another device
            // adding it long ago (kept while it was out) is answered.
            txn.delete(&NOTICES, &notice_key(self.db, &node))?;
        }
        let nodes = self.put_link(&mut txn, &payload, claim)?;
        txn.commit()?;
        Ok(nodes)
    }

    fn put_link(
        &self,
        txn: &mut WriteTxn<'_>,
        payload: &ClaimPayload,
        claim: &SignedClaim,
    ) -> Result<(NodeId, NodeId), ClaimError> {
        let (a, b) = pair(payload.iss, payload.sub);
        txn.put(
            &LINKS,
            &link_key(self.db, (a, b)),
            &Link {
                a,
                b,
                claim: claim.clone(),
            },
        )?;
        Ok((a, b))
    }

    /// Record a revocation this node issued (already on its chain): the
    /// node is out of the gestalt from now on. Returns whether it was in.
    pub fn revoke(&self, me: NodeId, claim: &SignedClaim) -> Result<bool, ClaimError> {
        let payload = claim.verify()?;
        if payload.typ != ClaimType::ClaimRevokeNode || payload.iss != me {
            return Err(ClaimError::WrongType("not a revocation issued here"));
        }
        let was_member = self.gestalt_of(me)?.contains(&payload.sub);
        let mut txn = self.db.write()?;
        self.put_revocation(&mut txn, &payload)?;
        // This node's own removal is always in force.
        txn.delete(&NOTICES, &notice_key(self.db, &payload.sub))?;
        txn.commit()?;
        Ok(was_member)
    }

    /// Store a revocation unless the same issuer's is as new. Every one is
    /// kept: a record is a few dozen bytes whatever its claim names, and a
    /// chain holds at most [`crate::sigchain::MAX_CHAIN_LEN`] claims. (Kept
    /// up to a bound for nodes never linked here, which nodes were kept
    /// depended on whether a link arrived first, so devices disagreed.)
    fn put_revocation(
        &self,
        txn: &mut WriteTxn<'_>,
        payload: &ClaimPayload,
    ) -> Result<bool, ClaimError> {
        let key = revoked_key(self.db, &payload.sub, &payload.iss);
        if let Some(existing) = txn.get(&REVOKED, &key)? {
            if existing.at >= payload.iat {
                return Ok(false);
            }
        }
        txn.put(
            &REVOKED,
            &key,
            &Revocation {
                node: payload.sub,
                by: payload.iss,
                at: payload.iat,
                at_ms: claimed_ms(payload),
                seq: payload.seq,
                names_heads: payload.heads.is_some(),
            },
        )?;
        // Its notice goes only if it is in force (see `settle`).
        Ok(true)
    }

    /// After claims were adopted in `txn`: what `adopted` reports removed
    /// is what is out of the gestalt as it now stands. A removal stored is
    /// not always in force (its issuer may have fallen, or fall in the
    /// same pull): its subject, still a device, is not reported gone.
    /// (Notices are kept whatever happens and shown for devices only, see
    /// [`GestaltGraph::notices`].)
    /// `view` is the adoption's own, read again only if it went stale.
    /// A dispute is reported once, when it begins (`before`: the nodes
    /// disputed before the adoption); its devices are not reported removed.
    fn settle(
        &self,
        txn: &WriteTxn<'_>,
        me: NodeId,
        view: View,
        before: &BTreeSet<NodeId>,
        adopted: &mut Adopted,
    ) -> Result<(), ClaimError> {
        if adopted.revoked.is_empty() && adopted.noticed.is_empty() && adopted.revocations == 0 {
            return Ok(());
        }
        let view = if view.stale {
            self.view(txn, me)?
        } else {
            view
        };
        adopted
            .revoked
            .retain(|n| !view.members.contains(n) && !view.disputed.contains(n));
        // Nor is a device added and removed in one pull announced.
        adopted.noticed.retain(|n| view.members.contains(n));
        adopted.disputed = view
            .disputed
            .iter()
            .filter(|n| !before.contains(n) && **n != me)
            .copied()
            .collect();
        Ok(())
    }

    /// Apply new claims of `issuer`'s chain (verified and in chain order,
    /// see [`crate::chains::verify_continuation`]) as seen by `me`. Claims of
    /// a node outside the gestalt change nothing. Links of new devices are
    /// recorded with a notice; revocations remove their subject (never
    /// `me`). One transaction; cost linear in `claims`.
    pub fn adopt(
        &self,
        me: NodeId,
        issuer: NodeId,
        claims: &[(ClaimPayload, SignedClaim)],
    ) -> Result<Adopted, ClaimError> {
        let mut txn = self.db.write()?;
        let mut view = self.view(&txn, me)?;
        let before = view.disputed.clone();
        let mut adopted = self.adopt_in(&mut txn, &mut view, me, issuer, claims)?;
        self.settle(&txn, me, view, &before, &mut adopted)?;
        txn.commit()?;
        Ok(adopted)
    }

    /// Take the new claims of several members' chains (each verified
    /// against the head of this node's copy it continues, see
    /// [`crate::chains::verify_continuation`]), in one transaction: the
    /// links and revocations of each chain whose owner is (or becomes) a
    /// member, or is contested (revocations only), and the copies of
    /// members' chains move on. A chain whose copy moved meanwhile is
    /// skipped. The graph is read again only after a chain changed it, so
    /// the cost grows with the claims and the changes, not with chains ×
    /// links.
    pub fn adopt_chains(
        &self,
        me: NodeId,
        copies: &MemberChains<'_>,
        updates: Vec<ChainClaims>,
    ) -> Result<Adopted, ClaimError> {
        let mut txn = self.db.write()?;
        let mut pending = updates;
        let mut all = Adopted::default();
        // Read once, then kept current (see below).
        let mut view = self.view(&txn, me)?;
        let before = view.disputed.clone();
        // A chain counts once its owner is a member; adopting one may make
        // the owner of another a member.
        loop {
            let (ready, mut waiting): (Vec<ChainClaims>, Vec<ChainClaims>) = pending
                .into_iter()
                .partition(|(node, _, _)| view.speaks(node));
            if ready.is_empty() {
                break;
            }
            let mut progressed = false;
            for (node, head, mut claims) in ready {
                if copies.head_in(&txn, &node)? != head {
                    continue;
                }
                // A chain past its bytes stops at the same claim everywhere.
                let fitting = copies.fitting_in(&txn, &node, &claims)?;
                let full = fitting < claims.len();
                claims.truncate(fitting);
                if full && claims.is_empty() {
                    copies.mark_full_in(&mut txn, &node)?;
                }
                if claims.is_empty() {
                    continue;
                }
                let member = view.members.contains(&node);
                let adopted = self.adopt_in(&mut txn, &mut view, me, node, &claims)?;
                if member {
                    copies.append_in(&mut txn, &node, head.as_ref(), &claims)?;
                    if full {
                        copies.mark_full_in(&mut txn, &node)?;
                    }
                    progressed = true;
                } else if adopted.changed() {
                    // A contested device's chain is read for its
                    // revocations only; its copy does not move, so its
                    // links count if it is trusted again.
                    waiting.push((node, head, claims));
                }
                if adopted.changed() {
                    progressed = true;
                }
                // New links only extend the view in place (adopt_in did);
                // a revocation or a node brought back changes who stands,
                // so the view is read again. Re-reading after every chain
                // let many puppet chains of one link each cost chains ×
                // links.
                if view.stale {
                    view = self.view(&txn, me)?;
                }
                all.absorb(adopted);
            }
            pending = waiting;
            if !progressed {
                break;
            }
        }
        // The inviter's list speaks for the gestalt as it was when this
        // device joined: it is used by the first adoption after pairing
        // and then forgotten, so an inviter cannot name keys it links only
        // later.
        for (key, _) in txn.entries(&ACKNOWLEDGED)? {
            txn.delete(&ACKNOWLEDGED, &key)?;
        }
        self.settle(&txn, me, view, &before, &mut all)?;
        txn.commit()?;
        Ok(all)
    }

    /// The members, contested nodes and links as `me` sees them inside
    /// `txn`.
    fn view(&self, txn: &WriteTxn<'_>, me: NodeId) -> Result<View, ClaimError> {
        let links: Vec<LinkTime> = txn
            .entries(&LINKS)?
            .into_iter()
            .map(|(_, link)| {
                let (at, by) = link.claimed();
                (link.a, link.b, at, by)
            })
            .collect();
        let pairs: Vec<(NodeId, NodeId)> = links.iter().map(|(a, b, _, _)| (*a, *b)).collect();
        let standing = Standing::of(
            txn.entries(&REVOKED)?.into_iter().map(|(_, r)| r),
            &pairs,
            me,
        );
        Ok(View {
            members: standing.members,
            contested: standing.contested,
            disputed: standing.disputed,
            links,
            stale: false,
        })
    }

    /// [`GestaltGraph::adopt`] inside `txn`, keeping `view` up to date for
    /// what it adds (a revocation may change more: read the view again).
    fn adopt_in(
        &self,
        txn: &mut WriteTxn<'_>,
        view: &mut View,
        me: NodeId,
        issuer: NodeId,
        claims: &[(ClaimPayload, SignedClaim)],
    ) -> Result<Adopted, ClaimError> {
        let mut adopted = Adopted::default();
        // A device removed by another device still speaks for revocations
        // (see [`GestaltGraph::contested`]), never for links.
        let revocations_only = !view.members.contains(&issuer);
        if revocations_only && !view.contested.contains(&issuer) {
            return Ok(adopted);
        }
        // A contested node is heard only once it answered: removed a node
        // that removed it. Its chain is read so that the user's removal of
        // a thief reaches a device the thief cut off (then all its
        // removals count, the thief's other keys among them, and fail
        // closed as a dispute); a node out that never answered would lie
        // in wait (a puppet a thief linked and removed at once, never
        // shown, removing every device: they would all fall, unannounced,
        // when the user removed the thief).
        // A contested node's copy does not move, so it could send a new
        // fork of its chain on every pull, each with 1,000 removals: what
        // it may still add is bounded.
        let mut contested_room = usize::MAX;
        if revocations_only {
            let stored: Vec<Revocation> =
                txn.entries(&REVOKED)?.into_iter().map(|(_, r)| r).collect();
            let removers: BTreeSet<NodeId> = stored
                .iter()
                .filter(|r| r.node == issuer)
                .map(|r| r.by)
                .collect();
            let its_own: Vec<&Revocation> = stored.iter().filter(|r| r.by == issuer).collect();
            let answered_before = its_own.iter().any(|r| removers.contains(&r.node));
            let answers_now = claims
                .iter()
                .any(|(p, _)| p.typ == ClaimType::ClaimRevokeNode && removers.contains(&p.sub));
            if !answered_before && !answers_now {
                return Ok(adopted);
            }
            contested_room = MAX_CONTESTED_REVOCATIONS.saturating_sub(its_own.len());
        }
        let members = &mut view.members;
        for (payload, claim) in claims {
            if payload.iss != issuer {
                return Err(ClaimError::BrokenChain("issued by another node"));
            }
            let other = payload.sub;
            match payload.typ {
                ClaimType::ClaimLinkNode if revocations_only => {}
                // An identity claim links no node: the graph of nodes ignores it.
                ClaimType::ClaimLinkIdentity | ClaimType::ClaimNameNode => {}
                ClaimType::ClaimLinkNode => {
                    // Removals older than the link give way to it; a newer
                    // one by a device that stands keeps the node out for
                    // now, but the link is kept: if that remover falls, the
                    // link counts again. (A fallen thief's removals, dated
                    // ahead, used to make every link of the node refused
                    // and dropped for good.)
                    let revocations = revocations_of(txn, &other)?;
                    let held = revocations
                        .iter()
                        .any(|r| r.at >= payload.iat && (r.by == me || members.contains(&r.by)));
                    let older: Vec<Revocation> = revocations
                        .into_iter()
                        .filter(|r| r.at < payload.iat)
                        .collect();
                    let revived = !older.is_empty() && !held;
                    if !older.is_empty() {
                        forget_revocations(self.db, txn, &older)?;
                        view.stale = true;
                    }
                    let linked = txn
                        .get(&LINKS, &link_key(self.db, pair(issuer, other)))?
                        .is_some();
                    if linked && !revived {
                        continue;
                    }
                    self.put_link(txn, payload, claim)?;
                    view.links
                        .push((payload.iss, payload.sub, payload.iat, Some(issuer)));
                    if held {
                        view.stale = true;
                        continue;
                    }
                    // A device back after a removal is news as much as a
                    // new one.
                    let news = members.insert(other) || revived;
                    if other != me && news {
                        adopted.joined.push(other);
                        // Shown unless the inviter listed it when this
                        // device joined (its person knows it). Not by date:
                        // a claim's date is what its issuer says, so a thief
                        // could backdate a device past any cut-off.
                        let key = acknowledged_key(self.db, &other);
                        if txn.delete(&ACKNOWLEDGED, &key)? && !revived {
                            continue;
                        }
                        txn.put(
                            &NOTICES,
                            &notice_key(self.db, &other),
                            &DeviceNotice {
                                device: other,
                                added_by: issuer,
                                added_at: payload.iat,
                            },
                        )?;
                        adopted.noticed.push(other);
                    }
                }
                ClaimType::ClaimRevokeNode => {
                    if other == me {
                        if !revocations_only && !adopted.removed_me.contains(&issuer) {
                            adopted.removed_me.push(issuer);
                        }
                        continue;
                    }
                    if revocations_only
                        && txn
                            .get(&REVOKED, &revoked_key(self.db, &other, &issuer))?
                            .is_none()
                    {
                        if contested_room == 0 {
                            continue;
                        }
                        contested_room -= 1;
                    }
                    // A newer link (a fresh pairing) wins over an older
                    // revocation, whichever arrives first, if a device
                    // still in the gestalt made it: never the revoked node
                    // itself, nor a node removed meanwhile (a puppet of
                    // the revoked node's, which its keys could link).
                    let newer_links: Vec<NodeId> = view
                        .links
                        .iter()
                        .filter(|(a, b, at, _)| (*a == other || *b == other) && *at > payload.iat)
                        .filter_map(|(_, _, _, by)| *by)
                        .filter(|by| *by != other && members.contains(by))
                        .collect();
                    // Its maker must stand without the revoked node: a
                    // puppet reachable only through it (linked by its
                    // keys) cannot keep it.
                    let newer_link = !newer_links.is_empty() && {
                        let pairs: Vec<(NodeId, NodeId)> =
                            view.links.iter().map(|(a, b, _, _)| (*a, *b)).collect();
                        let without = reachable_without(&pairs, members, me, other);
                        newer_links.iter().any(|by| without.contains(by))
                    };
                    if newer_link {
                        continue;
                    }
                    if self.put_revocation(txn, payload)? {
                        view.stale = true;
                        adopted.revocations += 1;
                        if members.remove(&other) {
                            adopted.revoked.push(other);
                        }
                    }
                }
            }
        }
        Ok(adopted)
    }

    /// Forget the link between two nodes. Returns whether there was one.
    pub fn remove_link(&self, x: NodeId, y: NodeId) -> Result<bool, ClaimError> {
        let mut txn = self.db.write()?;
        let removed = txn.delete(&LINKS, &link_key(self.db, pair(x, y)))?;
        txn.commit()?;
        Ok(removed)
    }

    /// Every link, as node pairs.
    pub fn links(&self) -> Result<Vec<(NodeId, NodeId)>, ClaimError> {
        let mut links: Vec<_> = self
            .db
            .read()?
            .entries(&LINKS)?
            .into_iter()
            .map(|(_, link)| (link.a, link.b))
            .collect();
        links.sort();
        Ok(links)
    }

    /// Every link's claim.
    pub fn link_claims(&self) -> Result<Vec<SignedClaim>, ClaimError> {
        Ok(self
            .db
            .read()?
            .entries(&LINKS)?
            .into_iter()
            .map(|(_, link)| link.claim)
            .collect())
    }

    /// The claim proving the link between two nodes, if linked.
    pub fn link_claim(&self, x: NodeId, y: NodeId) -> Result<Option<SignedClaim>, ClaimError> {
        Ok(self
            .db
            .read()?
            .get(&LINKS, &link_key(self.db, pair(x, y)))?
            .map(|link| link.claim))
    }

    /// The latest revocation of `node` stored here, if any device removed it.
    pub fn revocation(&self, node: &NodeId) -> Result<Option<Revocation>, ClaimError> {
        Ok(self
            .db
            .read()?
            .entries(&REVOKED)?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.node == *node)
            .max_by_key(|r| (r.at, r.by)))
    }

    /// Every revocation stored (a node several devices removed has one of
    /// each).
    pub fn revocations(&self) -> Result<Vec<Revocation>, ClaimError> {
        let mut out: Vec<Revocation> = self
            .db
            .read()?
            .entries(&REVOKED)?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        out.sort_by_key(|r| (r.node, r.by));
        Ok(out)
    }

    /// The claim behind `r` as `me` holds it: on its own chain, or on the
    /// copy of the remover's. None if that copy no longer reaches it.
    pub fn revocation_claim(
        &self,
        me: NodeId,
        r: &Revocation,
    ) -> Result<Option<(ClaimPayload, SignedClaim)>, ClaimError> {
        let before = r.seq.saturating_sub(1);
        let found = if r.by == me {
            crate::sigchain::Sigchain::new(self.db, me).claims_after(before, 1)?
        } else {
            MemberChains::new(self.db).claims_after(&r.by, before, 1)?
        };
        Ok(found.into_iter().find_map(|claim| {
            let payload = claim.decode().ok()?;
            let matches = payload.typ == ClaimType::ClaimRevokeNode
                && payload.sub == r.node
                && payload.iss == r.by
                && payload.seq == r.seq;
            matches.then_some((payload, claim))
        }))
    }

    /// Every stored removal, and every stored link's two nodes, from one
    /// read.
    fn stored(&self) -> Result<Stored, ClaimError> {
        let txn = self.db.read()?;
        let removals: Vec<Revocation> =
            txn.entries(&REVOKED)?.into_iter().map(|(_, r)| r).collect();
        Ok((removals, pairs_of(txn.entries(&LINKS)?)))
    }

    /// Who stands as `me` sees the stored removals and links, from one
    /// read.
    fn judged(&self, me: NodeId) -> Result<Judged, ClaimError> {
        let (removals, pairs) = self.stored()?;
        let standing = Standing::of(removals.iter().cloned(), &pairs, me);
        Ok(Judged { standing, removals })
    }

    /// The revocations in force as `me` sees it: by `me`, or by a node
    /// that stands (see [`GestaltGraph::contested`] for the rest).
    pub fn revocations_in_force(&self, me: NodeId) -> Result<Vec<Revocation>, ClaimError> {
        Ok(self.judgement(me)?.in_force)
    }

    /// The gestalt, the revocations in force and the disputed nodes as
    /// `me` sees it, worked out once (a vault page needs all three).
    pub fn judgement(&self, me: NodeId) -> Result<Judgement, ClaimError> {
        let Judged {
            standing, removals, ..
        } = self.judged(me)?;
        // The removal that counts for each node out.
        let mut in_force: Vec<Revocation> = removals
            .into_iter()
            .filter(|r| standing.out.get(&r.node).is_some_and(|(i, _)| *i == r.by))
            .collect();
        in_force.sort_by_key(|r| r.node);
        Ok(Judgement {
            members: standing.members,
            in_force,
            disputed: standing.disputed,
        })
    }

    /// The devices an inviter listed as this device joined: adopting
    /// their links later shows no notice (once each; a device removed and
    /// brought back is shown).
    pub fn acknowledge(&self, devices: &[NodeId]) -> Result<(), ClaimError> {
        let mut txn = self.db.write()?;
        for device in devices {
            txn.put(&ACKNOWLEDGED, &acknowledged_key(self.db, device), device)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Devices other devices added, not yet seen to by the user, that are
    /// devices of `me`'s gestalt now. A notice is kept while its device is
    /// out (removed by another device): a thief that has one of its
    /// puppets remove a device, then falls, must not bring it back
    /// unshown. Only the user's own answer (keep, or remove here) ends it.
    pub fn notices(&self, me: NodeId) -> Result<Vec<DeviceNotice>, ClaimError> {
        let members = self.gestalt_of(me)?;
        let mut out: Vec<DeviceNotice> = self
            .db
            .read()?
            .entries(&NOTICES)?
            .into_iter()
            .map(|(_, n)| n)
            .filter(|n| members.contains(&n.device))
            .collect();
        out.sort_by_key(|n| (n.added_at, n.device));
        Ok(out)
    }

    /// The user kept (or removed) `device`: drop its notice. Returns
    /// whether there was one.
    pub fn dismiss_notice(&self, device: &NodeId) -> Result<bool, ClaimError> {
        let mut txn = self.db.write()?;
        let removed = txn.delete(&NOTICES, &notice_key(self.db, device))?;
        txn.commit()?;
        Ok(removed)
    }

    /// Nodes removed by a revocation in force that another node than `me`
    /// issued: refused like any removed node, but their chains are still
    /// read for revocations, so a thief that removed a device first cannot
    /// keep the user's removal of the thief from reaching this one.
    pub fn contested(&self, me: NodeId) -> Result<BTreeSet<NodeId>, ClaimError> {
        Ok(self.judged(me)?.standing.contested)
    }

    /// The nodes in a dispute as `me` sees it (see `Standing`).
    pub fn disputed(&self, me: NodeId) -> Result<BTreeSet<NodeId>, ClaimError> {
        Ok(self.judged(me)?.standing.disputed)
    }

    /// Devices out as `me` sees it because devices removed each other
    /// (see `Standing`): each is out here until the user removes, on this
    /// device or one that stands, every device they do not have. Each
    /// with the undecided devices that removed it and when the latest did
    /// (seconds); one that nobody removed (it hangs on a device it
    /// removed) with none, and when it last removed one.
    pub fn disputes(&self, me: NodeId) -> Result<Vec<Dispute>, ClaimError> {
        let Judged {
            standing,
            removals: entries,
            ..
        } = self.judged(me)?;
        // Each disputed device's removals by undecided devices, and of
        // disputed devices, grouped once.
        let mut of: BTreeMap<NodeId, Vec<(NodeId, u64)>> = BTreeMap::new();
        let mut by: BTreeMap<NodeId, Vec<u64>> = BTreeMap::new();
        for r in &entries {
            if standing.disputed.contains(&r.node) && standing.undecided.contains(&r.by) {
                of.entry(r.node).or_default().push((r.by, r.at));
                by.entry(r.by).or_default().push(r.at);
            }
        }
        let mut out: Vec<Dispute> = standing
            .disputed
            .iter()
            .filter(|n| **n != me)
            .map(|device| {
                let mut removed_by = of.remove(device).unwrap_or_default();
                removed_by.sort();
                let removed = by.remove(device).unwrap_or_default().into_iter();
                Dispute {
                    device: *device,
                    at: removed_by
                        .iter()
                        .map(|(_, at)| *at)
                        .max()
                        .or_else(|| removed.max())
                        .unwrap_or(0),
                    removed_by: removed_by.into_iter().map(|(by, _)| by).collect(),
                }
            })
            .collect();
        out.sort_by_key(|d| (d.at, d.device));
        Ok(out)
    }

    /// What removing `device` here would change as `me` sees it (see
    /// [`RemovalEffect`]).
    pub fn removal_effect(&self, me: NodeId, device: NodeId) -> Result<RemovalEffect, ClaimError> {
        let (removals, pairs) = self.stored()?;
        let now = Standing::of(removals.iter().cloned(), &pairs, me);
        let removal = Revocation {
            node: device,
            by: me,
            at: u64::MAX / 1000,
            at_ms: u64::MAX,
            seq: 0,
            names_heads: false,
        };
        let then = Standing::of(removals.into_iter().chain([removal]), &pairs, me);
        Ok(RemovalEffect {
            back: then
                .members
                .difference(&now.members)
                .filter(|n| **n != device)
                .map(|n| (*n, now.disputed.contains(n)))
                .collect(),
            going: now
                .members
                .difference(&then.members)
                .filter(|n| **n != device)
                .copied()
                .collect(),
        })
    }

    /// The gestalt of `node`: every node reachable through links, itself
    /// included, never through a removed node.
    pub fn gestalt_of(&self, node: NodeId) -> Result<BTreeSet<NodeId>, ClaimError> {
        Ok(self.judged(node)?.standing.members)
    }
}

/// Most rounds of working out another gestalt from its chains (see
/// [`gestalt_of_chains`]): each round can only follow links one step
/// further or settle a removal.
const MAX_OTHER_GESTALT_ROUNDS: usize = 64;

/// Another person's gestalt as its chains show it, seen from `root`, one of
/// its nodes (for a person trusted by a NodeId): `chains` are their nodes'
/// chains, each verified from its first claim
/// ([`crate::chains::verify_continuation`] with no head). A chain counts only
/// once its owner is reached from `root` through node links on chains that
/// count (a removed node's chain still counts for its removals, as on the
/// person's own devices), so a stranger's chain in the answer adds and
/// removes nothing. A node removed by a removal in force is out. Stricter
/// than the person's own devices in one case: a node paired again after a
/// removal stays out here (the removal is still on its remover's chain),
/// so the mistake this can make is serving one device too few.
pub fn gestalt_of_chains(
    root: NodeId,
    chains: &[(NodeId, Vec<(ClaimPayload, SignedClaim)>)],
) -> BTreeSet<NodeId> {
    let mut members = BTreeSet::from([root]);
    let mut contested = BTreeSet::new();
    for _ in 0..MAX_OTHER_GESTALT_ROUNDS {
        // Removed nodes' chains are read for their removals, never links.
        let speakers: BTreeSet<NodeId> = members.union(&contested).copied().collect();
        // (Never a removal of `root`: the node seen from stands, as on a
        // person's own devices.)
        let removals = claims_on(chains, &speakers, ClaimType::ClaimRevokeNode)
            .filter(|p| p.sub != root)
            .map(|p| Revocation {
                node: p.sub,
                by: p.iss,
                at: p.iat,
                at_ms: claimed_ms(p),
                seq: p.seq,
                names_heads: p.heads.is_some(),
            });
        let links: Vec<(NodeId, NodeId)> = claims_on(chains, &members, ClaimType::ClaimLinkNode)
            .map(|p| (p.iss, p.sub))
            .collect();
        let standing = Standing::of(removals, &links, root);
        let next = standing.members;
        let next_contested = standing.contested;
        if next == members && next_contested == contested {
            break;
        }
        members = next;
        contested = next_contested;
    }
    members
}

/// The claims of type `typ` on the chains of `owners`, each issued by its
/// chain's owner.
fn claims_on<'a>(
    chains: &'a [(NodeId, Vec<(ClaimPayload, SignedClaim)>)],
    owners: &'a BTreeSet<NodeId>,
    typ: ClaimType,
) -> impl Iterator<Item = &'a ClaimPayload> + 'a {
    chains
        .iter()
        .filter(|(owner, _)| owners.contains(owner))
        .flat_map(move |(owner, claims)| {
            claims
                .iter()
                .map(|(p, _)| p)
                .filter(move |p| p.typ == typ && p.iss == *owner)
        })
}

/// Chains' new claims to adopt: each owner, the head of this node's copy
/// they continue, and the claims, verified.
pub type ChainClaims = (NodeId, Option<ChainHead>, Vec<(ClaimPayload, SignedClaim)>);

/// What adoption decides from: the gestalt as one node sees it.
struct View {
    members: BTreeSet<NodeId>,
    contested: BTreeSet<NodeId>,
    /// Of the nodes out, those in a dispute (see `Standing`).
    disputed: BTreeSet<NodeId>,
    links: Vec<LinkTime>,
    /// Changed in a way only a fresh read shows (a revocation, a node
    /// brought back).
    stale: bool,
}

impl View {
    /// Whether `node`'s chain counts: a member's, or a contested node's
    /// (for its revocations).
    fn speaks(&self, node: &NodeId) -> bool {
        self.members.contains(node) || self.contested.contains(node)
    }
}

/// Who is in and who is out as one node sees the links and removals it
/// holds: the "grounded" reading of an argument, with links. `me` is in;
/// a node is in when a link joins it to a node that is in and every node
/// that removed it is out; a node a node that is in removed is out; until
/// nothing changes. Only removals by devices count (nodes linked in the
/// graph, and `me`): a key a thief made up and never linked speaks for
/// nothing. What is left is undecided, and a device it leaves undecided
/// because of a removal is "disputed", with the devices that removed it:
/// devices that removed each other (the user's device and a thief
/// answering it, whichever struck first: no rule over the chains can tell
/// the user's removal from the thief's, the shape is the same and a thief
/// can always date its answer later), every device only they removed, a
/// device that removed the only device it hangs on, and a device removed
/// by one that nothing joins to this one any more but that nobody removed
/// (a puppet a thief linked and removed, once the user removed the thief:
/// it may as well be the user's laptop paired through a phone since
/// removed). None of them is a device here, and none of their removals
/// takes anyone out, until the user removes, on a device that is in,
/// every device they do not have; those removals settle it wherever that
/// device is in. Failing closed is what keeps a thief from standing: any
/// rule that let one side of a dispute stand would let a thief holding
/// two keys answer with one and stand with the other, and ignoring the
/// removals of a device out of reach would bring back a thief it removed.
/// Times play no part.
struct Standing {
    /// The nodes in: this node's gestalt.
    members: BTreeSet<NodeId>,
    /// Each node out, with the removal that counts for it (issuer, when
    /// in ms): the latest by a member (ties: the larger issuer, so every
    /// device picks the same), or for a disputed node the latest by an
    /// undecided one.
    out: BTreeMap<NodeId, (NodeId, u64)>,
    /// The disputed devices: those an undecided device removed (and that
    /// would be in but for it; these are out), and the undecided devices
    /// that removed one of them.
    disputed: BTreeSet<NodeId>,
    /// Devices neither in nor removed by a member.
    undecided: BTreeSet<NodeId>,
    /// Nodes out that `me` did not remove itself and that are linked:
    /// refused like any removed node, but their chains are still read for
    /// removals (see [`GestaltGraph::contested`]).
    contested: BTreeSet<NodeId>,
}

/// What [`GestaltGraph::judged`] reads and works out.
struct Judged {
    standing: Standing,
    /// Every stored removal.
    removals: Vec<Revocation>,
}

/// The node pairs of stored links.
fn pairs_of(links: Vec<(RecordKey, Link)>) -> Vec<(NodeId, NodeId)> {
    links
        .into_iter()
        .map(|(_, link)| (link.a, link.b))
        .collect()
}

impl Standing {
    /// Who is in and out as `me` sees `revoked` and `links` (a removal of
    /// `me` counts for nothing here). One pass, linear in the links and
    /// removals: each node joins once, each removal is settled once.
    fn of(
        revoked: impl IntoIterator<Item = Revocation>,
        links: &[(NodeId, NodeId)],
        me: NodeId,
    ) -> Self {
        let mut neighbours: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
        for (a, b) in links {
            if a != b {
                neighbours.entry(*a).or_default().push(*b);
                neighbours.entry(*b).or_default().push(*a);
            }
        }
        let device = |n: &NodeId| *n == me || neighbours.contains_key(n);
        // Each (node, issuer) once, at its latest.
        let mut latest: BTreeMap<(NodeId, NodeId), u64> = BTreeMap::new();
        for r in revoked {
            // (A removal of itself is refused as a claim; ignored here too.)
            if r.node == me || r.node == r.by || !device(&r.by) {
                continue;
            }
            let at = latest.entry((r.node, r.by)).or_insert(r.at_ms);
            *at = (*at).max(r.at_ms);
        }
        // Issuer to the nodes it removed; node to how many of its removers
        // are not out yet.
        let mut removes: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
        let mut unsettled: BTreeMap<NodeId, usize> = BTreeMap::new();
        for (node, by) in latest.keys() {
            removes.entry(*by).or_default().push(*node);
            *unsettled.entry(*node).or_default() += 1;
        }
        let mut members = BTreeSet::new();
        // Removed by a member.
        let mut gone: BTreeSet<NodeId> = BTreeSet::new();
        let mut queue = VecDeque::from([me]);
        while let Some(next) = queue.pop_front() {
            if gone.contains(&next) || !members.insert(next) {
                continue;
            }
            for node in removes.get(&next).into_iter().flatten() {
                if !gone.insert(*node) {
                    continue;
                }
                // Its removals hold nobody back any more.
                for freed in removes.get(node).into_iter().flatten() {
                    let Some(left) = unsettled.get_mut(freed) else {
                        continue;
                    };
                    *left = left.saturating_sub(1);
                    // (Its neighbours are looked at once: when it is clear.)
                    let joined = *left == 0
                        && neighbours
                            .get(freed)
                            .into_iter()
                            .flatten()
                            .any(|n| members.contains(n));
                    if joined {
                        queue.push_back(*freed);
                    }
                }
            }
            for other in neighbours.get(&next).into_iter().flatten() {
                let clear = unsettled.get(other).is_none_or(|left| *left == 0);
                if clear && !members.contains(other) {
                    queue.push_back(*other);
                }
            }
        }
        let undecided: BTreeSet<NodeId> = neighbours
            .keys()
            .filter(|n| !members.contains(n) && !gone.contains(n))
            .copied()
            .collect();
        // What links would join were every undecided device in.
        let mut reachable = BTreeSet::from([me]);
        let mut queue = VecDeque::from([me]);
        while let Some(next) = queue.pop_front() {
            for other in neighbours.get(&next).into_iter().flatten() {
                if !gone.contains(other) && reachable.insert(*other) {
                    queue.push_back(*other);
                }
            }
        }
        let held_back: BTreeSet<NodeId> = latest
            .keys()
            .filter(|(node, by)| {
                undecided.contains(by) && reachable.contains(node) && !members.contains(node)
            })
            .map(|(node, _)| *node)
            .collect();
        let mut out: BTreeMap<NodeId, (NodeId, u64)> = BTreeMap::new();
        for ((node, by), at) in &latest {
            let counts =
                members.contains(by) || (held_back.contains(node) && undecided.contains(by));
            if !counts {
                continue;
            }
            let better = out
                .get(node)
                .is_none_or(|(held_by, held_at)| (*at, *by) > (*held_at, *held_by));
            if better {
                out.insert(*node, (*by, *at));
            }
        }
        // Those that removed one of them are in the dispute too, for the
        // user to remove.
        let mut disputed = held_back.clone();
        disputed.extend(
            latest
                .keys()
                .filter(|(node, by)| held_back.contains(node) && undecided.contains(by))
                .map(|(_, by)| *by),
        );
        let by_me: BTreeSet<NodeId> = latest
            .keys()
            .filter(|(_, by)| *by == me)
            .map(|(node, _)| *node)
            .collect();
        let contested = out
            .keys()
            .filter(|n| !by_me.contains(n) && neighbours.contains_key(n))
            .copied()
            .collect();
        Self {
            members,
            out,
            disputed,
            undecided,
            contested,
        }
    }
}

/// The nodes of `members` reachable from `me` through `links` without
/// passing through `excluded`.
fn reachable_without(
    links: &[(NodeId, NodeId)],
    members: &BTreeSet<NodeId>,
    me: NodeId,
    excluded: NodeId,
) -> BTreeSet<NodeId> {
    reachable(links, me, |n| *n != excluded && members.contains(n))
}

/// Every node reachable from `start` through `links` whose two ends are
/// both `allowed`, `start` included.
fn reachable(
    links: &[(NodeId, NodeId)],
    start: NodeId,
    allowed: impl Fn(&NodeId) -> bool,
) -> BTreeSet<NodeId> {
    let mut neighbours: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
    for (a, b) in links {
        if allowed(a) && allowed(b) {
            neighbours.entry(*a).or_default().push(*b);
            neighbours.entry(*b).or_default().push(*a);
        }
    }
    let mut seen = BTreeSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(next) = queue.pop_front() {
        for other in neighbours.get(&next).into_iter().flatten() {
            if seen.insert(*other) {
                queue.push_back(*other);
            }
        }
    }
    seen
}

/// When a claim was made, in ms: its id's milliseconds when they fall in its
/// issued-at second, else that second.
fn claimed_ms(payload: &ClaimPayload) -> u64 {
    let second = payload.iat.saturating_mul(1000);
    crate::claims::claim_id_ms(&payload.jti)
        .filter(|ms| ms / 1000 == payload.iat)
        .unwrap_or(second)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(seed: u8) -> NodeId {
        polykey_keys::RootKeypair::from_seed(&[seed; 32]).node_id()
    }

    /// The nodes out and those disputed, as `me` sees `removals` (node,
    /// remover, when), every node linked to `me`.
    fn judged(removals: &[(NodeId, NodeId, u64)], me: NodeId) -> (Vec<NodeId>, Vec<NodeId>) {
        let links: Vec<(NodeId, NodeId)> = removals
            .iter()
            .flat_map(|(node, by, _)| [(me, *node), (me, *by)])
            .filter(|(a, b)| a != b)
            .collect();
        let standing = standing_of(&links, removals, me);
        let out = standing.out.keys().copied().collect();
        (out, standing.disputed.into_iter().collect())
    }

    /// [`Standing::of`] for `links` and `removals` (node, remover, when).
    fn standing_of(
        links: &[(NodeId, NodeId)],
        removals: &[(NodeId, NodeId, u64)],
        me: NodeId,
    ) -> Standing {
        Standing::of(
            removals.iter().map(|(node, by, at)| Revocation {
                node: *node,
                by: *by,
                at: at / 1000,
                at_ms: *at,
                seq: 1,
                names_heads: false,
            }),
            links,
            me,
        )
    }

    fn sorted(mut nodes: Vec<NodeId>) -> Vec<NodeId> {
        nodes.sort();
        nodes
    }

    #[test]
    fn revocations_stand_only_while_their_issuer_does() {
        let (me, b, c, t) = (node(1), node(2), node(3), node(4));
        // Revoked by me: in force.
        assert_eq!(judged(&[(t, me, 1)], me), (vec![t], vec![]));
        // A thief's revocation of B, with no revocation of the thief.
        assert_eq!(judged(&[(b, t, 1)], me), (vec![b], vec![]));
        // Once I revoke the thief, its revocation of B is void.
        assert_eq!(judged(&[(b, t, 1), (t, me, 2)], me), (vec![t], vec![]));
        // A chain: C revokes the thief, the thief revoked B; C stands.
        assert_eq!(judged(&[(b, t, 1), (t, c, 2)], me), (vec![t], vec![]));
        // Me, never.
        assert_eq!(judged(&[(me, t, 5)], me), (vec![], vec![]));
    }

    #[test]
    fn devices_that_removed_each_other_are_both_out_until_one_that_stands_decides() {
        let (me, b, c, t) = (node(1), node(2), node(3), node(4));
        let both = sorted(vec![b, t]);
        // Whichever removal came last: neither stands.
        for (first, second) in [(1, 2), (2, 1), (5, 5)] {
            assert_eq!(
                judged(&[(b, t, first), (t, b, second)], me),
                (both.clone(), both.clone()),
            );
        }
        // A device removed by a disputed one is out too until the user
        // decides (failing closed: see the thief with two keys below).
        let three = sorted(vec![b, c, t]);
        assert_eq!(
            judged(&[(b, t, 1), (t, b, 2), (c, t, 3)], me),
            (three.clone(), three.clone()),
        );
        // The user decides here: the thief is out, B and C stand.
        assert_eq!(
            judged(&[(b, t, 1), (t, b, 2), (c, t, 3), (t, me, 4)], me),
            (vec![t], vec![]),
        );
        // Or on a device that stands here: the same.
        assert_eq!(
            judged(&[(b, t, 1), (t, b, 2), (c, t, 3), (t, x(), 4)], me),
            (vec![t], vec![]),
        );
        // A thief answering that device too only widens the dispute; it
        // never stands.
        assert_eq!(
            judged(&[(b, t, 1), (t, b, 2), (t, c, 4), (c, t, 9)], me),
            (three.clone(), three.clone()),
        );
        // On a device in the dispute, its own removal holds.
        assert_eq!(judged(&[(b, t, 1), (t, b, 2)], b), (vec![t], vec![]));
        // A longer ring: none stands, each is out.
        assert_eq!(
            judged(&[(b, c, 1), (c, t, 2), (t, b, 3)], me),
            (three.clone(), three),
        );
        // The order removals arrive in changes nothing.
        let mut removals = vec![(b, t, 1), (t, b, 2), (c, t, 3), (t, c, 4), (x(), c, 5)];
        let first = judged(&removals, me);
        removals.reverse();
        assert_eq!(judged(&removals, me), first);
    }

    fn x() -> NodeId {
        node(5)
    }

    /// The thief holds two keys, T (a device) and Z (a puppet it linked).
    /// The user's device B removes both; the thief answers with Z alone.
    /// Were a dispute's devices taken out and the rest judged again, B
    /// and Z would be disputed, B's removals void, and T, removed by B
    /// alone, would stand; failing closed, T stays out with them.
    #[test]
    fn a_thief_answering_with_a_second_key_does_not_stand_with_the_first() {
        let (me, b, t, z) = (node(1), node(2), node(3), node(4));
        let (out, disputed) = judged(&[(t, b, 1), (z, b, 2), (b, z, 3)], me);
        assert_eq!(out, sorted(vec![b, t, z]));
        assert_eq!(disputed, out);
        // The user removes the puppet here: B stands, and so its removal
        // of T counts.
        assert_eq!(
            judged(&[(t, b, 1), (z, b, 2), (b, z, 3), (z, me, 4)], me),
            (sorted(vec![t, z]), vec![]),
        );
    }

    /// Only devices' removals count: keys a thief made up and never
    /// linked, removing each other in rings layer after layer and then
    /// the user's devices, remove nobody.
    #[test]
    fn removals_by_keys_never_linked_count_for_nothing() {
        let (me, b, t) = (node(1), node(2), node(3));
        let mut removals = vec![(t, me, 1)];
        let mut previous: Vec<NodeId> = vec![t];
        for layer in 0..70u8 {
            let pair = [
                polykey_keys::RootKeypair::from_seed(
                    &[layer, 1, 2, 3].repeat(8).try_into().unwrap(),
                )
                .node_id(),
                polykey_keys::RootKeypair::from_seed(
                    &[layer, 4, 5, 6].repeat(8).try_into().unwrap(),
                )
                .node_id(),
            ];
            removals.push((pair[0], pair[1], 1));
            removals.push((pair[1], pair[0], 1));
            for p in &previous {
                removals.push((pair[0], *p, 1));
            }
            previous = pair.to_vec();
        }
        for p in &previous {
            removals.push((b, *p, 2));
        }
        let standing = standing_of(&[(me, b), (me, t)], &removals, me);
        assert!(standing.members.contains(&b), "B stands");
        assert!(standing.out.contains_key(&t));
        assert!(standing.disputed.is_empty());
        // Were they devices, B would be out (failing closed) until the
        // user removed them.
        let (out, disputed) = judged(&removals, me);
        assert!(out.contains(&b) && disputed.contains(&b));
    }

    /// The thief T, paired on A, links a puppet P; P, a device then,
    /// removes B and A; then T removes P. On A, P is out (T is in). On B
    /// and C, T is joined to them only through A, which P removed: that P
    /// is out rests on A being in (as a thief's removal of A itself
    /// would), so A is disputed with P (and T with them) there. The user
    /// removes T on A:
    /// P's remover is out, so nobody removes P, but nothing joins it to
    /// the user's devices: its removals neither count nor are ignored
    /// (the user's laptop paired through a phone since removed looks the
    /// same): what P removed is disputed, shown with P, until the user
    /// removes P. (B fell on A silently: P stood.)
    #[test]
    fn a_puppet_that_hangs_on_a_removed_thief_is_a_dispute_not_a_device() {
        let (a, b, c, t, p) = (node(1), node(2), node(3), node(4), node(6));
        let links = [(a, b), (a, c), (b, c), (a, t), (t, p)];
        let mut removals = vec![(b, p, 1000), (a, p, 1000), (p, t, 2000)];
        let standing = standing_of(&links, &removals, a);
        assert_eq!(standing.members, BTreeSet::from([a, b, c, t]));
        assert!(standing.disputed.is_empty());
        let standing = standing_of(&links, &removals, c);
        assert_eq!(standing.members, BTreeSet::from([c]));
        assert_eq!(standing.disputed, BTreeSet::from([a, b, p, t]));
        removals.push((t, a, 3000));
        let standing = standing_of(&links, &removals, a);
        assert_eq!(standing.members, BTreeSet::from([a, c]));
        assert_eq!(standing.disputed, BTreeSet::from([b, p]));
        // The user removes P there too: B is back.
        removals.push((p, a, 4000));
        let standing = standing_of(&links, &removals, a);
        assert_eq!(standing.members, BTreeSet::from([a, b, c]));
        assert!(standing.disputed.is_empty());
        // On C, A and P removed each other: the user removes P there too.
        let standing = standing_of(&links, &removals, c);
        assert_eq!(standing.members, BTreeSet::from([c]));
        removals.push((p, c, 5000));
        let standing = standing_of(&links, &removals, c);
        assert_eq!(standing.members, BTreeSet::from([a, b, c]));
        assert!(standing.disputed.is_empty());
    }

    /// The user's laptop L, paired only through the phone P, removes a
    /// stolen tablet T; later the user removes the phone on the desktop
    /// D. L is out of reach, but nobody removed it: its removal of T must
    /// not be dropped (T would be a device of D again), so T is disputed
    /// with L until the user removes T on D.
    #[test]
    fn a_removal_by_a_device_out_of_reach_still_keeps_its_node_out() {
        let (d, p, l, t) = (node(1), node(2), node(3), node(4));
        let links = [(d, p), (p, l), (d, t)];
        let mut removals = vec![(t, l, 1000)];
        let standing = standing_of(&links, &removals, d);
        assert_eq!(standing.members, BTreeSet::from([d, p, l]));
        removals.push((p, d, 2000));
        let standing = standing_of(&links, &removals, d);
        assert_eq!(standing.members, BTreeSet::from([d]));
        assert_eq!(standing.disputed, BTreeSet::from([l, t]));
        removals.push((t, d, 3000));
        let standing = standing_of(&links, &removals, d);
        assert_eq!(standing.members, BTreeSet::from([d]));
        assert!(standing.disputed.is_empty());
    }

    /// A device paired only through the device it removes (a new laptop
    /// paired with a phone since lost, or a thief paired with the phone)
    /// would cut itself off by its own removal: A is disputed with it on
    /// the other devices, both shown for the user to decide (the removal
    /// took A out silently before); A's answer does not settle it (a
    /// stolen phone would answer so), a removal of either by a device
    /// that is in does.
    #[test]
    fn a_device_removing_the_one_it_hangs_on_starts_a_dispute() {
        let (a, b, c, t) = (node(1), node(2), node(3), node(4));
        let links = [(a, b), (a, c), (b, c), (a, t)];
        let removals = [(a, t, 1000)];
        let standing = standing_of(&links, &removals, c);
        assert_eq!(standing.members, BTreeSet::from([b, c]));
        assert_eq!(standing.disputed, BTreeSet::from([a, t]));
        assert_eq!(standing.out.keys().collect::<Vec<_>>(), vec![&a]);
        let removals = [(a, t, 1000), (t, a, 2000)];
        let standing = standing_of(&links, &removals, c);
        assert_eq!(standing.members, BTreeSet::from([b, c]));
        assert_eq!(standing.disputed, BTreeSet::from([a, t]));
        // The user removes T on B: A is a device again.
        let removals = [(a, t, 1000), (t, a, 2000), (t, b, 3000)];
        let standing = standing_of(&links, &removals, c);
        assert_eq!(standing.members, BTreeSet::from([a, b, c]));
        assert!(standing.disputed.is_empty());
        // The user removes A on B: A out, T no device (reached only
        // through A).
        let removals = [(a, t, 1000), (a, b, 2000)];
        let standing = standing_of(&links, &removals, c);
        assert_eq!(standing.members, BTreeSet::from([b, c]));
        assert!(standing.disputed.is_empty());
    }

    /// A chain of removals as long as a thief likes is settled in one
    /// pass: each removes the next, the first removed by `me`.
    #[test]
    fn a_long_chain_of_removals_is_settled_in_one_pass() {
        let me = node(1);
        let keys: Vec<NodeId> = (0..2000u32)
            .map(|i| {
                let mut seed = [7u8; 32];
                seed[..4].copy_from_slice(&i.to_le_bytes());
                polykey_keys::RootKeypair::from_seed(&seed).node_id()
            })
            .collect();
        let links: Vec<(NodeId, NodeId)> = keys.iter().map(|k| (me, *k)).collect();
        let mut removals = vec![(keys[0], me, 1)];
        for pair in keys.windows(2) {
            removals.push((pair[1], pair[0], 1));
        }
        let standing = standing_of(&links, &removals, me);
        // Out, in, out, in...
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(standing.members.contains(key), i % 2 == 1, "key {i}");
        }
        assert!(standing.disputed.is_empty());
    }
}

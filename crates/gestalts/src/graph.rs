//! The gestalt graph: nodes joined by verified `ClaimLinkNode` claims. A
//! gestalt is a connected set of nodes (one person's or agent's devices);
//! each link keeps the claim that proves it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use polykey_db::{Db, RecordKey, Table};
use polykey_keys::NodeId;
use serde::{Deserialize, Serialize};

use crate::claims::{ClaimType, SignedClaim};
use crate::error::ClaimError;

/// One link between two nodes and its proof.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Link {
    a: NodeId,
    b: NodeId,
    claim: SignedClaim,
}

const LINKS: Table<Link> = Table::new("gestalt_links");

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
    /// nodes signed). Returns the two nodes.
    pub fn add_link(&self, claim: &SignedClaim) -> Result<(NodeId, NodeId), ClaimError> {
        let payload = claim.verify()?;
        if payload.typ != ClaimType::ClaimLinkNode {
            return Err(ClaimError::WrongType("only node links join gestalts"));
        }
        let (a, b) = pair(payload.iss, payload.sub);
        let mut txn = self.db.write()?;
        txn.put(
            &LINKS,
            &link_key(self.db, (a, b)),
            &Link {
                a,
                b,
                claim: claim.clone(),
            },
        )?;
        txn.commit()?;
        Ok((a, b))
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

    /// Every link's claim (what a device tells the others of its gestalt).
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

    /// The gestalt of `node`: every node reachable through links, itself
    /// included.
    pub fn gestalt_of(&self, node: NodeId) -> Result<BTreeSet<NodeId>, ClaimError> {
        let mut neighbours: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
        for (a, b) in self.links()? {
            neighbours.entry(a).or_default().push(b);
            neighbours.entry(b).or_default().push(a);
        }
        let mut seen = BTreeSet::from([node]);
        let mut queue = VecDeque::from([node]);
        while let Some(next) = queue.pop_front() {
            for other in neighbours.get(&next).into_iter().flatten() {
                if seen.insert(*other) {
                    queue.push_back(*other);
                }
            }
        }
        Ok(seen)
    }
}

//! Looking another gestalt up (`identities get`): by a NodeId, a contact
//! code or an identity, what this node knows of it: the person trusted
//! here, if any, and the identities it goes by, each with the nodes whose
//! claims verify under the account now. Looking up a person trusted by an
//! identity refreshes them (see [`Node::refresh_person`]), so what is shown
//! is what is kept.

use polykey_gestalts::claims::parse_identity;
use polykey_identities::IdentityError;
use polykey_keys::NodeId;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::Node;
use crate::peers::gestalt;
use crate::people::{find_person, target_node, Person};

/// Most identities checked when a node is looked up (those whose last
/// discovery here found it).
pub const MAX_IDENTITIES_PER_LOOKUP: usize = 8;

/// A node whose claim on an account verified just now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimingNode {
    /// The node that signed the claim.
    pub node: NodeId,
    /// Where the claim is posted.
    pub proof_url: String,
}

/// An account, as its provider has it now, and the nodes claiming it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityClaims {
    /// `provider:login`.
    pub identity: String,
    /// Whether the provider has the account (a trusted one may be gone).
    pub exists: bool,
    /// Its display name, if any.
    pub name: Option<String>,
    /// Its profile page, if any.
    pub url: Option<String>,
    /// The nodes whose claims under it verified now.
    pub nodes: Vec<ClaimingNode>,
}

/// Another gestalt as this node knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GestaltInfo {
    /// What was looked up: a NodeId, or an identity.
    pub target: String,
    /// The person trusted here, as kept after this look-up.
    pub person: Option<Person>,
    /// The identities it goes by, each checked now.
    pub identities: Vec<IdentityClaims>,
    /// Nodes the person gained: newly claimed under their account.
    pub added: Vec<NodeId>,
    /// Nodes the person lost: their claims no longer verify.
    pub dropped: Vec<NodeId>,
}

impl Node {
    /// What this node knows of the gestalt `target` names (a NodeId, a
    /// contact code, or `provider:login`): the trusted person, refreshed
    /// if trusted by an identity, and its identities with their claims
    /// checked now. A target neither trusted nor found (no such account;
    /// a node no identity discovered here claims) is
    /// [`NodeError::UnknownTarget`].
    pub async fn lookup_gestalt(&self, target: &str) -> Result<GestaltInfo, NodeError> {
        let target = target.trim().to_owned();
        let node = target_node(&target)?;
        if node.is_none() && parse_identity(&target).is_err() {
            return Err(NodeError::Invalid(
                "expected a NodeId, a contact code or an identity such as github.com:alice".into(),
            ));
        }
        let wanted = target.clone();
        let (person, own) = self
            .with_vaults(move |s| {
                let own = node.is_some_and(|n| {
                    n == s.keys.node_id() || gestalt(s).is_ok_and(|g| g.contains(&n))
                });
                Ok((find_person(s, &wanted)?, own))
            })
            .await?;
        if own {
            return Err(NodeError::Invalid(
                "that is this node or one of your devices, not another person; \
                 `polykey nodes getall` lists your devices"
                    .into(),
            ));
        }
        let trusted_by_identity = person
            .as_ref()
            .map(|p| p.name.clone())
            .filter(|name| parse_identity(name).is_ok());
        let identities: Vec<String> = match (node, &trusted_by_identity) {
            (_, Some(name)) => vec![name.clone()],
            (None, None) => vec![target.clone()],
            (Some(node), None) => {
                self.identities_claimed_by(node, MAX_IDENTITIES_PER_LOOKUP)
                    .await?
            }
        };
        if person.is_none() && identities.is_empty() {
            return Err(NodeError::UnknownTarget(format!(
                "{target} is not known here: not trusted, and no identity discovered here is \
                 claimed by it; `polykey identities discover PROVIDER:LOGIN` looks under an \
                 account"
            )));
        }

        let mut checked = Vec::with_capacity(identities.len());
        for identity in identities {
            let account = self.identity_account(&identity).await?;
            if account.is_none() && person.is_none() {
                return Err(IdentityError::NoSuchIdentity(identity).into());
            }
            let nodes = match account {
                Some(_) => self.claimed_nodes(&identity).await?.unwrap_or_default(),
                None => Vec::new(),
            };
            checked.push(IdentityClaims {
                identity,
                exists: account.is_some(),
                name: account.as_ref().and_then(|a| a.name.clone()),
                url: account.and_then(|a| a.url),
                nodes: nodes
                    .into_iter()
                    .map(|n| ClaimingNode {
                        node: n.node,
                        proof_url: n.proof_url,
                    })
                    .collect(),
            });
        }

        // A person trusted by an identity keeps the nodes verified now.
        let (person, added, dropped) = match (person, trusted_by_identity) {
            (Some(_), Some(name)) => {
                let verified = checked
                    .iter()
                    .find(|c| c.identity == name)
                    .map(|c| c.nodes.iter().map(|n| n.node).collect())
                    .unwrap_or_default();
                let refreshed = self.replace_nodes(&name, verified).await?;
                (Some(refreshed.person), refreshed.added, refreshed.dropped)
            }
            (person, _) => (person, Vec::new(), Vec::new()),
        };
        Ok(GestaltInfo {
            target: node.map_or(target, |n| n.to_string()),
            person,
            identities: checked,
            added,
            dropped,
        })
    }
}

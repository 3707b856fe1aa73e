//! Other people's gestalts trusted here, and what each may do, as in
//! Polykey: `notify` (may send this node notifications) and `scan` (may
//! list what this node shares with it). A person is added by NodeId or by
//! an identity (`github.com:alice`), whose nodes are those whose claims
//! were found under the account and checked. Trusting gives no access to
//! any vault; the devices of this gestalt are never "people".
//!
//! A person trusted by an identity is checked again when refreshed
//! (`refresh_person`, looking them up, and every [`REVERIFY_EVERY`] while
//! the network runs): nodes whose claims no longer verify under the
//! account are dropped, nodes newly claimed are added, and the vaults
//! shared with them follow.

use std::collections::BTreeSet;
use std::sync::Weak;
use std::time::Duration;

use polykey_db::Table;
use polykey_gestalts::claims::parse_identity;
use polykey_keys::NodeId;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::{Inner, Node, Session};
use crate::peers::{gestalt, now_secs};

/// Most people trusted here.
pub const MAX_PEOPLE: usize = 1_000;
/// Most nodes kept for one person.
pub const MAX_NODES_PER_PERSON: usize = 64;
/// How often, while the network runs, every person trusted by an identity
/// has their claims checked again.
pub const REVERIFY_EVERY: Duration = Duration::from_secs(6 * 60 * 60);

/// A person (another gestalt) trusted here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// How the person was added: an identity (`github.com:alice`) or a
    /// NodeId's text.
    pub name: String,
    /// Their nodes known here.
    pub nodes: Vec<NodeId>,
    /// May send this node notifications.
    pub notify: bool,
    /// May list what this node shares with them.
    pub scan: bool,
    /// When trusted, seconds since the Unix epoch.
    pub trusted_at: u64,
}

/// A trusted person checked again: as kept now, and which nodes came and
/// went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refreshed {
    /// The person as kept now.
    pub person: Person,
    /// Nodes whose claims verified now and were not theirs here before.
    pub added: Vec<NodeId>,
    /// Nodes no longer theirs: their claims do not verify under the
    /// account any more (the post deleted, or moved to another account).
    pub dropped: Vec<NodeId>,
}

/// A permission a person may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// May send notifications.
    Notify,
    /// May list what is shared with them.
    Scan,
}

impl std::str::FromStr for Permission {
    type Err = NodeError;

    fn from_str(text: &str) -> Result<Self, NodeError> {
        match text {
            "notify" => Ok(Self::Notify),
            "scan" => Ok(Self::Scan),
            _ => Err(NodeError::Invalid(format!(
                "unknown permission {text:?}; the permissions are notify and scan"
            ))),
        }
    }
}

/// Whether adding or removing a person's entry is noticed: the set of
/// people decides who may reach this node.
const PEOPLE: Table<Person> = Table::authenticated("people");

fn person_key(s: &Session, name: &str) -> polykey_db::RecordKey {
    s.db.record_key(PEOPLE.name(), name.as_bytes())
}

/// Every person trusted here.
pub(crate) fn people_in(s: &Session) -> Result<Vec<Person>, NodeError> {
    let mut all: Vec<Person> =
        s.db.read()?
            .entries(&PEOPLE)?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

/// Take `gone` (devices their gestalt removed) from the person whose
/// nodes they were. Returns the person as now kept, when any was taken.
pub(crate) fn drop_person_nodes(
    s: &Session,
    name: &str,
    gone: &BTreeSet<NodeId>,
) -> Result<Option<Person>, NodeError> {
    let key = person_key(s, name);
    let mut txn = s.db.write()?;
    let Some(mut person) = txn.get(&PEOPLE, &key)? else {
        return Ok(None);
    };
    let before = person.nodes.len();
    person.nodes.retain(|n| !gone.contains(n));
    if person.nodes.len() == before {
        return Ok(None);
    }
    txn.put(&PEOPLE, &key, &person)?;
    txn.commit()?;
    Ok(Some(person))
}

/// `nodes` as a person's: neither this node nor one of its devices,
/// sorted, at most [`MAX_NODES_PER_PERSON`].
fn others_nodes(s: &Session, nodes: Vec<NodeId>) -> Result<Vec<NodeId>, NodeError> {
    let own = gestalt(s)?;
    let me = s.keys.node_id();
    let mut nodes: Vec<NodeId> = nodes
        .into_iter()
        .filter(|n| *n != me && !own.contains(n))
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes.truncate(MAX_NODES_PER_PERSON);
    Ok(nodes)
}

/// The node `target` names, when it is a NodeId or a contact code.
pub(crate) fn target_node(target: &str) -> Result<Option<NodeId>, NodeError> {
    if let Ok(node) = target.parse::<NodeId>() {
        return Ok(Some(node));
    }
    if target.starts_with(polykey_gestalts::contact::CONTACT_PREFIX) {
        let contact = polykey_gestalts::contact::Contact::from_code(target)
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        return Ok(Some(contact.node));
    }
    Ok(None)
}

/// The person trusted under exactly `name` (one record read).
pub(crate) fn person_trusted_as(s: &Session, name: &str) -> Result<Option<Person>, NodeError> {
    Ok(s.db.read()?.get(&PEOPLE, &person_key(s, name))?)
}

/// The person `target` names: by the name they were trusted under (an
/// identity's login compared without ASCII case, as providers treat
/// logins), or by one of their nodes (a NodeId or a contact code).
pub(crate) fn find_person(s: &Session, target: &str) -> Result<Option<Person>, NodeError> {
    if let Some(person) = person_trusted_as(s, target)? {
        return Ok(Some(person));
    }
    let node = target_node(target)?;
    let identity = parse_identity(target).ok();
    Ok(people_in(s)?.into_iter().find(|p| {
        let same_identity = match (identity, parse_identity(&p.name)) {
            (Some((provider, login)), Ok((their_provider, their_login))) => {
                provider == their_provider && login.eq_ignore_ascii_case(their_login)
            }
            _ => false,
        };
        same_identity || node.is_some_and(|n| p.nodes.contains(&n))
    }))
}

/// The error for a target no trusted person answers to.
fn not_trusted(target: &str) -> NodeError {
    NodeError::UnknownTarget(format!(
        "{target} is not trusted here; `polykey identities trust {target}` first"
    ))
}

/// Check every person trusted by an identity again, every
/// [`REVERIFY_EVERY`], until the node is gone (the network's tasks end with
/// it). A provider that cannot be reached leaves people as they are.
pub(crate) async fn reverify_periodically(weak: Weak<Inner>) {
    let mut every = tokio::time::interval(REVERIFY_EVERY);
    // The first tick is at once; people were checked when trusted.
    every.tick().await;
    loop {
        every.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        let node = Node { inner };
        let Ok(people) = node.people().await else {
            continue;
        };
        for person in people {
            if parse_identity(&person.name).is_ok() {
                let _ = node.reverify(person).await;
            } else if let Ok(client) = node.client() {
                // Trusted by a NodeId: the gestalt that node answers for.
                let _ = node.follow_person(&client, &person.name).await;
            }
        }
    }
}

/// The nodes that may send this node notifications.
pub(crate) fn may_notify_in(s: &Session) -> Result<BTreeSet<NodeId>, NodeError> {
    Ok(people_in(s)?
        .into_iter()
        .filter(|p| p.notify)
        .flat_map(|p| p.nodes)
        .collect())
}

impl Node {
    /// Trust a person: `target` is a NodeId, a contact code (its node,
    /// dialled at its addresses), or an identity whose claims are found
    /// and checked now (see [`Node::discover_identity`]). Their
    /// permissions start off; trusting shares nothing.
    pub async fn trust(&self, target: &str) -> Result<Person, NodeError> {
        let mut target = target.trim().to_owned();
        let nodes: Vec<NodeId> = if let Ok(node) = target.parse::<NodeId>() {
            vec![node]
        } else if target.starts_with(polykey_gestalts::contact::CONTACT_PREFIX) {
            // A contact code: its node, reached at its addresses now.
            let contact = polykey_gestalts::contact::Contact::from_code(&target)
                .map_err(|e| NodeError::Invalid(e.to_string()))?;
            for address in &contact.addresses {
                if self.connect(contact.node, address.clone()).await.is_ok() {
                    break;
                }
            }
            target = contact.node.to_string();
            vec![contact.node]
        } else if parse_identity(&target).is_ok() {
            let found = self.discover_identity(&target).await?;
            if found.is_empty() {
                return Err(NodeError::Invalid(format!(
                    "no node has claimed {target}; nothing to trust"
                )));
            }
            found.into_iter().map(|n| n.node).collect()
        } else {
            return Err(NodeError::Invalid(
                "expected a NodeId or an identity such as github.com:alice".into(),
            ));
        };
        let person = self
            .with_vaults(move |s| {
                let nodes = others_nodes(s, nodes)?;
                if nodes.is_empty() {
                    return Err(NodeError::Invalid(
                        "that is this node or one of your devices, not another person".into(),
                    ));
                }
                let key = person_key(s, &target);
                let mut txn = s.db.write()?;
                let existing = txn.get(&PEOPLE, &key)?;
                if existing.is_none() && txn.entries(&PEOPLE)?.len() >= MAX_PEOPLE {
                    return Err(NodeError::Invalid(format!(
                        "{MAX_PEOPLE} people are trusted already; untrust someone first"
                    )));
                }
                let person = Person {
                    name: target,
                    nodes,
                    notify: existing.as_ref().is_some_and(|p| p.notify),
                    scan: existing.as_ref().is_some_and(|p| p.scan),
                    trusted_at: existing.map_or_else(now_secs, |p| p.trusted_at),
                };
                txn.put(&PEOPLE, &key, &person)?;
                txn.commit()?;
                // Their nodes start again from this one: followed afresh.
                crate::peers::forget_person_chains(s, &person.name)?;
                crate::peers::update_grant_nodes(s, &person)?;
                Ok(person)
            })
            .await?;
        self.refresh_people().await?;
        self.refresh_shares().await?;
        // Trusted by a node: their other devices too, once that node
        // answers for its gestalt (it does for people sharing a vault with
        // its gestalt; else at the first sync with it).
        if let Ok(client) = self.client() {
            let (this, name) = (self.clone(), person.name.clone());
            tokio::spawn(async move {
                let _ = this.follow_person(&client, &name).await;
            });
        }
        Ok(person)
    }

    /// Check a trusted person again: `target` names them as trusted (or by
    /// one of their nodes). A person trusted by an identity keeps exactly
    /// the nodes whose claims verify under the account now (none, if the
    /// account is gone), and the vaults shared with them follow; one
    /// trusted by NodeId has nothing claimed to check. Failing to reach
    /// the provider changes nothing.
    pub async fn refresh_person(&self, target: &str) -> Result<Refreshed, NodeError> {
        let target = target.trim().to_owned();
        let wanted = target.clone();
        let person = self
            .with_vaults(move |s| find_person(s, &wanted))
            .await?
            .ok_or_else(|| not_trusted(&target))?;
        self.reverify(person).await
    }

    /// [`Node::refresh_person`] for a person as found.
    pub(crate) async fn reverify(&self, person: Person) -> Result<Refreshed, NodeError> {
        if parse_identity(&person.name).is_err() {
            return Ok(Refreshed {
                person,
                added: Vec::new(),
                dropped: Vec::new(),
            });
        }
        let verified = self.claimed_nodes(&person.name).await?.unwrap_or_default();
        self.replace_nodes(&person.name, verified.into_iter().map(|n| n.node).collect())
            .await
    }

    /// Keep `nodes` (as checked just now) as the nodes of the person
    /// trusted as `name`, their permissions and shares kept, the shares'
    /// nodes updated.
    pub(crate) async fn replace_nodes(
        &self,
        name: &str,
        nodes: Vec<NodeId>,
    ) -> Result<Refreshed, NodeError> {
        let name = name.to_owned();
        let refreshed = self
            .with_vaults(move |s| {
                // Never a device their gestalt removed (known here since
                // the nodes were worked out, too).
                let removed = crate::peers::removed_people_nodes(s)?;
                let nodes: Vec<NodeId> =
                    nodes.into_iter().filter(|n| !removed.contains(n)).collect();
                let nodes = others_nodes(s, nodes)?;
                let key = person_key(s, &name);
                let mut txn = s.db.write()?;
                let before = txn.get(&PEOPLE, &key)?.ok_or_else(|| not_trusted(&name))?;
                let added: Vec<NodeId> = nodes
                    .iter()
                    .filter(|n| !before.nodes.contains(n))
                    .copied()
                    .collect();
                let dropped: Vec<NodeId> = before
                    .nodes
                    .iter()
                    .filter(|n| !nodes.contains(n))
                    .copied()
                    .collect();
                let person = Person { nodes, ..before };
                if !added.is_empty() || !dropped.is_empty() {
                    txn.put(&PEOPLE, &key, &person)?;
                    txn.commit()?;
                    crate::peers::update_grant_nodes(s, &person)?;
                }
                Ok(Refreshed {
                    person,
                    added,
                    dropped,
                })
            })
            .await?;
        if !refreshed.added.is_empty() || !refreshed.dropped.is_empty() {
            self.refresh_people().await?;
            self.refresh_shares().await?;
        }
        Ok(refreshed)
    }

    /// Stop trusting a person (as added: NodeId or identity). Returns
    /// whether they were trusted.
    pub async fn untrust(&self, target: &str) -> Result<bool, NodeError> {
        let target = target.trim().to_owned();
        let removed = self
            .with_vaults(move |s| {
                let key = person_key(s, &target);
                let Some(person) = s.db.read()?.get(&PEOPLE, &key)? else {
                    return Ok(false);
                };
                // Every share with them ends, both ways.
                crate::peers::drop_person_shares(s, &person)?;
                crate::peers::forget_person_chains(s, &person.name)?;
                let mut txn = s.db.write()?;
                let removed = txn.delete(&PEOPLE, &key)?;
                txn.commit()?;
                Ok(removed)
            })
            .await?;
        self.refresh_people().await?;
        self.refresh_shares().await?;
        Ok(removed)
    }

    /// Allow or disallow `permission` for a trusted person.
    pub async fn set_permission(
        &self,
        target: &str,
        permission: Permission,
        allow: bool,
    ) -> Result<Person, NodeError> {
        let target = target.trim().to_owned();
        let person = self
            .with_vaults(move |s| {
                let key = person_key(s, &target);
                let mut txn = s.db.write()?;
                let mut person = txn.get(&PEOPLE, &key)?.ok_or_else(|| {
                    NodeError::Invalid(format!(
                        "{target} is not trusted here; `polykey identities trust {target}` first"
                    ))
                })?;
                match permission {
                    Permission::Notify => person.notify = allow,
                    Permission::Scan => person.scan = allow,
                }
                txn.put(&PEOPLE, &key, &person)?;
                txn.commit()?;
                Ok(person)
            })
            .await?;
        self.refresh_people().await?;
        Ok(person)
    }

    /// This node's contact code (`polykey-contact:`): its NodeId and where
    /// it listens, for another person to add it. No secret is in it.
    pub async fn contact_code(&self) -> Result<String, NodeError> {
        let me = self.status().node_id.ok_or(NodeError::Locked)?;
        let mut addresses = self.addresses().await.unwrap_or_default();
        // Unspecified addresses cannot be dialled; expanded ones are listed.
        addresses.retain(|a| !a.contains("/0.0.0.0/") && !a.contains("/::/"));
        Ok(polykey_gestalts::contact::Contact::new(me, addresses).to_code())
    }

    /// [`Node::set_permission`] with the permission by name (`notify` or
    /// `scan`), for the front ends.
    pub async fn set_permission_named(
        &self,
        target: &str,
        permission: &str,
        allow: bool,
    ) -> Result<(), NodeError> {
        self.set_permission(target, permission.parse()?, allow)
            .await
            .map(drop)
    }

    /// The contact code in a picture of its QR code.
    pub async fn contact_from_qr_image(&self, bytes: Vec<u8>) -> Result<String, NodeError> {
        tokio::task::spawn_blocking(move || {
            crate::peers::qr_text_from_image(
                &bytes,
                polykey_gestalts::contact::CONTACT_PREFIX,
                "contact",
            )
        })
        .await
        .map_err(|e| NodeError::Internal(e.to_string()))?
    }

    /// Everyone trusted here, by name.
    pub async fn people(&self) -> Result<Vec<Person>, NodeError> {
        self.with_vaults(people_in).await
    }

    /// Tell the serving loop who may notify this node, and who may list
    /// what it shares with them.
    pub(crate) async fn refresh_people(&self) -> Result<(), NodeError> {
        let (notify, scan) = self
            .with_vaults(|s| {
                let people = people_in(s)?;
                let with = |allowed: fn(&Person) -> bool| -> BTreeSet<NodeId> {
                    people
                        .iter()
                        .filter(|p| allowed(p))
                        .flat_map(|p| p.nodes.iter().copied())
                        .collect()
                };
                Ok((with(|p| p.notify), with(|p| p.scan)))
            })
            .await?;
        let mut state = self.inner.peer_state();
        state.may_notify = notify;
        state.may_scan = scan;
        Ok(())
    }
}

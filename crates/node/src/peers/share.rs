//! Sharing vaults with other people's gestalts. A vault's [`Access`]
//! record says whom this gestalt shares it with (grants: a person's nodes,
//! read or write) or, for another person's vault, whose it is (remote:
//! the owner's nodes, and whether this gestalt may write). The record
//! travels with the vault list between the devices of one gestalt (the
//! newest wins), so every device serves a share and every device keeps a
//! shared vault in step.
//!
//! Between gestalts everything is a pull: the owner's devices answer
//! [`Request::Shared`] and [`Request::Fetch`] for a vault shared with the
//! asker, and nothing else; the recipient pulls on the owner's change
//! notice and at every resync, and an owner pulls from a person allowed to
//! write. Commits are taken only from authors the vault allows: the
//! owner's nodes (as the owner names them, and before their removal), the
//! recipient's own devices, and a writer's nodes. A person told "not
//! shared" keeps their copy and marks it ended.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use polykey_db::{RecordKey, Table};
use polykey_gestalts::{
    gestalt_of_chains, verify_continuation, ClaimType, GestaltGraph, SignedClaim,
};
use polykey_keys::NodeId;
use polykey_network::protocol::{
    MAX_CHAINS, MAX_CHAIN_CLAIMS, MAX_GRANTS, MAX_HAVES, MAX_SHARED_VAULTS, MAX_SHARE_NAME,
    MAX_SHARE_NODES, MAX_SHARE_REMOVED, MAX_SHARE_WRITERS, WRITING_NOW,
};
use polykey_network::{
    Access, ChainPosition, Client, Grant, Remote, Removed, Request, Response, SharedVault,
    Statement, Taken, VaultSummary, Withdrawn,
};
use polykey_vaults::{VaultId, VaultInfo, Vaults};
use serde::{Deserialize, Serialize};

use super::pull::NewVault;
use super::{gestalt, in_gestalt, net_error, now_ms, refused, Node};
use crate::error::NodeError;
use crate::node::Session;
use crate::people::{people_in, Person};

/// Most bytes of removal claims sent with one `Shared` request (each
/// names the removing device's vault versions, up to 2,000).
const MAX_REVOCATION_BYTES: usize = 256 * 1024;

/// The refusal for a vault not shared with the asker: the same words
/// whether the vault exists or not.
pub const NOT_SHARED: &str = "that vault is not shared with you";

#[derive(Serialize, Deserialize)]
struct AccessRecord {
    vault: String,
    access: Access,
}

/// Who besides the devices takes part in each vault. Authenticated: it
/// decides who is served and whose commits are taken.
const ACCESS: Table<AccessRecord> = Table::authenticated("vault_access");

/// A device another person's gestalt removed, as one of its signed
/// claims showed: never served again under that person, and still heard
/// (asking `Shared`) so its own removals of others reach this node.
#[derive(Serialize, Deserialize)]
struct PersonRemoved {
    person: String,
    node: NodeId,
    /// Their device that removed it.
    by: NodeId,
}

/// Removed devices of people, by node. Authenticated: it decides who is
/// served.
const PERSON_REMOVED: Table<PersonRemoved> = Table::authenticated("person_removed");

/// Where each chain of a person trusted by a NodeId stood when their
/// gestalt was last followed (see [`Node::follow_person`]): only a hint
/// of when to ask for every chain again.
const PERSON_CHAINS: Table<Vec<ChainPosition>> = Table::new("person_chains");

/// A followed person's nodes: `root` (the node trusted) first, then those
/// of `known` still in their gestalt (`members`), then the rest, never one
/// `removed`, at most [`crate::people::MAX_NODES_PER_PERSON`]: a gestalt
/// of many puppets cannot push the person's known devices out.
fn followed_nodes(
    root: NodeId,
    known: &[NodeId],
    members: &BTreeSet<NodeId>,
    removed: &BTreeSet<NodeId>,
) -> Vec<NodeId> {
    let mut nodes = vec![root];
    nodes.extend(known.iter().filter(|n| members.contains(n)));
    nodes.extend(members);
    let mut seen = BTreeSet::new();
    nodes.retain(|n| !removed.contains(n) && seen.insert(*n));
    nodes.truncate(crate::people::MAX_NODES_PER_PERSON);
    nodes
}

fn chains_key(s: &Session, person: &str) -> RecordKey {
    s.db.record_key(PERSON_CHAINS.name(), person.as_bytes())
}

/// Forget where a person's chains stood (trusted anew or no more): the
/// next follow asks for every chain.
pub(crate) fn forget_person_chains(s: &Session, person: &str) -> Result<(), NodeError> {
    let mut txn = s.db.write()?;
    txn.delete(&PERSON_CHAINS, &chains_key(s, person))?;
    txn.commit()?;
    Ok(())
}

/// Most removed devices remembered for one person.
const MAX_REMOVED_PER_PERSON: usize = MAX_SHARE_REMOVED;

/// The devices of `person` their gestalt removed, as known here, each
/// with the device that removed it.
fn removed_by(s: &Session, person: &str) -> Result<BTreeMap<NodeId, NodeId>, NodeError> {
    Ok(s.db
        .read()?
        .entries(&PERSON_REMOVED)?
        .into_iter()
        .filter(|(_, r)| r.person == person)
        .map(|(_, r)| (r.node, r.by))
        .collect())
}

/// The removals on the chains of a person's gestalt as followed (its
/// `members` from `root`): each device a member removed that is no member
/// (never `root`), and who removed it.
fn removals_seen(
    root: NodeId,
    members: &BTreeSet<NodeId>,
    chains: &[(NodeId, Vec<(polykey_gestalts::ClaimPayload, SignedClaim)>)],
) -> Vec<(NodeId, NodeId)> {
    chains
        .iter()
        .filter(|(owner, _)| members.contains(owner))
        .flat_map(|(owner, claims)| claims.iter().map(move |(claim, _)| (owner, claim)))
        .filter(|(owner, c)| {
            c.typ == ClaimType::ClaimRevokeNode
                && c.iss == **owner
                && c.sub != root
                && !members.contains(&c.sub)
        })
        .map(|(_, c)| (c.sub, c.iss))
        .collect()
}

/// Record the removals `seen` on `person`'s chains as followed, as a
/// removal claim they send is recorded (see [`drop_removed_of_person`]):
/// only of devices known here as theirs (`known`, or in a grant to them),
/// never over a removal recorded already (of anyone), within
/// [`MAX_REMOVED_PER_PERSON`]. Learnt either way, a removal holds: a grant
/// taken from another device of this gestalt never brings the device back
/// (`adopt_access`), whichever way this device heard of it first.
fn record_removals(
    s: &Session,
    person: &str,
    known: &[NodeId],
    seen: &[(NodeId, NodeId)],
) -> Result<(), NodeError> {
    let mut theirs: BTreeSet<NodeId> = known.iter().copied().collect();
    for (_, access) in all_access(s)? {
        for grant in access.grants.iter().filter(|g| g.person == person) {
            theirs.extend(grant.nodes.iter().copied());
        }
    }
    let mut count = removed_by(s, person)?.len();
    let mut new = Vec::new();
    {
        let read = s.db.read()?;
        for (node, by) in seen {
            let key = s.db.record_key(PERSON_REMOVED.name(), node.as_bytes());
            if count < MAX_REMOVED_PER_PERSON
                && theirs.contains(node)
                && !new
                    .iter()
                    .any(|(_, r): &(_, PersonRemoved)| r.node == *node)
                && read.get(&PERSON_REMOVED, &key)?.is_none()
            {
                let record = PersonRemoved {
                    person: person.to_owned(),
                    node: *node,
                    by: *by,
                };
                new.push((key, record));
                count += 1;
            }
        }
    }
    if new.is_empty() {
        return Ok(());
    }
    let mut txn = s.db.write()?;
    for (key, record) in &new {
        txn.put(&PERSON_REMOVED, key, record)?;
    }
    txn.commit()?;
    let nodes: BTreeSet<NodeId> = new.iter().map(|(_, r)| r.node).collect();
    drop_from_every_holder(s, person, &nodes)
}

/// Drop `nodes` from `person` and from every other person and grant
/// holding any of them: one person may be trusted under two names (by a
/// node and by an identity), each followed to the same devices.
fn drop_from_every_holder(
    s: &Session,
    person: &str,
    nodes: &BTreeSet<NodeId>,
) -> Result<(), NodeError> {
    let holds = |held: &[NodeId]| held.iter().any(|n| nodes.contains(n));
    let mut holders: BTreeSet<String> = people_in(s)?
        .into_iter()
        .filter(|p| holds(&p.nodes))
        .map(|p| p.name)
        .collect();
    holders.extend(
        all_access(s)?
            .iter()
            .flat_map(|(_, a)| &a.grants)
            .filter(|g| holds(&g.nodes))
            .map(|g| g.person.clone()),
    );
    holders.insert(person.to_owned());
    for holder in &holders {
        crate::people::drop_person_nodes(s, holder, nodes)?;
        drop_grant_nodes(s, holder, nodes)?;
    }
    Ok(())
}

/// The devices of `person` their gestalt removed, as known here.
fn removed_of(s: &Session, person: &str) -> Result<BTreeSet<NodeId>, NodeError> {
    Ok(removed_by(s, person)?.into_keys().collect())
}

/// Of `nodes`, those of `person` their gestalt did not remove, as known
/// here: never granted, whatever claims or lists still name them.
fn not_removed(s: &Session, person: &str, nodes: &[NodeId]) -> Result<Vec<NodeId>, NodeError> {
    let removed = removed_of(s, person)?;
    Ok(nodes
        .iter()
        .copied()
        .filter(|n| !removed.contains(n))
        .collect())
}

fn access_key(s: &Session, id: &VaultId) -> RecordKey {
    s.db.record_key(ACCESS.name(), id.as_bytes())
}

/// The access record of vault `id` (empty when never shared).
pub(crate) fn access_of(s: &Session, id: &VaultId) -> Result<Access, NodeError> {
    Ok(s.db
        .read()?
        .get(&ACCESS, &access_key(s, id))?
        .map(|r| r.access)
        .unwrap_or_default())
}

/// What a device signs of an access record: the vault, and the record
/// without its signature, after a prefix no other signed message has.
fn signed_part(id: &VaultId, access: &Access) -> Vec<u8> {
    let body = (
        id.to_string(),
        access.at,
        &access.grants,
        &access.withdrawn,
        access.withdrawn_floor,
        &access.remote,
        &access.by,
    );
    prefixed(b"polykey-vault-access\0", &body)
}

fn prefixed(prefix: &[u8], body: &impl Serialize) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend(serde_json::to_vec(body).unwrap_or_default());
    out
}

/// What a device signs of one grant: it stands on its own, so a record
/// re-signed by another device never vouches for it.
fn grant_part(id: &VaultId, grant: &Grant) -> Vec<u8> {
    let body = (
        id.to_string(),
        &grant.person,
        &grant.nodes,
        grant.write,
        grant.at,
        &grant.by,
    );
    prefixed(b"polykey-vault-grant\0", &body)
}

/// What a device signs of one withdrawal.
fn withdrawn_part(id: &VaultId, withdrawn: &Withdrawn) -> Vec<u8> {
    let body = (
        id.to_string(),
        &withdrawn.person,
        withdrawn.at,
        &withdrawn.by,
    );
    prefixed(b"polykey-vault-withdrawn\0", &body)
}

/// What a device signs taking another person's vault.
fn taken_part(id: &VaultId, owner: &str, taken: &Taken) -> Vec<u8> {
    let body = (id.to_string(), owner, taken.by, taken.at, taken.from);
    prefixed(b"polykey-vault-taken\0", &body)
}

/// What an owner's node signs answering [`Request::Shared`] from `to`.
/// Writers are signed only when there are any, so a statement signed
/// before they were named still verifies.
#[allow(clippy::too_many_arguments)]
fn statement_part(
    id: &str,
    write: bool,
    nodes: &[NodeId],
    removed: &[Removed],
    served: &[NodeId],
    writers: &[Removed],
    at: i64,
    to: &NodeId,
) -> Vec<u8> {
    if writers.is_empty() {
        let body = (id, write, nodes, removed, served, at, to);
        return prefixed(b"polykey-shared-vault\0", &body);
    }
    let body = (id, write, nodes, removed, served, writers, at, to);
    prefixed(b"polykey-shared-vault-writers\0", &body)
}

/// What an owner's node signs of `shared`, answering `to`.
fn shared_part(shared: &SharedVault, to: &NodeId) -> Vec<u8> {
    statement_part(
        &shared.id,
        shared.write,
        &shared.nodes,
        &shared.removed,
        &shared.served,
        &shared.writers,
        shared.at,
        to,
    )
}

/// Sign `shared` as the owner's node with `keys`, answering `to`'s
/// [`Request::Shared`] (and what a test does to play a stranger posing as
/// an owner).
pub fn sign_shared(shared: &mut SharedVault, to: &NodeId, keys: &polykey_keys::RootKeypair) {
    shared.signature = keys.sign(&shared_part(shared, to)).0.to_vec();
}

fn verifies(by: &NodeId, message: &[u8], signature: &[u8]) -> bool {
    <[u8; 64]>::try_from(signature).is_ok_and(|signature| {
        polykey_keys::root::verify(by, message, &polykey_keys::Signature(signature)).is_ok()
    })
}

/// Whether `access` is signed by the device it names.
fn signed_by_its_device(id: &VaultId, access: &Access) -> Option<NodeId> {
    let by = access.by?;
    verifies(&by, &signed_part(id, access), &access.signature).then_some(by)
}

/// The device that made `grant`, when its signature holds.
fn grant_signer(id: &VaultId, grant: &Grant) -> Option<NodeId> {
    let by = grant.by?;
    verifies(&by, &grant_part(id, grant), &grant.signature).then_some(by)
}

/// The device that withdrew a share, when its signature holds.
fn withdrawer(id: &VaultId, withdrawn: &Withdrawn) -> Option<NodeId> {
    let by = withdrawn.by?;
    verifies(&by, &withdrawn_part(id, withdrawn), &withdrawn.signature).then_some(by)
}

/// The device that took `remote`, when its signature holds.
fn taker(id: &VaultId, remote: &Remote) -> Option<NodeId> {
    let taken = remote.taken.as_ref()?;
    verifies(
        &taken.by,
        &taken_part(id, &remote.owner, taken),
        &taken.signature,
    )
    .then_some(taken.by)
}

/// The owner's node vouching for `remote`'s nodes, removed, write and
/// served, when its signature holds.
fn stated_by(id: &VaultId, remote: &Remote) -> Option<NodeId> {
    let statement = remote.statement.as_ref()?;
    let part = statement_part(
        &id.to_string(),
        remote.write,
        &remote.nodes,
        &remote.removed,
        &remote.served,
        &remote.writers,
        statement.at,
        &statement.to,
    );
    verifies(&statement.signer, &part, &statement.signature).then_some(statement.signer)
}

/// Sign `access`, the record of vault `vault` (its id), as the device
/// with `keys`: its grants and the taking of another person's vault not
/// signed yet (new or changed here), then the record. What every device
/// does to a change it makes (and what a test does to play a stolen
/// device).
pub fn sign_access(
    vault: &str,
    access: &mut Access,
    keys: &polykey_keys::RootKeypair,
) -> Result<(), NodeError> {
    let id: VaultId = vault.parse()?;
    let me = keys.node_id();
    // An entry keeps its time when it has one (signed again here after
    // its device's removal); a new one takes the record's.
    let at = |t: i64| if t == 0 { access.at } else { t };
    for grant in access.grants.iter_mut().filter(|g| g.by.is_none()) {
        grant.at = at(grant.at);
        grant.by = Some(me);
        grant.signature = keys.sign(&grant_part(&id, grant)).0.to_vec();
    }
    for gone in access.withdrawn.iter_mut().filter(|w| w.by.is_none()) {
        gone.at = at(gone.at);
        gone.by = Some(me);
        gone.signature = keys.sign(&withdrawn_part(&id, gone)).0.to_vec();
    }
    if let Some(remote) = access.remote.as_mut().filter(|r| r.taken.is_none()) {
        let mut taken = Taken {
            by: me,
            at: access.at,
            from: remote.statement.as_ref().map_or(me, |s| s.signer),
            signature: Vec::new(),
        };
        taken.signature = keys
            .sign(&taken_part(&id, &remote.owner, &taken))
            .0
            .to_vec();
        remote.taken = Some(taken);
    }
    access.by = Some(me);
    access.signature = keys.sign(&signed_part(&id, access)).0.to_vec();
    Ok(())
}

/// Whether vault records `before` (the default when there is none) let
/// this gestalt take the vault from `owner`: none, or one of a vault taken
/// from them before. Grants or withdrawals make it a vault of this
/// gestalt's own (its record came from a device before the vault did), and
/// another owner another person's: neither is taken over by someone
/// naming its id.
pub(super) fn taken_from(before: &Access, owner: &str) -> bool {
    before.grants.is_empty()
        && before.withdrawn.is_empty()
        && before.withdrawn_floor == 0
        && before.remote.as_ref().is_none_or(|r| r.owner == owner)
}

/// Undo what an accept that did not bring vault `id` recorded. Nothing
/// when the vault is here after all (its last transaction ran past the
/// accept's deadline), nor when a record of the same owner's vault was
/// there before (`recorded`); else no record, but what this gestalt's
/// other devices merged into it meanwhile (their grants and withdrawals:
/// the vault is this gestalt's own) stays, without the owner the accept
/// named.
fn undo_taking(s: &Session, id: &VaultId, recorded: bool) -> Result<(), NodeError> {
    // Finished after all (the accept's deadline passed while its last
    // transaction ran): the vault here is the person's, and its record
    // says so.
    if Vaults::new(&s.db).list()?.iter().any(|v| v.id == *id) {
        return Ok(());
    }
    let now = access_of(s, id)?;
    let own = !now.grants.is_empty() || !now.withdrawn.is_empty() || now.withdrawn_floor != 0;
    if own {
        let at = next_at(now.at);
        return put_access(
            s,
            id,
            Access {
                at,
                remote: None,
                ..now
            },
        );
    }
    if !recorded {
        let mut txn = s.db.write()?;
        txn.delete(&ACCESS, &access_key(s, id))?;
        txn.commit()?;
    }
    Ok(())
}

/// Where an accept stands once its record is checked.
enum Accepting {
    /// Its record written (`recorded`: over one of the same owner's vault
    /// that was there before); the vault is to be received.
    Begun { recorded: bool },
    /// The vault is here already, this person's: nothing more to do.
    Here(VaultInfo),
}

/// The refusal of a vault id that is not `owner`'s to share.
pub(super) fn not_theirs(owner: &str) -> NodeError {
    NodeError::Invalid(format!(
        "a vault with that id is known here as yours or another person's, not one {owner} shares"
    ))
}

/// Record a change made on this device: signed by it.
fn put_access(s: &Session, id: &VaultId, mut access: Access) -> Result<(), NodeError> {
    // One entry per person: a grant replaces their withdrawal.
    let granted: BTreeSet<String> = access.grants.iter().map(|g| g.person.clone()).collect();
    access.withdrawn.retain(|w| !granted.contains(&w.person));
    tidy_entries(&mut access);
    sign_access(&id.to_string(), &mut access, &s.keys)?;
    store_access(s, id, access)
}

fn store_access(s: &Session, id: &VaultId, access: Access) -> Result<(), NodeError> {
    let mut txn = s.db.write()?;
    let record = AccessRecord {
        vault: id.to_string(),
        access,
    };
    txn.put(&ACCESS, &access_key(s, id), &record)?;
    txn.commit()?;
    Ok(())
}

/// A time for a change made here, later than the record's last.
fn next_at(previous: i64) -> i64 {
    now_ms().max(previous.saturating_add(1))
}

/// Every access record kept, by vault, in one read (for listings of every
/// vault, deleted ones included).
pub(crate) fn access_by_vault(s: &Session) -> Result<HashMap<VaultId, Access>, NodeError> {
    Ok(s.db
        .read()?
        .entries(&ACCESS)?
        .into_iter()
        .filter_map(|(_, record)| Some((record.vault.parse().ok()?, record.access)))
        .collect())
}

/// The access records of every vault not deleted.
fn all_access(s: &Session) -> Result<Vec<(VaultId, Access)>, NodeError> {
    let mut by_vault = access_by_vault(s)?;
    Ok(Vaults::new(&s.db)
        .list()?
        .into_iter()
        .filter_map(|v| Some((v.id, by_vault.remove(&v.id)?)))
        .collect())
}

/// Entries in a fixed order (so equal records compare equal), and only
/// the newest withdrawals within the bound.
fn tidy_entries(access: &mut Access) {
    access.withdrawn.sort_by_key(|w| std::cmp::Reverse(w.at));
    if let Some(latest) = access.withdrawn.get(MAX_SHARE_REMOVED).map(|w| w.at) {
        access.withdrawn_floor = access.withdrawn_floor.max(latest);
    }
    access.withdrawn.truncate(MAX_SHARE_REMOVED);
    let floor = access.withdrawn_floor;
    // Grants not signed yet are new (dated when signed).
    access.grants.retain(|g| g.by.is_none() || g.at > floor);
    access.withdrawn.retain(|w| w.by.is_none() || w.at > floor);
    access.grants.sort_by(|a, b| a.person.cmp(&b.person));
    access.withdrawn.sort_by(|a, b| a.person.cmp(&b.person));
}

/// Whether an access record from a device keeps within the bounds.
pub(super) fn within_bounds(access: &Access) -> bool {
    let names = |nodes: &Vec<NodeId>| nodes.len() <= MAX_SHARE_NODES;
    access.grants.len() <= MAX_GRANTS
        && access.withdrawn.len() <= MAX_SHARE_REMOVED
        && access
            .withdrawn
            .iter()
            .all(|w| w.person.len() <= MAX_SHARE_NAME)
        && access
            .grants
            .iter()
            .all(|g| g.person.len() <= MAX_SHARE_NAME && names(&g.nodes))
        && access.remote.as_ref().is_none_or(|r| {
            r.owner.len() <= MAX_SHARE_NAME
                && names(&r.nodes)
                && names(&r.served)
                && r.removed.len() <= MAX_SHARE_REMOVED
                && r.writers.len() <= MAX_SHARE_WRITERS
        })
}

/// Merge a device's access record for vault `id` into this one's, when
/// it is signed by a device of this gestalt as it stands. Each person has
/// one entry, a grant or a withdrawal, signed by the device that made it
/// (a device of this gestalt); the later entry wins, so a grant withdrawn
/// here never comes back in a record a stolen device signs, and changes
/// made on two devices both hold. Another person's vault follows the
/// newer record when [`remote_may_follow`] allows. Stored as sent when the
/// merge is just that record, else signed here. Returns whether anything
/// changed.
pub(super) fn adopt_access(s: &Session, id: &VaultId, theirs: Access) -> Result<bool, NodeError> {
    if !within_bounds(&theirs) || !dated_sanely(&theirs) {
        return Ok(false);
    }
    let Some(by) = signed_by_its_device(id, &theirs) else {
        return Ok(false);
    };
    let members = gestalt(s)?;
    if !members.contains(&by) {
        return Ok(false);
    }
    let mine = access_of(s, id)?;
    if theirs == mine {
        return Ok(false);
    }
    let here = Vaults::new(&s.db).open_any(id).is_ok();
    let trusted = match &mine.remote {
        Some(m) => owner_nodes_trusted(s, &m.owner)?,
        None => BTreeSet::new(),
    };
    let follows = remote_may_follow(id, &mine, &theirs, here, &members, &trusted);
    let remote = if theirs.at > mine.at && follows {
        theirs.remote.clone()
    } else {
        mine.remote.clone()
    };
    let (mut grants, withdrawn) = merge_entries(id, &mine, &theirs, &members);
    // Never a device its person's gestalt removed, as known here (as
    // `update_grant_nodes` keeps it), whatever list the other device
    // signed: it may not have heard of that removal, and a removal is
    // recorded once. The list stripped here is signed anew and spreads.
    for grant in grants.iter_mut() {
        let kept = not_removed(s, &grant.person, &grant.nodes)?;
        if kept.len() != grant.nodes.len() {
            *grant = with_nodes(grant, kept);
        }
    }
    let mut merged = Access {
        grants,
        withdrawn,
        withdrawn_floor: mine.withdrawn_floor.max(theirs.withdrawn_floor),
        remote,
        ..mine.clone()
    };
    tidy_entries(&mut merged);
    let content = |a: &Access| {
        let mut a = a.clone();
        tidy_entries(&mut a);
        (a.grants, a.withdrawn, a.withdrawn_floor, a.remote)
    };
    let now = content(&merged);
    if now == content(&mine) {
        return Ok(false);
    }
    if now == content(&theirs) && theirs.at > mine.at {
        store_access(s, id, theirs)?;
    } else {
        merged.at = next_at(mine.at.max(theirs.at));
        put_access(s, id, merged)?;
    }
    Ok(true)
}

/// The nodes of the person trusted here as `owner` (none when this
/// device does not trust them itself).
fn owner_nodes_trusted(s: &Session, owner: &str) -> Result<BTreeSet<NodeId>, NodeError> {
    Ok(people_in(s)?
        .into_iter()
        .filter(|p| p.name == owner)
        .flat_map(|p| p.nodes)
        .collect())
}

/// Whether every time in `access` is one this clock allows and none is
/// after the record's: a time far ahead would outrank every later change.
fn dated_sanely(access: &Access) -> bool {
    // No entry after its record: one dated ahead would outrank a change
    // made here since.
    let ok = |t: i64| t == super::clamp_peer_time(t) && t <= access.at;
    ok(access.at)
        && ok(access.withdrawn_floor)
        && access.grants.iter().all(|g| ok(g.at))
        && access.withdrawn.iter().all(|w| ok(w.at))
        && access.remote.as_ref().is_none_or(|r| {
            r.taken.as_ref().is_none_or(|t| ok(t.at))
                // The owner's clock, not this gestalt's: bounded only.
                && r.statement.as_ref().is_none_or(|st| st.at == super::clamp_peer_time(st.at))
        })
}

/// A person's entry in an access record: granted, or withdrawn.
enum Entry {
    Granted(Grant),
    Withdrawn(Withdrawn),
}

impl Entry {
    /// Its time; at the same time a withdrawal wins (a grant signed again
    /// for its person's devices is dated just after the grant, and so may
    /// a withdrawal be on a clock behind); then its signature, to break a
    /// tie the same everywhere.
    fn order(&self) -> (i64, bool, &[u8]) {
        match self {
            Self::Granted(g) => (g.at, false, &g.signature),
            Self::Withdrawn(w) => (w.at, true, &w.signature),
        }
    }
}

/// Each person's later entry of `mine` and `theirs` (theirs only when
/// signed by a device of this gestalt, `members`).
fn merge_entries(
    id: &VaultId,
    mine: &Access,
    theirs: &Access,
    members: &BTreeSet<NodeId>,
) -> (Vec<Grant>, Vec<Withdrawn>) {
    let mut best: BTreeMap<String, Entry> = BTreeMap::new();
    let mut offer = |person: &str, entry: Entry| {
        let later = best
            .get(person)
            .is_none_or(|held| entry.order() > held.order());
        if later {
            best.insert(person.to_owned(), entry);
        }
    };
    for g in &mine.grants {
        offer(&g.person, Entry::Granted(g.clone()));
    }
    for w in &mine.withdrawn {
        offer(&w.person, Entry::Withdrawn(w.clone()));
    }
    let member = |by: Option<NodeId>| by.is_some_and(|b| members.contains(&b));
    for g in theirs.grants.iter().filter(|g| member(grant_signer(id, g))) {
        offer(&g.person, Entry::Granted(g.clone()));
    }
    for w in theirs
        .withdrawn
        .iter()
        .filter(|w| member(withdrawer(id, w)))
    {
        offer(&w.person, Entry::Withdrawn(w.clone()));
    }
    let (mut grants, mut withdrawn) = (Vec::new(), Vec::new());
    for entry in best.into_values() {
        match entry {
            Entry::Granted(g) => grants.push(g),
            Entry::Withdrawn(w) => withdrawn.push(w),
        }
    }
    // Past the bound, the newest grants stay.
    if grants.len() > MAX_GRANTS {
        grants.sort_by_key(|g| std::cmp::Reverse(g.at));
        grants.truncate(MAX_GRANTS);
    }
    (grants, withdrawn)
}

/// Whether another person's vault may follow `theirs`: a record may not
/// make a vault already here another person's (a stolen device turning a
/// vault of this gestalt read only, or taking a stranger's commits into
/// it), nor this gestalt's own, and another person's vault keeps its
/// owner, with its nodes as the owner signed them (see
/// [`remote_follows`]).
fn remote_may_follow(
    id: &VaultId,
    mine: &Access,
    theirs: &Access,
    here: bool,
    members: &BTreeSet<NodeId>,
    trusted: &BTreeSet<NodeId>,
) -> bool {
    match (&mine.remote, &theirs.remote) {
        (None, None) => true,
        (Some(_), None) => false,
        (None, Some(t)) => !here && remote_sound(id, t, members),
        (Some(m), Some(t)) => remote_follows(id, m, t, members, trusted),
    }
}

/// Whether another person's vault as a device of this gestalt records it
/// is sound: taken by a device of this gestalt, and its nodes, removed,
/// write and served signed by one of the owner's nodes it names.
fn remote_sound(id: &VaultId, remote: &Remote, members: &BTreeSet<NodeId>) -> bool {
    let Some(taken_by) = taker(id, remote) else {
        return false;
    };
    let from = remote.taken.as_ref().map(|t| t.from);
    let to_us = remote
        .statement
        .as_ref()
        .is_some_and(|st| members.contains(&st.to));
    members.contains(&taken_by)
        && to_us
        && stated_by(id, remote)
            .is_some_and(|signer| remote.nodes.contains(&signer) || Some(signer) == from)
}

/// What the owner says of its vault: its nodes, removed, write, served,
/// writers.
fn owner_says(remote: &Remote) -> (&[NodeId], &[Removed], bool, &[NodeId], &[Removed]) {
    (
        &remote.nodes,
        &remote.removed,
        remote.write,
        &remote.served,
        &remote.writers,
    )
}

/// Whether `theirs` may follow `mine`, this device's record of another
/// person's vault: the same owner; taken again (newer), or else what the
/// owner says unchanged or newly signed by one of the owner's nodes known
/// here, never from a device of this gestalt; and an ended share is only
/// resumed by taking it again.
fn remote_follows(
    id: &VaultId,
    mine: &Remote,
    theirs: &Remote,
    members: &BTreeSet<NodeId>,
    trusted: &BTreeSet<NodeId>,
) -> bool {
    if theirs.owner != mine.owner || !remote_sound(id, theirs, members) {
        return false;
    }
    let (old, new) = (mine.statement.as_ref(), theirs.statement.as_ref());
    // A statement naming the last one's signer removed replaces it,
    // whatever its time (a removed device may have dated its own late).
    let supersedes = |n: &Statement| {
        old.is_none_or(|o| n.at > o.at || theirs.removed.iter().any(|r| r.node == o.signer))
    };
    if theirs.taken != mine.taken {
        let (old, new) = (mine.taken.as_ref(), theirs.taken.as_ref());
        return new.is_some_and(|n| old.is_none_or(|o| n.at > o.at));
    }
    if mine.ended && !theirs.ended {
        return false;
    }
    if owner_says(theirs) == owner_says(mine) && theirs.statement == mine.statement {
        return true;
    }
    let known: BTreeSet<NodeId> = mine
        .nodes
        .iter()
        .copied()
        .chain(mine.taken.as_ref().map(|t| t.from))
        .chain(trusted.iter().copied())
        .collect();
    new.is_some_and(|n| known.contains(&n.signer) && supersedes(n))
}

/// End what a device no longer of this gestalt made: its grants go
/// (whichever device signed the record since), and another person's vault
/// it took stops syncing (marked ended). The record stays, re-signed here
/// with a later time, so an older copy of it can never come back. Returns
/// whether any was ended.
pub(crate) fn drop_access_of_removed(s: &Session) -> Result<bool, NodeError> {
    let members = gestalt(s)?;
    let entries = s.db.read()?.entries(&ACCESS)?;
    let mut ended = false;
    for (_, record) in entries {
        let Ok(id) = record.vault.parse::<VaultId>() else {
            continue;
        };
        let old = record.access;
        let mut access = old.clone();
        // A removed device's grants are withdrawn now; its withdrawals
        // stand, signed again here (entries never signed were made here
        // before entries were signed: this device signs them now).
        let (kept, gone): (Vec<Grant>, Vec<Grant>) = std::mem::take(&mut access.grants)
            .into_iter()
            .partition(|g| g.by.is_none_or(|by| members.contains(&by)));
        access.grants = kept;
        access
            .withdrawn
            .extend(gone.into_iter().map(|g| Withdrawn::unsigned(g.person)));
        for gone in access.withdrawn.iter_mut() {
            if gone.by.is_some_and(|by| !members.contains(&by)) {
                gone.by = None;
            }
        }
        if let Some(remote) = access.remote.as_mut() {
            if remote
                .taken
                .as_ref()
                .is_some_and(|t| !members.contains(&t.by))
            {
                remote.ended = true;
            }
        }
        if access == old && old.by.is_none_or(|by| members.contains(&by)) {
            continue;
        }
        access.at = next_at(old.at);
        put_access(s, &id, access)?;
        ended = true;
    }
    Ok(ended)
}

/// Nodes of other gestalts and vaults, by node.
pub(crate) type Shares = HashMap<NodeId, BTreeSet<VaultId>>;

/// The nodes of other gestalts in [`Shares`], by the person (as trusted
/// here) each takes part for.
pub(crate) type SharePeople = BTreeMap<String, BTreeSet<NodeId>>;

/// The nodes of other gestalts taking part in each vault with this one:
/// people it is shared with, and the owners of vaults shared with it
/// (while the share lasts); and, of those, the ones that pull each vault
/// from here (told of its changes): the people it is shared with, and the
/// owner of a vault this gestalt may write. The serving loop reads this.
pub(crate) fn shares_in(s: &Session) -> Result<(Shares, Shares, SharePeople), NodeError> {
    let own = gestalt(s)?;
    let people = people_in(s)?;
    let removed_people = removed_people_nodes(s)?;
    let (mut all, mut pulling) = (Shares::new(), Shares::new());
    let mut by_person = SharePeople::new();
    for (id, access) in all_access(s)? {
        // The owner's nodes as trusted here are heard too (and pulled
        // from: what they say counts as `may_replace` allows), but for
        // those this device knows removed.
        for remote in access.remote.iter().filter(|r| !r.ended) {
            let trusted = people.iter().filter(|p| p.name == remote.owner);
            for node in trusted.flat_map(|p| &p.nodes) {
                if !removed_people.contains(node) && !own.contains(node) {
                    all.entry(*node).or_default().insert(id);
                    by_person
                        .entry(remote.owner.clone())
                        .or_default()
                        .insert(*node);
                }
            }
        }
        let owners = access.remote.iter().filter(|r| !r.ended);
        let grantees = access.grants.iter().flat_map(|g| &g.nodes);
        for node in grantees.filter(|n| !own.contains(n)) {
            pulling.entry(*node).or_default().insert(id);
        }
        for remote in owners.filter(|r| r.write) {
            for node in remote.nodes.iter().filter(|n| !own.contains(n)) {
                pulling.entry(*node).or_default().insert(id);
            }
        }
        let granted = access.grants.iter().map(|g| (&g.person, &g.nodes));
        let owning = access
            .remote
            .iter()
            .filter(|r| !r.ended)
            .map(|r| (&r.owner, &r.nodes));
        for (person, nodes) in granted.chain(owning) {
            for node in nodes.iter().filter(|n| !own.contains(n)) {
                all.entry(*node).or_default().insert(id);
                by_person.entry(person.clone()).or_default().insert(*node);
            }
        }
    }
    Ok((all, pulling, by_person))
}

/// Who may author commits in vault `id` beyond this gestalt: writers it is
/// shared with, and the owner's nodes (removed ones before their removal),
/// and people it was shared with before it was withdrawn from them.
pub(super) fn extra_authors(
    s: &Session,
    id: &VaultId,
) -> Result<(BTreeSet<NodeId>, HashMap<NodeId, u64>), NodeError> {
    let access = access_of(s, id)?;
    let mut nodes: BTreeSet<NodeId> = access
        .grants
        .iter()
        .filter(|g| g.write)
        .flat_map(|g| g.nodes.iter().copied())
        .collect();
    let mut removed = HashMap::new();
    if let Some(remote) = &access.remote {
        nodes.extend(remote.nodes.iter().copied());
        removed.extend(remote.removed.iter().map(|r| (r.node, r.at)));
        // Other people the owner takes commits from: their commits come
        // in the owner's history (a reader refused every pull after a
        // writer's first commit). As the owner says, never one of the
        // owner's own nodes it removed.
        for writer in &remote.writers {
            let owners = remote.nodes.contains(&writer.node)
                || remote.removed.iter().any(|r| r.node == writer.node);
            if owners {
                continue;
            }
            if writer.at == WRITING_NOW {
                nodes.insert(writer.node);
            } else {
                let until = removed.entry(writer.node).or_insert(writer.at);
                *until = (*until).max(writer.at);
            }
        }
    }
    // A writer's work taken before the share was withdrawn stays in the
    // history, and must still reach a device that was away or is new, as
    // a removed device's does: before, such a device refused the vault for
    // good. Their nodes as trusted here (or the node the share named),
    // never one their gestalt removed; a node still writing under another
    // grant keeps that.
    if !access.withdrawn.is_empty() {
        let people = people_in(s)?;
        // Read once, not once a person: this runs at every page taken.
        let removals = s.db.read()?.entries(&PERSON_REMOVED)?;
        for gone in &access.withdrawn {
            let until = u64::try_from(gone.at / 1000).unwrap_or(0);
            let mut theirs: Vec<NodeId> = people
                .iter()
                .filter(|p| p.name == gone.person)
                .flat_map(|p| p.nodes.iter().copied())
                .collect();
            theirs.extend(gone.person.parse::<NodeId>());
            let removed_here = |node: &NodeId| {
                removals
                    .iter()
                    .any(|(_, r)| r.person == gone.person && r.node == *node)
            };
            for node in theirs.into_iter().filter(|n| !removed_here(n)) {
                if !nodes.contains(&node) {
                    let at = removed.entry(node).or_insert(until);
                    *at = (*at).max(until);
                }
            }
        }
    }
    Ok((nodes, removed))
}

/// Other people's nodes this owner takes commits from in its vault `id`,
/// as a [`SharedVault`] names them: those it may take from now, then
/// those whose share was withdrawn with until when, each in node order
/// (the same answer each time, so a reader's record changes only when
/// they do); at most [`MAX_SHARE_WRITERS`].
fn writers_of(s: &Session, id: &VaultId) -> Result<Vec<Removed>, NodeError> {
    let (now, former) = extra_authors(s, id)?;
    let mut former: Vec<Removed> = former
        .into_iter()
        .filter(|(node, _)| !now.contains(node))
        .map(|(node, at)| Removed { node, at })
        .collect();
    former.sort_by_key(|r| r.node);
    Ok(now
        .into_iter()
        .map(|node| Removed {
            node,
            at: WRITING_NOW,
        })
        .chain(former)
        .take(MAX_SHARE_WRITERS)
        .collect())
}

/// What `peer` (of another gestalt) may ask of vault `id`: `Some(write)`
/// when it is shared with the peer's gestalt, or when the peer owns it and
/// this gestalt may write (the owner pulls from writers).
fn role_of(s: &Session, id: &VaultId, peer: &NodeId) -> Result<Option<bool>, NodeError> {
    if Vaults::new(&s.db).open(&id.to_string()).is_err() {
        return Ok(None);
    }
    let access = access_of(s, id)?;
    if let Some(grant) = access.grants.iter().find(|g| g.nodes.contains(peer)) {
        return Ok(Some(grant.write));
    }
    let owner_pulls = access
        .remote
        .as_ref()
        .is_some_and(|r| !r.ended && r.write && r.nodes.contains(peer));
    Ok(owner_pulls.then_some(true))
}

/// Refuse `peer` vault `id` unless it is a device of this gestalt or the
/// vault is shared with it (see [`role_of`]).
pub(super) fn require_access(s: &Session, peer: &NodeId, id: &VaultId) -> Result<(), NodeError> {
    if in_gestalt(s, peer)? || role_of(s, id, peer)?.is_some() {
        Ok(())
    } else {
        Err(NodeError::PeerRefused(NOT_SHARED.into()))
    }
}

/// Whether node `me` pulls vault `access` from `peer`: its owner, when
/// the owner serves `me` (other devices take it from those it serves), or
/// a person allowed to write it.
fn pulls_from(access: &Access, peer: &NodeId, me: &NodeId) -> bool {
    access
        .remote
        .as_ref()
        .is_some_and(|r| !r.ended && r.nodes.contains(peer) && r.served.contains(me))
        || access
            .grants
            .iter()
            .any(|g| g.write && g.nodes.contains(peer))
}

/// Refuse a [`SharedVault`] beyond the bounds.
fn check_shared(shared: &SharedVault) -> Result<VaultId, NodeError> {
    if shared.nodes.len() > MAX_SHARE_NODES
        || shared.served.len() > MAX_SHARE_NODES
        || shared.removed.len() > MAX_SHARE_REMOVED
        || shared.name.len() > MAX_SHARE_NAME
    {
        return Err(NodeError::BadPeerData(
            "a shared vault past the bounds".into(),
        ));
    }
    shared
        .id
        .parse()
        .map_err(|_| NodeError::BadPeerData("a shared vault without a valid id".into()))
}

/// The person trusted here that `target` names: by name as trusted (an
/// identity's login in any letter case), by one of their NodeIds, or by a
/// contact code of one of their nodes.
fn person_named(s: &Session, target: &str) -> Result<Option<Person>, NodeError> {
    crate::people::find_person(s, target.trim())
}

/// Take the devices `peer`'s gestalt removed, as `revocations` (its
/// signed claims) show, from the person `peer` is (trusted as, granted as,
/// or one of their removed devices) and from their grants: a removal by
/// one of their devices of another, as their own devices obey it. A
/// device removed stays removed here (until the person is trusted again),
/// and is still heard: a stolen device removing its owner's, then removed
/// by it, leaves neither served. It may cut the person's other devices
/// off this share (they keep their copies), never stay served. Claims
/// are sorted cheaply before any signature is checked. Returns whether
/// any was taken.
fn drop_removed_of_person(
    s: &Session,
    peer: &NodeId,
    revocations: &[SignedClaim],
) -> Result<bool, NodeError> {
    if revocations.is_empty() || revocations.len() > MAX_SHARE_NODES {
        return Ok(false);
    }
    let records = all_access(s)?;
    let by_name = people_in(s)?
        .into_iter()
        .find(|p| p.nodes.contains(peer))
        .map(|p| p.name);
    let by_grant = || {
        records
            .iter()
            .flat_map(|(_, a)| &a.grants)
            .find(|g| g.nodes.contains(peer))
            .map(|g| g.person.clone())
    };
    let by_removal = || -> Result<Option<String>, NodeError> {
        let key = s.db.record_key(PERSON_REMOVED.name(), peer.as_bytes());
        Ok(s.db.read()?.get(&PERSON_REMOVED, &key)?.map(|r| r.person))
    };
    let name = match by_name.or_else(by_grant) {
        Some(name) => name,
        None => match by_removal()? {
            Some(name) => name,
            None => return Ok(false),
        },
    };
    // Each removed device, and who removed it.
    let removed = removed_by(s, &name)?;
    let mut theirs: BTreeSet<NodeId> = removed.keys().copied().collect();
    theirs.extend(
        people_in(s)?
            .into_iter()
            .filter(|p| p.name == name)
            .flat_map(|p| p.nodes),
    );
    for (_, access) in &records {
        for grant in access.grants.iter().filter(|g| g.person == name) {
            theirs.extend(grant.nodes.iter().copied());
        }
    }
    let mut gone: BTreeMap<NodeId, NodeId> = BTreeMap::new();
    for claim in revocations {
        let Ok(c) = claim.decode() else { continue };
        // A device removed already may remove only the one that removed
        // it (the two removed each other: neither stays).
        let issuer_stands = removed.get(&c.iss).is_none_or(|by| *by == c.sub);
        let wanted = c.typ == ClaimType::ClaimRevokeNode
            && c.iss != c.sub
            && theirs.contains(&c.iss)
            && theirs.contains(&c.sub)
            && issuer_stands
            && !removed.contains_key(&c.sub)
            && !gone.contains_key(&c.sub)
            && removed.len() + gone.len() < MAX_REMOVED_PER_PERSON;
        if wanted && claim.verify().is_ok() {
            gone.insert(c.sub, c.iss);
        }
    }
    if gone.is_empty() {
        return Ok(false);
    }
    let mut txn = s.db.write()?;
    for (node, by) in &gone {
        let key = s.db.record_key(PERSON_REMOVED.name(), node.as_bytes());
        let record = PersonRemoved {
            person: name.clone(),
            node: *node,
            by: *by,
        };
        txn.put(&PERSON_REMOVED, &key, &record)?;
    }
    txn.commit()?;
    let nodes: BTreeSet<NodeId> = gone.into_keys().collect();
    drop_from_every_holder(s, &name, &nodes)?;
    Ok(true)
}

/// Take `nodes` from every grant to `person`.
fn drop_grant_nodes(s: &Session, person: &str, nodes: &BTreeSet<NodeId>) -> Result<(), NodeError> {
    for (id, mut access) in all_access(s)? {
        let mut changed = false;
        for grant in access.grants.iter_mut().filter(|g| g.person == person) {
            if grant.nodes.iter().any(|n| nodes.contains(n)) {
                let kept = grant.nodes.iter().copied().filter(|n| !nodes.contains(n));
                *grant = with_nodes(grant, kept.collect());
                changed = true;
            }
        }
        if changed {
            access.at = next_at(access.at);
            put_access(s, &id, access)?;
        }
    }
    Ok(())
}

/// `grant` to other nodes of its person, to be signed again here. Dated
/// one millisecond after the grant it changes, not now: a change of the
/// person's devices is not the owner granting anew, and must not outrank
/// a withdrawal made since on a device this one has not heard from (the
/// person could otherwise undo an unshare by removing a device of theirs
/// where it was not known yet). Later changes of the list still win over
/// earlier ones. A grant not signed yet is dated when signed.
fn with_nodes(grant: &Grant, nodes: Vec<NodeId>) -> Grant {
    Grant {
        at: if grant.at == 0 {
            0
        } else {
            grant.at.saturating_add(1)
        },
        ..Grant::unsigned(grant.person.clone(), nodes, grant.write)
    }
}

/// The nodes of people removed by their own gestalt (still heard asking
/// `Shared`, see [`drop_removed_of_person`]).
pub(crate) fn removed_people_nodes(s: &Session) -> Result<BTreeSet<NodeId>, NodeError> {
    Ok(s.db
        .read()?
        .entries(&PERSON_REMOVED)?
        .into_iter()
        .map(|(_, r)| r.node)
        .collect())
}

/// Withdraw the grant to `person` in `access` (signed when recorded).
/// Returns the grants withdrawn.
fn withdraw(access: &mut Access, person: &str) -> Vec<Grant> {
    let (gone, kept): (Vec<Grant>, Vec<Grant>) = std::mem::take(&mut access.grants)
        .into_iter()
        .partition(|g| g.person == person);
    access.grants = kept;
    if !gone.is_empty() {
        access.withdrawn.retain(|w| w.person != person);
        access
            .withdrawn
            .push(Withdrawn::unsigned(person.to_owned()));
    }
    gone
}

/// Stop sharing with `person` and stop taking what they share (on
/// untrust): grants to them go, their vaults here are marked ended.
pub(crate) fn drop_person_shares(s: &Session, person: &Person) -> Result<(), NodeError> {
    // Their removed devices are forgotten with them: trusted again, they
    // start afresh.
    let mut txn = s.db.write()?;
    for (key, removed) in txn.entries(&PERSON_REMOVED)? {
        if removed.person == person.name {
            txn.delete(&PERSON_REMOVED, &key)?;
        }
    }
    txn.commit()?;
    for (id, mut access) in all_access(s)? {
        let before = access.clone();
        withdraw(&mut access, &person.name);
        if let Some(remote) = access.remote.as_mut() {
            if remote.owner == person.name {
                remote.ended = true;
            }
        }
        if access != before {
            access.at = next_at(access.at);
            put_access(s, &id, access)?;
        }
    }
    Ok(())
}

/// A person's nodes changed (trusted again): their grants follow.
pub(crate) fn update_grant_nodes(s: &Session, person: &Person) -> Result<(), NodeError> {
    // Never a device their gestalt removed, whatever claims it still has.
    let nodes = not_removed(s, &person.name, &person.nodes)?;
    for (id, mut access) in all_access(s)? {
        let mut changed = false;
        for grant in access.grants.iter_mut().filter(|g| g.person == person.name) {
            if grant.nodes != nodes {
                *grant = with_nodes(grant, nodes.clone());
                changed = true;
            }
        }
        if changed {
            access.at = next_at(access.at);
            put_access(s, &id, access)?;
        }
    }
    Ok(())
}

/// What `share_vault` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shared {
    /// The grant as recorded.
    pub grant: Grant,
    /// Whether one of the person's nodes took the offer now (else they can
    /// still clone it by its id).
    pub offered: bool,
}

/// A vault with its access, for `vaults permissions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultAccess {
    /// The vault.
    pub vault: VaultInfo,
    /// Who takes part.
    pub access: Access,
}

impl VaultAccess {
    /// In JSON, for the CLI and the client API: whom it is shared with, or
    /// whose it is.
    pub fn to_json(&self) -> serde_json::Value {
        let nodes = |n: &[NodeId]| n.iter().map(ToString::to_string).collect::<Vec<_>>();
        serde_json::json!({
            "vault": self.vault.name,
            "id": self.vault.id.to_string(),
            "grants": self.access.grants.iter().map(|g| serde_json::json!({
                "person": g.person, "nodes": nodes(&g.nodes), "write": g.write,
            })).collect::<Vec<_>>(),
            "remote": self.access.remote.as_ref().map(|r| serde_json::json!({
                "owner": r.owner, "nodes": nodes(&r.nodes), "write": r.write, "ended": r.ended,
            })),
        })
    }
}

impl Node {
    /// Share vault `vault` (name or id, one of this gestalt's own) with the
    /// person `target` names (trusted first if they are not yet), reading
    /// only or writing too; they are sent an offer.
    pub async fn share_vault(
        &self,
        vault: &str,
        target: &str,
        write: bool,
    ) -> Result<Shared, NodeError> {
        let found = {
            let target = target.to_owned();
            self.with_vaults(move |s| person_named(s, &target)).await?
        };
        let mut person = match found {
            Some(person) => person,
            None => self.trust(target).await?,
        };
        // Trusted by a NodeId: their gestalt as that node answers for it
        // now (a device they removed since is left out of the grant). A
        // node that does not answer leaves the nodes as known.
        if let Ok(client) = self.client() {
            let _ = self.follow_person(&client, &person.name).await;
        }
        // As kept now, whoever followed them last (the follow started when
        // they were trusted may have finished meanwhile).
        let name = person.name.clone();
        if let Some(now) = self.with_vaults(move |s| person_named(s, &name)).await? {
            person = now;
        }
        let vault = vault.to_owned();
        let who = person.clone();
        let (info, grant) = self
            .with_vaults(move |s| {
                let info = Vaults::new(&s.db).open(&vault)?.info().clone();
                let mut access = access_of(s, &info.id)?;
                if let Some(remote) = &access.remote {
                    return Err(NodeError::Invalid(format!(
                        "“{}” is {}'s vault; only its owner shares it",
                        info.name, remote.owner
                    )));
                }
                let grant = Grant::unsigned(who.name.clone(), who.nodes.clone(), write);
                let full = access.grants.len() >= MAX_GRANTS;
                match access.grants.iter_mut().find(|g| g.person == who.name) {
                    Some(existing) => *existing = grant.clone(),
                    None if full => {
                        return Err(NodeError::Invalid(format!(
                            "this vault is shared with {MAX_GRANTS} people already"
                        )))
                    }
                    None => access.grants.push(grant.clone()),
                }
                access.at = next_at(access.at);
                put_access(s, &info.id, access)?;
                Ok((info, grant))
            })
            .await?;
        self.refresh_shares().await?;
        self.notify();
        // Their nodes pull now, and see what they may do.
        self.tell_changed(&person.nodes);
        let offer = crate::notifications::ShareOffer {
            vault: info.id.to_string(),
            name: info.name.clone(),
            write,
        };
        let mut offered = false;
        for node in &person.nodes {
            let text = format!(
                "shares the vault “{}” with you ({})",
                info.name,
                if write { "read and write" } else { "read only" }
            );
            offered |= self
                .send_share_offer(*node, text, offer.clone())
                .await
                .is_ok();
        }
        Ok(Shared { grant, offered })
    }

    /// Stop sharing vault `vault` with the person `target` names. Returns
    /// whether it was shared with them. They keep what they have.
    pub async fn unshare_vault(&self, vault: &str, target: &str) -> Result<bool, NodeError> {
        let (vault, target) = (vault.to_owned(), target.to_owned());
        let removed = self
            .with_vaults(move |s| {
                let info = Vaults::new(&s.db).open(&vault)?.info().clone();
                let person = person_named(s, &target)?;
                let name = person.as_ref().map_or(target.trim(), |p| p.name.as_str());
                let mut access = access_of(s, &info.id)?;
                let gone = withdraw(&mut access, name);
                if gone.is_empty() {
                    return Ok(Vec::new());
                }
                access.at = next_at(access.at);
                put_access(s, &info.id, access)?;
                Ok(gone.into_iter().flat_map(|g| g.nodes).collect::<Vec<_>>())
            })
            .await?;
        self.refresh_shares().await?;
        self.notify();
        // Tell them, so their copy is marked ended soon.
        self.tell_changed(&removed);
        Ok(!removed.is_empty())
    }

    /// Send `nodes` a change notice, without waiting.
    pub(super) fn tell_changed(&self, nodes: &[NodeId]) {
        if let Ok(client) = self.client() {
            for node in nodes.iter().copied() {
                self.send_changed(&client, node);
            }
        }
    }

    /// Tell `peer` this node has changes, without waiting. One notice
    /// makes a peer pull everything, so at most one is on the wire to a
    /// peer at once, and one more follows it if asked for meanwhile (the
    /// peer may have pulled before the later change): a pull telling a
    /// device of a hundred vaults it is ahead on, or a burst of commits,
    /// sends two, never a hundred crowding the node's other requests to
    /// that peer (at most `MAX_PENDING_REQUESTS_PER_PEER` wait on one).
    pub(super) fn send_changed(&self, client: &Client, peer: NodeId) {
        {
            let mut state = self.inner.peer_state();
            if let Some(again) = state.notices.get_mut(&peer) {
                *again = true;
                return;
            }
            state.notices.insert(peer, false);
        }
        let (mut client, weak) = (client.clone(), self.weak());
        tokio::spawn(async move {
            loop {
                let _ = client.request(peer, Request::Changed).await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let node = Node { inner };
                {
                    let mut state = node.inner.peer_state();
                    match state.notices.get_mut(&peer) {
                        Some(again) if *again => *again = false,
                        _ => {
                            state.notices.remove(&peer);
                            return;
                        }
                    }
                }
                // The next through the network running now (it may have
                // been started again meanwhile).
                match node.client() {
                    Ok(now) => client = now,
                    Err(_) => {
                        node.inner.peer_state().notices.remove(&peer);
                        return;
                    }
                }
            }
        });
    }

    /// Who takes part in vault `vault` besides this gestalt.
    pub async fn vault_access(&self, vault: &str) -> Result<VaultAccess, NodeError> {
        let vault = vault.to_owned();
        self.with_vaults(move |s| {
            let info = Vaults::new(&s.db).open(&vault)?.info().clone();
            let access = access_of(s, &info.id)?;
            Ok(VaultAccess {
                vault: info,
                access,
            })
        })
        .await
    }

    /// The access of every vault that has any (for the vault list).
    pub async fn all_vault_access(&self) -> Result<HashMap<VaultId, Access>, NodeError> {
        self.with_vaults(|s| Ok(all_access(s)?.into_iter().collect()))
            .await
    }

    /// Whether writes to vault `id` are refused here: another person's
    /// vault shared read only.
    /// Why writes to vault `name` (id `id`) are refused here, if they are:
    /// another person's vault shared read only, or shared to write with
    /// other devices of this gestalt than this one (the owner takes changes
    /// only from the devices it trusts as the person's).
    pub(crate) fn read_only_in(
        s: &Session,
        id: &VaultId,
        name: &str,
    ) -> Result<Option<String>, NodeError> {
        let me = s.keys.node_id();
        Ok(access_of(s, id)?.remote.and_then(|r| {
            if !r.write {
                Some(format!(
                    "“{name}” is {}'s vault, shared with you to read only",
                    r.owner
                ))
            } else if !r.served.contains(&me) {
                Some(format!(
                    "“{name}” is {}'s vault; they take changes only from your devices they trust, \
                     and this is not one: edit it there, or ask them to trust this device",
                    r.owner
                ))
            } else {
                None
            }
        }))
    }

    /// What the person `target` shares with this gestalt (they must allow
    /// this node `scan`).
    pub async fn scan(&self, target: &str) -> Result<Vec<SharedVault>, NodeError> {
        let person = self.trusted_person(target).await?;
        let client = self.client()?;
        let mut last = NodeError::Network(format!("none of {}'s nodes answered", person.name));
        for node in person.nodes {
            if let Err(e) = self.ping(node).await {
                last = e;
                continue;
            }
            let answer = match client.request(node, self.shared_request(None).await?).await {
                Ok(answer) => answer,
                // Past the bounds as it was read: the next node may answer
                // well (as a list too long, counted after, was passed over).
                Err(e @ polykey_network::NetworkError::Malformed(_)) => {
                    last = net_error(e);
                    continue;
                }
                Err(e) => return Err(net_error(e)),
            };
            match answer {
                Response::Shared { vaults } if vaults.len() <= MAX_SHARED_VAULTS => {
                    for shared in &vaults {
                        check_shared(shared)?;
                    }
                    return Ok(vaults);
                }
                other => last = refused(other),
            }
        }
        Err(last)
    }

    /// Take vault `vault` (its id) that the person `target` shares with
    /// this gestalt: it is kept in step from then on, read only unless they
    /// allow writing. Already here, it is pulled now.
    pub async fn clone_shared(&self, target: &str, vault: &str) -> Result<VaultInfo, NodeError> {
        let person = self.trusted_person(target).await?;
        let id: VaultId = vault
            .trim()
            .parse()
            .map_err(|_| NodeError::Invalid("expected a vault id".into()))?;
        let client = self.client()?;
        let present = self
            .with_vaults(move |s| Ok(Vaults::new(&s.db).open_any(&id).ok()))
            .await?;
        let mut last = NodeError::Network(format!("none of {}'s nodes answered", person.name));
        for node in person.nodes.iter().copied() {
            if let Err(e) = self.ping(node).await {
                last = e;
                continue;
            }
            if let Some(vault) = &present {
                // Only this person's vault, taken from them before, is
                // pulled again: never a vault of this gestalt's own, nor
                // another person's, under an id they name.
                let owner = person.name.clone();
                let theirs = self
                    .with_vaults(move |s| {
                        Ok(access_of(s, &id)?.remote.is_some_and(|r| r.owner == owner))
                    })
                    .await?;
                if !theirs {
                    return Err(NodeError::Invalid(format!(
                        "a vault with that id is here already (“{}”), not one {} shares",
                        vault.name(),
                        person.name
                    )));
                }
                match self.share_pull(&client, node, id, true).await {
                    Ok(_) => return Ok(vault.info().clone()),
                    Err(e) => {
                        last = e;
                        continue;
                    }
                }
            }
            let shared = match client
                .request(node, self.shared_request(Some(id.to_string())).await?)
                .await
                .map_err(net_error)?
            {
                Response::Shared { mut vaults } if vaults.len() == 1 => vaults.remove(0),
                other => {
                    last = refused(other);
                    continue;
                }
            };
            if check_shared(&shared)? != id {
                return Err(NodeError::BadPeerData("another vault than asked".into()));
            }
            // No other transfer of this id (a device of this gestalt
            // sending a vault of its own) begins until this one ends, so
            // what is checked here still holds when the vault arrives.
            let lock = self.inner.new_vault_lock(id);
            let _one_at_a_time = lock.lock().await;
            let owner = person.name.clone();
            let (name, head) = (shared.name.clone(), shared.head.clone());
            let taking = self
                .with_vaults(move |s| {
                    let before = access_of(s, &id)?;
                    // Brought meanwhile (this accept made twice at once, a
                    // device's sync of it): kept only as this person's.
                    // (A copy a transfer cut off left is taken up below.)
                    let arrived = Vaults::new(&s.db).list()?.into_iter().find(|v| v.id == id);
                    if let Some(info) = arrived {
                        return match before.remote.is_some_and(|r| r.owner == owner) {
                            true => Ok(Accepting::Here(info)),
                            false => Err(not_theirs(&owner)),
                        };
                    }
                    if !taken_from(&before, &owner) {
                        return Err(not_theirs(&owner));
                    }
                    let recorded = before != Access::default();
                    let remote = remote_from(s, owner, node, &shared)?;
                    put_access(
                        s,
                        &id,
                        Access {
                            at: next_at(before.at),
                            remote: Some(remote),
                            ..Access::default()
                        },
                    )?;
                    Ok(Accepting::Begun { recorded })
                })
                .await?;
            let recorded_before = match taking {
                Accepting::Begun { recorded } => recorded,
                Accepting::Here(info) => return Ok(info),
            };
            self.refresh_shares().await?;
            let summary = VaultSummary {
                id: id.to_string(),
                name,
                renamed_at: 0,
                head,
                access: None,
            };
            let received = tokio::time::timeout(
                super::pull::SYNC_DEADLINE,
                self.receive_new_vault_held(&client, node, id, &summary, Some(&person.name)),
            )
            .await
            .unwrap_or_else(|_| {
                Err(NodeError::Network(
                    "their device took too long to send the vault".into(),
                ))
            });
            match received {
                Ok(NewVault::Received) => {
                    self.refresh_shares().await?;
                    self.notify();
                    // The owner hears it was taken: it pulls from a writer,
                    // and follows this gestalt (see `follow_person`).
                    self.tell_changed(&[node]);
                    return self
                        .with_vaults(move |s| {
                            Ok(Vaults::new(&s.db).open(&id.to_string())?.info().clone())
                        })
                        .await;
                }
                failed => {
                    let _ = self
                        .with_vaults(move |s| undo_taking(s, &id, recorded_before))
                        .await;
                    self.refresh_shares().await?;
                    match failed {
                        // Brought by what takes no transfer's lock (a
                        // backup restored meanwhile): whose it is, the
                        // checks above did not see.
                        Ok(NewVault::AlreadyHere) => {
                            return Err(NodeError::Invalid(
                                "that vault arrived here from elsewhere meanwhile; accept it again"
                                    .into(),
                            ))
                        }
                        // Deleted here (the only other outcome).
                        Ok(_) => {
                            return Err(NodeError::Invalid(
                                "that vault was deleted here; restore it from recently deleted"
                                    .into(),
                            ))
                        }
                        Err(e) => last = e,
                    }
                }
            }
        }
        Err(last)
    }

    /// Accept the share offered in a notification: clone vault `vault`
    /// (its id) from the node that offered it.
    pub async fn accept_share(&self, vault: &str) -> Result<VaultInfo, NodeError> {
        let id = vault.trim().to_owned();
        let senders: BTreeSet<NodeId> = self
            .read_notifications(false)
            .await?
            .into_iter()
            .filter(|n| n.share.as_ref().is_some_and(|o| o.vault == id))
            .map(|n| n.from)
            .collect();
        let people = self.people().await?;
        let owners: BTreeSet<String> = senders
            .iter()
            .map(|n| {
                people
                    .iter()
                    .find(|p| p.nodes.contains(n))
                    .map_or_else(|| n.to_string(), |p| p.name.clone())
            })
            .collect();
        // One vault id offered by two people: one of them is not who they
        // seem. Take it from a named person (`clone_shared`) instead.
        match (senders.first(), owners.len()) {
            (Some(from), 1) => self.clone_shared(&from.to_string(), &id).await,
            (None, _) => Err(NodeError::Invalid("no such share was offered".into())),
            _ => Err(NodeError::Invalid(
                "more than one person offered a vault with that id; take it from the one you \
                 expect (`polykey vaults clone ID PERSON`) and decline the other"
                    .into(),
            )),
        }
    }

    /// Pull shared vault `vault` from whichever of its other nodes answer
    /// (its owner's, or a writer's). Returns whether anything changed.
    pub async fn pull_shared(&self, vault: &str) -> Result<bool, NodeError> {
        let vault = vault.to_owned();
        let (id, nodes) = self
            .with_vaults(move |s| {
                let id = Vaults::new(&s.db).open(&vault)?.id();
                let access = access_of(s, &id)?;
                let mut nodes: Vec<NodeId> = access
                    .remote
                    .iter()
                    .filter(|r| !r.ended)
                    .flat_map(|r| r.nodes.iter().copied())
                    .collect();
                if let Some(remote) = access.remote.as_ref().filter(|r| !r.ended) {
                    let trusted = owner_nodes_trusted(s, &remote.owner)?;
                    nodes.extend(trusted.into_iter().filter(|n| !remote.nodes.contains(n)));
                }
                nodes.extend(
                    access
                        .grants
                        .iter()
                        .filter(|g| g.write)
                        .flat_map(|g| &g.nodes),
                );
                Ok((id, nodes))
            })
            .await?;
        if nodes.is_empty() {
            return Err(NodeError::Invalid(
                "nobody else writes to this vault; nothing to pull".into(),
            ));
        }
        let client = self.client()?;
        let mut changed = false;
        let mut reached = None;
        for node in nodes {
            if self.ping(node).await.is_err() {
                continue;
            }
            match self.share_pull(&client, node, id, false).await {
                Ok(c) => {
                    changed |= c;
                    reached = Some(Ok(()));
                }
                Err(e) => {
                    reached.get_or_insert(Err(e));
                }
            }
        }
        match reached {
            Some(Ok(())) => Ok(changed),
            Some(Err(e)) => Err(e),
            None => Err(NodeError::Network("none of their nodes answered".into())),
        }
    }

    /// The person trusted here that `target` names.
    async fn trusted_person(&self, target: &str) -> Result<Person, NodeError> {
        let target = target.to_owned();
        self.with_vaults(move |s| {
            person_named(s, &target)?.ok_or_else(|| {
                NodeError::Invalid(format!(
                    "{} is not trusted here; `polykey identities trust` them first",
                    target.trim()
                ))
            })
        })
        .await
    }

    /// Tell the serving loop who takes part in which vaults.
    pub(crate) async fn refresh_shares(&self) -> Result<(), NodeError> {
        let (shares, pulling, people, removed) = self
            .with_vaults(|s| {
                let (shares, pulling, people) = shares_in(s)?;
                Ok((shares, pulling, people, removed_people_nodes(s)?))
            })
            .await?;
        // Those connected already count as online at once.
        let connected = match self.client() {
            Ok(client) => client.connected().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        {
            let mut state = self.inner.peer_state();
            state.online_people = connected
                .into_iter()
                .filter(|n| shares.contains_key(n))
                .collect();
            state.shares = shares;
            state.share_people = people.into_values().collect();
            state.removed_people = removed;
            state.pulls_from_here = pulling;
        }
        // People sharing a vault are known, not strangers: the network's
        // limits for strangers (request rates, connections) do not cut
        // their pulls short. Their requests still have their own slots.
        self.refresh_trust().await;
        Ok(())
    }

    /// [`Request::Shared`] for `vault` (or every one), with this
    /// gestalt's removals of its devices: a person sharing with it stops
    /// serving them.
    async fn shared_request(&self, vault: Option<String>) -> Result<Request, NodeError> {
        self.shared_request_telling(vault, None).await
    }

    /// [`Self::shared_request`], telling the removal of `removed` too
    /// whatever the owner last said it serves: that word may be older than
    /// its following of this gestalt (a device paired since).
    async fn shared_request_telling(
        &self,
        vault: Option<String>,
        removed: Option<NodeId>,
    ) -> Result<Request, NodeError> {
        let named = vault.clone();
        let revocations = self
            .with_vaults(move |s| {
                // Only removals of this gestalt's devices the owner still
                // serves: none once it knows (claims name the removing
                // device's vault versions; they go no further than needed).
                let Some(id) = named.and_then(|v| v.parse::<VaultId>().ok()) else {
                    return Ok(Vec::new());
                };
                let mut served: BTreeSet<NodeId> = access_of(s, &id)?
                    .remote
                    .map(|r| r.served.into_iter().collect())
                    .unwrap_or_default();
                served.extend(removed);
                let me = s.keys.node_id();
                let graph = GestaltGraph::new(&s.db);
                let mut out = Vec::new();
                let mut bytes = 0;
                // The removal to tell first: the bounds below may cut the rest.
                let mut in_force = graph.revocations_in_force(me)?;
                in_force.sort_by_key(|r| Some(r.node) != removed);
                for r in in_force {
                    if !served.contains(&r.node) {
                        continue;
                    }
                    if let Some((_, claim)) = graph.revocation_claim(me, &r)? {
                        bytes += claim.to_json().len();
                        if bytes > MAX_REVOCATION_BYTES || out.len() == MAX_SHARE_NODES {
                            break;
                        }
                        out.push(claim);
                    }
                }
                Ok(out)
            })
            .await?;
        Ok(Request::Shared { vault, revocations })
    }

    /// Tell the owners of the vaults shared with this gestalt of `removed`
    /// (a device removed here) at once, without waiting for a pull. Not
    /// only those that said they serve it: an owner following this gestalt
    /// may serve a device it has not told this one of yet. A share marked
    /// ended hears only of a device its owner served (the owner no longer
    /// reads this gestalt's chains). One request per owner node, naming
    /// one vault it shares (the owner takes the removal for every share),
    /// at most [`MAX_SHARE_NODES`] nodes.
    pub(crate) async fn tell_owners_of_removal(&self, removed: NodeId) -> Result<(), NodeError> {
        let told: BTreeMap<NodeId, VaultId> = self
            .with_vaults(move |s| {
                let mut told = BTreeMap::new();
                for (id, access) in access_by_vault(s)? {
                    let Some(remote) = access.remote else {
                        continue;
                    };
                    if remote.ended && !remote.served.contains(&removed) {
                        continue;
                    }
                    for node in remote.nodes {
                        if told.len() < MAX_SHARE_NODES {
                            told.entry(node).or_insert(id);
                        }
                    }
                }
                Ok(told)
            })
            .await?;
        let client = self.client()?;
        for (node, id) in told {
            let request = self
                .shared_request_telling(Some(id.to_string()), Some(removed))
                .await?;
            let client = client.clone();
            tokio::spawn(async move {
                let _ = client.request(node, request).await;
            });
        }
        Ok(())
    }

    /// Answer [`Request::Shared`] from `peer`, of another gestalt, after
    /// taking the devices its gestalt removed from what is shared with it.
    pub(super) async fn answer_shared(
        &self,
        peer: NodeId,
        vault: Option<String>,
        revocations: Vec<SignedClaim>,
    ) -> Result<Response, NodeError> {
        let dropped = self
            .with_vaults(move |s| drop_removed_of_person(s, &peer, &revocations))
            .await?;
        if dropped {
            self.refresh_people().await?;
            self.refresh_shares().await?;
            self.notify();
        }
        self.with_vaults(move |s| {
            let me = s.keys.node_id();
            // This node first: the one that signs is always among them.
            let others = gestalt(s)?.into_iter().filter(|n| *n != me);
            let nodes: Vec<NodeId> = std::iter::once(me)
                .chain(others)
                .take(MAX_SHARE_NODES)
                .collect();
            let removed: Vec<Removed> = GestaltGraph::new(&s.db)
                .revocations_in_force(me)?
                .into_iter()
                .take(MAX_SHARE_REMOVED)
                .map(|r| Removed {
                    node: r.node,
                    at: r.at,
                })
                .collect();
            let vaults = Vaults::new(&s.db);
            let at = now_ms();
            let listed = |id: &VaultId, write: bool| -> Result<SharedVault, NodeError> {
                let vault = vaults.open(&id.to_string())?;
                let access = access_of(s, id)?;
                let served = access
                    .grants
                    .iter()
                    .find(|g| g.nodes.contains(&peer))
                    .map(|g| g.nodes.clone())
                    .unwrap_or_default();
                // Whose commits this owner takes: a reader takes them too
                // (they come in the history). A writer answering names none.
                let writers = if access.remote.is_none() {
                    writers_of(s, id)?
                } else {
                    Vec::new()
                };
                let mut shared = SharedVault {
                    id: id.to_string(),
                    name: vault.name().to_owned(),
                    head: vault.head(&s.db)?,
                    write,
                    nodes: nodes.clone(),
                    removed: removed.clone(),
                    served,
                    writers,
                    at,
                    signature: Vec::new(),
                };
                sign_shared(&mut shared, &peer, &s.keys);
                Ok(shared)
            };
            let not_shared = || NodeError::PeerRefused(NOT_SHARED.into());
            let out = match vault {
                Some(text) => {
                    let id: VaultId = text.parse().map_err(|_| not_shared())?;
                    let write = role_of(s, &id, &peer)?.ok_or_else(not_shared)?;
                    vec![listed(&id, write)?]
                }
                None => {
                    let scan = people_in(s)?
                        .iter()
                        .any(|p| p.scan && p.nodes.contains(&peer));
                    if !scan {
                        return Err(NodeError::PeerRefused(
                            "you may not list what this node shares".into(),
                        ));
                    }
                    let mut out = Vec::new();
                    for (id, access) in all_access(s)? {
                        if out.len() == MAX_SHARED_VAULTS {
                            break;
                        }
                        if let Some(g) = access.grants.iter().find(|g| g.nodes.contains(&peer)) {
                            out.push(listed(&id, g.write)?);
                        }
                    }
                    out
                }
            };
            Ok(Response::Shared { vaults: out })
        })
        .await
    }

    /// Follow the gestalt of the person trusted here as `name`, a NodeId:
    /// one person, all their nodes (DESIGN: a gestalt shares its
    /// permissions). That node, the one trusted, speaks for its gestalt (no
    /// other of theirs: a stolen device they removed would leave its
    /// removal out): it is asked where their chains stand now against
    /// where they stood last time (one round trip, nothing to check when
    /// nothing moved); when they moved, for every chain, each checked from
    /// its first claim, and the person's nodes become the gestalt those
    /// chains show from it ([`gestalt_of_chains`]): that node first, then
    /// those known before, never a device their gestalt removed as known
    /// here, at most [`crate::people::MAX_NODES_PER_PERSON`]. An answer that
    /// fills the protocol's bounds may be cut short and changes nothing;
    /// so does a node their gestalt removed. Their grants follow, and
    /// their nodes are told, so the one added is served. A person trusted
    /// by an identity follows the account's claims instead. Returns
    /// whether their nodes changed.
    pub(crate) async fn follow_person(
        &self,
        client: &Client,
        name: &str,
    ) -> Result<bool, NodeError> {
        let Ok(root) = name.parse::<NodeId>() else {
            return Ok(false);
        };
        let name = name.to_owned();
        let found = {
            let name = name.clone();
            self.with_vaults(move |s| {
                let Some(person) = crate::people::person_trusted_as(s, &name)? else {
                    return Ok(None);
                };
                if removed_of(s, &name)?.contains(&root) {
                    return Ok(None);
                }
                let known = s.db.read()?.get(&PERSON_CHAINS, &chains_key(s, &name))?;
                Ok(Some((person, known.unwrap_or_default())))
            })
            .await?
        };
        let Some((person, known)) = found else {
            return Ok(false);
        };
        let ask = |known: Vec<ChainPosition>| async move {
            match client
                .request(root, Request::Chains { known })
                .await
                .map_err(net_error)?
            {
                Response::Chains(updates)
                    if updates.len() < MAX_CHAINS
                        && updates.iter().map(|u| u.claims.len()).sum::<usize>()
                            < MAX_CHAIN_CLAIMS =>
                {
                    Ok(updates)
                }
                Response::Chains(_) => Err(NodeError::BadPeerData(
                    "their gestalt's chains fill the bounds; not followed".into(),
                )),
                other => Err(refused(other)),
            }
        };
        if !known.is_empty() && ask(known).await?.is_empty() {
            return Ok(false);
        }
        let updates = ask(Vec::new()).await?;
        let now = super::now_secs();
        // Signatures are checked on the blocking pool, outside the lock.
        let (members, positions, seen) = tokio::task::spawn_blocking(move || {
            let chains: Vec<_> = updates
                .into_iter()
                .filter_map(|u| {
                    let claims = verify_continuation(&u.node, None, &u.claims, now).ok()?;
                    Some((u.node, claims))
                })
                .collect();
            let positions: Vec<ChainPosition> = chains
                .iter()
                .filter_map(|(node, claims)| {
                    Some(ChainPosition {
                        node: *node,
                        seq: claims.last()?.0.seq,
                    })
                })
                .collect();
            let members = gestalt_of_chains(root, &chains);
            let seen = removals_seen(root, &members, &chains);
            (members, positions, seen)
        })
        .await
        .map_err(|e| NodeError::Internal(e.to_string()))?;
        let nodes = {
            let name = name.clone();
            self.with_vaults(move |s| {
                // Untrusted (or trusted afresh) while their chains were
                // asked for: nothing of theirs is recorded.
                let still = crate::people::person_trusted_as(s, &name)?;
                if let Some(now) = still.filter(|p| p.trusted_at == person.trusted_at) {
                    record_removals(s, &name, &now.nodes, &seen)?;
                }
                let removed = removed_of(s, &name)?;
                Ok(followed_nodes(root, &person.nodes, &members, &removed))
            })
            .await?
        };
        let refreshed = self.replace_nodes(&name, nodes).await?;
        self.with_vaults(move |s| {
            let mut txn = s.db.write()?;
            txn.put(&PERSON_CHAINS, &chains_key(s, &name), &positions)?;
            txn.commit()?;
            Ok(())
        })
        .await?;
        if refreshed.added.is_empty() && refreshed.dropped.is_empty() {
            return Ok(false);
        }
        // They ask `Shared` again and hear whom this gestalt serves now.
        self.tell_changed(&refreshed.person.nodes);
        Ok(true)
    }

    /// Pull every vault `peer` (of another gestalt) takes part in: those it
    /// owns and shares here, and those it may write of this gestalt's.
    pub(super) async fn share_sync_with(
        &self,
        client: &Client,
        peer: NodeId,
    ) -> Result<bool, NodeError> {
        let vaults: Vec<VaultId> = self
            .with_vaults(move |s| {
                let me = s.keys.node_id();
                let people = people_in(s)?;
                // The owner's nodes as trusted here too: a removed device
                // of theirs that named itself their only node is passed by.
                let trusted_owner = |a: &Access| {
                    a.remote.as_ref().is_some_and(|r| {
                        !r.ended
                            && people
                                .iter()
                                .any(|p| p.name == r.owner && p.nodes.contains(&peer))
                    })
                };
                Ok(all_access(s)?
                    .into_iter()
                    .filter(|(_, a)| pulls_from(a, &peer, &me) || trusted_owner(a))
                    .map(|(id, _)| id)
                    .collect())
            })
            .await?;
        let mut changed = false;
        let mut first_error = None;
        for id in vaults {
            match self.share_pull(client, peer, id, false).await {
                Ok(c) => changed |= c,
                // A share ended: marked, and no failure of the sync.
                Err(NodeError::PeerRefused(reason)) if reason == NOT_SHARED => changed = true,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // A device they paired or removed since: served or not from now on.
        // (A node that does not answer for its chains changes nothing.)
        // (Only when `peer` is the node a person was trusted by.)
        changed |= self
            .follow_person(client, &peer.to_string())
            .await
            .unwrap_or(false);
        if changed {
            self.notify();
        }
        first_error.map_or(Ok(changed), Err)
    }

    /// Pull shared vault `id` from `peer`: its owner, or a writer of this
    /// gestalt's vault. An owner's "not shared" ends the share here.
    async fn share_pull(
        &self,
        client: &Client,
        peer: NodeId,
        id: VaultId,
        explicit: bool,
    ) -> Result<bool, NodeError> {
        tokio::time::timeout(
            super::pull::SYNC_DEADLINE,
            self.share_pull_now(client, peer, id, explicit),
        )
        .await
        .map_err(|_| NodeError::Network("their device took too long to answer".into()))?
    }

    /// Whether a node of vault `id`'s owner other than `peer` (as the
    /// owner named them, or as trusted here; at most four, a few seconds
    /// each) still answers `request` with the vault.
    async fn another_owner_node_shares(
        &self,
        client: &Client,
        peer: NodeId,
        id: VaultId,
        request: Request,
    ) -> Result<bool, NodeError> {
        let others: Vec<NodeId> = self
            .with_vaults(move |s| {
                let Some(remote) = access_of(s, &id)?.remote else {
                    return Ok(Vec::new());
                };
                let mut nodes: BTreeSet<NodeId> = remote.nodes.iter().copied().collect();
                nodes.extend(owner_nodes_trusted(s, &remote.owner)?);
                nodes.remove(&peer);
                // Never a node the owner or this device knows removed.
                let removed_here = removed_of(s, &remote.owner)?;
                nodes.retain(|n| {
                    !removed_here.contains(n) && !remote.removed.iter().any(|r| r.node == *n)
                });
                Ok(nodes.into_iter().take(4).collect())
            })
            .await?;
        let me = self.status().node_id.ok_or(NodeError::Locked)?;
        for other in others {
            let asked = client.request(other, request.clone());
            let answer = tokio::time::timeout(std::time::Duration::from_secs(3), asked).await;
            if let Ok(Ok(Response::Shared { vaults })) = answer {
                // Only its signed word counts.
                let signed = |v: &SharedVault| verifies(&other, &shared_part(v, &me), &v.signature);
                if vaults.len() == 1 && vaults[0].id == id.to_string() && signed(&vaults[0]) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// (`explicit`: the user asked to take it from `peer`, see
    /// [`may_replace`].)
    async fn share_pull_now(
        &self,
        client: &Client,
        peer: NodeId,
        id: VaultId,
        explicit: bool,
    ) -> Result<bool, NodeError> {
        let request = self.shared_request(Some(id.to_string())).await?;
        let told = removals_told(&request);
        let shared = match client
            .request(peer, request.clone())
            .await
            .map_err(net_error)?
        {
            Response::Shared { mut vaults } if vaults.len() == 1 => vaults.remove(0),
            Response::Refused(reason) if reason == NOT_SHARED => {
                // One node's word is not the owner's: a device they
                // removed (unknown here yet) would end the share. Another
                // of their nodes still sharing it keeps it.
                if self
                    .another_owner_node_shares(client, peer, id, request)
                    .await?
                {
                    // Asked again soon (a failed pull is retried): most
                    // often the owner's other device has not heard yet.
                    return Err(NodeError::Network(
                        "the owner's devices disagree whether it is still shared".into(),
                    ));
                }
                self.with_vaults(move |s| {
                    let mut access = access_of(s, &id)?;
                    let me = s.keys.node_id();
                    match access.remote.as_mut() {
                        // Only a node the owner served hears the end:
                        // the owner never knew the others.
                        Some(remote)
                            if remote.nodes.contains(&peer)
                                && remote.served.contains(&me)
                                && !remote.ended =>
                        {
                            remote.ended = true;
                            access.at = next_at(access.at);
                            put_access(s, &id, access)?;
                            Ok(())
                        }
                        _ => Ok(()),
                    }
                })
                .await?;
                self.refresh_shares().await?;
                self.notify();
                return Err(NodeError::PeerRefused(NOT_SHARED.into()));
            }
            other => return Err(refused(other)),
        };
        if check_shared(&shared)? != id {
            return Err(NodeError::BadPeerData("another vault than asked".into()));
        }
        let want = shared.head.clone();
        let (remote, recent, passed_by) = self
            .with_vaults(move |s| {
                let mut access = access_of(s, &id)?;
                // The owner names its own nodes (the authors of its vault,
                // which it controls anyway). A writer's answer changes
                // nothing here: its nodes are those trusted (see
                // `update_grant_nodes`), never those it names.
                if let Some(remote) = access.remote.as_mut() {
                    // An ended share resumes only when the user takes it
                    // again: a pull listed before it ended (a device's
                    // removal ends what it took) takes nothing.
                    if remote.ended && !explicit {
                        return Ok((None, Vec::new(), true));
                    }
                    let now = remote_from(s, remote.owner.clone(), peer, &shared)?;
                    let unnamed = !remote.nodes.contains(&peer)
                        || remote.removed.iter().any(|r| r.node == peer);
                    if unnamed && !remote.ended && remote.statement.is_some() {
                        let trusted = owner_nodes_trusted(s, &remote.owner)?;
                        let removed_here = removed_of(s, &remote.owner)?;
                        if !may_replace(remote, &now, peer, &trusted, &removed_here, explicit) {
                            return Ok((None, Vec::new(), true));
                        }
                    }
                    // Taken again when resumed, or from an owner's node
                    // not known before (other devices check the owner's
                    // signatures from the nodes they know).
                    let retake = remote.ended || unnamed || remote.statement.is_none();
                    let newer = remote.statement.as_ref().is_none_or(|old| {
                        shared.at > old.at || shared.removed.iter().any(|r| r.node == old.signer)
                    });
                    if retake || (owner_says(remote) != owner_says(&now) && newer) {
                        let taken = if retake { None } else { remote.taken.clone() };
                        *remote = Remote { taken, ..now };
                        access.at = next_at(access.at);
                        put_access(s, &id, access.clone())?;
                    }
                }
                let vault = Vaults::new(&s.db).open(&id.to_string())?;
                let recent: Vec<String> = vault
                    .log(&s.db, Some(MAX_HAVES))?
                    .into_iter()
                    .map(|c| c.id)
                    .collect();
                Ok((access.remote, recent, false))
            })
            .await?;
        // The owner serves a device removed here that the request did not
        // tell of (it said otherwise before): told now, at once.
        let served: Vec<NodeId> = remote.iter().flat_map(|r| r.served.clone()).collect();
        let told_before = told.clone();
        let untold = self
            .with_vaults_read(move |s| {
                let me = s.keys.node_id();
                Ok(GestaltGraph::new(&s.db)
                    .revocations_in_force(me)?
                    .into_iter()
                    .any(|r| served.contains(&r.node) && !told_before.contains(&r.node)))
            })
            .await?;
        if untold {
            // Only when it tells more (the bounds may cut what it carries).
            let request = self.shared_request(Some(id.to_string())).await?;
            if !removals_told(&request).is_subset(&told) {
                let client = client.clone();
                tokio::spawn(async move {
                    let _ = client.request(peer, request).await;
                });
            }
        }
        if passed_by {
            // Not the owner's as they last named it: nothing taken from it.
            return if explicit {
                Err(NodeError::PeerRefused(
                    "that device is not one of the owner's as they last named them".into(),
                ))
            } else {
                Ok(false)
            };
        }
        let me = self.status().node_id.ok_or(NodeError::Locked)?;
        let lower = me.as_bytes() < peer.as_bytes();
        // A copy that may not write never waits for the owner to merge: it
        // has nothing the owner takes.
        let merges = match &remote {
            Some(r) => !r.write || lower,
            None => lower,
        };
        if recent.first() == Some(&want) {
            // Level already: nothing to take, nobody to ask.
            return Ok(false);
        }
        let (moved, ask_peer) = self
            .catch_up(
                client,
                peer,
                id,
                &want,
                super::pull::Haves::Given(recent),
                merges,
            )
            .await?;
        // Only a peer that takes this node's changes is asked to pull: the
        // owner from a copy that may write, a writer from the owner.
        let peer_pulls = remote.as_ref().is_none_or(|r| r.write);
        if ask_peer && peer_pulls {
            self.send_changed(client, peer);
        }
        Ok(moved)
    }
}

/// Whether `now`, the statement of `peer`, one of the owner's nodes the
/// current statement does not name (or names removed), may replace it.
/// Never a node removed as this device knows (`removed_here`). A node the
/// current statement names removed only when it names the current signer
/// removed in turn, is trusted here, and the current signer is not (the
/// owner's stolen device that named itself their only node, then removed
/// by them): of two trusted nodes each naming the other removed, the
/// current stays. Otherwise when the user asked for it (`explicit`) or it
/// names the current signer removed.
fn may_replace(
    current: &Remote,
    now: &Remote,
    peer: NodeId,
    trusted: &BTreeSet<NodeId>,
    removed_here: &BTreeSet<NodeId>,
    explicit: bool,
) -> bool {
    if removed_here.contains(&peer) {
        return false;
    }
    let Some(signer) = current.statement.as_ref().map(|st| st.signer) else {
        return true;
    };
    let names_signer_removed = now.removed.iter().any(|r| r.node == signer);
    if current.removed.iter().any(|r| r.node == peer) {
        return names_signer_removed && trusted.contains(&peer) && !trusted.contains(&signer);
    }
    explicit || names_signer_removed
}

/// The devices whose removal a [`Request::Shared`] tells.
fn removals_told(request: &Request) -> BTreeSet<NodeId> {
    match request {
        Request::Shared { revocations, .. } => revocations
            .iter()
            .filter_map(|c| Some(c.decode().ok()?.sub))
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// The remote record for a vault `peer` shares as `shared`: what the
/// owner's node said and signed, kept as it signed it. Not taken yet (the
/// recording device signs that). Refused unsigned.
fn remote_from(
    s: &Session,
    owner: String,
    peer: NodeId,
    shared: &SharedVault,
) -> Result<Remote, NodeError> {
    let me = s.keys.node_id();
    if !verifies(&peer, &shared_part(shared, &me), &shared.signature)
        || !shared.nodes.contains(&peer)
    {
        return Err(NodeError::BadPeerData(
            "a shared vault its owner's node did not sign".into(),
        ));
    }
    if shared.at != super::clamp_peer_time(shared.at) {
        return Err(NodeError::BadPeerData(
            "a shared vault dated in the future".into(),
        ));
    }
    Ok(Remote {
        owner,
        nodes: shared.nodes.clone(),
        removed: shared.removed.clone(),
        write: shared.write,
        ended: false,
        served: shared.served.clone(),
        writers: shared.writers.clone(),
        taken: None,
        statement: Some(Statement {
            signer: peer,
            at: shared.at,
            to: me,
            signature: shared.signature.clone(),
        }),
    })
}

/// The same in their transport form, for the desktop app.
impl Node {
    /// How every vault is shared (only those that are).
    pub async fn vault_sharing_dto(&self) -> Result<Vec<crate::api::VaultSharingDto>, NodeError> {
        self.with_vaults(|s| {
            let names: HashMap<VaultId, String> = Vaults::new(&s.db)
                .list()?
                .into_iter()
                .map(|v| (v.id, v.name))
                .collect();
            let mut out = Vec::new();
            for (id, access) in all_access(s)? {
                if access.grants.is_empty() && access.remote.is_none() {
                    continue;
                }
                out.push(crate::api::VaultSharingDto {
                    id: id.to_string(),
                    name: names.get(&id).cloned().unwrap_or_default(),
                    owner: access.remote.as_ref().map(|r| r.owner.clone()),
                    write: access.remote.as_ref().is_none_or(|r| r.write),
                    ended: access.remote.as_ref().is_some_and(|r| r.ended),
                    grants: access
                        .grants
                        .iter()
                        .map(|g| crate::api::GrantDto {
                            person: g.person.clone(),
                            write: g.write,
                        })
                        .collect(),
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }

    /// Everyone trusted here, with what is shared each way.
    pub async fn people_dto(&self) -> Result<Vec<crate::api::PersonDto>, NodeError> {
        let sharing = self.vault_sharing_dto().await?;
        let people = self.people().await?;
        Ok(people
            .into_iter()
            .map(|p| {
                let shared =
                    |v: &crate::api::VaultSharingDto, write: bool| crate::api::SharedVaultDto {
                        id: v.id.clone(),
                        name: v.name.clone(),
                        write,
                        ended: v.ended,
                    };
                crate::api::PersonDto {
                    shared_with_them: sharing
                        .iter()
                        .filter_map(|v| {
                            let grant = v.grants.iter().find(|g| g.person == p.name)?;
                            Some(shared(v, grant.write))
                        })
                        .collect(),
                    shared_with_me: sharing
                        .iter()
                        .filter(|v| v.owner.as_deref() == Some(p.name.as_str()))
                        .map(|v| shared(v, v.write))
                        .collect(),
                    nodes: p.nodes.iter().map(ToString::to_string).collect(),
                    name: p.name,
                    notify: p.notify,
                    scan: p.scan,
                    trusted_at: p.trusted_at,
                }
            })
            .collect())
    }

    /// The notifications, newest first (marked read), with share offers
    /// and whether each was taken.
    pub async fn notifications_dto(&self) -> Result<Vec<crate::api::NotificationDto>, NodeError> {
        let all = self.read_notifications(false).await?;
        let (here, people) = self
            .with_vaults(|s| {
                let here: BTreeSet<String> = Vaults::new(&s.db)
                    .list()?
                    .into_iter()
                    .map(|v| v.id.to_string())
                    .collect();
                Ok((here, people_in(s)?))
            })
            .await?;
        Ok(all
            .into_iter()
            .map(|n| crate::api::NotificationDto {
                from: n.from.to_string(),
                person: people
                    .iter()
                    .find(|p| p.nodes.contains(&n.from))
                    .map(|p| p.name.clone()),
                sent_at: n.sent_at,
                text: n.text,
                read: n.read,
                share: n.share.map(|o| crate::api::ShareOfferDto {
                    accepted: here.contains(&o.vault),
                    vault: o.vault,
                    name: o.name,
                    write: o.write,
                }),
            })
            .collect())
    }

    /// This node's contact code, as text and QR code.
    pub async fn contact_dto(&self) -> Result<crate::api::ContactDto, NodeError> {
        let code = self.contact_code().await?;
        Ok(crate::api::ContactDto {
            qr_svg: crate::api::qr_svg(&code),
            code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::MAX_NODES_PER_PERSON;

    fn node(seed: u8) -> NodeId {
        polykey_keys::RootKeypair::from_seed(&[seed; 32]).node_id()
    }

    #[test]
    fn many_puppets_never_push_out_the_trusted_node_or_the_devices_known() {
        let (root, laptop, phone) = (node(200), node(201), node(202));
        // 100 puppets, most with NodeIds sorting before the real devices.
        let puppets: Vec<NodeId> = (0..100).map(node).collect();
        let mut members: BTreeSet<NodeId> = puppets.iter().copied().collect();
        members.extend([root, laptop, phone]);
        let removed = BTreeSet::from([phone]);
        let nodes = followed_nodes(root, &[laptop, phone], &members, &removed);
        assert_eq!(nodes.len(), MAX_NODES_PER_PERSON);
        assert_eq!(
            &nodes[..2],
            &[root, laptop],
            "the trusted node, then the known"
        );
        assert!(!nodes.contains(&phone), "never a device removed");
        // A device known before but no longer in their gestalt goes.
        let nodes = followed_nodes(root, &[laptop], &BTreeSet::from([root]), &BTreeSet::new());
        assert_eq!(nodes, [root]);
    }
}

//! Answering other nodes. A stranger may ping and, while an invitation is
//! open, pair; a person trusted with `notify` may send notifications; a
//! person sharing a vault with this gestalt (either way) may ask for the
//! vaults shared with them and their objects (see `share`); everything
//! else (chains, vaults, deletions, notifications, change notices) is for
//! the devices of this gestalt only, and anyone else's request is refused
//! by the serving loop itself, before it costs a store access or a slot
//! that devices need.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use polykey_gestalts::{MemberChains, Sigchain};
use polykey_keys::NodeId;
use polykey_network::protocol::{
    page_budget, MAX_CHAINS, MAX_CHAIN_CLAIMS, MAX_DELETIONS_PAGE, MAX_HAVES, MAX_PAGE_OBJECTS,
    PAGE_BYTES,
};
use polykey_network::{
    ChainUpdate, Client, Event, Request, Response, VaultSummary, WireDeletion, WireObject, WirePart,
};
use polykey_vaults::{kind_tag, Page, Part, SendPlan, Vault, VaultId, Vaults};
use tokio::sync::{mpsc, Semaphore};

use super::{gestalt, require_member, upgrade, Node};
use crate::error::NodeError;
use crate::node::{Inner, Session};

// The largest page this node sends never holds more objects than a
// receiver reads.
const _: () = assert!(PAGE_BYTES / polykey_vaults::PAGE_BYTES_PER_OBJECT <= MAX_PAGE_OBJECTS);

/// Most requests of devices of the gestalt served at once.
const MAX_INBOUND: usize = 16;
/// Most requests of one device served at once: a device flooding this one
/// (a thief not yet removed) leaves the other half to the others. An honest
/// device asks for one page at a time.
const MAX_INBOUND_PER_DEVICE: usize = MAX_INBOUND / 2;
/// Most requests of other nodes (pings, pairing) served at once: they never
/// take a device's slot.
const MAX_STRANGER_INBOUND: usize = 4;

/// Most requests of people sharing vaults with this gestalt served at once:
/// they never take a device's slot.
const MAX_PEOPLE_INBOUND: usize = 8;
/// Most requests of one node of such a person served at once (an honest
/// one asks one page at a time).
const MAX_PERSON_INBOUND: usize = 4;

/// The refusal every stranger hears for what only devices may ask.
pub(super) const NOT_YOURS: &str = "this device is not one of yours";

/// Answer requests and follow connections.
pub(super) async fn serve(weak: Weak<Inner>, client: Client, mut events: mpsc::Receiver<Event>) {
    let members_slots = Arc::new(Semaphore::new(MAX_INBOUND));
    let stranger_slots = Arc::new(Semaphore::new(MAX_STRANGER_INBOUND));
    let people_slots = Arc::new(Semaphore::new(MAX_PEOPLE_INBOUND));
    let mut device_slots: HashMap<NodeId, Arc<Semaphore>> = HashMap::new();
    while let Some(event) = events.recv().await {
        let Some(node) = upgrade(&weak) else { return };
        match event {
            Event::InboundRequest {
                peer,
                request,
                responder,
            } => {
                let member = node.is_member(&peer);
                // People trusted with `notify` may send notifications, and
                // nothing else a device may ask.
                let for_strangers = matches!(request, Request::Ping | Request::Pairing(_))
                    || (matches!(request, Request::Notify(_)) && node.may_notify(&peer));
                // People sharing a vault with this gestalt (either way) may
                // ask for shared vaults and their objects, and say they
                // changed: what they may see is checked per vault.
                // A person trusted with `scan` may ask what is shared with
                // them.
                let person = !member
                    && ((node.shares_with(&peer)
                        && matches!(
                            request,
                            Request::Shared { .. } | Request::Fetch { .. } | Request::Changed
                        ))
                        || ((node.may_scan(&peer) || node.removed_person(&peer))
                            && matches!(request, Request::Shared { .. }))
                        // Their devices: a person sharing a vault with this
                        // gestalt follows it (`follow_person`).
                        || (node.shares_with(&peer)
                            && matches!(request, Request::Chains { .. })));
                let client = client.clone();
                if !member && !for_strangers && !person {
                    // Answered at once, without the store. Asking for a
                    // shared vault, the answer is the one a person hears
                    // for a vault not shared with them (so a share ended
                    // reads as ended), and names nothing.
                    let refusal = if matches!(request, Request::Shared { .. }) {
                        super::share::NOT_SHARED
                    } else {
                        NOT_YOURS
                    };
                    tokio::spawn(async move {
                        let refusal = Response::Refused(refusal.into());
                        let _ = client.respond(responder, refusal).await;
                    });
                    continue;
                }
                // A change notice only wakes the pull from that device: it
                // takes no slot, so a flood of other requests cannot lose it
                // (the device that changed would otherwise wait for the
                // next resync).
                // (A person's notice neither: answering it costs no store
                // access, and asks coalesce into one pull.)
                if (member || person) && matches!(request, Request::Changed) {
                    tokio::spawn(async move {
                        let response = node.answer(peer, request).await;
                        let _ = client.respond(responder, response).await;
                    });
                    continue;
                }
                let permit = if member || person {
                    if !device_slots.contains_key(&peer) {
                        // Devices and people sharing, so few; one no
                        // longer either is dropped.
                        device_slots.retain(|node_id, _| {
                            node.is_member(node_id) || node.shares_with(node_id)
                        });
                    }
                    let (per_node, pool) = if member {
                        (MAX_INBOUND_PER_DEVICE, &members_slots)
                    } else {
                        (MAX_PERSON_INBOUND, &people_slots)
                    };
                    let own = device_slots
                        .entry(peer)
                        .or_insert_with(|| Arc::new(Semaphore::new(per_node)));
                    Arc::clone(own).try_acquire_owned().ok().and_then(|own| {
                        let shared = Arc::clone(pool).try_acquire_owned().ok()?;
                        Some((Some(own), shared))
                    })
                } else {
                    Arc::clone(&stranger_slots)
                        .try_acquire_owned()
                        .ok()
                        .map(|shared| (None, shared))
                };
                tokio::spawn(async move {
                    let response = match permit {
                        Some(_) => node.answer(peer, request).await,
                        None => Response::Refused("busy; try again".into()),
                    };
                    let _ = client.respond(responder, response).await;
                });
            }
            Event::Connected { peer } => {
                if node.is_member(&peer) {
                    node.inner.peer_state().online.insert(peer);
                    node.notify();
                } else if node.shares_with(&peer) {
                    node.inner.peer_state().online_people.insert(peer);
                }
                // Devices, and devices another device removed (for chains).
                node.schedule_sync(peer);
            }
            Event::Disconnected { peer } => {
                let was_person = node.inner.peer_state().online_people.remove(&peer);
                let was_device = node.inner.peer_state().online.remove(&peer);
                if was_device {
                    node.notify();
                }
                // Dialled again soon, once (then every REDIAL_EVERY).
                if was_device || was_person {
                    let weak = weak.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(super::REDIAL_SOON).await;
                        if let Some(node) = upgrade(&weak) {
                            node.redial_only(Some(peer)).await;
                        }
                    });
                }
            }
            Event::PeerDiscovered { peer, address } => {
                {
                    let mut state = node.inner.peer_state();
                    if state.discovered.len() < super::MAX_DISCOVERED
                        || state.discovered.contains_key(&peer)
                    {
                        state.discovered.insert(peer, address.clone());
                    }
                }
                if node.is_member(&peer) && !node.inner.peer_state().online.contains(&peer) {
                    let client = client.clone();
                    tokio::spawn(async move {
                        let _ = client.dial(peer, address).await;
                    });
                }
            }
            Event::Identified { peer, addresses } => {
                // Strangers' addresses are not kept (`remember_addresses`
                // checks the rest: people trusted or sharing).
                if !node.is_member(&peer) && !node.shares_with(&peer) && !node.known_person(&peer) {
                    continue;
                }
                let addresses = addresses
                    .iter()
                    .filter(|a| {
                        let text = a.to_string();
                        !text.contains("/0.0.0.0/") && !text.contains("/::/")
                    })
                    .map(ToString::to_string)
                    .collect();
                let node = node.clone();
                tokio::spawn(async move { node.remember_addresses(peer, addresses, false).await });
            }
        }
    }
}

impl Node {
    /// Answer one request from `peer`.
    async fn answer(&self, peer: NodeId, request: Request) -> Response {
        let result = match request {
            Request::Ping => Ok(Response::Ok),
            Request::Pairing(message) => self.answer_pairing(peer, message).await,
            Request::Sigchain => {
                self.with_vaults_read(move |s| {
                    require_member(s, &peer)?;
                    Ok(Response::Sigchain(
                        Sigchain::new(&s.db, s.keys.node_id()).claims()?,
                    ))
                })
                .await
            }
            Request::Chains { known } => {
                let person = self.shares_with(&peer);
                self.answer_chains(peer, known, person).await
            }
            Request::Vaults => self.answer_vaults(peer).await,
            Request::Deletions { after } => self.answer_deletions(peer, after).await,
            Request::Fetch {
                vault,
                want,
                haves,
                skip,
                from,
                page,
            } => {
                self.answer_fetch(peer, vault, want, haves, (skip, from), page)
                    .await
            }
            Request::Notify(signed) => self.receive_notification(peer, signed).await,
            Request::Changed => {
                // Only devices and people sharing a vault with this one get
                // here (the serving loop refused anyone else), and
                // scheduling checks again.
                self.schedule_sync(peer);
                Ok(Response::Ok)
            }
            Request::Shared { vault, revocations } => {
                self.answer_shared(peer, vault, revocations).await
            }
        };
        result.unwrap_or_else(|e| match e {
            NodeError::PeerRefused(reason) => Response::Refused(reason),
            other => Response::Refused(other.to_string()),
        })
    }

    /// The claims of this gestalt's chains after the positions the peer
    /// knows: this node's own chain and its copies of the others'. Asked
    /// by a device, or by a node of a person sharing a vault with this
    /// gestalt either way (`person`), who serves this gestalt's devices
    /// and so must know which they are. What that tells them: the
    /// devices, their links and removals with their times, the identities
    /// they claimed, and, on each removal, the vault ids and versions the
    /// remover held (signed with it, so not left out).
    async fn answer_chains(
        &self,
        peer: NodeId,
        known: Vec<polykey_network::ChainPosition>,
        person: bool,
    ) -> Result<Response, NodeError> {
        if known.len() > MAX_CHAINS {
            return Err(NodeError::PeerRefused("too many chains named".into()));
        }
        self.with_vaults_read(move |s| {
            if !person {
                require_member(s, &peer)?;
            }
            let me = s.keys.node_id();
            let position =
                |node: &NodeId| known.iter().find(|p| p.node == *node).map_or(0, |p| p.seq);
            let copies = MemberChains::new(&s.db);
            let mut budget = MAX_CHAIN_CLAIMS;
            let mut updates = Vec::new();
            for node in gestalt(s)?.into_iter().take(MAX_CHAINS) {
                if budget == 0 {
                    break;
                }
                let claims = if node == me {
                    Sigchain::new(&s.db, me).claims_after(position(&node), budget)?
                } else {
                    copies.claims_after(&node, position(&node), budget)?
                };
                if claims.is_empty() {
                    continue;
                }
                budget -= claims.len();
                updates.push(ChainUpdate { node, claims });
            }
            Ok(Response::Chains(updates))
        })
        .await
    }

    async fn answer_vaults(&self, peer: NodeId) -> Result<Response, NodeError> {
        self.with_vaults_read(move |s| {
            require_member(s, &peer)?;
            let mut access_of = super::share::access_by_vault(s)?;
            let mut vaults = Vec::new();
            for (info, head, _) in Vaults::new(&s.db).list_for_sync()? {
                let access = access_of.remove(&info.id).unwrap_or_default();
                vaults.push(VaultSummary {
                    id: info.id.to_string(),
                    name: info.name,
                    renamed_at: info.renamed_at,
                    head,
                    access: (access != polykey_network::Access::default()).then_some(access),
                });
            }
            Ok(Response::Vaults { vaults })
        })
        .await
    }

    async fn answer_deletions(
        &self,
        peer: NodeId,
        after: Option<String>,
    ) -> Result<Response, NodeError> {
        self.with_vaults_read(move |s| {
            require_member(s, &peer)?;
            let after: Option<VaultId> = match after {
                Some(text) => Some(text.parse()?),
                None => None,
            };
            let (page, more) =
                Vaults::new(&s.db).deletions_page(after.as_ref(), MAX_DELETIONS_PAGE)?;
            let deletions = page
                .into_iter()
                .map(|d| WireDeletion {
                    vault: d.vault.to_string(),
                    head: d.head,
                    deleted_at: d.deleted_at,
                    by: d.by,
                    signature: d.signature,
                })
                .collect();
            Ok(Response::Deletions { deletions, more })
        })
        .await
    }

    async fn answer_fetch(
        &self,
        peer: NodeId,
        vault: String,
        want: String,
        haves: Vec<String>,
        (skip, from): (u32, u64),
        page: u32,
    ) -> Result<Response, NodeError> {
        let budget = page_budget(page);
        if haves.len() > MAX_HAVES {
            return Err(NodeError::PeerRefused("too many versions named".into()));
        }
        let (response, ahead) = self
            .with_session_read(move |s| {
                let id: VaultId = vault
                    .parse()
                    .map_err(|_| NodeError::PeerRefused(super::share::NOT_SHARED.into()))?;
                super::share::require_access(s, &peer, &id)?;
                let vault = Vaults::new(&s.db).open_any(&id)?;
                let from = usize::try_from(from)
                    .map_err(|_| NodeError::PeerRefused("a part past any object's end".into()))?;
                let (page, plan) = if skip == 0 && from == 0 {
                    // The usual pull is one page: worked out and read at once;
                    // the plan is kept only when pages follow, and whatever the
                    // device took before is let go (a plan kept under the same
                    // key could otherwise answer a later page of another
                    // version).
                    let (page, plan) = vault.first_page(&s.db, &want, &haves, budget)?;
                    let plan = Arc::new(plan);
                    let whole =
                        matches!(&page, Page::Objects(objects) if objects.len() >= plan.total());
                    if !whole {
                        keep_plan(
                            s,
                            peer,
                            PlanKey {
                                vault: id,
                                want,
                                haves,
                            },
                            Arc::clone(&plan),
                        );
                    } else {
                        send_plans(s).remove(&peer);
                    }
                    (page, plan)
                } else {
                    let at = (skip as usize, from);
                    let key = PlanKey {
                        vault: id,
                        want,
                        haves,
                    };
                    let (plan, ahead) = planned(s, peer, key, &vault, (at, budget))?;
                    let page = match ahead.and_then(|ahead| ahead.take()) {
                        Some(page) => page,
                        None => vault.planned_part_page(&s.db, &plan, at, budget)?,
                    };
                    (page, plan)
                };
                // The part after this one is read while this one is on its
                // way (see `ReadAhead`).
                let ahead = match &page {
                    Page::Part(part) => {
                        let end = part.offset.saturating_add(part.data.len());
                        let next = if end < part.len {
                            (skip as usize, end)
                        } else {
                            (skip as usize + 1, 0)
                        };
                        (next.0 < plan.total())
                            .then(|| read_ahead(s, peer, &plan, (next, budget)))
                            .flatten()
                            .map(|slot| (slot, Arc::clone(s), id, Arc::clone(&plan), next))
                    }
                    Page::Objects(_) => None,
                };
                let total = plan.total() as u32;
                let objects = match page {
                    Page::Objects(objects) => objects
                        .into_iter()
                        .map(|(id, mut object)| WireObject {
                            base: object.base.take(),
                            id,
                            kind: kind_tag(object.kind),
                            data: std::mem::take(&mut object.data),
                            part: None,
                        })
                        .collect(),
                    Page::Part(part) => vec![WireObject {
                        // Moved, not copied: the emptied buffer is wiped anyway.
                        data: std::mem::take(&mut *part.data.into_vec()),
                        id: part.id,
                        kind: Part::kind_tag(),
                        base: None,
                        part: Some(WirePart {
                            offset: part.offset as u64,
                            len: part.len as u64,
                        }),
                    }],
                };
                Ok((Response::Objects { objects, total }, ahead))
            })
            .await?;
        if let Some((slot, session, id, plan, at)) = ahead {
            // The session, not the node: a node dropped (or locked)
            // meanwhile is not kept open by it past the read.
            tokio::spawn(async move {
                let page = crate::node::blocking(move || {
                    let vault = Vaults::new(&session.db).open_any(&id)?;
                    Ok(vault.planned_part_page(&session.db, &plan, at, budget)?)
                })
                .await;
                slot.fill(page.ok());
                // Not asked for soon: let go of it (a secret's bytes).
                tokio::select! {
                    () = tokio::time::sleep(READ_AHEAD_KEPT) => slot.fill(None),
                    () = slot.taken.notified() => {}
                }
            });
        }
        Ok(response)
    }
}

/// How long a part read ahead waits to be asked for (an honest device
/// asks for it as soon as the part before it came).
const READ_AHEAD_KEPT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long an ask waits for the part being read ahead for it, before it
/// reads the part itself (a read takes milliseconds).
const READ_AHEAD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The page after a part of a secret sent in parts, read while that part
/// is on its way, so the device's next ask finds it read: reading a part
/// (2 MiB opened, about 2.5 ms here) came before sending it at every ask,
/// and a 10 MiB secret took about 6% longer to arrive. One a device, kept
/// with its plan, for the position and page size it would be asked for
/// at; any other ask reads its own page. An ask is checked as ever before
/// it is given what was read ahead.
pub(crate) struct ReadAhead {
    at: ((usize, usize), usize),
    slot: Arc<AheadSlot>,
}

/// A part being read ahead, then read (or let go of).
#[derive(Default)]
struct AheadSlot {
    state: std::sync::Mutex<Ahead>,
    ready: std::sync::Condvar,
    /// Told when the ask it was read for took it.
    taken: tokio::sync::Notify,
}

#[derive(Default)]
enum Ahead {
    #[default]
    Reading,
    Read(Page),
    Gone,
}

impl AheadSlot {
    fn state(&self) -> std::sync::MutexGuard<'_, Ahead> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The part read, or nothing more to wait for.
    fn fill(&self, page: Option<Page>) {
        *self.state() = page.map_or(Ahead::Gone, Ahead::Read);
        self.ready.notify_all();
    }

    /// The part, once read (waiting a moment for it), unless it failed or
    /// was let go of.
    fn take(&self) -> Option<Page> {
        let state = self.state();
        let (mut state, _) = self
            .ready
            .wait_timeout_while(state, READ_AHEAD_WAIT, |s| matches!(s, Ahead::Reading))
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let page = match std::mem::replace(&mut *state, Ahead::Gone) {
            Ahead::Read(page) => Some(page),
            _ => None,
        };
        self.taken.notify_one();
        page
    }

    /// Whether it is being read still.
    fn reading(&self) -> bool {
        matches!(*self.state(), Ahead::Reading)
    }
}

/// Start reading ahead the part at `at` of `peer`'s transfer, whose plan
/// is `plan`: a slot kept with the plan for the reader to fill, unless
/// the plan kept is another.
fn read_ahead(
    s: &Session,
    peer: NodeId,
    plan: &Arc<SendPlan>,
    at: ((usize, usize), usize),
) -> Option<Arc<AheadSlot>> {
    let mut plans = send_plans(s);
    let kept = plans
        .get_mut(&peer)
        .filter(|kept| Arc::ptr_eq(&kept.plan, plan))?;
    // One read at a time a device (an ask out of turn, and another after
    // it, read ahead no more); a page read and not asked for (the device
    // asked for another page size) gives way.
    if kept
        .ahead
        .as_ref()
        .is_some_and(|ahead| ahead.slot.reading())
    {
        return None;
    }
    let slot = Arc::new(AheadSlot::default());
    kept.ahead = Some(ReadAhead {
        at,
        slot: Arc::clone(&slot),
    });
    Some(slot)
}

/// What a device asked to be sent: the vault, the version, the versions it
/// has.
#[derive(PartialEq, Eq)]
struct PlanKey {
    vault: VaultId,
    want: String,
    haves: Vec<String>,
}

/// The transfer a device is taking page by page: what it asked for, and
/// the plan of it.
pub(crate) struct PlannedSend {
    key: PlanKey,
    plan: Arc<SendPlan>,
    ahead: Option<ReadAhead>,
}

/// The plan of the transfer `key` a device asks a later page of: the one
/// kept from its first or last page when it is the same transfer, else
/// worked out and kept (one per device, ids only), so a long transfer
/// walks the history once, not once per page. With it, the part read
/// ahead for this ask (`at`, a position and a page size), if one was.
fn planned(
    s: &Session,
    peer: NodeId,
    key: PlanKey,
    vault: &Vault,
    at: ((usize, usize), usize),
) -> Result<(Arc<SendPlan>, Option<Arc<AheadSlot>>), NodeError> {
    if let Some(kept) = send_plans(s).get_mut(&peer).filter(|kept| kept.key == key) {
        // Another ask (out of turn) leaves it for its own.
        let ahead = match &kept.ahead {
            Some(ahead) if ahead.at == at => kept.ahead.take().map(|ahead| ahead.slot),
            _ => None,
        };
        return Ok((Arc::clone(&kept.plan), ahead));
    }
    let plan = Arc::new(vault.send_plan(&s.db, &key.want, &key.haves)?);
    keep_plan(s, peer, key, Arc::clone(&plan));
    Ok((plan, None))
}

/// Keep `plan` as the transfer device `peer` is taking (one per device).
fn keep_plan(s: &Session, peer: NodeId, key: PlanKey, plan: Arc<SendPlan>) {
    send_plans(s).insert(
        peer,
        PlannedSend {
            key,
            plan,
            ahead: None,
        },
    );
}

/// The plans kept per device, locked.
fn send_plans(s: &Session) -> std::sync::MutexGuard<'_, HashMap<NodeId, PlannedSend>> {
    s.send_plans
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

//! The node on the network: the libp2p actor runs while the node is
//! unlocked; these modules answer other nodes (`answer`), pair devices
//! (`pairing`), keep the gestalt's trust in step (`trust`: chains, new
//! devices, revocations) and keep the vaults of one gestalt in sync both
//! ways (`pull`).
//!
//! Sync pulls: on meeting a device of its gestalt, on its "changed" notice,
//! and every [`RESYNC_EVERY`], a node takes the new claims of the gestalt's
//! chains, lists the peer's vaults and takes what it lacks, then its vault
//! deletions. Each device has its own sync task with a deadline, so a slow
//! device delays nobody else. Only the node with the lower NodeId of a pair
//! writes the merge commit (the other fast-forwards to it), so two nodes
//! never answer each other's merges with merges of their own: after both
//! have pulled they share one head and a further sync adds nothing.

mod answer;
mod pace;
mod pairing;
mod pull;
mod resume;
mod share;
mod trust;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use polykey_db::{RecordKey, Table};
use polykey_gestalts::pairing::{Inviter, InviterSession, PairingMessage};
use polykey_gestalts::GestaltGraph;
use polykey_keys::NodeId;
use polykey_network::{Client, Config, Multiaddr, Request, Response};
use polykey_vaults::{VaultId, Vaults};
use tokio::task::JoinHandle;

use crate::error::NodeError;
use crate::node::{Inner, Node, Session};

pub(crate) use answer::PlannedSend;
pub use pairing::code_from_qr_image;
pub(crate) use pairing::qr_text_from_image;
pub(crate) use resume::Resumes;
pub(crate) use share::{
    drop_person_shares, forget_person_chains, removed_people_nodes, update_grant_nodes,
};
pub use share::{sign_access, sign_shared, Shared, VaultAccess, NOT_SHARED};
pub use trust::{DeviceDispute, DeviceNotice, RemovalEffect, RemovedDevice};

/// How often a node pulls from connected devices even without a notice.
pub const RESYNC_EVERY: Duration = Duration::from_secs(30);
/// How soon a failed sync is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(3);
/// How often the node looks for local changes to announce if no commit
/// woke it.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// How often unreachable devices of the gestalt are dialled again.
const REDIAL_EVERY: Duration = Duration::from_secs(20);
/// How soon a device (or a node of a person sharing a vault) whose last
/// connection closed is dialled again, once, before [`REDIAL_EVERY`]: a
/// connection cut (a network blip, a peer's restart) mends in about a
/// second instead of up to twenty.
pub(super) const REDIAL_SOON: Duration = Duration::from_secs(1);
/// Most devices found on the local network remembered at once.
const MAX_DISCOVERED: usize = 256;
/// How far ahead of this clock a peer's timestamp may be (ms); later ones
/// are taken as now.
pub(crate) const MAX_CLOCK_SKEW_MS: i64 = 10 * 60 * 1000;

/// How the node joins the network.
#[derive(Clone, Debug)]
pub struct NetworkOptions {
    /// Multiaddrs to listen on, e.g. `/ip4/127.0.0.1/tcp/0`.
    pub listen: Vec<String>,
    /// Find devices on the local network with mDNS.
    pub mdns: bool,
    /// Seed nodes for the DHT, as `NODEID@MULTIADDR`.
    pub seeds: Vec<String>,
    /// Serve as a relay for nodes behind NAT.
    pub relay_server: bool,
    /// How long a request to a peer may take (30 s); a fetch asks a slow
    /// link for pages it carries well within it.
    pub request_timeout: Duration,
}

impl NetworkOptions {
    /// Loopback only, no mDNS: for tests and local tools.
    pub fn loopback() -> Self {
        Self {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            mdns: false,
            seeds: Vec::new(),
            relay_server: false,
            request_timeout: Config::default().request_timeout,
        }
    }

    /// From the environment: `POLYKEY_LISTEN` (comma-separated multiaddrs;
    /// default every interface, TCP and QUIC), `POLYKEY_MDNS` (`0` turns
    /// local discovery off), `POLYKEY_SEEDS` (comma-separated
    /// `NODEID@MULTIADDR`). `POLYKEY_NETWORK=0` gives no network at all.
    pub fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if var("POLYKEY_NETWORK").as_deref() == Some("0") {
            return None;
        }
        let list = |text: String| -> Vec<String> {
            text.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Some(Self {
            listen: var("POLYKEY_LISTEN").map(list).unwrap_or_else(|| {
                vec![
                    "/ip4/0.0.0.0/tcp/0".into(),
                    "/ip4/0.0.0.0/udp/0/quic-v1".into(),
                ]
            }),
            mdns: var("POLYKEY_MDNS").as_deref() != Some("0"),
            seeds: var("POLYKEY_SEEDS").map(list).unwrap_or_default(),
            relay_server: var("POLYKEY_RELAY").as_deref() == Some("1"),
            request_timeout: Config::default().request_timeout,
        })
    }
}

/// A device of this gestalt (or this one), as the Devices page shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The device's NodeId.
    pub node_id: NodeId,
    /// Whether it is this device.
    pub this_device: bool,
    /// Connected now.
    pub online: bool,
    /// When it was last connected (ms since the epoch; 0: never).
    pub last_seen: i64,
    /// Where it was last reachable.
    pub addresses: Vec<String>,
    /// The name it gave itself, if any.
    pub name: Option<String>,
}

/// What the sync has done, for the sync indicator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// A sync is running now.
    pub syncing: bool,
    /// When the last sync with any device finished (ms; 0: never).
    pub last_sync: i64,
    /// The last sync error, for the user.
    pub last_error: Option<String>,
}

/// The invitation this device shows, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairingState {
    /// No invitation open.
    Idle,
    /// An invitation waits for a device to join.
    Waiting {
        /// When it expires (seconds since the epoch).
        expires_at: u64,
    },
    /// A device proved it holds the code; the person compares the digits
    /// and confirms before anything is recorded.
    Confirming {
        /// The joining device.
        device: NodeId,
        /// The digits both screens show.
        fingerprint: String,
    },
    /// A device joined.
    Paired {
        /// The new device.
        device: NodeId,
        /// The digits both screens show.
        fingerprint: String,
    },
    /// The invitation failed.
    Failed(String),
}

/// A device's addresses and when it was seen, in the encrypted store.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct PeerRecord {
    node: String,
    addresses: Vec<String>,
    last_seen: i64,
}

const PEERS: Table<PeerRecord> = Table::new("peers");

fn peer_key(session: &Session, node: &NodeId) -> RecordKey {
    session.db.record_key("peers", node.as_bytes())
}

/// The network state of an unlocked node.
pub(crate) struct Net {
    client: Client,
    tasks: Vec<JoinHandle<()>>,
    sync: pull::Scheduler,
}

impl Drop for Net {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Pairing and peer state held in memory while unlocked.
#[derive(Default)]
pub(crate) struct PeerState {
    /// The open invitation (inviting side).
    inviter: Option<Inviter>,
    /// Joiners past the key agreement, by NodeId.
    sessions: HashMap<NodeId, InviterSession>,
    /// Checked proofs waiting for this device's person to confirm.
    proofs: HashMap<NodeId, PairingMessage>,
    /// The joiner whose digits this device's person confirmed.
    confirmed: Option<NodeId>,
    /// A join waiting for this device's person to confirm (joining side).
    joining: Option<pairing::PendingJoin>,
    /// Set to cancel a confirmed join still waiting for the other device.
    join_cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// The device this one is pairing with: the joiner that presented the
    /// open invitation's secret (inviting side), or the device being joined
    /// (joining side). See [`Node::refresh_trust`].
    pairing_with: Option<NodeId>,
    pairing: Option<PairingState>,
    online: HashSet<NodeId>,
    discovered: HashMap<NodeId, Multiaddr>,
    /// The gestalt as last computed: who may ask more than a ping.
    members: BTreeSet<NodeId>,
    /// Whether `members` was computed since the network started.
    members_known: bool,
    /// Devices another device removed: still pulled for chains only.
    contested: BTreeSet<NodeId>,
    /// Nodes of people trusted here with `notify` (see `people`).
    pub(crate) may_notify: BTreeSet<NodeId>,
    /// Nodes of people trusted here with `scan`.
    pub(crate) may_scan: BTreeSet<NodeId>,
    /// Devices of people their own gestalt removed: heard asking `Shared`
    /// (for their own removals of others), served nothing.
    removed_people: BTreeSet<NodeId>,
    /// Nodes of other gestalts taking part in vaults with this one, and
    /// which (see `share`).
    shares: HashMap<NodeId, BTreeSet<VaultId>>,
    /// The same nodes by the person each takes part for: the network
    /// bounds each person's devices as one.
    share_people: Vec<BTreeSet<NodeId>>,
    /// Those of them connected now.
    online_people: HashSet<NodeId>,
    /// Of them, the ones that pull vaults from here, and which.
    pulls_from_here: HashMap<NodeId, BTreeSet<VaultId>>,
    sync: SyncStatus,
    /// Syncs running now (see `pull::Syncing`).
    active_syncs: Arc<std::sync::atomic::AtomicUsize>,
    /// Peers with a change notice on the wire, and whether another was
    /// asked for meanwhile (see `Node::send_changed`).
    notices: HashMap<NodeId, bool>,
    /// One pull at a time from each device (the scheduled ones and
    /// `sync_now` alike), so two never receive the same vault at once.
    pull_locks: HashMap<NodeId, Arc<tokio::sync::Mutex<()>>>,
    /// Each device's vault heads (by vault id) as its last answer to
    /// `Vaults` gave them: a vault that moved here only to the head that
    /// device has is no news to it (see `pull::watch_changes`).
    heads_told: HashMap<NodeId, HashMap<String, String>>,
    /// Merges refused as past a vault's bounds, by (vault, the version
    /// offered): the head here then, and why. The same two give the same
    /// refusal, so it is not worked out again at every pull; reported in
    /// the sync status until that vault merges or moves.
    pub(crate) refused_merges: HashMap<(VaultId, String), (String, &'static str)>,
    /// The page size each device's link carries (see `pace`).
    pace: pace::Pace,
}

/// Most refused merges remembered (see `PeerState::refused_merges`).
pub(crate) const MAX_REFUSED_MERGES: usize = 1_024;

impl PeerState {
    /// Who is exempt from the network's limits for strangers at `now`
    /// (seconds): the devices, and the device this one is pairing with
    /// while that pairing is open: an invitation with the joiner's session,
    /// or a join under way whose code has not expired (a person who never
    /// confirms does not keep the inviter exempt). A device paired and
    /// later removed, or a leaked code's holder, keeps nothing. Then the
    /// people sharing vaults with this gestalt either way, each a list of
    /// their devices: exempt too, but bounded as one (see the network's
    /// `Client::trust_people`).
    pub(crate) fn exempt(&self, now: u64) -> (Vec<NodeId>, Vec<Vec<NodeId>>) {
        let open = self.pairing_with.filter(|peer| match &self.inviter {
            Some(_) => self.sessions.contains_key(peer),
            // Joining: cleared when the join ends (see `Node::join`).
            None => self.joining.as_ref().is_none_or(|join| !join.expired(now)),
        });
        let own = self.members.iter().copied().chain(open).collect();
        let people = self
            .share_people
            .iter()
            .map(|nodes| nodes.iter().copied().collect())
            .collect();
        (own, people)
    }

    /// What the sync status says of the merges refused, if any.
    pub(crate) fn refused_report(&self) -> Option<String> {
        let why = self.refused_merges.values().map(|(_, why)| *why).next()?;
        Some(format!(
            "A vault's changes from another device could not be merged: together they would \
             be too large ({why}). Both versions are kept; remove what is not needed on either \
             device."
        ))
    }

    pub(crate) fn set_error(&mut self, error: String) {
        self.sync.last_error = Some(error);
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A peer's timestamp (ms), no later than this clock allows.
pub(crate) fn clamp_peer_time(ms: i64) -> i64 {
    ms.min(now_ms().saturating_add(MAX_CLOCK_SKEW_MS))
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn net_error(error: polykey_network::NetworkError) -> NodeError {
    match error {
        // Not the network's doing: the same answer comes again (a transfer
        // is not set aside for it, see `resume::cut_off`).
        polykey_network::NetworkError::Malformed(_) => NodeError::BadPeerData(error.to_string()),
        _ => NodeError::Network(error.to_string()),
    }
}

fn refused(response: Response) -> NodeError {
    match response {
        Response::Refused(reason) => NodeError::PeerRefused(reason),
        _ => NodeError::PeerRefused("an unexpected answer".into()),
    }
}

/// Whether `peer` belongs to this node's gestalt.
fn in_gestalt(session: &Session, peer: &NodeId) -> Result<bool, NodeError> {
    let me = session.keys.node_id();
    Ok(*peer != me
        && GestaltGraph::new(&session.db)
            .gestalt_of(me)?
            .contains(peer))
}

/// Refuse `peer` unless it belongs to this node's gestalt.
fn require_member(session: &Session, peer: &NodeId) -> Result<(), NodeError> {
    if in_gestalt(session, peer)? {
        Ok(())
    } else {
        Err(NodeError::PeerRefused(
            "this device is not one of yours".into(),
        ))
    }
}

pub(crate) fn gestalt(session: &Session) -> Result<BTreeSet<NodeId>, NodeError> {
    Ok(GestaltGraph::new(&session.db).gestalt_of(session.keys.node_id())?)
}

impl Inner {
    pub(crate) fn peer_state(&self) -> std::sync::MutexGuard<'_, PeerState> {
        self.peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn receiving(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<VaultId, Arc<tokio::sync::Mutex<()>>>> {
        self.receiving
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The lock a transfer of new vault `id` holds (see `Inner::receiving`).
    pub(crate) fn new_vault_lock(&self, id: VaultId) -> Arc<tokio::sync::Mutex<()>> {
        let mut receiving = self.receiving();
        // Locks no transfer holds or waits for any more (a cancelled
        // transfer's among them).
        receiving.retain(|_, held| Arc::strong_count(held) > 1);
        Arc::clone(receiving.entry(id).or_default())
    }

    /// The new vaults a transfer is receiving now.
    pub(crate) fn vaults_arriving(&self) -> BTreeSet<VaultId> {
        self.receiving()
            .iter()
            .filter(|(_, held)| held.try_lock().is_err())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Stop the network (on lock): the tasks end, connections close, and
    /// every pairing secret is forgotten.
    pub(crate) fn stop_network(&self) {
        if let Ok(mut net) = self.net.lock() {
            net.take();
        }
        *self.peer_state() = PeerState::default();
        self.forget_resumes();
    }
}

impl Node {
    fn weak(&self) -> Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    pub(crate) fn client(&self) -> Result<Client, NodeError> {
        self.inner
            .net
            .lock()
            .ok()
            .and_then(|net| net.as_ref().map(|n| n.client.clone()))
            .ok_or(NodeError::NetworkOff)
    }

    fn schedule_sync(&self, peer: NodeId) {
        {
            let state = self.inner.peer_state();
            if !state.members.contains(&peer)
                && !state.contested.contains(&peer)
                && !state.shares.contains_key(&peer)
            {
                return;
            }
        }
        self.with_scheduler(|sync| sync.ask(peer));
    }

    /// Run `work` with the pull scheduler, if the network runs.
    fn with_scheduler(&self, work: impl FnOnce(&pull::Scheduler)) {
        if let Ok(net) = self.inner.net.lock() {
            if let Some(net) = net.as_ref() {
                work(&net.sync);
            }
        }
    }

    /// Whether `peer` is in this node's gestalt, as last computed (no store
    /// access: the network loop asks this for every request).
    fn is_member(&self, peer: &NodeId) -> bool {
        self.inner.peer_state().members.contains(peer)
    }

    /// Whether `peer` is a node of another gestalt taking part in a vault
    /// with this one (no store access).
    fn shares_with(&self, peer: &NodeId) -> bool {
        self.inner.peer_state().shares.contains_key(peer)
    }

    /// Whether `peer` is a node of a person trusted here with a
    /// permission (no store access).
    fn known_person(&self, peer: &NodeId) -> bool {
        let state = self.inner.peer_state();
        state.may_notify.contains(peer) || state.may_scan.contains(peer)
    }

    /// Whether `peer` is a node of a person trusted here with `scan`.
    fn may_scan(&self, peer: &NodeId) -> bool {
        self.inner.peer_state().may_scan.contains(peer)
    }

    /// Whether `peer` is a device another person's gestalt removed (heard
    /// asking `Shared`, served nothing).
    fn removed_person(&self, peer: &NodeId) -> bool {
        self.inner.peer_state().removed_people.contains(peer)
    }

    /// Whether `peer` is a node of a person trusted here with `notify`.
    fn may_notify(&self, peer: &NodeId) -> bool {
        self.inner.peer_state().may_notify.contains(peer)
    }

    /// Compute the gestalt again (after pairing, adoption, revocation).
    async fn refresh_members(&self) -> Result<(), NodeError> {
        let (members, contested, dropped) = self
            .with_vaults(|s| {
                let me = s.keys.node_id();
                let mut members = gestalt(s)?;
                members.remove(&me);
                let contested = GestaltGraph::new(&s.db).contested(me)?;
                let dropped = share::drop_access_of_removed(s)?;
                Ok((members, contested, dropped))
            })
            .await?;
        if dropped {
            self.refresh_shares().await?;
        }
        // A device in again while its connection stayed open (a dispute
        // decided) sees no new connection event: it counts as online from
        // here, and is pulled from as one.
        let connected = match self.client() {
            Ok(client) => client.connected().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let back: Vec<NodeId>;
        let removed: Vec<NodeId>;
        let partners: Vec<NodeId> = {
            let mut state = self.inner.peer_state();
            // (The first computation since the network started is no
            // change: telling every partner at each start is noise.)
            let changed = state.members_known && state.members != members;
            removed = match state.members_known {
                true => state.members.difference(&members).copied().collect(),
                false => Vec::new(),
            };
            state.members_known = true;
            state.online.retain(|peer| members.contains(peer));
            back = connected
                .into_iter()
                .filter(|peer| members.contains(peer) && !state.online.contains(peer))
                .collect();
            state.online.extend(back.iter().copied());
            state.members = members.clone();
            state.contested = contested;
            // People sharing vaults with this gestalt serve its devices:
            // told, they follow it (a device paired is served, one removed
            // no more) without waiting for their next resync.
            match changed {
                true => state.shares.keys().copied().collect(),
                false => Vec::new(),
            }
        };
        self.tell_changed(&partners);
        if !back.is_empty() {
            self.notify();
            for peer in back {
                self.schedule_sync(peer);
            }
        }
        // Devices of the gestalt stay out of this node's DHT answers, so a
        // stranger asking it for nearby peers never learns them.
        if let Ok(client) = self.client() {
            let _ = client.hide(members.into_iter().collect()).await;
        }
        self.refresh_trust().await;
        // A device removed just now, a stranger to the network from here
        // on, keeps nothing it opened while it was trusted, and is asked
        // nothing more (a pull from it ends where it is, before its
        // connection closes under it).
        if !removed.is_empty() {
            self.with_scheduler(|sync| sync.stop(&removed));
            if let Ok(client) = self.client() {
                let _ = client.disconnect(removed).await;
            }
        }
        Ok(())
    }

    /// Tell the network who is exempt from its limits for strangers: the
    /// devices of the gestalt (a removed one loses that at once), and the
    /// device pairing with this one, a stranger until the pairing ends,
    /// which strangers flooding this node must not cut off. Only a joiner
    /// holding the invitation's secret counts (one at most): a stranger
    /// guessing words gets no exemption.
    pub(crate) async fn refresh_trust(&self) {
        if let Ok(client) = self.client() {
            self.tell_trust(&client).await;
        }
    }

    /// [`Node::refresh_trust`] through `client`, before the node holds it.
    async fn tell_trust(&self, client: &Client) {
        let (own, people) = self.inner.peer_state().exempt(now_secs());
        let _ = client.trust_people(own, people).await;
    }

    /// Start the network if the node is unlocked, has network options and
    /// is not on the network yet. Called after every unlock.
    pub(crate) async fn start_network(&self) -> Result<(), NodeError> {
        let Some(options) = self.inner.options.network.clone() else {
            return Ok(());
        };
        if self.inner.net.lock().map(|n| n.is_some()).unwrap_or(true) {
            return Ok(());
        }
        let mut seeds = Vec::new();
        for seed in &options.seeds {
            let (id, address) = seed.split_once('@').ok_or_else(|| {
                NodeError::Network(format!("a seed must be NODEID@ADDRESS: {seed}"))
            })?;
            let id: NodeId = id
                .parse()
                .map_err(|_| NodeError::Network(format!("not a NodeId: {id}")))?;
            let address: Multiaddr = address
                .parse()
                .map_err(|_| NodeError::Network(format!("not an address: {address}")))?;
            seeds.push((id, address));
        }
        let config = Config {
            mdns: options.mdns,
            seeds,
            relay_server: options.relay_server,
            request_timeout: options.request_timeout,
            ..Config::default()
        };
        self.inner.peer_state().pace = pace::Pace::new(options.request_timeout);
        let (client, events, event_loop) = self
            .with_vaults(move |s| {
                polykey_network::new(&s.keys, config).map_err(|e| NodeError::Network(e.to_string()))
            })
            .await?;
        let event_loop = tokio::spawn(event_loop.run());
        self.refresh_members().await?;
        self.refresh_people().await?;
        self.refresh_shares().await?;
        // Who is trusted, before anyone can connect: a connection made while
        // its peer is a stranger keeps windows that never grow.
        self.tell_trust(&client).await;
        for address in &options.listen {
            let address: Multiaddr = address
                .parse()
                .map_err(|_| NodeError::Network(format!("not an address: {address}")))?;
            if let Err(e) = client.listen(address).await {
                event_loop.abort();
                return Err(net_error(e));
            }
        }
        let (scheduler, sync_task) = pull::Scheduler::start(self.weak(), client.clone());
        let tasks = vec![
            event_loop,
            sync_task,
            tokio::spawn(answer::serve(self.weak(), client.clone(), events)),
            tokio::spawn(pull::watch_changes(self.weak(), client.clone())),
            tokio::spawn(crate::people::reverify_periodically(self.weak())),
            tokio::spawn(crate::backup::back_up_periodically(self.weak())),
            tokio::spawn(crate::node::collect_periodically(self.weak())),
        ];
        let net = Net {
            client,
            tasks,
            sync: scheduler,
        };
        // Take the state lock before the network's (as `lock` does), never
        // the other way round.
        let unlocked = self.status().state == crate::NodeState::Unlocked;
        match self.inner.net.lock() {
            Ok(mut slot) if slot.is_none() && unlocked => {
                *slot = Some(net);
            }
            // Locked (or started) meanwhile: dropping `net` stops it.
            _ => return Ok(()),
        }
        if self.status().state != crate::NodeState::Unlocked {
            self.inner.stop_network();
            return Ok(());
        }
        // Again, now that the network can hear who the devices are.
        self.refresh_members().await?;
        self.redial().await;
        Ok(())
    }

    /// Where this node listens.
    pub async fn addresses(&self) -> Result<Vec<String>, NodeError> {
        let client = self.client()?;
        Ok(client
            .addresses()
            .await
            .map_err(net_error)?
            .iter()
            .map(ToString::to_string)
            .collect())
    }

    /// Dial every device of the gestalt at its last known addresses.
    async fn redial(&self) {
        self.redial_only(None).await;
    }

    /// [`Node::redial`], or only `peer` when it is one of those dialled.
    pub(super) async fn redial_only(&self, only: Option<NodeId>) {
        let Ok(client) = self.client() else { return };
        // The devices, and the nodes of people sharing vaults either way
        // or trusted here: a dropped connection to a person's node was
        // never dialled again, so a shared vault stopped syncing.
        let partners: Vec<NodeId> = self.inner.peer_state().shares.keys().copied().collect();
        let Ok(known) = self
            .with_vaults(move |s| {
                let mut keep: BTreeSet<NodeId> = gestalt(s)?.into_iter().collect();
                keep.extend(partners);
                keep.extend(
                    crate::people::people_in(s)?
                        .into_iter()
                        .flat_map(|person| person.nodes),
                );
                let txn = s.db.read()?;
                let mut out = Vec::new();
                for member in keep {
                    if member == s.keys.node_id() {
                        continue;
                    }
                    let record = txn.get(&PEERS, &peer_key(s, &member))?.unwrap_or_default();
                    out.push((member, record.addresses));
                }
                Ok(out)
            })
            .await
        else {
            return;
        };
        for (peer, addresses) in known {
            if only.is_some_and(|o| o != peer) {
                continue;
            }
            {
                let state = self.inner.peer_state();
                if state.online.contains(&peer) || state.online_people.contains(&peer) {
                    continue;
                }
            }
            let mut addresses: Vec<String> = addresses;
            if let Some(found) = self.inner.peer_state().discovered.get(&peer) {
                addresses.push(found.to_string());
            }
            for address in addresses {
                let Ok(address) = address.parse::<Multiaddr>() else {
                    continue;
                };
                if client.dial(peer, address).await.is_ok() {
                    break;
                }
            }
        }
    }

    /// Keep where `peer` was reached, for `redial`: a device's, a node
    /// of a person sharing a vault or trusted here, or (`dialled`) any
    /// node this node was asked to connect to.
    async fn remember_addresses(&self, peer: NodeId, addresses: Vec<String>, dialled: bool) {
        let partner = self.inner.peer_state().shares.contains_key(&peer);
        let _ = self
            .with_vaults(move |s| {
                let kept = dialled
                    || partner
                    || in_gestalt(s, &peer)?
                    || crate::people::people_in(s)?
                        .iter()
                        .any(|person| person.nodes.contains(&peer));
                if !kept {
                    return Ok(());
                }
                let key = peer_key(s, &peer);
                let mut txn = s.db.write()?;
                let mut record = txn.get(&PEERS, &key)?.unwrap_or_default();
                record.node = peer.to_string();
                // Newest first, at most eight, no duplicates.
                let mut merged = addresses;
                merged.append(&mut record.addresses);
                let mut seen = HashSet::new();
                merged.retain(|a| seen.insert(a.clone()));
                merged.truncate(8);
                record.addresses = merged;
                record.last_seen = now_ms();
                txn.put(&PEERS, &key, &record)?;
                txn.commit()?;
                Ok(())
            })
            .await;
    }

    /// This device and the paired ones, with their status.
    pub async fn devices(&self) -> Result<Vec<Device>, NodeError> {
        let online = self.inner.peer_state().online.clone();
        let own = self.addresses().await.unwrap_or_default();
        self.with_vaults_read(move |s| {
            let me = s.keys.node_id();
            let members = gestalt(s)?;
            let mut names = crate::names::names_of(s, members.iter().copied().chain([me]))?;
            let txn = s.db.read()?;
            let mut out = Vec::new();
            for member in members {
                if member == me {
                    out.push(Device {
                        node_id: me,
                        this_device: true,
                        online: true,
                        last_seen: now_ms(),
                        addresses: own.clone(),
                        name: names.remove(&me),
                    });
                    continue;
                }
                let record = txn.get(&PEERS, &peer_key(s, &member))?.unwrap_or_default();
                out.push(Device {
                    node_id: member,
                    this_device: false,
                    online: online.contains(&member),
                    last_seen: record.last_seen,
                    addresses: record.addresses,
                    name: names.remove(&member),
                });
            }
            // This device first, then the others by NodeId.
            out.sort_by_key(|d| !d.this_device);
            if out.is_empty() {
                out.push(Device {
                    node_id: me,
                    this_device: true,
                    online: true,
                    last_seen: now_ms(),
                    addresses: own,
                    name: names.remove(&me),
                });
            }
            Ok(out)
        })
        .await
    }

    /// The sync indicator's state.
    pub fn sync_status(&self) -> SyncStatus {
        self.inner.peer_state().sync.clone()
    }

    /// Send one request to `peer` over the running network.
    pub(crate) async fn network_request(
        &self,
        peer: NodeId,
        request: Request,
    ) -> Result<Response, NodeError> {
        self.client()?
            .request(peer, request)
            .await
            .map_err(net_error)
    }

    /// Where `peer` can be reached: known addresses, then the DHT.
    pub async fn find_node(&self, peer: NodeId) -> Result<Vec<String>, NodeError> {
        let client = self.client()?;
        let found = self.inner.peer_state().discovered.get(&peer).cloned();
        let mut out: Vec<String> = found.iter().map(ToString::to_string).collect();
        for address in client.find(peer).await.map_err(net_error)? {
            let text = address.to_string();
            if !out.contains(&text) {
                out.push(text);
            }
        }
        Ok(out)
    }

    /// Ping `peer` (it answers any node, and says nothing more) and time
    /// the round trip; the peer must be connected or findable.
    pub async fn ping(&self, peer: NodeId) -> Result<Duration, NodeError> {
        let client = self.client()?;
        if !client.connected().await.map_err(net_error)?.contains(&peer) {
            let mut reached = false;
            for address in self.find_node(peer).await? {
                if let Ok(address) = address.parse::<Multiaddr>() {
                    if client.dial(peer, address).await.is_ok() {
                        reached = true;
                        break;
                    }
                }
            }
            if !reached {
                return Err(NodeError::Network("that node cannot be reached".into()));
            }
        }
        let started = std::time::Instant::now();
        match client
            .request(peer, Request::Ping)
            .await
            .map_err(net_error)?
        {
            Response::Ok => Ok(started.elapsed()),
            other => Err(refused(other)),
        }
    }

    /// Connect to a device of the gestalt at `address` (when mDNS and the
    /// DHT cannot find it).
    pub async fn connect(&self, peer: NodeId, address: String) -> Result<(), NodeError> {
        let client = self.client()?;
        let parsed: Multiaddr = address
            .parse()
            .map_err(|_| NodeError::Network("not an address".into()))?;
        client.dial(peer, parsed).await.map_err(net_error)?;
        self.remember_addresses(peer, vec![address], true).await;
        Ok(())
    }

    /// A fingerprint of what peers see: vault ids, names, heads, deletions.
    async fn snapshot(&self) -> Result<Vec<String>, NodeError> {
        self.with_vaults(|s| {
            let vaults = Vaults::new(&s.db);
            let access = share::access_by_vault(s)?;
            let mut out = Vec::new();
            for (info, head, deletion) in vaults.list_for_sync()? {
                // A share given or ended is news for the devices too.
                let access_at = access.get(&info.id).map_or(0, |a| a.at);
                out.push(format!(
                    "{} {} {} {} {} {}",
                    info.id,
                    info.renamed_at,
                    info.name,
                    head,
                    deletion.is_some(),
                    access_at
                ));
            }
            // New claims (a revocation, a device added) are news too.
            let chain = polykey_gestalts::Sigchain::new(&s.db, s.keys.node_id()).head()?;
            out.push(format!("chain {}", chain.map_or(0, |h| h.seq)));
            out.sort();
            Ok(out)
        })
        .await
    }

    fn db_generation(&self) -> Option<u64> {
        self.inner.generation()
    }
}

fn upgrade(weak: &Weak<Inner>) -> Option<Node> {
    weak.upgrade().map(|inner| Node { inner })
}

impl From<Device> for crate::api::DeviceDto {
    fn from(d: Device) -> Self {
        Self {
            node_id: d.node_id.to_string(),
            this_device: d.this_device,
            online: d.online,
            last_seen: d.last_seen,
            addresses: d.addresses,
            name: d.name,
        }
    }
}

impl From<PairingState> for crate::api::PairingStateDto {
    fn from(state: PairingState) -> Self {
        use PairingState as P;
        match state {
            P::Idle => Self::Idle,
            P::Waiting { expires_at } => Self::Waiting { expires_at },
            P::Confirming {
                device,
                fingerprint,
            } => Self::Confirming {
                device: device.to_string(),
                fingerprint,
            },
            P::Paired {
                device,
                fingerprint,
            } => Self::Paired {
                device: device.to_string(),
                fingerprint,
            },
            P::Failed(message) => Self::Failed { message },
        }
    }
}

/// The same operations in their transport form, for the front ends.
impl Node {
    /// Devices, for the Devices page.
    pub async fn devices_dto(&self) -> Result<Vec<crate::api::DeviceDto>, NodeError> {
        Ok(self.devices().await?.into_iter().map(Into::into).collect())
    }

    /// The sync indicator, with online devices and open conflicts.
    pub async fn sync_status_dto(&self) -> Result<crate::api::SyncStatusDto, NodeError> {
        let status = self.sync_status();
        let online = self.inner.peer_state().online.len() as u32;
        let conflicts = self.conflicts().await?.len() as u32;
        Ok(crate::api::SyncStatusDto {
            syncing: status.syncing,
            last_sync: status.last_sync,
            last_error: status.last_error,
            online,
            conflicts,
        })
    }

    /// Open conflicts in transport form.
    pub async fn conflicts_dto(&self) -> Result<Vec<crate::api::ConflictDto>, NodeError> {
        Ok(self
            .conflicts()
            .await?
            .into_iter()
            .map(|c| crate::api::ConflictDto {
                vault: c.vault,
                path: c.path,
                theirs_path: c.theirs_path,
            })
            .collect())
    }
}

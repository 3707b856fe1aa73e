//! The node on the network: the libp2p actor runs while the node is
//! unlocked; this service answers other nodes, pairs devices, and keeps the
//! vaults of one gestalt in sync both ways.
//!
//! Sync pulls: on meeting a device of its gestalt, on its "changed" notice,
//! and every [`RESYNC_EVERY`], a node lists the peer's vaults and takes what
//! it lacks. New vaults are received whole, deletions and newer renames are
//! adopted, and diverged histories merge three-way. Only the node with the
//! lower NodeId of a pair writes the merge commit (the other fast-forwards
//! to it), so two nodes never answer each other's merges with merges of
//! their own: after both have pulled they share one head and a further sync
//! adds nothing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use polykey_db::{RecordKey, Table};
use polykey_gestalts::pairing::{Invitation, Inviter, InviterSession, Joiner, PairingMessage};
use polykey_gestalts::{GestaltGraph, Sigchain};
use polykey_keys::NodeId;
use polykey_network::protocol::{MAX_HAVES, MAX_LINKS, MAX_VAULTS, PAGE_BYTES};
use polykey_network::{
    Client, Config, Deleted, Event, Multiaddr, Request, Response, VaultSummary, WireObject,
};
use polykey_vaults::{
    kind_of_tag, kind_tag, RawObject, Relation, VaultError, VaultId, Vaults, MAX_IMPORT_OBJECTS,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::NodeError;
use crate::node::{Inner, Node, Session};

/// What an inviter without an open invitation answers a hello.
const NO_INVITATION: &str = "no pairing code is open";

/// Whether `text` is four words, as typed from another device's screen.
fn looks_like_words(text: &str) -> bool {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == '-' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    words.len() == polykey_gestalts::pairing::CODE_WORDS
        && words
            .iter()
            .all(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
}

/// How often a node pulls from connected devices even without a notice.
pub const RESYNC_EVERY: Duration = Duration::from_secs(30);
/// How soon a failed sync is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(3);
/// How often the node looks for local changes to announce if no commit
/// woke it.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// How often unreachable devices of the gestalt are dialled again.
const REDIAL_EVERY: Duration = Duration::from_secs(20);
/// Most inbound requests served at once.
const MAX_INBOUND: usize = 16;

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
}

impl NetworkOptions {
    /// Loopback only, no mDNS: for tests and local tools.
    pub fn loopback() -> Self {
        Self {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            mdns: false,
            seeds: Vec::new(),
            relay_server: false,
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
    sync: mpsc::Sender<NodeId>,
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
    inviter: Option<Inviter>,
    sessions: HashMap<NodeId, InviterSession>,
    pairing: Option<PairingState>,
    online: HashSet<NodeId>,
    discovered: HashMap<NodeId, Multiaddr>,
    sync: SyncStatus,
}

impl PeerState {
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

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn net_error(error: polykey_network::NetworkError) -> NodeError {
    NodeError::Network(error.to_string())
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

    /// Stop the network (on lock): the tasks end, connections close, and
    /// every pairing secret is forgotten.
    pub(crate) fn stop_network(&self) {
        if let Ok(mut net) = self.net.lock() {
            net.take();
        }
        *self.peer_state() = PeerState::default();
    }
}

impl Node {
    fn weak(&self) -> Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    fn client(&self) -> Result<Client, NodeError> {
        self.inner
            .net
            .lock()
            .ok()
            .and_then(|net| net.as_ref().map(|n| n.client.clone()))
            .ok_or(NodeError::NetworkOff)
    }

    fn schedule_sync(&self, peer: NodeId) {
        if let Ok(net) = self.inner.net.lock() {
            if let Some(net) = net.as_ref() {
                let _ = net.sync.try_send(peer);
            }
        }
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
            ..Config::default()
        };
        let (client, events, event_loop) = self
            .with_vaults(move |s| {
                polykey_network::new(&s.keys, config).map_err(|e| NodeError::Network(e.to_string()))
            })
            .await?;
        let event_loop = tokio::spawn(event_loop.run());
        for address in &options.listen {
            let address: Multiaddr = address
                .parse()
                .map_err(|_| NodeError::Network(format!("not an address: {address}")))?;
            if let Err(e) = client.listen(address).await {
                event_loop.abort();
                return Err(net_error(e));
            }
        }
        let (sync_tx, sync_rx) = mpsc::channel(64);
        let tasks = vec![
            event_loop,
            tokio::spawn(serve(self.weak(), client.clone(), events)),
            tokio::spawn(sync_worker(self.weak(), client.clone(), sync_rx)),
            tokio::spawn(watch_changes(self.weak(), client.clone())),
        ];
        let net = Net {
            client,
            tasks,
            sync: sync_tx,
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
        let Ok(client) = self.client() else { return };
        let Ok(known) = self
            .with_vaults(|s| {
                let members = gestalt(s)?;
                let txn = s.db.read()?;
                let mut out = Vec::new();
                for member in members {
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
            if self.inner.peer_state().online.contains(&peer) {
                continue;
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

    async fn remember_addresses(&self, peer: NodeId, addresses: Vec<String>) {
        let _ = self
            .with_vaults(move |s| {
                if !in_gestalt(s, &peer)? {
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
        self.with_vaults(move |s| {
            let me = s.keys.node_id();
            let txn = s.db.read()?;
            let mut out = Vec::new();
            for member in gestalt(s)? {
                if member == me {
                    out.push(Device {
                        node_id: me,
                        this_device: true,
                        online: true,
                        last_seen: now_ms(),
                        addresses: own.clone(),
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
                });
            }
            Ok(out)
        })
        .await
    }

    /// Unpair a device: forget the link (its claims stay on the chains).
    pub async fn remove_device(&self, device: NodeId) -> Result<bool, NodeError> {
        let removed = self
            .with_vaults(move |s| {
                Ok(GestaltGraph::new(&s.db).remove_link(s.keys.node_id(), device)?)
            })
            .await?;
        self.notify();
        Ok(removed)
    }

    /// The sync indicator's state.
    pub fn sync_status(&self) -> SyncStatus {
        self.inner.peer_state().sync.clone()
    }

    /// Open an invitation for a new device: the code to show as a QR code
    /// or text (with this device's addresses), valid ten minutes, once.
    /// A new invitation replaces an open one.
    pub async fn invite(&self) -> Result<Invitation, NodeError> {
        let mut addresses = self.addresses().await?;
        // Unspecified addresses cannot be dialled; expanded ones are listed.
        addresses.retain(|a| !a.contains("/0.0.0.0/") && !a.contains("/::/"));
        let me = self.status().node_id.ok_or(NodeError::Locked)?;
        let inviter = Inviter::new(me, addresses, now_secs());
        let invitation = inviter.invitation().clone();
        let mut state = self.inner.peer_state();
        state.inviter = Some(inviter);
        state.sessions.clear();
        state.pairing = Some(PairingState::Waiting {
            expires_at: invitation.expires_at,
        });
        drop(state);
        self.notify();
        Ok(invitation)
    }

    /// Close the open invitation.
    pub fn cancel_invitation(&self) {
        let mut state = self.inner.peer_state();
        state.inviter = None;
        state.sessions.clear();
        state.pairing = None;
    }

    /// What became of the open invitation.
    pub fn pairing_state(&self) -> PairingState {
        let state = self.inner.peer_state();
        match &state.pairing {
            Some(PairingState::Waiting { expires_at }) if now_secs() >= *expires_at => {
                PairingState::Failed("the pairing code expired".into())
            }
            Some(p) => p.clone(),
            None => PairingState::Idle,
        }
    }

    /// Join the gestalt of the device showing `code` (an invitation as text
    /// or the text of its QR code). Returns the inviter and the fingerprint
    /// both screens show. Then sync starts.
    pub async fn join(&self, code: &str) -> Result<(NodeId, String), NodeError> {
        let trimmed = code.trim();
        if !trimmed.starts_with("polykey-pair:") && looks_like_words(trimmed) {
            return self.join_with_words(trimmed).await;
        }
        let invitation = Invitation::from_code(code)?;
        if now_secs() >= invitation.expires_at {
            return Err(polykey_gestalts::pairing::PairingError::Expired.into());
        }
        let client = self.client()?;
        let inviter = invitation.inviter;
        let mut reached = false;
        let mut last = None;
        for address in &invitation.addresses {
            let Ok(address) = address.parse::<Multiaddr>() else {
                continue;
            };
            match client.dial(inviter, address).await {
                Ok(()) => {
                    reached = true;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if !reached {
            let found = self.inner.peer_state().discovered.get(&inviter).cloned();
            if let Some(address) = found {
                reached = client.dial(inviter, address).await.is_ok();
            }
        }
        if !reached {
            return Err(match last {
                Some(e) => net_error(e),
                None => NodeError::Network("the inviting device gave no address".into()),
            });
        }
        self.exchange(
            &client,
            inviter,
            invitation.words(),
            invitation.addresses.clone(),
        )
        .await
    }

    /// Join with the four typed words: the inviting device must be one this
    /// node sees (found by mDNS on the local network, or connected).
    async fn join_with_words(&self, words: &str) -> Result<(NodeId, String), NodeError> {
        let client = self.client()?;
        let discovered: Vec<(NodeId, Multiaddr)> = self
            .inner
            .peer_state()
            .discovered
            .iter()
            .map(|(n, a)| (*n, a.clone()))
            .collect();
        let mut candidates: Vec<NodeId> = client.connected().await.map_err(net_error)?;
        for (peer, address) in discovered {
            if !candidates.contains(&peer) && client.dial(peer, address).await.is_ok() {
                candidates.push(peer);
            }
        }
        let members = self.with_vaults(gestalt).await?;
        for inviter in candidates.into_iter().filter(|c| !members.contains(c)) {
            match self.exchange(&client, inviter, words, Vec::new()).await {
                // That device shows no code: try the next one.
                Err(NodeError::PeerRefused(reason)) if reason == NO_INVITATION => continue,
                other => return other,
            }
        }
        Err(NodeError::Network(
            "no device nearby is showing a pairing code; paste the whole code instead".into(),
        ))
    }

    /// The joiner's side of pairing with `inviter`, connected already.
    async fn exchange(
        &self,
        client: &Client,
        inviter: NodeId,
        words: &str,
        addresses: Vec<String>,
    ) -> Result<(NodeId, String), NodeError> {
        let me = self.status().node_id.ok_or(NodeError::Locked)?;
        let (joiner, hello) = Joiner::start(inviter, me, words);
        let challenge = ask_pairing(client, inviter, hello).await?;
        let (joiner, proof) = self
            .with_vaults(move |s| {
                let mut joiner = joiner;
                let chain = Sigchain::new(&s.db, s.keys.node_id());
                let proof = joiner.on_challenge(challenge, &s.keys, &chain, now_secs())?;
                Ok((joiner, proof))
            })
            .await?;
        let fingerprint = joiner.fingerprint().unwrap_or_default();
        let claims = ask_pairing(client, inviter, proof).await?;
        let done = self
            .with_vaults(move |s| {
                let mut joiner = joiner;
                let chain = Sigchain::new(&s.db, s.keys.node_id());
                Ok(joiner.on_claims(claims, &s.keys, &chain, &GestaltGraph::new(&s.db))?)
            })
            .await?;
        match client
            .request(inviter, Request::Pairing(done))
            .await
            .map_err(net_error)?
        {
            Response::Ok => {}
            other => return Err(refused(other)),
        }
        self.remember_addresses(inviter, addresses).await;
        self.inner.peer_state().online.insert(inviter);
        self.notify();
        self.schedule_sync(inviter);
        Ok((inviter, fingerprint))
    }

    /// Pull from `peer` now and wait for it (tests and the CLI).
    pub async fn sync_now(&self, peer: NodeId) -> Result<bool, NodeError> {
        let client = self.client()?;
        self.sync_with(&client, peer).await
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

    /// Ask `peer` for its sigchain (it answers any node) and time the round
    /// trip; the peer must be connected or findable.
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
            .request(peer, Request::Sigchain)
            .await
            .map_err(net_error)?
        {
            Response::Sigchain(_) => Ok(started.elapsed()),
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
        self.remember_addresses(peer, vec![address]).await;
        Ok(())
    }

    /// Answer one request from `peer`.
    async fn answer(&self, peer: NodeId, request: Request) -> Response {
        let result = match request {
            Request::Pairing(message) => self.answer_pairing(peer, message).await,
            Request::Sigchain => {
                self.with_vaults(|s| {
                    Ok(Response::Sigchain(
                        Sigchain::new(&s.db, s.keys.node_id()).claims()?,
                    ))
                })
                .await
            }
            Request::Links => {
                self.with_vaults(move |s| {
                    require_member(s, &peer)?;
                    let mut claims = GestaltGraph::new(&s.db).link_claims()?;
                    claims.truncate(MAX_LINKS);
                    Ok(Response::Links(claims))
                })
                .await
            }
            Request::Vaults => self.answer_vaults(peer).await,
            Request::Fetch {
                vault,
                want,
                haves,
                skip,
            } => self.answer_fetch(peer, vault, want, haves, skip).await,
            Request::Notify(signed) => self.receive_notification(peer, signed).await,
            Request::Changed => {
                let member = self.with_vaults(move |s| in_gestalt(s, &peer)).await;
                if matches!(member, Ok(true)) {
                    self.schedule_sync(peer);
                }
                Ok(Response::Ok)
            }
        };
        result.unwrap_or_else(|e| match e {
            NodeError::PeerRefused(reason) => Response::Refused(reason),
            other => Response::Refused(other.to_string()),
        })
    }

    async fn answer_pairing(
        &self,
        peer: NodeId,
        message: PairingMessage,
    ) -> Result<Response, NodeError> {
        match message {
            PairingMessage::Hello { joiner, .. } if joiner != peer => Err(NodeError::PeerRefused(
                "the hello names another node than the sender".into(),
            )),
            hello @ PairingMessage::Hello { .. } => {
                let mut state = self.inner.peer_state();
                let inviter = state
                    .inviter
                    .as_mut()
                    .ok_or_else(|| NodeError::PeerRefused(NO_INVITATION.into()))?;
                let outcome = inviter.on_hello(hello, now_secs());
                match outcome {
                    Ok((session, challenge)) => {
                        state.sessions.insert(peer, session);
                        Ok(Response::Pairing(challenge))
                    }
                    Err(e) => {
                        if !matches!(e, polykey_gestalts::pairing::PairingError::Malformed(_)) {
                            state.pairing = Some(PairingState::Failed(e.to_string()));
                        }
                        Err(e.into())
                    }
                }
            }
            proof @ PairingMessage::Proof { .. } => {
                let (mut inviter, mut session) = {
                    let mut state = self.inner.peer_state();
                    let session = state
                        .sessions
                        .remove(&peer)
                        .ok_or_else(|| NodeError::PeerRefused("pairing out of order".into()))?;
                    let inviter = state
                        .inviter
                        .take()
                        .ok_or_else(|| NodeError::PeerRefused(NO_INVITATION.into()))?;
                    (inviter, session)
                };
                let result = self
                    .with_vaults(move |s| {
                        let chain = Sigchain::new(&s.db, s.keys.node_id());
                        let graph = GestaltGraph::new(&s.db);
                        let answer = inviter.on_proof(
                            &mut session,
                            proof,
                            &s.keys,
                            &chain,
                            &graph,
                            now_secs(),
                        );
                        Ok((inviter, session, answer))
                    })
                    .await?;
                let (inviter, session, answer) = result;
                let mut state = self.inner.peer_state();
                match answer {
                    Ok(claims) => {
                        state.sessions.insert(peer, session);
                        state.inviter = Some(inviter);
                        Ok(Response::Pairing(claims))
                    }
                    Err(e) => {
                        state.inviter = Some(inviter);
                        if matches!(e, polykey_gestalts::pairing::PairingError::WrongCode) {
                            state.pairing = Some(PairingState::Failed(e.to_string()));
                        }
                        Err(e.into())
                    }
                }
            }
            done @ PairingMessage::Done { .. } => {
                let session = self
                    .inner
                    .peer_state()
                    .sessions
                    .remove(&peer)
                    .ok_or_else(|| NodeError::PeerRefused("pairing out of order".into()))?;
                let me = self.status().node_id.ok_or(NodeError::Locked)?;
                let fingerprint = session.fingerprint(&me);
                self.with_vaults(move |s| {
                    let chain = Sigchain::new(&s.db, s.keys.node_id());
                    session.on_done(done, &chain, &GestaltGraph::new(&s.db))?;
                    Ok(())
                })
                .await?;
                {
                    // The used invitation stays, so a second try with the
                    // same code hears that it was used.
                    let mut state = self.inner.peer_state();
                    state.pairing = Some(PairingState::Paired {
                        device: peer,
                        fingerprint,
                    });
                    state.online.insert(peer);
                }
                self.notify();
                self.schedule_sync(peer);
                Ok(Response::Ok)
            }
            _ => Err(NodeError::PeerRefused(
                "not a message for the inviter".into(),
            )),
        }
    }

    async fn answer_vaults(&self, peer: NodeId) -> Result<Response, NodeError> {
        self.with_vaults(move |s| {
            require_member(s, &peer)?;
            let vaults = Vaults::new(&s.db);
            let mut out = Vec::new();
            for info in vaults.list()? {
                let head = vaults.open(&info.id.to_string())?.head(&s.db)?;
                out.push(VaultSummary {
                    id: info.id.to_string(),
                    name: info.name,
                    renamed_at: info.renamed_at,
                    head,
                });
            }
            let deleted = vaults
                .deleted()?
                .into_iter()
                .map(|(id, deleted_at)| Deleted {
                    id: id.to_string(),
                    deleted_at,
                })
                .collect();
            Ok(Response::Vaults {
                vaults: out,
                deleted,
            })
        })
        .await
    }

    async fn answer_fetch(
        &self,
        peer: NodeId,
        vault: String,
        want: String,
        haves: Vec<String>,
        skip: u32,
    ) -> Result<Response, NodeError> {
        if haves.len() > MAX_HAVES {
            return Err(NodeError::PeerRefused("too many versions named".into()));
        }
        self.with_vaults(move |s| {
            require_member(s, &peer)?;
            let id: VaultId = vault.parse()?;
            let vault = Vaults::new(&s.db).open(&id.to_string())?;
            let (page, total) =
                vault.objects_page(&s.db, &want, &haves, skip as usize, PAGE_BYTES)?;
            let total = total as u32;
            let objects = page
                .into_iter()
                .map(|(id, mut object)| WireObject {
                    id,
                    kind: kind_tag(object.kind),
                    data: std::mem::take(&mut object.data),
                })
                .collect();
            Ok(Response::Objects { objects, total })
        })
        .await
    }

    /// Fetch every object of `want` that our copy (with `haves`) lacks.
    async fn fetch(
        &self,
        client: &Client,
        peer: NodeId,
        vault: &str,
        want: &str,
        haves: Vec<String>,
    ) -> Result<Vec<(String, RawObject)>, NodeError> {
        let mut received: Vec<(String, RawObject)> = Vec::new();
        loop {
            let request = Request::Fetch {
                vault: vault.to_owned(),
                want: want.to_owned(),
                haves: haves.clone(),
                skip: received.len() as u32,
            };
            let (objects, total) = match client.request(peer, request).await.map_err(net_error)? {
                Response::Objects { objects, total } => (objects, total as usize),
                other => return Err(refused(other)),
            };
            if total > MAX_IMPORT_OBJECTS {
                return Err(NodeError::PeerRefused("too many objects offered".into()));
            }
            if objects.is_empty() && received.len() < total {
                return Err(NodeError::PeerRefused("a transfer stopped short".into()));
            }
            for mut object in objects {
                let kind = kind_of_tag(object.kind)
                    .ok_or_else(|| NodeError::PeerRefused("an unknown object kind".into()))?;
                received.push((
                    std::mem::take(&mut object.id),
                    RawObject {
                        kind,
                        data: std::mem::take(&mut object.data),
                    },
                ));
            }
            if received.len() >= total {
                return Ok(received);
            }
        }
    }

    /// Pull everything new from `peer`. Returns whether anything changed here.
    async fn sync_with(&self, client: &Client, peer: NodeId) -> Result<bool, NodeError> {
        let member = self.with_vaults(move |s| in_gestalt(s, &peer)).await?;
        if !member {
            return Err(NodeError::PeerRefused(
                "not a device of this gestalt".into(),
            ));
        }
        // Devices the peer paired since join our gestalt too: their commits
        // are then accepted. Each claim must be signed by both its nodes and
        // touch a node already in the gestalt.
        if let Response::Links(claims) = client
            .request(peer, Request::Links)
            .await
            .map_err(net_error)?
        {
            if claims.len() > MAX_LINKS {
                return Err(NodeError::PeerRefused("too many links".into()));
            }
            let grew = self
                .with_vaults(move |s| {
                    let graph = GestaltGraph::new(&s.db);
                    let mut grew = false;
                    let mut pending = claims;
                    // Links may arrive in any order: add until nothing more fits.
                    loop {
                        let members = gestalt(s)?;
                        let before = pending.len();
                        pending.retain(|claim| {
                            let Ok(payload) = claim.verify() else {
                                return false;
                            };
                            let (a, b) = (payload.iss, payload.sub);
                            if members.contains(&a) && members.contains(&b) {
                                return false;
                            }
                            if members.contains(&a) || members.contains(&b) {
                                grew |= graph.add_link(claim).is_ok();
                                return false;
                            }
                            true
                        });
                        if pending.len() == before {
                            break;
                        }
                    }
                    Ok(grew)
                })
                .await?;
            if grew {
                self.notify();
            }
        }
        let (vaults, deleted) = match client
            .request(peer, Request::Vaults)
            .await
            .map_err(net_error)?
        {
            Response::Vaults { vaults, deleted } => (vaults, deleted),
            other => return Err(refused(other)),
        };
        if vaults.len() > MAX_VAULTS || deleted.len() > MAX_VAULTS {
            return Err(NodeError::PeerRefused("too many vaults listed".into()));
        }
        let me = self.status().node_id.ok_or(NodeError::Locked)?;
        let (local, gone, removed) = self
            .with_vaults(move |s| {
                let vaults = Vaults::new(&s.db);
                let mut removed = false;
                for d in &deleted {
                    if let Ok(id) = d.id.parse::<VaultId>() {
                        removed |= vaults.delete_synced(&id, d.deleted_at)?;
                    }
                }
                let mut local = HashMap::new();
                for info in vaults.list()? {
                    let vault = vaults.open(&info.id.to_string())?;
                    let head = vault.head(&s.db)?;
                    let recent: Vec<String> = vault
                        .log(&s.db, Some(MAX_HAVES))?
                        .into_iter()
                        .map(|c| c.id)
                        .collect();
                    local.insert(info.id.to_string(), (head, recent));
                }
                let gone: HashSet<String> = vaults
                    .deleted()?
                    .into_iter()
                    .map(|(id, _)| id.to_string())
                    .collect();
                Ok((local, gone, removed))
            })
            .await?;
        let mut changed = removed;
        for summary in vaults {
            if gone.contains(&summary.id) || summary.id.parse::<VaultId>().is_err() {
                continue;
            }
            match local.get(&summary.id) {
                None => {
                    let objects = self
                        .fetch(client, peer, &summary.id, &summary.head, Vec::new())
                        .await?;
                    self.with_vaults(move |s| {
                        let members = gestalt(s)?;
                        let may_author = |n: &NodeId| members.contains(n);
                        Vaults::new(&s.db).receive_vault(
                            &summary.name,
                            &summary.id,
                            summary.renamed_at,
                            &summary.head,
                            &objects,
                            &may_author,
                        )?;
                        Ok(())
                    })
                    .await?;
                    changed = true;
                }
                Some((head, recent)) => {
                    let id = summary.id.clone();
                    let (name, renamed_at) = (summary.name.clone(), summary.renamed_at);
                    changed |= self
                        .with_vaults(move |s| {
                            let id: VaultId = id.parse()?;
                            Ok(Vaults::new(&s.db).adopt_name(&id, &name, renamed_at)?)
                        })
                        .await?;
                    if *head == summary.head {
                        continue;
                    }
                    let (id, want) = (summary.id.clone(), summary.head.clone());
                    let present = self
                        .with_vaults(move |s| {
                            let vault = Vaults::new(&s.db).open(&id)?;
                            match vault.relation(&s.db, &want) {
                                Ok(_) => Ok(true),
                                Err(VaultError::UnknownVersion(_)) => Ok(false),
                                Err(e) => Err(e.into()),
                            }
                        })
                        .await?;
                    if !present {
                        let objects = self
                            .fetch(client, peer, &summary.id, &summary.head, recent.clone())
                            .await?;
                        let (id, want) = (summary.id.clone(), summary.head.clone());
                        self.with_vaults(move |s| {
                            let members = gestalt(s)?;
                            let may_author = |n: &NodeId| members.contains(n);
                            let vault = Vaults::new(&s.db).open(&id)?;
                            vault.receive(&s.db, &want, &objects, &may_author)?;
                            Ok(())
                        })
                        .await?;
                    }
                    let (id, want) = (summary.id.clone(), summary.head.clone());
                    let lower = me.as_bytes() < peer.as_bytes();
                    let (moved, ask_peer) = self
                        .with_vaults(move |s| {
                            let vault = Vaults::new(&s.db).open(&id)?;
                            match vault.relation(&s.db, &want)? {
                                Relation::UpToDate => Ok((false, true)),
                                Relation::Behind => {
                                    vault.merge(&s.db, &s.keys, &want)?;
                                    Ok((true, false))
                                }
                                Relation::Diverged if lower => {
                                    vault.merge(&s.db, &s.keys, &want)?;
                                    Ok((true, false))
                                }
                                // The peer merges; it pulls when told.
                                Relation::Diverged => Ok((false, true)),
                            }
                        })
                        .await?;
                    changed |= moved;
                    if ask_peer {
                        let _ = client.request(peer, Request::Changed).await;
                    }
                }
            }
        }
        if changed {
            self.notify();
        }
        Ok(changed)
    }

    /// A fingerprint of what peers see: vault ids, names, heads, deletions.
    async fn snapshot(&self) -> Result<Vec<String>, NodeError> {
        self.with_vaults(|s| {
            let vaults = Vaults::new(&s.db);
            let mut out = Vec::new();
            for info in vaults.list()? {
                let head = vaults.open(&info.id.to_string())?.head(&s.db)?;
                out.push(format!(
                    "{} {} {} {}",
                    info.id, info.renamed_at, info.name, head
                ));
            }
            for (id, _) in vaults.deleted()? {
                out.push(format!("deleted {id}"));
            }
            out.sort();
            Ok(out)
        })
        .await
    }

    fn db_generation(&self) -> Option<u64> {
        self.inner.generation()
    }
}

async fn ask_pairing(
    client: &Client,
    peer: NodeId,
    message: PairingMessage,
) -> Result<PairingMessage, NodeError> {
    match client
        .request(peer, Request::Pairing(message))
        .await
        .map_err(net_error)?
    {
        Response::Pairing(answer) => Ok(answer),
        Response::Refused(reason) => Err(NodeError::PeerRefused(reason)),
        _ => Err(NodeError::PeerRefused("an unexpected answer".into())),
    }
}

fn upgrade(weak: &Weak<Inner>) -> Option<Node> {
    weak.upgrade().map(|inner| Node { inner })
}

/// Answer requests and follow connections.
async fn serve(weak: Weak<Inner>, client: Client, mut events: mpsc::Receiver<Event>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_INBOUND));
    while let Some(event) = events.recv().await {
        let Some(node) = upgrade(&weak) else { return };
        match event {
            Event::InboundRequest {
                peer,
                request,
                responder,
            } => {
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    let busy = Response::Refused("busy; try again".into());
                    let _ = client.respond(responder, busy).await;
                    continue;
                };
                let client = client.clone();
                tokio::spawn(async move {
                    let response = node.answer(peer, request).await;
                    let _ = client.respond(responder, response).await;
                    drop(permit);
                });
            }
            Event::Connected { peer } => {
                let member = node.with_vaults(move |s| in_gestalt(s, &peer)).await;
                if matches!(member, Ok(true)) {
                    node.inner.peer_state().online.insert(peer);
                    node.notify();
                    node.schedule_sync(peer);
                }
            }
            Event::Disconnected { peer } => {
                if node.inner.peer_state().online.remove(&peer) {
                    node.notify();
                }
            }
            Event::PeerDiscovered { peer, address } => {
                node.inner
                    .peer_state()
                    .discovered
                    .insert(peer, address.clone());
                let member = node.with_vaults(move |s| in_gestalt(s, &peer)).await;
                if matches!(member, Ok(true)) && !node.inner.peer_state().online.contains(&peer) {
                    let _ = client.dial(peer, address).await;
                }
            }
            Event::Identified { peer, addresses } => {
                let addresses = addresses
                    .iter()
                    .filter(|a| {
                        let text = a.to_string();
                        !text.contains("/0.0.0.0/") && !text.contains("/::/")
                    })
                    .map(ToString::to_string)
                    .collect();
                node.remember_addresses(peer, addresses).await;
            }
        }
    }
}

/// Pull from peers one at a time, as asked.
async fn sync_worker(weak: Weak<Inner>, client: Client, mut asks: mpsc::Receiver<NodeId>) {
    let mut every = tokio::time::interval(RESYNC_EVERY);
    every.tick().await;
    loop {
        let mut peers = BTreeSet::new();
        tokio::select! {
            asked = asks.recv() => match asked {
                Some(peer) => { peers.insert(peer); }
                None => return,
            },
            _ = every.tick() => {
                let Some(node) = upgrade(&weak) else { return };
                peers.extend(node.inner.peer_state().online.iter().copied());
            }
        }
        // Coalesce asks that queued meanwhile.
        while let Ok(peer) = asks.try_recv() {
            peers.insert(peer);
        }
        for peer in peers {
            let Some(node) = upgrade(&weak) else { return };
            node.inner.peer_state().sync.syncing = true;
            node.notify();
            let result = node.sync_with(&client, peer).await;
            if result.is_err() {
                // A transient failure (a dropped connection, a busy peer)
                // is tried again soon rather than at the next resync.
                let weak = weak.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(RETRY_AFTER).await;
                    if let Some(node) = upgrade(&weak) {
                        if node.inner.peer_state().online.contains(&peer) {
                            node.schedule_sync(peer);
                        }
                    }
                });
            }
            {
                let mut state = node.inner.peer_state();
                state.sync.syncing = false;
                state.sync.last_sync = now_ms();
                state.sync.last_error = result.err().map(|e| e.to_string());
            }
            node.notify();
        }
    }
}

/// Tell connected devices of the gestalt when our vaults change.
async fn watch_changes(weak: Weak<Inner>, client: Client) {
    let mut last_generation = None;
    let mut last_snapshot: Option<Vec<String>> = None;
    let mut redial = tokio::time::interval(REDIAL_EVERY);
    loop {
        let commits = match weak.upgrade() {
            Some(inner) => Arc::clone(&inner.commits),
            None => return,
        };
        tokio::select! {
            _ = commits.notified() => {}
            // A fallback; commits normally wake the watcher at once.
            _ = tokio::time::sleep(WATCH_EVERY) => {}
            _ = redial.tick() => {
                if let Some(node) = upgrade(&weak) {
                    node.redial().await;
                }
                continue;
            }
        }
        let Some(node) = upgrade(&weak) else { return };
        let generation = node.db_generation();
        if generation.is_none() || generation == last_generation {
            continue;
        }
        last_generation = generation;
        let Ok(snapshot) = node.snapshot().await else {
            continue;
        };
        if last_snapshot.as_ref() == Some(&snapshot) {
            continue;
        }
        // The first look announces too: a peer that pulls finds nothing new
        // at worst, and nothing changed before the watch began goes unsaid.
        last_snapshot = Some(snapshot);
        let online: Vec<NodeId> = node.inner.peer_state().online.iter().copied().collect();
        for peer in online {
            let _ = client.request(peer, Request::Changed).await;
        }
    }
}

/// Largest picture of a QR code read (bytes).
const MAX_QR_IMAGE_BYTES: usize = 20 * 1024 * 1024;

/// The pairing code in a picture of a QR code (PNG or JPEG), as another
/// device's Add device screen shows it.
pub fn code_from_qr_image(bytes: &[u8]) -> Result<String, NodeError> {
    let unreadable = || NodeError::Invalid("no pairing QR code found in that picture".into());
    if bytes.len() > MAX_QR_IMAGE_BYTES {
        return Err(unreadable());
    }
    let picture = image::load_from_memory(bytes)
        .map_err(|_| unreadable())?
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(picture);
    for grid in prepared.detect_grids() {
        if let Ok((_, text)) = grid.decode() {
            if text.trim().starts_with("polykey-pair:") {
                return Ok(text);
            }
        }
    }
    Err(unreadable())
}

/// The same operations in their transport form, for the front ends.
impl Node {
    /// Devices, for the Devices page.
    pub async fn devices_dto(&self) -> Result<Vec<crate::api::DeviceDto>, NodeError> {
        Ok(self.devices().await?.into_iter().map(Into::into).collect())
    }

    /// A new invitation, with its QR code.
    pub async fn invite_dto(&self) -> Result<crate::api::InvitationDto, NodeError> {
        Ok((&self.invite().await?).into())
    }

    /// Join with a pasted (or scanned) code.
    pub async fn join_dto(&self, code: String) -> Result<crate::api::JoinedDto, NodeError> {
        let (device, fingerprint) = self.join(&code).await?;
        Ok(crate::api::JoinedDto {
            device: device.to_string(),
            fingerprint,
        })
    }

    /// Join with the QR code in a picture (PNG or JPEG bytes).
    pub async fn join_qr_image_dto(
        &self,
        bytes: Vec<u8>,
    ) -> Result<crate::api::JoinedDto, NodeError> {
        let code = tokio::task::spawn_blocking(move || code_from_qr_image(&bytes))
            .await
            .map_err(|e| NodeError::Internal(e.to_string()))??;
        self.join_dto(code).await
    }

    /// Unpair a device by its NodeId text.
    pub async fn remove_device_text(&self, device: String) -> Result<bool, NodeError> {
        let device: NodeId = device
            .parse()
            .map_err(|_| NodeError::Invalid("not a NodeId".into()))?;
        self.remove_device(device).await
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

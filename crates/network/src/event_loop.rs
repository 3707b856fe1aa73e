//! The event loop: the one task that owns the `Swarm`. It carries out the
//! [`Client`]'s commands, passes what peers say to the node as
//! [`Event`]s, and enforces the [`limits`](crate::limits) on the way.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::core::transport::{ListenerId, Transport as _};
use libp2p::core::upgrade::Version;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    autonat, dcutr, identify, kad, mdns, noise, ping, relay, tcp, Multiaddr, PeerId,
    StreamProtocol, Swarm,
};
use polykey_keys::RootKeypair;
use tokio::sync::{mpsc, oneshot};

use crate::actor::{Client, Command, Config, Event, NetworkError, Responder};
use crate::codec::Codec;
use crate::identity::{keypair, node_id, peer_id};
use crate::limits::{self as limit, Rate};
use crate::muxer;
use crate::outbox::{Offer, Outbox};
use crate::protocol::{Request, Response, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, PROTOCOL};

/// The Kademlia protocol name (Polykey's own DHT, not the public IPFS one).
const KAD_PROTOCOL: &str = "/polykey/kad/1";

#[derive(NetworkBehaviour)]
struct Behaviour {
    // First, so a connection past the limits is denied before any other
    // behaviour sets anything up for it.
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    relay_client: relay::client::Behaviour,
    relay_server: Toggle<relay::Behaviour>,
    dcutr: dcutr::Behaviour,
    autonat: autonat::Behaviour,
    ping: ping::Behaviour,
    rpc: request_response::Behaviour<Codec<Request, Response>>,
}

/// The task that owns the swarm. Run it with [`EventLoop::run`].
///
/// It never waits for anyone: the node's answers come back as commands, so
/// a loop that waited for the node to take an event would be waiting on
/// itself. Inbound requests that do not fit are answered "busy" here, and
/// connection, identify and mDNS reports wait in an outbox that keeps a
/// bounded, coalesced backlog.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    outbox: Outbox,
    pending_listen: HashMap<ListenerId, oneshot::Sender<Result<Multiaddr, NetworkError>>>,
    pending_dial: HashMap<PeerId, Vec<oneshot::Sender<Result<(), NetworkError>>>>,
    /// This node's requests waiting for their answers, and the peer each
    /// went to.
    pending_requests: HashMap<OutboundRequestId, (PeerId, ReplyTo)>,
    /// How many of them each peer has.
    pending_per_peer: HashMap<PeerId, usize>,
    pending_find: HashMap<kad::QueryId, FindReply>,
    /// Request budgets of strangers and of trusted peers (kept apart so
    /// strangers filling their table never touch a device's budget).
    stranger_rate: Rate<PeerId>,
    trusted_rate: Rate<PeerId>,
    /// Request budgets of other people, each shared by their devices.
    person_rate: Rate<PeerId>,
    trusted: HashSet<PeerId>,
    /// The same with the seeds, as each connection's muxer sees them.
    muxer_trusted: muxer::Trusted,
    /// The trusted peers that are other people's devices, each with its
    /// person's key: their connections and requests count together.
    people: HashMap<PeerId, PeerId>,
    /// Peers kept out of the DHT's routing table.
    hidden: HashSet<PeerId>,
    /// mDNS discoveries passed on, in all.
    discovery_rate: Rate<()>,
    /// The configured seeds: a seed that relays is listened through.
    seeds: HashMap<PeerId, Multiaddr>,
    /// Seeds listened through now, and the listener doing it.
    relay_listeners: HashMap<PeerId, ListenerId>,
    relay_server: bool,
    /// Connections of strangers (neither a device nor a seed), at most
    /// `max_strangers` once each new one has made its room.
    strangers: Vec<(ConnectionId, PeerId)>,
    max_strangers: usize,
    /// Every open connection (at most the limits, and the devices').
    open: HashMap<ConnectionId, PeerId>,
    /// When each open connection was last heard on, from establishment
    /// until it closes.
    heard: HashMap<ConnectionId, Heard>,
    /// How long a connection whose ping failed must have been silent to
    /// be closed: two ping intervals.
    silent_for: Duration,
    /// Circuits this node relays now, by each end: a connection carrying
    /// circuits is busy, whatever its own requests (bounded by the relay's
    /// circuit limit).
    circuits: HashMap<PeerId, usize>,
}

/// When a connection last carried a whole request or answer (or a ping's
/// answer): one busy with a long transfer on a slow link may miss a ping
/// queued behind it and is not dead.
struct Heard {
    at: Instant,
    /// The relay a relayed connection runs through: what the relayed
    /// connection carries, its connection to the relay carries too.
    via: Option<PeerId>,
}

/// Who waits for the answer to one of this node's requests.
type ReplyTo = oneshot::Sender<Result<Response, NetworkError>>;
type FindReply = (
    PeerId,
    oneshot::Sender<Result<Vec<Multiaddr>, NetworkError>>,
);

/// Build the network of the node with these keys.
pub fn new(
    keys: &RootKeypair,
    config: Config,
) -> Result<(Client, mpsc::Receiver<Event>, EventLoop), NetworkError> {
    let identity = keypair(keys);
    let local = identity.public().to_peer_id();
    let setup = |e: &dyn std::fmt::Display| NetworkError::Setup(e.to_string());
    // Each connection's muxer knows its peer (from the Noise handshake)
    // and asks `trusted` whether to hold it to a stranger's bounds.
    let trusted = muxer::Trusted::new(config.relay_server);
    let muxer_for = |trusted: &muxer::Trusted| {
        let trusted = trusted.clone();
        move |peer: &PeerId, _: &libp2p::core::ConnectedPoint| {
            muxer::Config::for_peer(peer, &trusted)
        }
    };
    let (relay_transport, relay_client) = relay::client::new(local);
    let swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
        .with_tokio()
        .with_quic_config(|mut quic| {
            // What a peer may send unread, in all and on one stream (quinn
            // holds it for streams not yet taken): libp2p's 15 MB and 10 MB
            // let each of 224 strangers' connections keep 15 MB.
            quic.max_connection_data = muxer::MAX_QUIC_CONNECTION_DATA;
            quic.max_stream_data = muxer::MAX_QUIC_STREAM_DATA;
            quic
        })
        .with_other_transport(
            |key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
                Ok(tcp::tokio::Transport::new(tcp::Config::default())
                    .upgrade(Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex_ext(muxer_for(&trusted)))
            },
        )
        .map_err(|e| setup(&e))?
        .with_other_transport(
            |key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
                Ok(relay_transport
                    .upgrade(Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex_ext(muxer_for(&trusted)))
            },
        )
        .map_err(|e| setup(&e))?
        .with_behaviour(|key| {
            let mdns = if config.mdns {
                Some(mdns::tokio::Behaviour::new(mdns::Config::default(), local)?)
            } else {
                None
            };
            let codec = Codec::new(MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES);
            let mut kad_config = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
            // Polykey uses the DHT to find peers only: records other peers
            // push are reported as events (and ignored), never stored.
            kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
            let mut kad =
                kad::Behaviour::with_config(local, kad::store::MemoryStore::new(local), kad_config);
            kad.set_mode(Some(kad::Mode::Server));
            for (node, address) in &config.seeds {
                if let Some(peer) = peer_id(node) {
                    kad.add_address(&peer, address.clone());
                }
            }
            let relay_server = config
                .relay_server
                .then(|| relay::Behaviour::new(local, relay_config()));
            let limits = ConnectionLimits::default()
                .with_max_established(Some(config.max_connections))
                .with_max_established_per_peer(Some(config.max_connections_per_peer))
                .with_max_pending_incoming(Some(config.max_pending_incoming))
                .with_max_pending_outgoing(Some(config.max_pending_outgoing));
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(limits),
                identify: identify::Behaviour::new(
                    identify::Config::new("/polykey/id/1".into(), key.public())
                        // Tell connected peers at once when a relayed
                        // address appears, so the relay's DHT has it.
                        .with_push_listen_addr_updates(true),
                ),
                mdns: mdns.into(),
                kad,
                relay_client,
                relay_server: relay_server.into(),
                dcutr: dcutr::Behaviour::new(local),
                autonat: autonat::Behaviour::new(local, autonat::Config::default()),
                ping: ping::Behaviour::new(
                    ping::Config::new()
                        .with_interval(config.ping_interval)
                        .with_timeout(config.ping_interval),
                ),
                rpc: request_response::Behaviour::with_codec(
                    codec,
                    [(StreamProtocol::new(PROTOCOL), ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(config.request_timeout),
                ),
            })
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(config.idle_timeout)
                .with_max_negotiating_inbound_streams(muxer::MAX_NEGOTIATING_INBOUND_STREAMS)
        })
        .build();
    let mut swarm = swarm;
    // The loop connects to them on its first turn (and again whenever one
    // is lost).
    let seeds: HashMap<PeerId, Multiaddr> = config
        .seeds
        .iter()
        .filter_map(|(node, address)| Some((peer_id(node)?, address.clone())))
        .collect();
    // Strangers filling the connection limits must not cut the node off
    // from its seeds (and so from its relays).
    for seed in seeds.keys() {
        swarm.behaviour_mut().limits.bypass_peer_id(seed);
    }
    trusted.set(seeds.keys().copied().collect());
    if !config.seeds.is_empty() {
        // Fails only without known peers, which the seeds just gave.
        let _ = swarm.behaviour_mut().kad.bootstrap();
    }
    let (command_tx, command_rx) = mpsc::channel(64);
    let (event_tx, event_rx) = mpsc::channel(limit::EVENT_QUEUE);
    let refill = f64::from(config.request_refill_per_sec);
    Ok((
        Client {
            commands: command_tx,
        },
        event_rx,
        EventLoop {
            swarm,
            commands: command_rx,
            outbox: Outbox::new(event_tx),
            pending_listen: HashMap::new(),
            pending_dial: HashMap::new(),
            pending_requests: HashMap::new(),
            pending_per_peer: HashMap::new(),
            pending_find: HashMap::new(),
            stranger_rate: Rate::new(config.request_burst, refill, limit::MAX_RATED_PEERS),
            trusted_rate: Rate::new(
                limit::TRUSTED_REQUEST_BURST,
                f64::from(limit::TRUSTED_REQUEST_REFILL_PER_SEC),
                limit::MAX_TRUSTED,
            ),
            person_rate: Rate::new(
                limit::PERSON_REQUEST_BURST,
                f64::from(limit::TRUSTED_REQUEST_REFILL_PER_SEC),
                limit::MAX_TRUSTED,
            ),
            trusted: HashSet::new(),
            muxer_trusted: trusted,
            people: HashMap::new(),
            hidden: HashSet::new(),
            discovery_rate: Rate::new(
                limit::MAX_DISCOVERED_PER_MINUTE,
                f64::from(limit::MAX_DISCOVERED_PER_MINUTE) / 60.0,
                1,
            ),
            seeds,
            relay_listeners: HashMap::new(),
            relay_server: config.relay_server,
            strangers: Vec::new(),
            max_strangers: limit::max_strangers(config.max_connections),
            open: HashMap::new(),
            heard: HashMap::new(),
            silent_for: config.ping_interval * 2,
            circuits: HashMap::new(),
        },
    ))
}

/// What a relay server allows: enough for a whole sync page per circuit
/// (see [`limit::RELAY_CIRCUIT_BYTES`]).
fn relay_config() -> relay::Config {
    relay::Config {
        max_reservations: limit::RELAY_MAX_RESERVATIONS,
        max_reservations_per_peer: limit::RELAY_MAX_RESERVATIONS_PER_PEER,
        max_circuits: limit::RELAY_MAX_CIRCUITS,
        max_circuits_per_peer: limit::RELAY_MAX_CIRCUITS_PER_PEER,
        max_circuit_duration: limit::RELAY_CIRCUIT_DURATION,
        max_circuit_bytes: limit::RELAY_CIRCUIT_BYTES,
        ..relay::Config::default()
    }
}

/// Whether `address` goes through a relay.
fn is_relayed(address: &Multiaddr) -> bool {
    address.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// The relay a connection runs through: the peer named before
/// `/p2p-circuit` in the address dialed, or, for one that came in through
/// a relay, in the address it came in on.
fn relay_of(endpoint: &libp2p::core::ConnectedPoint) -> Option<PeerId> {
    let address = match endpoint {
        libp2p::core::ConnectedPoint::Dialer { address, .. } => address,
        libp2p::core::ConnectedPoint::Listener { local_addr, .. } => local_addr,
    };
    let mut relay = None;
    for protocol in address.iter() {
        match protocol {
            Protocol::P2p(peer) => relay = Some(peer),
            Protocol::P2pCircuit => return relay,
            _ => {}
        }
    }
    None
}

/// Whether `address` names no one host (0.0.0.0, ::).
fn is_unspecified(address: &Multiaddr) -> bool {
    address.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

impl EventLoop {
    /// Run until every [`Client`] is dropped.
    pub async fn run(mut self) {
        let mut seed_check = tokio::time::interval(limit::SEED_REDIAL_EVERY);
        seed_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let room = self.outbox.sender();
            let reports_wait = !self.outbox.is_empty();
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm(event),
                _ = seed_check.tick(), if !self.seeds.is_empty() => self.dial_seeds(),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                // Waiting for room is one branch among the others, never
                // the only thing the loop does.
                permit = room.reserve_owned(), if reports_wait => match permit {
                    Ok(permit) => self.outbox.send_reserved(permit),
                    Err(_) => self.outbox.close(),
                },
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Listen { address, reply } => match self.swarm.listen_on(address) {
                Ok(id) => {
                    self.pending_listen.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(NetworkError::Listen(e.to_string())));
                }
            },
            Command::Dial {
                peer,
                address,
                reply,
            } => self.dial(peer, address, reply),
            Command::Request {
                peer,
                request,
                reply,
            } => {
                if self.pending_requests.len() >= limit::MAX_PENDING_REQUESTS {
                    let busy = NetworkError::Request("too many requests under way".into());
                    let _ = reply.send(Err(busy));
                    return;
                }
                let to_peer = self.pending_per_peer.entry(peer).or_default();
                if *to_peer >= limit::MAX_PENDING_REQUESTS_PER_PEER {
                    let busy = NetworkError::Request("too many requests to this peer".into());
                    let _ = reply.send(Err(busy));
                    return;
                }
                *to_peer += 1;
                let id = self.swarm.behaviour_mut().rpc.send_request(&peer, request);
                self.pending_requests.insert(id, (peer, reply));
            }
            Command::Respond {
                responder,
                response,
                reply,
            } => {
                let sent = self
                    .swarm
                    .behaviour_mut()
                    .rpc
                    .send_response(responder.0, response)
                    .map_err(|_| NetworkError::Request("the peer is gone".into()));
                let _ = reply.send(sent);
            }
            Command::Connected { reply } => {
                let peers = self.swarm.connected_peers().filter_map(node_id).collect();
                let _ = reply.send(peers);
            }
            Command::Addresses { reply } => {
                let mut addresses: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                for address in self.swarm.external_addresses() {
                    if !addresses.contains(address) {
                        addresses.push(address.clone());
                    }
                }
                let _ = reply.send(addresses);
            }
            Command::Find { peer, reply } => {
                if self.pending_find.len() >= limit::MAX_PENDING_FINDS {
                    let busy = NetworkError::Request("too many lookups under way".into());
                    let _ = reply.send(Err(busy));
                    return;
                }
                let id = self.swarm.behaviour_mut().kad.get_closest_peers(peer);
                self.pending_find.insert(id, (peer, reply));
            }
            Command::Disconnect { peers, reply } => {
                for peer in peers {
                    // A seed stays: it is this node's way in.
                    if !self.seeds.contains_key(&peer) {
                        let _ = self.swarm.disconnect_peer_id(peer);
                    }
                }
                let _ = reply.send(());
            }
            Command::Hide { peers, reply } => {
                let kad = &mut self.swarm.behaviour_mut().kad;
                for peer in &peers {
                    if !self.seeds.contains_key(peer) {
                        kad.remove_peer(peer);
                    }
                }
                self.hidden = peers.into_iter().collect();
                let _ = reply.send(());
            }
            Command::Trust {
                peers,
                people,
                reply,
            } => {
                let peers: HashSet<PeerId> = peers.into_iter().collect();
                let gone: Vec<PeerId> = self
                    .trusted
                    .difference(&peers)
                    .filter(|p| !self.seeds.contains_key(*p))
                    .copied()
                    .collect();
                let limits = &mut self.swarm.behaviour_mut().limits;
                for peer in &gone {
                    limits.remove_peer_id(peer);
                }
                // A peer no longer trusted (a removed device, a pairing
                // that ended) is a stranger again, with the connections it
                // opened while exempt: they count against the strangers'
                // limit, and make room like any other.
                let demoted: Vec<(ConnectionId, PeerId)> = self
                    .open
                    .iter()
                    .filter(|(_, p)| gone.contains(p))
                    .map(|(c, p)| (*c, *p))
                    .collect();
                self.strangers.extend(demoted);
                self.strangers.retain(|(_, peer)| !peers.contains(peer));
                self.evict_past_limit(None);
                let limits = &mut self.swarm.behaviour_mut().limits;
                for peer in &peers {
                    limits.bypass_peer_id(peer);
                }

                self.strangers.retain(|(_, peer)| !peers.contains(peer));
                self.muxer_trusted
                    .set(peers.iter().chain(self.seeds.keys()).copied().collect());
                self.trusted = peers;
                // A seed a person lists (anyone can) stays a seed, bound
                // to no one's share.
                self.people = people
                    .into_iter()
                    .filter(|(peer, _)| !self.seeds.contains_key(peer))
                    .collect();
                // A person's devices trusted just now may hold more than
                // their share already.
                let keys: HashSet<PeerId> = self.people.values().copied().collect();
                for key in keys {
                    while self.past_persons_share(key) {}
                }
                let _ = reply.send(());
            }
        }
    }

    /// Keep a stranger's new connection and, past `max_strangers`, close
    /// another stranger's connection picked at random. Strangers holding
    /// every connection (pinging so none is idle) would otherwise keep out
    /// anyone new, such as a device being paired, which is a stranger until
    /// the pairing ends; now each newcomer gets in, and a flood only
    /// replaces its own connections, each one a random pick.
    fn make_room_for(&mut self, connection: ConnectionId, peer: PeerId) {
        self.strangers.push((connection, peer));
        self.evict_past_limit(Some(connection));
    }

    /// When the devices of the person `person` stands for hold more than
    /// [`limit::MAX_CONNECTIONS_PER_PERSON`] connections, close their
    /// oldest (ids only grow: a device that moved networks leaves dead
    /// ones behind) and say so.
    fn past_persons_share(&mut self, person: PeerId) -> bool {
        let theirs: Vec<ConnectionId> = self
            .open
            .iter()
            .filter(|(_, p)| self.people.get(*p) == Some(&person))
            .map(|(c, _)| *c)
            .collect();
        if theirs.len() <= limit::MAX_CONNECTIONS_PER_PERSON {
            return false;
        }
        let Some(oldest) = theirs.into_iter().min() else {
            return false;
        };
        // Out of the count at once, as for a device's own limit.
        self.open.remove(&oldest);
        self.swarm.close_connection(oldest);
        true
    }

    /// Close strangers' connections picked at random until they hold no
    /// more than `max_strangers`; `keep` (a newcomer) only when no other
    /// is left.
    fn evict_past_limit(&mut self, keep: Option<ConnectionId>) {
        while self.strangers.len() > self.max_strangers {
            let candidates: Vec<usize> = (0..self.strangers.len())
                .filter(|i| Some(self.strangers[*i].0) != keep)
                .collect();
            let at = match candidates.len() {
                0 => 0,
                n => candidates[usize::try_from(random_u64() % n as u64).unwrap_or(0)],
            };
            let (evicted, _) = self.strangers.swap_remove(at);
            self.swarm.close_connection(evicted);
        }
    }

    /// Connect to every seed not connected: the node listens through the
    /// seeds that relay, and that needs a connection to them.
    fn dial_seeds(&mut self) {
        for (peer, address) in &self.seeds {
            if !self.swarm.is_connected(peer) {
                let opts = DialOpts::peer_id(*peer)
                    .addresses(vec![address.clone()])
                    .build();
                // A dial already under way refuses this one: fine.
                let _ = self.swarm.dial(opts);
            }
        }
    }

    fn dial(
        &mut self,
        peer: PeerId,
        address: Multiaddr,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    ) {
        if self.swarm.is_connected(&peer) {
            let _ = reply.send(Ok(()));
            return;
        }
        let waiting = self.pending_dial.get(&peer).map_or(0, Vec::len);
        if waiting >= limit::MAX_WAITERS_PER_DIAL
            || (waiting == 0 && self.pending_dial.len() >= limit::MAX_PENDING_DIALS)
        {
            let _ = reply.send(Err(NetworkError::Dial("too many dials under way".into())));
            return;
        }
        // Over TCP, from a new port, not the listening one (libp2p's
        // default): two nodes dialling each other at once from their
        // listening ports make one TCP connection (a simultaneous open)
        // that both think they opened, and both security handshakes fail
        // ("input error"). Two devices that lose their connection redial
        // each other a second later, at the same moment. (QUIC has no such
        // open, and a new port there is a new UDP endpoint per dial.)
        let tcp = address.iter().any(|p| matches!(p, Protocol::Tcp(_)));
        let opts = DialOpts::peer_id(peer).addresses(vec![address]);
        let opts = if tcp { opts.allocate_new_port() } else { opts }.build();
        match self.swarm.dial(opts) {
            Ok(()) => self.pending_dial.entry(peer).or_default().push(reply),
            // A dial already under way (the DHT's, say) answers this one too.
            Err(libp2p::swarm::DialError::DialPeerConditionFalse(_)) => {
                self.pending_dial.entry(peer).or_default().push(reply)
            }
            Err(e) => {
                let _ = reply.send(Err(NetworkError::Dial(e.to_string())));
            }
        }
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                if let Some(reply) = self.pending_listen.remove(&listener_id) {
                    let _ = reply.send(Ok(address.clone()));
                }
                // A relay is reachable where it listens, by definition: its
                // reservations must name those addresses.
                if self.relay_server && !is_relayed(&address) && !is_unspecified(&address) {
                    self.swarm.add_external_address(address);
                }
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                if let Some(reply) = self.pending_listen.remove(&listener_id) {
                    let why = match reason {
                        Ok(()) => "closed".to_string(),
                        Err(e) => e.to_string(),
                    };
                    let _ = reply.send(Err(NetworkError::Listen(why)));
                }
                // Listen through that relay again when it next says hello.
                self.relay_listeners.retain(|_, id| *id != listener_id);
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                if let Some(reply) = self.pending_listen.remove(&listener_id) {
                    let _ = reply.send(Err(NetworkError::Listen(error.to_string())));
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                endpoint,
                ..
            } => {
                self.open.insert(connection_id, peer_id);
                let via = relay_of(&endpoint);
                let at = Instant::now();
                self.heard.insert(connection_id, Heard { at, via });
                if !self.trusted.contains(&peer_id) && !self.seeds.contains_key(&peer_id) {
                    self.make_room_for(connection_id, peer_id);
                } else if num_established.get() > limit::MAX_CONNECTIONS_PER_TRUSTED_PEER {
                    // Exempt from the limits, not without one. The oldest
                    // goes (ids only grow): a device that moved networks
                    // leaves dead connections behind, and its new one is
                    // the one that works.
                    let oldest = self
                        .open
                        .iter()
                        .filter(|(_, p)| **p == peer_id)
                        .map(|(c, _)| *c)
                        .min();
                    if let Some(oldest) = oldest {
                        // Out of the count at once: the next one to come
                        // before it has closed picks another.
                        self.open.remove(&oldest);
                        self.swarm.close_connection(oldest);
                    }
                }
                if let Some(&person) = self.people.get(&peer_id) {
                    self.past_persons_share(person);
                }
                if let Some(replies) = self.pending_dial.remove(&peer_id) {
                    for reply in replies {
                        let _ = reply.send(Ok(()));
                    }
                }
                if num_established.get() == 1 {
                    if let Some(peer) = node_id(&peer_id) {
                        self.outbox.report(Event::Connected { peer });
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer_id),
                error,
                ..
            } => {
                if let Some(replies) = self.pending_dial.remove(&peer_id) {
                    for reply in replies {
                        let _ = reply.send(Err(NetworkError::Dial(error.to_string())));
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.open.remove(&connection_id);
                self.heard.remove(&connection_id);
                if let Some(at) = self.strangers.iter().position(|(c, _)| *c == connection_id) {
                    self.strangers.swap_remove(at);
                }
                if num_established == 0 {
                    if let Some(peer) = node_id(&peer_id) {
                        self.outbox.report(Event::Disconnected { peer });
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(event)) => self.on_rpc(event),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                connection,
                result: Ok(_),
                ..
            })) => self.heard_on(connection),
            // A connection whose peer stopped answering is closed: the
            // requests it holds fail at once, the next dial is fresh, and
            // the peer shows offline. libp2p reports the second failure in
            // a row: a ping unanswered, then a new stream for the next not
            // opened in 10 s. Not if it carried a request or an answer
            // lately: a ping can wait behind a long transfer on a slow
            // link. (A peer without ping, a node older than it, is not a
            // silent one: it answers "unsupported".)
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                connection,
                result: Err(failure),
                ..
            })) if !matches!(failure, ping::Failure::Unsupported) => {
                let relaying = self
                    .open
                    .get(&connection)
                    .is_some_and(|peer| self.circuits.contains_key(peer));
                let silent = !relaying
                    && self
                        .heard
                        .get(&connection)
                        .is_none_or(|heard| heard.at.elapsed() >= self.silent_for);
                if silent {
                    self.swarm.close_connection(connection);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => self.on_identify(peer_id, info),
            // The DHT adds the peers it meets by itself; a hidden one is
            // taken out again at once.
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer, ..
            })) if self.hidden.contains(&peer) && !self.seeds.contains_key(&peer) => {
                self.swarm.behaviour_mut().kad.remove_peer(&peer);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result,
                step,
                ..
            })) => self.on_kad(id, result, step.last),
            SwarmEvent::Behaviour(BehaviourEvent::RelayServer(
                relay::Event::CircuitReqAccepted {
                    src_peer_id,
                    dst_peer_id,
                },
            )) => {
                for peer in [src_peer_id, dst_peer_id] {
                    *self.circuits.entry(peer).or_default() += 1;
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::RelayServer(relay::Event::CircuitClosed {
                src_peer_id,
                dst_peer_id,
                ..
            })) => {
                for peer in [src_peer_id, dst_peer_id] {
                    if let Some(n) = self.circuits.get_mut(&peer) {
                        *n -= 1;
                        if *n == 0 {
                            self.circuits.remove(&peer);
                        }
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                let now = Instant::now();
                for (peer_id, address) in found.into_iter().take(limit::MAX_DISCOVERED_PER_EVENT) {
                    if !self.discovery_rate.allow((), now) {
                        break;
                    }
                    if let Some(peer) = node_id(&peer_id) {
                        self.outbox.report(Event::PeerDiscovered { peer, address });
                    }
                }
            }
            _ => {}
        }
    }

    fn on_identify(&mut self, peer_id: PeerId, info: identify::Info) {
        let addresses: Vec<Multiaddr> = info
            .listen_addrs
            .into_iter()
            .take(limit::MAX_IDENTIFY_ADDRESSES)
            .collect();
        let speaks = |name: &str| info.protocols.iter().any(|p| p.as_ref() == name);
        // Peers speaking our DHT become routing entries, except hidden
        // ones: strangers must not learn a node's devices from its answers.
        if speaks(KAD_PROTOCOL) && !self.hidden.contains(&peer_id) {
            for address in &addresses {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer_id, address.clone());
            }
        }
        // A seed that relays: listen through it, so peers that cannot
        // reach this node directly can through the seed.
        if speaks(relay::HOP_PROTOCOL_NAME.as_ref()) && !self.relay_listeners.contains_key(&peer_id)
        {
            if let Some(seed) = self.seeds.get(&peer_id) {
                let circuit = seed
                    .clone()
                    .with(Protocol::P2p(peer_id))
                    .with(Protocol::P2pCircuit);
                if let Ok(id) = self.swarm.listen_on(circuit) {
                    self.relay_listeners.insert(peer_id, id);
                }
            }
        }
        if let Some(peer) = node_id(&peer_id) {
            self.outbox.report(Event::Identified { peer, addresses });
        }
    }

    fn on_kad(&mut self, id: kad::QueryId, result: kad::QueryResult, last: bool) {
        let kad::QueryResult::GetClosestPeers(result) = result else {
            return;
        };
        let Some((target, _)) = self.pending_find.get(&id) else {
            return;
        };
        let target = *target;
        let found: Vec<Multiaddr> = match &result {
            Ok(ok) => ok
                .peers
                .iter()
                .filter(|info| info.peer_id == target)
                .flat_map(|info| info.addrs.clone())
                .collect(),
            Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers
                .iter()
                .filter(|info| info.peer_id == target)
                .flat_map(|info| info.addrs.clone())
                .collect(),
        };
        // Without the trailing `/p2p/<target>`; a relayed address keeps its
        // relay's id, which says where to go.
        let found: Vec<Multiaddr> = found
            .into_iter()
            .map(|mut a| {
                if matches!(a.iter().last(), Some(Protocol::P2p(p)) if p == target) {
                    a.pop();
                }
                a
            })
            .collect();
        if !found.is_empty() || last {
            if let Some((_, reply)) = self.pending_find.remove(&id) {
                let _ = reply.send(Ok(found));
            }
        }
    }

    /// Answer a request here, without the node.
    fn refuse(&mut self, channel: ResponseChannel<Response>, reason: &str) {
        let refusal = Response::Refused(reason.into());
        let _ = self
            .swarm
            .behaviour_mut()
            .rpc
            .send_response(channel, refusal);
    }

    fn within_rate(&mut self, peer: PeerId) -> bool {
        let now = Instant::now();
        if let Some(&person) = self.people.get(&peer) {
            // One budget for all of a person's devices.
            self.person_rate.allow(person, now)
        } else if self.trusted.contains(&peer) {
            self.trusted_rate.allow(peer, now)
        } else {
            self.stranger_rate.allow(peer, now)
        }
    }

    /// Who waits for the answer to request `id`, which came (or failed).
    fn answered(&mut self, id: OutboundRequestId) -> Option<ReplyTo> {
        let (peer, reply) = self.pending_requests.remove(&id)?;
        if let std::collections::hash_map::Entry::Occupied(mut to_peer) =
            self.pending_per_peer.entry(peer)
        {
            *to_peer.get_mut() -= 1;
            if *to_peer.get() == 0 {
                to_peer.remove();
            }
        }
        Some(reply)
    }

    /// `connection` carried something whole from its peer just now, and
    /// so did the connection to the relay it runs through, if any.
    fn heard_on(&mut self, connection: ConnectionId) {
        let now = Instant::now();
        let Some(heard) = self.heard.get_mut(&connection) else {
            return;
        };
        heard.at = now;
        if let Some(relay) = heard.via {
            for (c, _) in self.open.iter().filter(|(_, p)| **p == relay) {
                if let Some(heard) = self.heard.get_mut(c) {
                    heard.at = now;
                }
            }
        }
    }

    fn on_rpc(&mut self, event: request_response::Event<Request, Response>) {
        match event {
            request_response::Event::Message {
                peer,
                connection_id,
                message,
            } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.heard_on(connection_id);
                    let Some(node) = node_id(&peer) else {
                        self.refuse(channel, "not a Polykey node");
                        return;
                    };
                    if !self.within_rate(peer) {
                        self.refuse(channel, limit::BUSY);
                        return;
                    }
                    let event = Event::InboundRequest {
                        peer: node,
                        request,
                        responder: Responder(channel),
                    };
                    match self.outbox.offer(event) {
                        Offer::Passed => {}
                        Offer::Full(Event::InboundRequest { responder, .. }) => {
                            self.refuse(responder.0, limit::BUSY);
                        }
                        // Nobody will answer: dropping the channel tells
                        // the peer so.
                        Offer::Full(_) | Offer::Closed => {}
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    self.heard_on(connection_id);
                    if let Some(reply) = self.answered(request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.answered(request_id) {
                    let failed = match &error {
                        request_response::OutboundFailure::Io(e)
                            if e.kind() == std::io::ErrorKind::InvalidData =>
                        {
                            NetworkError::Malformed(e.to_string())
                        }
                        _ => NetworkError::Request(error.to_string()),
                    };
                    let _ = reply.send(Err(failed));
                }
            }
            _ => {}
        }
    }
}

/// A random number, for picking which stranger's connection to close.
fn random_u64() -> u64 {
    use rand_core::RngCore;
    rand_core::OsRng.next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::core::transport::PortUse;
    use libp2p::core::{ConnectedPoint, Endpoint};

    /// A connection through a relay is known by the relay in its address,
    /// dialed or come in on, so that what it carries counts for the
    /// connection to the relay too (its pings wait behind the same bytes).
    #[test]
    fn the_relay_of_a_relayed_connection_is_known_either_way() {
        let relay = PeerId::random();
        let other = PeerId::random();
        let dialed = ConnectedPoint::Dialer {
            address: format!("/ip4/192.0.2.1/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{other}")
                .parse()
                .unwrap(),
            role_override: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        };
        assert_eq!(relay_of(&dialed), Some(relay));
        let came_in = ConnectedPoint::Listener {
            local_addr: format!("/ip4/192.0.2.1/tcp/4001/p2p/{relay}/p2p-circuit")
                .parse()
                .unwrap(),
            send_back_addr: format!("/p2p/{other}").parse().unwrap(),
        };
        assert_eq!(relay_of(&came_in), Some(relay));
        let direct = ConnectedPoint::Dialer {
            address: format!("/ip4/192.0.2.1/tcp/4001/p2p/{other}")
                .parse()
                .unwrap(),
            role_override: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        };
        assert_eq!(relay_of(&direct), None);
    }
}

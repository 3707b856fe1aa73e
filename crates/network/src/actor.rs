use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, cbor, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    autonat, dcutr, identify, kad, mdns, noise, relay, tcp, yamux, Multiaddr, PeerId,
    StreamProtocol, Swarm,
};
use polykey_keys::{NodeId, RootKeypair};
use tokio::sync::{mpsc, oneshot};

use crate::identity::{keypair, node_id, peer_id};
use crate::protocol::{Request, Response, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, PROTOCOL};

/// The Kademlia protocol name (Polykey's own DHT, not the public IPFS one).
const KAD_PROTOCOL: &str = "/polykey/kad/1";

/// Why a network command failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The transport could not be set up.
    #[error("the network could not start: {0}")]
    Setup(String),
    /// Listening on the address failed.
    #[error("cannot listen on that address: {0}")]
    Listen(String),
    /// Dialling the peer failed.
    #[error("cannot reach the peer: {0}")]
    Dial(String),
    /// The request failed on the way (timeout, connection closed, refused
    /// protocol, oversized message).
    #[error("the request to the peer failed: {0}")]
    Request(String),
    /// The NodeId is not a valid key.
    #[error("that NodeId is not a valid key")]
    BadNodeId,
    /// The event loop has stopped.
    #[error("the network has stopped")]
    Stopped,
}

/// How the network behaves.
#[derive(Clone, Debug)]
pub struct Config {
    /// Find peers on the local network with mDNS.
    pub mdns: bool,
    /// How long a request may take.
    pub request_timeout: Duration,
    /// How long an idle connection stays open.
    pub idle_timeout: Duration,
    /// Seed nodes for Kademlia (global discovery): who and where.
    pub seeds: Vec<(NodeId, Multiaddr)>,
    /// Serve as a relay for nodes behind NAT (a headless seed node does).
    pub relay_server: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mdns: true,
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            seeds: Vec::new(),
            relay_server: false,
        }
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    relay_client: relay::client::Behaviour,
    relay_server: Toggle<relay::Behaviour>,
    dcutr: dcutr::Behaviour,
    autonat: autonat::Behaviour,
    rpc: cbor::Behaviour<Request, Response>,
}

/// Answers one inbound request: pass it to [`Client::respond`].
#[derive(Debug)]
pub struct Responder(ResponseChannel<Response>);

/// What the network reports.
#[derive(Debug)]
pub enum Event {
    /// A peer asks something; answer through [`Client::respond`].
    InboundRequest {
        /// Who asks (authenticated by noise).
        peer: NodeId,
        /// What it asks.
        request: Request,
        /// Where the answer goes.
        responder: Responder,
    },
    /// mDNS found a peer on the local network.
    PeerDiscovered {
        /// The peer.
        peer: NodeId,
        /// Where it listens.
        address: Multiaddr,
    },
    /// A peer told us where it listens (identify).
    Identified {
        /// The peer.
        peer: NodeId,
        /// Its listen addresses.
        addresses: Vec<Multiaddr>,
    },
    /// A connection to a peer opened.
    Connected {
        /// The peer.
        peer: NodeId,
    },
    /// The last connection to a peer closed.
    Disconnected {
        /// The peer.
        peer: NodeId,
    },
}

enum Command {
    Listen {
        address: Multiaddr,
        reply: oneshot::Sender<Result<Multiaddr, NetworkError>>,
    },
    Dial {
        peer: PeerId,
        address: Multiaddr,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    Request {
        peer: PeerId,
        request: Request,
        reply: oneshot::Sender<Result<Response, NetworkError>>,
    },
    Respond {
        responder: Responder,
        response: Response,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    Connected {
        reply: oneshot::Sender<Vec<NodeId>>,
    },
    Addresses {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Find {
        peer: PeerId,
        reply: oneshot::Sender<Result<Vec<Multiaddr>, NetworkError>>,
    },
}

/// The handle every part of the node uses to talk to the network.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
}

impl Client {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetworkError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| NetworkError::Stopped)?;
        answer.await.map_err(|_| NetworkError::Stopped)
    }

    /// Listen on `address` (e.g. `/ip4/127.0.0.1/tcp/0`); returns the
    /// address actually bound.
    pub async fn listen(&self, address: Multiaddr) -> Result<Multiaddr, NetworkError> {
        self.ask(|reply| Command::Listen { address, reply }).await?
    }

    /// Connect to `peer` at `address`; the connection is authenticated as
    /// that NodeId or refused.
    pub async fn dial(&self, peer: NodeId, address: Multiaddr) -> Result<(), NetworkError> {
        let peer = peer_id(&peer).ok_or(NetworkError::BadNodeId)?;
        self.ask(|reply| Command::Dial {
            peer,
            address,
            reply,
        })
        .await?
    }

    /// Ask `peer` something and wait for its answer.
    pub async fn request(&self, peer: NodeId, request: Request) -> Result<Response, NetworkError> {
        let peer = peer_id(&peer).ok_or(NetworkError::BadNodeId)?;
        self.ask(|reply| Command::Request {
            peer,
            request,
            reply,
        })
        .await?
    }

    /// Answer an inbound request.
    pub async fn respond(
        &self,
        responder: Responder,
        response: Response,
    ) -> Result<(), NetworkError> {
        self.ask(|reply| Command::Respond {
            responder,
            response,
            reply,
        })
        .await?
    }

    /// Where this node listens now.
    pub async fn addresses(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        self.ask(|reply| Command::Addresses { reply }).await
    }

    /// Look `peer` up in the DHT (through the seed nodes); returns the
    /// addresses found, empty if nobody knows it.
    pub async fn find(&self, peer: NodeId) -> Result<Vec<Multiaddr>, NetworkError> {
        let peer = peer_id(&peer).ok_or(NetworkError::BadNodeId)?;
        self.ask(|reply| Command::Find { peer, reply }).await?
    }

    /// The peers connected now.
    pub async fn connected(&self) -> Result<Vec<NodeId>, NetworkError> {
        self.ask(|reply| Command::Connected { reply }).await
    }
}

/// The task that owns the swarm. Run it with [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    pending_listen: Vec<oneshot::Sender<Result<Multiaddr, NetworkError>>>,
    pending_dial: HashMap<PeerId, Vec<oneshot::Sender<Result<(), NetworkError>>>>,
    pending_requests: HashMap<OutboundRequestId, oneshot::Sender<Result<Response, NetworkError>>>,
    pending_find: HashMap<kad::QueryId, FindReply>,
}

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
    let swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| setup(&e))?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| setup(&e))?
        .with_behaviour(|key, relay_client| {
            let mdns = if config.mdns {
                Some(mdns::tokio::Behaviour::new(mdns::Config::default(), local)?)
            } else {
                None
            };
            let codec = cbor::codec::Codec::default()
                .set_request_size_maximum(MAX_REQUEST_BYTES)
                .set_response_size_maximum(MAX_RESPONSE_BYTES);
            let mut kad = kad::Behaviour::with_config(
                local,
                kad::store::MemoryStore::new(local),
                kad::Config::new(StreamProtocol::new(KAD_PROTOCOL)),
            );
            kad.set_mode(Some(kad::Mode::Server));
            for (node, address) in &config.seeds {
                if let Some(peer) = peer_id(node) {
                    kad.add_address(&peer, address.clone());
                }
            }
            let relay_server = config
                .relay_server
                .then(|| relay::Behaviour::new(local, relay::Config::default()));
            Ok(Behaviour {
                identify: identify::Behaviour::new(identify::Config::new(
                    "/polykey/id/1".into(),
                    key.public(),
                )),
                mdns: mdns.into(),
                kad,
                relay_client,
                relay_server: relay_server.into(),
                dcutr: dcutr::Behaviour::new(local),
                autonat: autonat::Behaviour::new(local, autonat::Config::default()),
                rpc: cbor::Behaviour::with_codec(
                    codec,
                    [(StreamProtocol::new(PROTOCOL), ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(config.request_timeout),
                ),
            })
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    let mut swarm = swarm;
    if !config.seeds.is_empty() {
        // Fails only without known peers, which the seeds just gave.
        let _ = swarm.behaviour_mut().kad.bootstrap();
    }
    let (command_tx, command_rx) = mpsc::channel(64);
    let (event_tx, event_rx) = mpsc::channel(256);
    Ok((
        Client {
            commands: command_tx,
        },
        event_rx,
        EventLoop {
            swarm,
            commands: command_rx,
            events: event_tx,
            pending_listen: Vec::new(),
            pending_dial: HashMap::new(),
            pending_requests: HashMap::new(),
            pending_find: HashMap::new(),
        },
    ))
}

impl EventLoop {
    /// Run until every [`Client`] is dropped.
    pub async fn run(mut self) {
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm(event).await,
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
            }
        }
    }

    async fn emit(&mut self, event: Event) {
        // Nobody listening is fine: the node may not care.
        let _ = self.events.send(event).await;
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Listen { address, reply } => match self.swarm.listen_on(address) {
                Ok(_) => self.pending_listen.push(reply),
                Err(e) => {
                    let _ = reply.send(Err(NetworkError::Listen(e.to_string())));
                }
            },
            Command::Dial {
                peer,
                address,
                reply,
            } => {
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(()));
                    return;
                }
                let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
                    .addresses(vec![address])
                    .build();
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
            Command::Request {
                peer,
                request,
                reply,
            } => {
                let id = self.swarm.behaviour_mut().rpc.send_request(&peer, request);
                self.pending_requests.insert(id, reply);
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
                addresses.extend(self.swarm.external_addresses().cloned());
                let _ = reply.send(addresses);
            }
            Command::Find { peer, reply } => {
                let id = self.swarm.behaviour_mut().kad.get_closest_peers(peer);
                self.pending_find.insert(id, (peer, reply));
            }
        }
    }

    async fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                if let Some(reply) = self.pending_listen.pop() {
                    let _ = reply.send(Ok(address));
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } => {
                if let Some(replies) = self.pending_dial.remove(&peer_id) {
                    for reply in replies {
                        let _ = reply.send(Ok(()));
                    }
                }
                if num_established.get() == 1 {
                    if let Some(peer) = node_id(&peer_id) {
                        self.emit(Event::Connected { peer }).await;
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
                num_established: 0,
                ..
            } => {
                if let Some(peer) = node_id(&peer_id) {
                    self.emit(Event::Disconnected { peer }).await;
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(event)) => self.on_rpc(event).await,
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                // Peers speaking our DHT become routing entries.
                if info.protocols.iter().any(|p| p.as_ref() == KAD_PROTOCOL) {
                    for address in &info.listen_addrs {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, address.clone());
                    }
                }
                if let Some(peer) = node_id(&peer_id) {
                    let addresses = info.listen_addrs.into_iter().take(16).collect();
                    self.emit(Event::Identified { peer, addresses }).await;
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result,
                step,
                ..
            })) => self.on_kad(id, result, step.last),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer_id, address) in found {
                    if let Some(peer) = node_id(&peer_id) {
                        self.emit(Event::PeerDiscovered { peer, address }).await;
                    }
                }
            }
            _ => {}
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
        // Plain transport addresses, without the trailing `/p2p/<id>`.
        let found: Vec<Multiaddr> = found
            .into_iter()
            .map(|a| {
                a.into_iter()
                    .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
                    .collect()
            })
            .collect();
        if !found.is_empty() || last {
            if let Some((_, reply)) = self.pending_find.remove(&id) {
                let _ = reply.send(Ok(found));
            }
        }
    }

    async fn on_rpc(&mut self, event: request_response::Event<Request, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => match node_id(&peer) {
                    Some(peer) => {
                        self.emit(Event::InboundRequest {
                            peer,
                            request,
                            responder: Responder(channel),
                        })
                        .await;
                    }
                    None => {
                        let refusal = Response::Refused("not a Polykey node".into());
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .rpc
                            .send_response(channel, refusal);
                    }
                },
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending_requests.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.pending_requests.remove(&request_id) {
                    let _ = reply.send(Err(NetworkError::Request(error.to_string())));
                }
            }
            _ => {}
        }
    }
}

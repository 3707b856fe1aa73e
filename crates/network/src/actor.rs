//! The handle side of the actor: what a node asks ([`Client`]), what it
//! is told ([`Event`]), how the network is set up ([`Config`]) and why a
//! command fails ([`NetworkError`]). The loop that carries the commands out
//! is in `event_loop`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId};
use polykey_keys::NodeId;
use tokio::sync::{mpsc, oneshot};

use crate::identity::peer_id;
use crate::limits as limit;
use crate::protocol::{Request, Response};

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
    /// protocol).
    #[error("the request to the peer failed: {0}")]
    Request(String),
    /// The peer's answer came whole but could not be taken: larger than
    /// the protocol allows, or not one of its messages (a list past its
    /// bound, say). Asking again gets the same answer.
    #[error("the peer's answer was refused: {0}")]
    Malformed(String),
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
    /// A seed that relays also listens through nobody: its own listen
    /// addresses are taken as reachable.
    pub relay_server: bool,
    /// Established connections in all (peers given to [`Client::trust`]
    /// are not counted).
    pub max_connections: u32,
    /// Established connections to one peer.
    pub max_connections_per_peer: u32,
    /// Incoming connections still in their handshake.
    pub max_pending_incoming: u32,
    /// Outgoing dials under way.
    pub max_pending_outgoing: u32,
    /// Inbound requests one peer may send in a burst; past it and its
    /// refill the loop answers "busy" without asking the node. Trusted
    /// peers have a larger budget of their own.
    pub request_burst: u32,
    /// Inbound requests per second one peer earns back.
    pub request_refill_per_sec: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mdns: true,
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            seeds: Vec::new(),
            relay_server: false,
            max_connections: limit::MAX_CONNECTIONS,
            max_connections_per_peer: limit::MAX_CONNECTIONS_PER_PEER,
            max_pending_incoming: limit::MAX_PENDING_INCOMING,
            max_pending_outgoing: limit::MAX_PENDING_OUTGOING,
            request_burst: limit::REQUEST_BURST,
            request_refill_per_sec: limit::REQUEST_REFILL_PER_SEC,
        }
    }
}

/// Answers one inbound request: pass it to [`Client::respond`].
#[derive(Debug)]
pub struct Responder(pub(crate) ResponseChannel<Response>);

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

pub(crate) enum Command {
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
    Trust {
        peers: Vec<PeerId>,
        /// Other people's devices, each with its person's key (the
        /// smallest of their ids).
        people: HashMap<PeerId, PeerId>,
        reply: oneshot::Sender<()>,
    },
    Hide {
        peers: Vec<PeerId>,
        reply: oneshot::Sender<()>,
    },
}

/// The handle every part of the node uses to talk to the network.
#[derive(Clone)]
pub struct Client {
    pub(crate) commands: mpsc::Sender<Command>,
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

    /// Exempt these peers (the devices of this node's gestalt) from the
    /// connection limits, so strangers filling them never lock a device
    /// out; replaces the previous list. At most
    /// [`limits::MAX_TRUSTED`](crate::limits::MAX_TRUSTED) are kept. Their
    /// requests are still rate-limited, with a larger budget of their own
    /// ([`limits::TRUSTED_REQUEST_BURST`](crate::limits::TRUSTED_REQUEST_BURST)):
    /// a device syncing in a tight loop asks far more often than a stranger
    /// ever needs to.
    pub async fn trust(&self, peers: Vec<NodeId>) -> Result<(), NetworkError> {
        self.trust_people(peers, Vec::new()).await
    }

    /// [`Client::trust`] these peers (the devices of this node's gestalt),
    /// and the devices of other people (those sharing vaults with it), one
    /// list a person. Another person's devices are exempt from the limits
    /// for strangers as this gestalt's own are, so strangers never lock
    /// them out either, but bounded as one: together they hold at most
    /// [`limits::MAX_CONNECTIONS_PER_PERSON`](crate::limits::MAX_CONNECTIONS_PER_PERSON)
    /// connections, and their requests share one trusted budget. A person
    /// claiming many devices gets no more than one device's share. A peer
    /// in `peers` is this gestalt's whatever `people` says; one named by
    /// two people counts as the first's. Replaces the previous lists; at
    /// most [`limits::MAX_TRUSTED`](crate::limits::MAX_TRUSTED) peers in
    /// all are kept, this gestalt's first.
    pub async fn trust_people(
        &self,
        peers: Vec<NodeId>,
        people: Vec<Vec<NodeId>>,
    ) -> Result<(), NetworkError> {
        let own: Vec<PeerId> = peers
            .iter()
            .filter_map(peer_id)
            .take(limit::MAX_TRUSTED)
            .collect();
        let own_set: HashSet<PeerId> = own.iter().copied().collect();
        let mut room = limit::MAX_TRUSTED - own.len();
        let mut of_person: HashMap<PeerId, PeerId> = HashMap::new();
        for person in people {
            let mut devices: Vec<PeerId> = person
                .iter()
                .filter_map(peer_id)
                .filter(|p| !own_set.contains(p) && !of_person.contains_key(p))
                .collect();
            devices.sort_unstable();
            devices.dedup();
            devices.truncate(room);
            room -= devices.len();
            // The smallest id stands for the person: its rate bucket is
            // theirs.
            if let Some(&key) = devices.first() {
                of_person.extend(devices.into_iter().map(|d| (d, key)));
            }
        }
        let mut peers = own;
        peers.extend(of_person.keys().copied());
        self.ask(|reply| Command::Trust {
            peers,
            people: of_person,
            reply,
        })
        .await
    }

    /// Keep these peers out of the DHT's routing table, so nobody asking
    /// this node for peers near a key learns them (their NodeIds and
    /// addresses); replaces the previous list, at most
    /// [`limits::MAX_TRUSTED`](crate::limits::MAX_TRUSTED). Meant for the
    /// devices of the gestalt once they learn each other's addresses from
    /// each other: a device hidden here is not found through this node's
    /// DHT either.
    pub async fn hide(&self, peers: Vec<NodeId>) -> Result<(), NetworkError> {
        let peers = peers
            .iter()
            .filter_map(peer_id)
            .take(limit::MAX_TRUSTED)
            .collect();
        self.ask(|reply| Command::Hide { peers, reply }).await
    }
}

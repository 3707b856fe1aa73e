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
    /// How often each connection is checked (libp2p's ping); one whose
    /// peer has not answered within as long again, nor opened a stream for
    /// the next ping in 10 s, is closed (under a minute by default). A peer gone
    /// without a word (asleep, its network gone) left its connection open
    /// for as long as TCP took to notice (a quarter of an hour), shown
    /// online and taking half the requests to it until they timed out.
    pub ping_interval: Duration,
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
            ping_interval: Duration::from_secs(15),
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
    Disconnect {
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
    /// connections and share one request budget
    /// ([`limits::PERSON_REQUEST_BURST`](crate::limits::PERSON_REQUEST_BURST)).
    /// A person claiming many devices gets no more. The lists are what
    /// people say of themselves, so a peer is grouped with no one it might
    /// not belong to (see `grouped`). Replaces the previous lists.
    pub async fn trust_people(
        &self,
        peers: Vec<NodeId>,
        people: Vec<Vec<NodeId>>,
    ) -> Result<(), NetworkError> {
        let own: Vec<PeerId> = peers.iter().filter_map(peer_id).collect();
        let people = people
            .iter()
            .map(|person| person.iter().filter_map(peer_id).collect())
            .collect();
        let (peers, of_person) = grouped(own, people);
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

    /// Close every connection to these peers (devices removed from the
    /// gestalt, after [`Client::trust`] dropped them): what they opened
    /// while trusted (streams in use, windows grown) goes with it. They may
    /// connect again, as strangers.
    pub async fn disconnect(&self, peers: Vec<NodeId>) -> Result<(), NetworkError> {
        let peers = peers.iter().filter_map(peer_id).collect();
        self.ask(|reply| Command::Disconnect { peers, reply }).await
    }
}

/// The peers to trust and, for those that are other people's devices, the
/// key of each one's person (the smallest id among their devices): from
/// this gestalt's devices `own` and each person's list of devices. Each
/// list is what that person (or a device of theirs) signed, so:
/// - a peer of `own` is this gestalt's whatever a person says;
/// - a peer two people name is trusted on its own, bound with neither (one
///   person listing another's device must not make it share their limits);
/// - a person keeps at most [`limit::MAX_DEVICES_PER_PERSON`] devices;
/// - past [`limit::MAX_TRUSTED`] in all (`own` first), the people listing
///   the most devices are the ones left out.
pub(crate) fn grouped(
    own: Vec<PeerId>,
    people: Vec<Vec<PeerId>>,
) -> (Vec<PeerId>, HashMap<PeerId, PeerId>) {
    let mut peers: Vec<PeerId> = own.into_iter().take(limit::MAX_TRUSTED).collect();
    let own: HashSet<PeerId> = peers.iter().copied().collect();
    let mut groups: Vec<Vec<PeerId>> = people
        .into_iter()
        .map(|mut devices| {
            devices.retain(|p| !own.contains(p));
            devices.sort_unstable();
            devices.dedup();
            devices
        })
        .collect();
    let mut named: HashMap<PeerId, usize> = HashMap::new();
    for device in groups.iter().flatten() {
        *named.entry(*device).or_default() += 1;
    }
    let mut alone: Vec<PeerId> = named
        .iter()
        .filter(|(_, times)| **times > 1)
        .map(|(p, _)| *p)
        .collect();
    alone.sort_unstable();
    for devices in &mut groups {
        devices.retain(|p| named.get(p) == Some(&1));
        devices.truncate(limit::MAX_DEVICES_PER_PERSON);
    }
    groups.extend(alone.into_iter().map(|p| vec![p]));
    groups.retain(|devices| !devices.is_empty());
    groups.sort_by_key(Vec::len);
    let mut room = limit::MAX_TRUSTED - peers.len();
    let mut of_person = HashMap::new();
    for mut devices in groups {
        devices.truncate(room);
        room -= devices.len();
        if let Some(&key) = devices.first() {
            of_person.extend(devices.into_iter().map(|d| (d, key)));
        }
    }
    peers.extend(of_person.keys().copied());
    (peers, of_person)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: usize) -> Vec<PeerId> {
        (0..n).map(|_| PeerId::random()).collect()
    }

    #[test]
    fn a_device_two_people_name_is_bound_with_neither() {
        let hostile = peers(6);
        let alice = peers(2);
        let mut listed = hostile.clone();
        listed.push(alice[0]);
        let (trusted, of_person) = grouped(Vec::new(), vec![listed, alice.clone()]);
        assert_eq!(trusted.len(), 8);
        // Alice's device the hostile list names is a person of its own.
        assert_eq!(of_person[&alice[0]], alice[0]);
        assert_eq!(of_person[&alice[1]], alice[1]);
        let key = *hostile.iter().min().unwrap();
        assert!(hostile.iter().all(|h| of_person[h] == key));
    }

    #[test]
    fn this_gestalts_devices_are_no_ones_and_come_first() {
        let own = peers(3);
        let (trusted, of_person) = grouped(own.clone(), vec![vec![own[0], own[1]]]);
        assert_eq!(trusted, own);
        assert!(of_person.is_empty());
    }

    #[test]
    fn a_person_listing_ever_more_devices_crowds_out_no_one() {
        // One person's lists (one a vault) name 1,500 devices; two honest
        // people have two each; the gestalt has 100.
        let own = peers(100);
        let greedy = peers(1_500);
        let (bob, carol) = (peers(2), peers(2));
        let (trusted, of_person) = grouped(
            own.clone(),
            vec![greedy.clone(), bob.clone(), carol.clone()],
        );
        assert!(trusted.len() <= limit::MAX_TRUSTED);
        for p in own.iter().chain(&bob).chain(&carol) {
            assert!(trusted.contains(p));
        }
        let kept = greedy.iter().filter(|p| of_person.contains_key(p)).count();
        assert_eq!(kept, limit::MAX_DEVICES_PER_PERSON);
        // With more people than room, those listing the most are left out.
        let many: Vec<Vec<PeerId>> = (0..20).map(|_| peers(64)).collect();
        let (trusted, _) = grouped(own.clone(), [many, vec![bob.clone()]].concat());
        assert_eq!(trusted.len(), limit::MAX_TRUSTED);
        assert!(bob.iter().all(|p| trusted.contains(p)));
    }
}

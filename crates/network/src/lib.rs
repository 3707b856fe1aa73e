//! Polykey's network: a libp2p swarm (TCP and QUIC, noise, yamux, identify,
//! mDNS on the local network) behind an actor. [`new`] returns a cloneable
//! [`Client`] whose commands carry a oneshot reply, a stream of [`Event`]s,
//! and the [`EventLoop`] that alone owns the `Swarm`; the loop ends when
//! every client is dropped. The PeerId is the node's own Ed25519 key, so a
//! NodeId and a PeerId are the same identity, authenticated by noise.
//!
//! Polykey's protocols run over one versioned request-response protocol,
//! `/polykey/rpc/1`, with bounded message sizes: the receiving node decides
//! what to answer (pairing, claims, vault sync).
//!
//! What a peer can make this node do is bounded ([`limits`]): connections
//! (in all, per peer, pending), inbound requests per peer (a token bucket;
//! past it the loop answers "busy" without asking the node), what mDNS and
//! identify may queue, and what the DHT stores (nothing). The event loop
//! never waits for the node, so the node waiting on the loop is no cycle.
//!
//! A node nobody can dial is reachable through a relay: when a seed says it
//! relays, the node listens on `<seed>/p2p/<seed>/p2p-circuit`, so its
//! addresses (and the invitations and identify answers made from them) name
//! the relay; DCUtR then tries to upgrade relayed connections to direct
//! ones. It does not pick relays among strangers, and it keeps no state on
//! disk.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The actor's handle: the client, its commands, the events, the config.
mod actor;
/// The bounded CBOR codec of `/polykey/rpc/1`.
mod codec;
/// The actor's loop, which alone owns the swarm.
mod event_loop;
/// Identity conversions between NodeId and PeerId.
pub mod identity;
/// How much a peer can make this node do or keep.
pub mod limits;
/// yamux holding fewer of a peer's new streams.
pub mod muxer;
/// Reports waiting for the node, bounded and coalesced.
mod outbox;
/// The request and response messages.
pub mod protocol;

pub use actor::{Client, Config, Event, NetworkError, Responder};
pub use codec::{bytes_written, decode_request, decode_response};
pub use event_loop::{new, EventLoop};
pub use libp2p::Multiaddr;
pub use protocol::{
    Access, ChainPosition, ChainUpdate, Grant, Remote, Removed, Request, Response, SharedVault,
    SignedNotification, Statement, Taken, VaultSummary, WireDeletion, WireObject, WirePart,
    Withdrawn,
};

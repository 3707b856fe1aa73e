//! A node's libp2p identity is its root Ed25519 key: the PeerId encodes the
//! same public key as the NodeId.

use libp2p::identity::{ed25519, Keypair, PublicKey};
use libp2p::PeerId;
use polykey_keys::{NodeId, RootKeypair};

/// The libp2p keypair of a node (the same Ed25519 key).
pub fn keypair(keys: &RootKeypair) -> Keypair {
    let mut seed = keys.expose_seed();
    // A 32-byte Ed25519 seed always makes a key.
    Keypair::ed25519_from_bytes(&mut seed[..]).unwrap_or_else(|_| unreachable!())
}

/// The PeerId of a node, or `None` if its bytes are not an Ed25519 key.
pub fn peer_id(node: &NodeId) -> Option<PeerId> {
    let key = ed25519::PublicKey::try_from_bytes(node.as_bytes()).ok()?;
    Some(PublicKey::from(key).to_peer_id())
}

/// The NodeId of a peer, if it uses an Ed25519 key (every Polykey node does).
pub fn node_id(peer: &PeerId) -> Option<NodeId> {
    // Ed25519 PeerIds are "identity" multihashes of the protobuf public key.
    let multihash: &libp2p::multihash::Multihash<64> = peer.as_ref();
    if multihash.code() != 0 {
        return None;
    }
    let key = PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let bytes = key.try_into_ed25519().ok()?.to_bytes();
    Some(NodeId::from_bytes(bytes))
}

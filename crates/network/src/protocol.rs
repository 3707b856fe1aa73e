//! What nodes say to each other over `/polykey/rpc/1` (CBOR). Every message
//! is bounded: requests by [`MAX_REQUEST_BYTES`], responses by
//! [`MAX_RESPONSE_BYTES`]; a peer sending more is cut off by the codec, and
//! lists carry their own count limits, checked by the receiver.

use polykey_gestalts::pairing::PairingMessage;
use polykey_gestalts::SignedClaim;
use polykey_keys::NodeId;
use serde::{Deserialize, Serialize};

/// The protocol name, versioned.
pub const PROTOCOL: &str = "/polykey/rpc/1";
/// Largest request accepted.
pub const MAX_REQUEST_BYTES: u64 = 1024 * 1024;
/// Largest response accepted.
pub const MAX_RESPONSE_BYTES: u64 = 40 * 1024 * 1024;
/// A page of a fetch ends with the object that brings its bytes to this
/// (so a page is at most this plus the largest secret, 24 MiB, well
/// under [`MAX_RESPONSE_BYTES`]).
pub const PAGE_BYTES: usize = 8 * 1024 * 1024;
/// Most vaults one listing may name.
pub const MAX_VAULTS: usize = 10_000;
/// Most chains one [`Request::Chains`] may name or its answer carry.
pub const MAX_CHAINS: usize = 256;
/// Most claims one [`Response::Chains`] may carry, over all its chains.
pub const MAX_CHAIN_CLAIMS: usize = 1_000;
/// Most deletions one [`Response::Deletions`] page may carry.
pub const MAX_DELETIONS_PAGE: usize = 1_000;
/// Most deletion pages a node reads from one peer in one sync.
pub const MAX_DELETION_PAGES: usize = 200;
/// Most version ids a fetch may say it has.
pub const MAX_HAVES: usize = 64;

/// A request from one node to another.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// A step of pairing (joiner to inviter).
    Pairing(PairingMessage),
    /// Are you there? (Anyone may ask; the answer says nothing more.)
    Ping,
    /// Send me your sigchain (only nodes of your gestalt may ask).
    Sigchain,
    /// Send the claims of your gestalt's chains after the positions I
    /// know (only nodes of your gestalt may ask).
    Chains {
        /// The last sequence number the requester has of each chain.
        known: Vec<ChainPosition>,
    },
    /// List your vaults (only nodes of your gestalt may).
    Vaults,
    /// Send a page of your vault deletions, in vault-id order after `after`
    /// (only nodes of your gestalt may ask).
    Deletions {
        /// The last vault id of the previous page.
        after: Option<String>,
    },
    /// Send the objects of `want` in vault `vault` that `haves` lack,
    /// starting at the `skip`-th (paging).
    Fetch {
        /// The vault id.
        vault: String,
        /// The version wanted.
        want: String,
        /// Versions the requester has.
        haves: Vec<String>,
        /// Objects already received of this transfer.
        skip: u32,
    },
    /// Something changed here: pull when you can.
    Changed,
    /// A signed notification for the responder's user.
    Notify(SignedNotification),
}

/// Largest notification payload accepted.
pub const MAX_NOTIFICATION_BYTES: usize = 8 * 1024;

/// A notification signed by its sender: `payload` is JSON (sender, time,
/// text), `signature` its Ed25519 signature by the sender.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignedNotification {
    /// The signed JSON.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// Ed25519 over `payload`.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// One vault as listed to a peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultSummary {
    /// Permanent id.
    pub id: String,
    /// Current name.
    pub name: String,
    /// When the name was set (ms; 0: never renamed).
    pub renamed_at: i64,
    /// Current version.
    pub head: String,
}

/// How far the requester has one chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainPosition {
    /// Whose chain.
    pub node: NodeId,
    /// The last sequence number the requester has (0: none).
    pub seq: u64,
}

/// New claims of one chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainUpdate {
    /// Whose chain.
    pub node: NodeId,
    /// Its claims after the requester's position, in order.
    pub claims: Vec<SignedClaim>,
}

/// A signed record that a vault was deleted (the receiver verifies it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireDeletion {
    /// The vault id.
    pub vault: String,
    /// Its head when deleted.
    pub head: String,
    /// When (ms, the deleter's clock).
    pub deleted_at: i64,
    /// The deleting node.
    pub by: NodeId,
    /// Its Ed25519 signature over the record.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// A git object in a fetch.
#[derive(Clone, Serialize, Deserialize)]
pub struct WireObject {
    /// Its id as the sender claims it (the receiver checks).
    pub id: String,
    /// 1 blob, 2 tree, 3 commit.
    pub kind: u8,
    /// The encoded object.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl std::fmt::Debug for WireObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WireObject({}, {} bytes)", self.kind, self.data.len())
    }
}

impl Drop for WireObject {
    fn drop(&mut self) {
        // Blobs are secrets; do not leave them in memory.
        zeroize::Zeroize::zeroize(&mut self.data);
    }
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// The inviter's next pairing step.
    Pairing(PairingMessage),
    /// The responder's sigchain, in order.
    Sigchain(Vec<SignedClaim>),
    /// New claims of the chains of the responder's gestalt.
    Chains(Vec<ChainUpdate>),
    /// The responder's vaults (deleted ones still recoverable included).
    Vaults {
        /// Every vault with its head.
        vaults: Vec<VaultSummary>,
    },
    /// A page of the responder's vault deletions.
    Deletions {
        /// This page, in vault-id order.
        deletions: Vec<WireDeletion>,
        /// Whether more follow.
        more: bool,
    },
    /// A page of objects.
    Objects {
        /// This page.
        objects: Vec<WireObject>,
        /// How many the whole transfer has.
        total: u32,
    },
    /// Done.
    Ok,
    /// Refused, with a reason fit to show (never a secret).
    Refused(String),
}

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
/// The smallest page a fetch may ask for ([`Request::Fetch`]'s `page`):
/// still one object, or one chunk of a blob sent in parts, at least.
pub const MIN_PAGE_BYTES: usize = 256 * 1024;
/// Most objects one page may carry: one for each 64 bytes of the largest
/// page (a sender keeps to it, see `polykey_vaults::PAGE_BYTES_PER_OBJECT`).
/// A stolen device's page of 40 MiB of empty objects would otherwise take
/// about 300 MiB once decoded, before anyone counts them.
pub const MAX_PAGE_OBJECTS: usize = PAGE_BYTES / 64;
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
/// Most nodes named for one gestalt in sharing (authors, grantees).
pub const MAX_SHARE_NODES: usize = 64;
/// Most removed nodes named with a shared vault's authors.
pub const MAX_SHARE_REMOVED: usize = 256;
/// Most writers' nodes a shared vault's owner names ([`SharedVault::writers`]).
pub const MAX_SHARE_WRITERS: usize = 256;
/// A writer's "until" while it may still write.
pub const WRITING_NOW: u64 = u64::MAX;
/// Most people one vault is shared with.
pub const MAX_GRANTS: usize = 64;
/// Most vaults one [`Response::Shared`] names.
pub const MAX_SHARED_VAULTS: usize = 1_000;
/// Longest name (of a person, or of a vault in sharing) accepted.
pub const MAX_SHARE_NAME: usize = 256;

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
        #[serde(deserialize_with = "at_most::<_, _, MAX_CHAINS>")]
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
        #[serde(deserialize_with = "at_most::<_, _, MAX_HAVES>")]
        haves: Vec<String>,
        /// Objects already received of this transfer.
        skip: u32,
        /// Bytes already received of the object at `skip`, a blob sent in
        /// parts ([`WireObject::part`]).
        #[serde(default, skip_serializing_if = "is_zero")]
        from: u64,
        /// The most bytes the requester takes in one page, which its link
        /// carries well within the request timeout (0: [`PAGE_BYTES`]);
        /// a sender keeps it between [`MIN_PAGE_BYTES`] and
        /// [`PAGE_BYTES`], and sends a blob in parts of fewer chunks for it.
        #[serde(default, skip_serializing_if = "is_zero_u32")]
        page: u32,
    },
    /// Something changed here: pull when you can.
    Changed,
    /// A signed notification for the responder's user.
    Notify(SignedNotification),
    /// The vaults the responder shares with the requester's gestalt: the
    /// one named (its owner, or the requester as a writer, pulls it), or
    /// every one (the requester's `scan`). Anyone else is refused, with
    /// the same words whether the vault exists or not.
    Shared {
        /// The vault id, or none for every shared vault.
        vault: Option<String>,
        /// The requester's gestalt's removals of its own devices, as its
        /// signed `ClaimRevokeNode` claims (at most [`MAX_SHARE_NODES`]):
        /// the responder stops serving the devices removed.
        #[serde(default, deserialize_with = "at_most::<_, _, MAX_SHARE_NODES>")]
        revocations: Vec<SignedClaim>,
    },
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
    /// Who else takes part (absent from older nodes).
    #[serde(default)]
    pub access: Option<Access>,
}

/// Who besides a gestalt's devices takes part in a vault, as one device
/// tells the others of its gestalt in [`VaultSummary::access`] (the newest
/// `at` wins), and as each keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// When last changed (ms, the changing device's clock).
    pub at: i64,
    /// The people this gestalt shares the vault with.
    pub grants: Vec<Grant>,
    /// The people it stopped sharing with, and when: each person has one
    /// entry, a grant or a withdrawal, and the later one wins as devices
    /// merge their records (an old grant sent again loses to its
    /// withdrawal). At most [`MAX_SHARE_REMOVED`], the oldest forgotten.
    #[serde(default)]
    pub withdrawn: Vec<Withdrawn>,
    /// Every grant dated at or before this (ms) is withdrawn: the latest
    /// time of the withdrawals forgotten past the bound, so no old grant
    /// comes back when its withdrawal is pushed out.
    #[serde(default)]
    pub withdrawn_floor: i64,
    /// Set when the vault is another person's, shared with this gestalt.
    pub remote: Option<Remote>,
    /// The device that made this version of the record.
    #[serde(default)]
    pub by: Option<NodeId>,
    /// Its Ed25519 signature over the record (see the node's `share`).
    #[serde(default, with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// A person a vault is shared with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The person as trusted (an identity or a NodeId's text).
    pub person: String,
    /// Their nodes: those served, and (with `write`) the authors taken.
    pub nodes: Vec<NodeId>,
    /// Whether their changes are taken too.
    pub write: bool,
    /// When the grant was made as it stands (ms, the granting device's
    /// clock).
    #[serde(default)]
    pub at: i64,
    /// The device that made it: a grant ends with its device's removal,
    /// whichever device signed the record last.
    #[serde(default)]
    pub by: Option<NodeId>,
    /// Its Ed25519 signature over the grant (see the node's `share`).
    #[serde(default, with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl Grant {
    /// A grant not yet signed: the device recording it signs it.
    pub fn unsigned(person: String, nodes: Vec<NodeId>, write: bool) -> Self {
        Self {
            person,
            nodes,
            write,
            at: 0,
            by: None,
            signature: Vec::new(),
        }
    }
}

/// A share withdrawn from a person (unshared, or its grant ended).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawn {
    /// The person as trusted.
    pub person: String,
    /// When (ms, the withdrawing device's clock).
    pub at: i64,
    /// The device that withdrew it.
    pub by: Option<NodeId>,
    /// Its Ed25519 signature (see the node's `share`).
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl Withdrawn {
    /// A withdrawal not yet signed: the device recording it signs it.
    pub fn unsigned(person: String) -> Self {
        Self {
            person,
            at: 0,
            by: None,
            signature: Vec::new(),
        }
    }
}

/// Another person's vault shared with this gestalt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    /// The owner as trusted here.
    pub owner: String,
    /// The owner's nodes: those pulled from, and the authors taken.
    pub nodes: Vec<NodeId>,
    /// Nodes the owner removed, with when (seconds): authors before then.
    pub removed: Vec<Removed>,
    /// Whether this gestalt may write.
    pub write: bool,
    /// The owner stopped sharing it: the copy stays, nothing more comes.
    pub ended: bool,
    /// This gestalt's nodes the owner serves (the others take the vault
    /// from them).
    #[serde(default)]
    pub served: Vec<NodeId>,
    /// Other people's nodes whose commits the owner takes in this vault,
    /// until when ([`SharedVault::writers`]). Left out when there are
    /// none, so a record signed before it existed is the same bytes (a
    /// device's signature covers the record as JSON).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writers: Vec<Removed>,
    /// Which device of this gestalt took the vault, from which of the
    /// owner's nodes: the share ends with that device's removal.
    #[serde(default)]
    pub taken: Option<Taken>,
    /// The owner's signature over `nodes`, `removed`, `write` and
    /// `served`, as its node last answered: other devices take those from
    /// the owner only, never from a device of their own gestalt.
    #[serde(default)]
    pub statement: Option<Statement>,
}

/// A device taking another person's vault (cloning it), signed by it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    /// The device.
    pub by: NodeId,
    /// When (ms, its clock).
    pub at: i64,
    /// The owner's node it took the vault from.
    pub from: NodeId,
    /// Its Ed25519 signature (see the node's `share`).
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// An owner's node vouching for what it answered of a shared vault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The owner's node that answered.
    pub signer: NodeId,
    /// When (ms, its clock).
    pub at: i64,
    /// The node it answered (of this gestalt): another person's answer
    /// cannot stand for this gestalt's.
    pub to: NodeId,
    /// Its Ed25519 signature (see the node's `share`).
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// A node removed from a gestalt, and when (seconds since the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// The node.
    pub node: NodeId,
    /// When its removal took effect.
    pub at: u64,
}

/// A vault shared with the requester, as its owner (or a writer) lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedVault {
    /// Permanent id.
    pub id: String,
    /// The owner's name for it.
    pub name: String,
    /// Current version here.
    pub head: String,
    /// Whether the requester may write.
    pub write: bool,
    /// The answering gestalt's nodes (authors of its commits).
    #[serde(deserialize_with = "at_most::<_, _, MAX_SHARE_NODES>")]
    pub nodes: Vec<NodeId>,
    /// Nodes it removed, with when.
    #[serde(deserialize_with = "at_most::<_, _, MAX_SHARE_REMOVED>")]
    pub removed: Vec<Removed>,
    /// The requester's nodes it serves this vault to.
    #[serde(default, deserialize_with = "at_most::<_, _, MAX_SHARE_NODES>")]
    pub served: Vec<NodeId>,
    /// Other people's nodes the owner takes commits from in this vault
    /// (those it shares it with to write), each until when (seconds; a
    /// share withdrawn), [`WRITING_NOW`] while they may: their commits
    /// reach the requester in the owner's history.
    #[serde(
        default,
        deserialize_with = "at_most::<_, _, MAX_SHARE_WRITERS>",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub writers: Vec<Removed>,
    /// When answered (ms, the answering node's clock).
    #[serde(default)]
    pub at: i64,
    /// The answering node's signature over the vault's id, `write`,
    /// `nodes`, `removed`, `served`, `writers` (when any), `at` and the
    /// requester's NodeId: the requester's other devices check it.
    #[serde(default, with = "serde_bytes")]
    pub signature: Vec<u8>,
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
    #[serde(deserialize_with = "at_most::<_, _, MAX_CHAIN_CLAIMS>")]
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
    /// The encoded object, or for a tree sent as a delta the ops that
    /// rebuild it from `base`.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// The tree a delta is against (the receiver has it, or it came
    /// earlier in the same transfer); absent for a whole object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// For a part of a large blob (sent in parts, each in a page of its
    /// own): where `data` is in the blob, and the blob's length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<WirePart>,
}

/// Where a part of a blob sent in parts lies ([`WireObject::part`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WirePart {
    /// The offset of the part's first byte in the blob.
    pub offset: u64,
    /// The blob's length.
    pub len: u64,
}

/// A list of at most `N` items, refused as soon as it has one more: a
/// request's lists are read before anyone checks who sent them, and an
/// empty string takes 1 byte in CBOR and 24 in memory, so a 1 MiB list of
/// them checked only after decoding held about 32 MiB. An answer's lists
/// too (a stolen device's 40 MiB answer of a million tiny vaults held
/// hundreds of MiB before the node counted them).
fn at_most<'de, D, T, const N: usize>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct AtMost<T, const N: usize>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>, const N: usize> serde::de::Visitor<'de> for AtMost<T, N> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a list of at most {N} items")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N));
            while let Some(item) = seq.next_element()? {
                if items.len() == N {
                    return Err(serde::de::Error::invalid_length(N + 1, &self));
                }
                items.push(item);
            }
            Ok(items)
        }
    }

    deserializer.deserialize_seq(AtMost::<T, N>(std::marker::PhantomData))
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// The page a sender sends for a fetch asking for `page` bytes (see
/// [`Request::Fetch`]).
pub fn page_budget(page: u32) -> usize {
    match page {
        0 => PAGE_BYTES,
        asked => (asked as usize).clamp(MIN_PAGE_BYTES, PAGE_BYTES),
    }
}

impl std::fmt::Debug for WireObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WireObject({}, {} bytes)", self.kind, self.data.len())
    }
}

impl Drop for WireObject {
    fn drop(&mut self) {
        // Blobs are secrets; do not leave them in memory (wiped in one
        // pass: see `polykey_keys::wipe`).
        polykey_keys::wipe(&mut self.data);
    }
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// The inviter's next pairing step.
    Pairing(PairingMessage),
    /// The responder's sigchain, in order (at most as long as a chain a
    /// node takes from a peer).
    Sigchain(
        #[serde(
            deserialize_with = "at_most::<_, _, { polykey_gestalts::sigchain::MAX_CHAIN_LEN }>"
        )]
        Vec<SignedClaim>,
    ),
    /// New claims of the chains of the responder's gestalt.
    Chains(#[serde(deserialize_with = "at_most::<_, _, MAX_CHAINS>")] Vec<ChainUpdate>),
    /// The responder's vaults (deleted ones still recoverable included).
    Vaults {
        /// Every vault with its head.
        #[serde(deserialize_with = "at_most::<_, _, MAX_VAULTS>")]
        vaults: Vec<VaultSummary>,
    },
    /// A page of the responder's vault deletions.
    Deletions {
        /// This page, in vault-id order.
        #[serde(deserialize_with = "at_most::<_, _, MAX_DELETIONS_PAGE>")]
        deletions: Vec<WireDeletion>,
        /// Whether more follow.
        more: bool,
    },
    /// Vaults shared with the requester.
    Shared {
        /// Each with its head and authors.
        #[serde(deserialize_with = "at_most::<_, _, MAX_SHARED_VAULTS>")]
        vaults: Vec<SharedVault>,
    },
    /// A page of objects.
    Objects {
        /// This page.
        #[serde(deserialize_with = "at_most::<_, _, MAX_PAGE_OBJECTS>")]
        objects: Vec<WireObject>,
        /// How many the whole transfer has.
        total: u32,
    },
    /// Done.
    Ok,
    /// Refused, with a reason fit to show (never a secret).
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of another person's vault with no writers is written as it
    /// was before writers existed: devices sign it as JSON, so a signature
    /// made then must still match it (otherwise every such record signed
    /// by an older version was refused, and a new device never took the
    /// vault).
    #[test]
    fn a_remote_without_writers_is_written_as_before_they_existed() {
        let node = polykey_keys::RootKeypair::from_seed(&[1; 32]).node_id();
        let mut remote = Remote {
            owner: "github.com:alice".into(),
            nodes: vec![node],
            removed: Vec::new(),
            write: false,
            ended: false,
            served: vec![node],
            writers: Vec::new(),
            taken: None,
            statement: None,
        };
        let json = serde_json::to_string(&remote).unwrap();
        assert!(!json.contains("writers"), "{json}");
        let back: Remote = serde_json::from_str(&json).unwrap();
        assert_eq!(back, remote);
        remote.writers.push(Removed {
            node,
            at: WRITING_NOW,
        });
        let json = serde_json::to_string(&remote).unwrap();
        assert_eq!(serde_json::from_str::<Remote>(&json).unwrap(), remote);
    }
}

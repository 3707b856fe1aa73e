//! Moving objects between copies of a vault, verified.
//!
//! Everything here that takes objects treats them as hostile until checked:
//! each must hash to its id and stay within the size bounds below, trees
//! must hold only names a [`crate::SecretPath`] accepts and stay within
//! [`crate::MAX_TREE_DEPTH`] and the version bounds (counting the subtrees
//! already stored), commits must be signed by their author, and every
//! object an object refers to must be present when it is stored. So an
//! object in the store always comes with everything below it, and a
//! transfer that stops half way leaves only complete, unreferenced objects.
//!
//! Kinds are checked where a wrong one would break the vault: a commit's
//! tree must be a tree and its parents commits, a directory entry a tree,
//! a file entry a blob: one in the same page or stored by the transfer by
//! what it remembers of them, one stored before by its record's
//! authenticated kind byte (never the blob itself, which can be 16 MiB).
//!
//! Two flows: `send` picks the objects another copy lacks, in the order
//! `receive` takes them (each after everything it refers to); `receive`
//! checks and stores them, page by page.

use polykey_keys::{NodeId, Plain};

use gix::objs::Kind;

/// Checking and storing what another copy sends.
mod receive;
/// Picking what another copy lacks, in an order it can take page by page.
mod send;
/// A blob received in parts, stored part by part as it comes.
mod stored_parts;

pub(crate) use receive::verify_commit;
pub use receive::{
    Incoming, MAX_COMMIT_SIZE, MAX_IMPORT_OBJECTS, MAX_PARENTS, MAX_RECEIVE_BYTES, MAX_TREE_SIZE,
};
pub use send::SendPlan;

/// Chunks of a blob one part carries ([`Part`]): enough for both sides to
/// work on several threads, few enough that each works on one part while
/// the other works on the next.
pub const PART_CHUNKS: usize = 2;
/// A page holds at most one object for each this many bytes of its budget
/// (131,072 for the largest page, 8 MiB): the receiver bounds a page's
/// count before it holds it (an object of a few bytes on the wire takes
/// more than a hundred once decoded), and a page of small secrets still
/// carries thousands.
pub const PAGE_BYTES_PER_OBJECT: usize = 64;

/// Bytes `offset..offset + data.len()` of a blob of `len` bytes sent in
/// parts: one stored in chunks, sent [`PART_CHUNKS`] chunks a page, and
/// checked and sealed by the receiver as its parts arrive.
pub struct Part {
    /// The blob's id as the sender claims it (checked once it is whole).
    pub id: String,
    /// Where `data` starts in the blob: a whole number of chunks.
    pub offset: usize,
    /// The whole blob's length.
    pub len: usize,
    /// Whole chunks, but for the blob's last (wiped in one pass when
    /// dropped: see [`polykey_keys::wipe`]).
    pub data: Plain,
}

impl Part {
    /// The wire tag of its kind ([`kind_tag`]): parts are of blobs.
    pub fn kind_tag() -> u8 {
        kind_tag(Kind::Blob)
    }
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Part({} bytes at {} of {})",
            self.data.len(),
            self.offset,
            self.len
        )
    }
}

/// A page of a transfer to another device ([`crate::Vault::first_page`]).
#[derive(Debug)]
pub enum Page {
    /// Whole objects, each after everything it refers to.
    Objects(Vec<(String, RawObject)>),
    /// A part of the next object, a blob sent in parts.
    Part(Part),
}

/// A git object in transit between two copies of a vault.
#[derive(Clone, PartialEq, Eq)]
pub struct RawObject {
    /// Blob, tree or commit.
    pub kind: Kind,
    /// The encoded object (what git hashes after the header); for a tree
    /// sent as a delta, the ops that rebuild it from `base`.
    pub data: Vec<u8>,
    /// The id of the tree a delta is against (one the receiver has, or
    /// one sent before it in the same transfer); `None` for a whole object.
    pub base: Option<String>,
}

impl std::fmt::Debug for RawObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawObject({}, {} bytes)", self.kind, self.data.len())
    }
}

impl Drop for RawObject {
    fn drop(&mut self) {
        // In one pass: a transfer drops every version of a directory it
        // rebuilt (`Vec::zeroize` took 0.55 s of a 10,000-commit clone).
        polykey_keys::wipe(&mut self.data);
    }
}

/// Who may author commits a vault accepts from another node: asked with
/// the signer and the commit's time (seconds since the Unix epoch, as its
/// signer claims it), so a device removed from the gestalt keeps the
/// commits it made before its removal and no later ones.
pub type MayAuthor<'a> = &'a (dyn Fn(&NodeId, i64) -> bool + Sync);

/// The wire tag of an object kind.
pub fn kind_tag(kind: Kind) -> u8 {
    match kind {
        Kind::Blob => 1,
        Kind::Tree => 2,
        Kind::Commit => 3,
        Kind::Tag => 4,
    }
}

/// The object kind of a wire tag.
pub fn kind_of_tag(tag: u8) -> Option<Kind> {
    match tag {
        1 => Some(Kind::Blob),
        2 => Some(Kind::Tree),
        3 => Some(Kind::Commit),
        _ => None,
    }
}

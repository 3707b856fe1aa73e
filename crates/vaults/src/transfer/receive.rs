use std::collections::{HashMap, HashSet, VecDeque};

use gix::hash::ObjectId;
use gix::objs::{Kind, WriteTo};
use polykey_db::{Db, DbError, RecordKey, SealedRecord, WriteTxn};
use polykey_keys::NodeId;
use zeroize::Zeroizing;

use super::{MayAuthor, Part, RawObject, PART_CHUNKS};
use crate::delta;
use crate::error::VaultError;
use crate::objects::{in_parts, is_chunked_len, Source, CHUNK_SIZE, HASH};
use crate::path::check_segment;
use crate::tree::{check_entries, spliced_shape, stored_shape, sum_shape, EntryView, TreeShape};
use crate::vault::{Vault, VaultId, Vaults};

use super::stored_parts::StoredParts;

/// Most objects one transfer accepts, so a hostile peer cannot exhaust
/// memory or time.
pub const MAX_IMPORT_OBJECTS: usize = 200_000;
/// Most bytes of objects one transfer takes in (1 GiB), counted as they
/// arrive (an object sent twice counts twice). It bounds what one transfer
/// can make this node store; a node bounds what it holds in memory at once
/// by its own, smaller, page limits.
pub const MAX_RECEIVE_BYTES: usize = 1024 * 1024 * 1024;
/// Largest tree object accepted (16 MiB, a directory of a few hundred
/// thousand secrets). This node never writes a larger one.
pub const MAX_TREE_SIZE: usize = 16 * 1024 * 1024;
/// Largest commit object accepted (1 MiB: a message naming a few long
/// paths, and the signature). This node never writes a larger one.
pub const MAX_COMMIT_SIZE: usize = 1024 * 1024;
/// Most parents a received commit may name (Polykey's merges name two).
pub const MAX_PARENTS: usize = 8;
/// Most bytes the trees one transfer sends as deltas may rebuild to, with
/// the bases read for them (64 GiB): each is rebuilt and hashed, so this
/// bounds the work a peer can ask for with little on the wire (an honest
/// clone of a directory of 20,000 secrets edited 10,000 times rebuilds
/// ~9 GB).
pub const MAX_RECEIVE_REBUILT: usize = 64 * 1024 * 1024 * 1024;
/// Most bytes the deltas of one page may rebuild to, with the bases read
/// for them (each once): what an honest sender puts in a page
/// ([`super::send::REBUILT_PAGE_BYTES`]) and the tree that crosses it,
/// and as much again for bases.
const MAX_PAGE_REBUILT: usize = 2 * (super::send::REBUILT_PAGE_BYTES + MAX_TREE_SIZE);

/// What one transfer into a vault has taken in so far, page by page:
/// counts and bytes, and of a blob arriving in parts its chunks sealed so
/// far (at most [`crate::MAX_SECRET_SIZE`] bytes, sealed), so a node can
/// receive a vault of any size allowed in bounded memory.
///
/// It needs no list of missing ids: [`Vault::receive_page`] takes an
/// object only once everything it refers to is stored (sent in the same or
/// an earlier page, or already here), so what has been stored is always
/// complete and [`Vault::finish_receive`] only has to find the head.
/// [`Vault::objects_page`] sends objects in that order.
///
/// A transfer that fails or is dropped before it finishes leaves the
/// objects of the pages it took in stored but unreferenced: garbage, but
/// complete and verified garbage, which no later transfer can turn into a
/// broken version. A transfer refused once stays refused.
#[derive(Debug)]
pub struct Incoming {
    vault: VaultId,
    /// Which copy of the vault it goes into: a copy being received that
    /// is dropped and begun again (another device's transfer failed and
    /// was tried again) is another, and what this transfer took in or
    /// found there is not in it (see `ObjectStore::copy_mark`).
    copy: RecordKey,
    objects: usize,
    bytes: usize,
    rebuilt: usize,
    added: usize,
    failed: bool,
    /// Kinds of objects stored before that this transfer's trees name as
    /// files, each opened once (see `Vault::stored_file_kind`), and of the
    /// blobs it stored itself (never opened).
    stored_kinds: HashMap<ObjectId, Kind>,
    /// The blob arriving in parts, if one is half received.
    partial: Option<Partial>,
    /// The handle of the file what it carries was learnt on: its pages
    /// committed without a flush ([`WriteTxn::commit_in_memory`]) and the
    /// blobs it found stored (in `stored_kinds`) are there for later
    /// transactions on that handle only (see `Incoming::relies_on`).
    handle: Option<u64>,
}

/// A blob arriving in parts ([`Vault::receive_part`]): hashed and sealed
/// as far as it came (only hashed when it was `held` here already), its
/// chunks stored as they come (`stored`), or else held until the last.
struct Partial {
    id: ObjectId,
    len: usize,
    received: usize,
    held: bool,
    hasher: gix::hash::Hasher,
    sealed: Vec<SealedRecord>,
    stored: Option<StoredParts>,
}

/// A blob half received in parts whose transfer is refused: what it
/// stored of the blob as its parts came goes when this is dropped
/// (whatever fails then is left to [`Vaults::sweep_parts`]).
struct Unfinished<'a> {
    vault: &'a Vault,
    db: &'a Db,
    partial: Option<Partial>,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if let Some(partial) = self.partial.take() {
            if let Some(parts) = &partial.stored {
                let _ = self
                    .vault
                    .drop_stored_parts(self.db, parts, &partial.id, partial.received);
            }
        }
    }
}

impl std::fmt::Debug for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Partial({} of {} bytes)", self.received, self.len)
    }
}

impl Incoming {
    /// A new transfer into `vault`.
    pub fn new(vault: &Vault) -> Self {
        Self {
            vault: vault.id(),
            copy: vault.store.copy_mark(),
            objects: 0,
            bytes: 0,
            rebuilt: 0,
            added: 0,
            failed: false,
            stored_kinds: HashMap::new(),
            partial: None,
            handle: None,
        }
    }

    /// Whether this transfer goes into `vault`, the copy it began in (a
    /// transfer set aside goes on only there).
    pub fn is_into(&self, vault: &Vault) -> bool {
        self.vault == vault.id() && self.copy == vault.store.copy_mark()
    }

    /// Set this transfer aside to go on later: let go of what it holds
    /// beyond its counts, so what waits is small: the kinds it remembers
    /// of stored objects (opened again if named again, within the same
    /// budget), and unless `keep_part`, the blob half received in parts
    /// (returned: whether one went; the transfer then goes on from that
    /// blob's first part).
    pub fn set_aside(&mut self, keep_part: bool) -> bool {
        self.stored_kinds = HashMap::new();
        !keep_part && self.partial.take().is_some()
    }

    /// Refuse a transaction of this transfer on `handle` of the file when
    /// what it carries was learnt on another: the file was opened again
    /// meanwhile (after a disk error, or the store locked and unlocked),
    /// and pages committed without a flush may be lost with it, or a
    /// collection took what no version named yet (its pages, the objects
    /// it found stored; see `collect`). The transfer cannot go on; the
    /// next begins again.
    fn on_same_handle(&self, handle: u64) -> Result<(), VaultError> {
        match self.handle {
            Some(known) if known != handle => Err(VaultError::Db(DbError::Storage(
                "the store changed during this transfer (space given back, or the data file opened again); it must begin again".into(),
            ))),
            _ => Ok(()),
        }
    }

    /// What the transfer carries from now relies on the store as seen on
    /// `handle` too: refused as [`Incoming::on_same_handle`] refuses.
    fn relies_on(&mut self, handle: u64) -> Result<(), VaultError> {
        self.on_same_handle(handle)?;
        self.handle = Some(handle);
        Ok(())
    }

    /// Bytes of the blob half received in parts held sealed in memory (0:
    /// none, or stored as they came).
    pub fn part_bytes(&self) -> usize {
        self.partial
            .as_ref()
            .filter(|p| p.stored.is_none())
            .map_or(0, |p| p.received)
    }

    /// Bytes of the blob half received in parts (0: none).
    pub fn part_received(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.received)
    }

    /// Objects received so far (repeats included).
    pub fn objects(&self) -> usize {
        self.objects
    }

    /// Bytes of objects received so far (repeats included).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Objects stored so far that were not here before.
    pub fn added(&self) -> usize {
        self.added
    }

    /// Bytes this transfer read to check what it was sent: trees rebuilt
    /// from deltas (with their bases) and stored objects opened.
    pub fn rebuilt(&self) -> usize {
        self.rebuilt
    }
}

/// Why a transfer cannot go into a vault ([`Incoming::is_into`]).
const INTO_ANOTHER: &str = "a transfer was handed to another vault, or to a copy of it begun again";

fn refused(what: impl std::fmt::Display) -> VaultError {
    VaultError::Refused(what.to_string())
}

/// A check's error as a refusal of the other node's data; store errors
/// stay what they are.
fn as_refusal(error: VaultError) -> VaultError {
    match error {
        VaultError::Db(_) | VaultError::Refused(_) => error,
        other => refused(other),
    }
}

/// A commit must carry a valid SSH signature over the rest of itself, by
/// the node it names as author and committer (as `write_commit` writes
/// them), so history always shows who really made a change. Returns the
/// signer.
/// Returns the signer and the commit's time (seconds).
pub(crate) fn verify_commit(data: &[u8]) -> Result<(NodeId, i64), VaultError> {
    let parsed = gix::objs::CommitRef::from_bytes(data, HASH).map_err(VaultError::corrupt)?;
    let mut commit = parsed.into_owned().map_err(VaultError::corrupt)?;
    let position = commit
        .extra_headers
        .iter()
        .position(|(name, _)| name == "gpgsig")
        .ok_or_else(|| VaultError::corrupt("a commit is not signed"))?;
    // Polykey's merges name two parents; a hostile commit naming one
    // parent thousands of times (a megabyte allows 20,000) would make
    // every walk of the history that looks at each parent pay for each.
    if commit.parents.len() > MAX_PARENTS {
        return Err(VaultError::corrupt(format!(
            "a commit names more than {MAX_PARENTS} parents"
        )));
    }
    if commit
        .parents
        .iter()
        .enumerate()
        .any(|(i, p)| commit.parents[..i].contains(p))
    {
        return Err(VaultError::corrupt("a commit names a parent twice"));
    }
    let (_, signature) = commit.extra_headers.remove(position);
    let mut unsigned = Vec::new();
    commit
        .write_to(&mut unsigned)
        .map_err(VaultError::corrupt)?;
    let signer = polykey_keys::sshsig::verify_armored(&signature.to_string(), "git", &unsigned)
        .map_err(|e| VaultError::corrupt(format!("a commit signature is invalid: {e}")))?;
    let name = signer.to_string();
    let email = format!("{name}@polykey");
    for actor in [&commit.author, &commit.committer] {
        if actor.name != name.as_str() || actor.email != email.as_str() {
            return Err(VaultError::corrupt(
                "a commit names an author or committer other than its signer",
            ));
        }
    }
    Ok((signer, commit.committer.time.seconds))
}

/// The size bound of one object of `kind`; tags are refused.
fn check_size(object: &RawObject) -> Result<(), VaultError> {
    let max = match object.kind {
        Kind::Blob => crate::MAX_SECRET_SIZE,
        Kind::Tree => MAX_TREE_SIZE,
        Kind::Commit => MAX_COMMIT_SIZE,
        Kind::Tag => return Err(VaultError::corrupt("vaults hold no tags")),
    };
    if object.data.len() > max {
        return Err(VaultError::TooLarge {
            size: object.data.len(),
            max,
        });
    }
    Ok(())
}

/// The ids an object refers to (a commit's tree and parents, a tree's
/// entries).
fn references(object: &RawObject) -> Result<Vec<ObjectId>, VaultError> {
    Ok(match object.kind {
        Kind::Commit => {
            let commit = gix::objs::CommitRef::from_bytes(&object.data, HASH)
                .map_err(VaultError::corrupt)?;
            let mut out = vec![commit.tree()];
            out.extend(commit.parents());
            out
        }
        Kind::Tree => gix::objs::TreeRef::from_bytes(&object.data, HASH)
            .map_err(VaultError::corrupt)?
            .entries
            .iter()
            .map(|e| e.oid.to_owned())
            .collect(),
        Kind::Blob | Kind::Tag => Vec::new(),
    })
}

/// The order to store a page in: every object after the objects of the
/// same page it refers to (Kahn's algorithm). Duplicates are dropped. A
/// tree rebuilt from a delta that keeps to whole entries refers to its
/// base and the entries it inserts (the others are the base's, so they
/// come before the base): its whole listing is not read again.
fn store_order(
    ids: &[ObjectId],
    objects: &[&RawObject],
    rebuilt: &[Option<Rebuilt>],
) -> Result<Vec<usize>, VaultError> {
    let mut index: HashMap<ObjectId, usize> = HashMap::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        index.entry(*id).or_insert(i);
    }
    let mut waiting_on = vec![0usize; ids.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); ids.len()];
    let mut ready = VecDeque::new();
    for (i, id) in ids.iter().enumerate() {
        if index.get(id) != Some(&i) {
            continue;
        }
        let refs = match &rebuilt[i] {
            Some(Rebuilt {
                base,
                fresh: Some(fresh),
                ..
            }) => fresh.iter().chain([base]).copied().collect(),
            _ => references(objects[i])?,
        };
        let mut needs: Vec<usize> = refs.iter().filter_map(|r| index.get(r).copied()).collect();
        needs.sort_unstable();
        needs.dedup();
        waiting_on[i] = needs.len();
        for need in needs {
            dependents[need].push(i);
        }
        if waiting_on[i] == 0 {
            ready.push_back(i);
        }
    }
    let mut order = Vec::with_capacity(index.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &d in &dependents[i] {
            waiting_on[d] -= 1;
            if waiting_on[d] == 0 {
                ready.push_back(d);
            }
        }
    }
    if order.len() != index.len() {
        // Hashes make cycles impossible; whatever this is, it is not git.
        return Err(VaultError::corrupt(
            "objects refer to each other in a cycle",
        ));
    }
    Ok(order)
}

/// Rebuilt versions of at least this many bytes are wiped on a thread of
/// their own (see [`drop_elsewhere`]).
const WIPE_ELSEWHERE: usize = 4 * 1024 * 1024;

/// Most threads [`drop_elsewhere`] keeps wiping at once.
const MAX_WIPING: usize = 2;

/// How many threads of [`drop_elsewhere`] are wiping now.
static WIPING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Drop `value` on a short-lived thread of its own, so that wiping it does
/// not hold up the caller; on the caller's thread when [`MAX_WIPING`] are
/// already at work (so pages a peer sends faster than they are wiped
/// cannot pile up) or no thread starts (the closure, and `value` with it,
/// is dropped then). Returns whether it went to a thread.
fn drop_elsewhere<T: Send + 'static>(value: T) -> bool {
    use std::sync::atomic::Ordering;
    if WIPING.fetch_add(1, Ordering::SeqCst) >= MAX_WIPING {
        WIPING.fetch_sub(1, Ordering::SeqCst);
        drop(value);
        return false;
    }
    let spawned = std::thread::Builder::new()
        .name("polykey-wipe".into())
        .spawn(move || {
            drop(value);
            WIPING.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        WIPING.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    true
}

/// A whole object of at least this many bytes that came with its id is
/// hashed on a thread of its own while it is sealed under that id (a
/// 10 MiB secret: SHA-1 with collision detection beside the two layers of
/// XChaCha20-Poly1305, not after them).
const HASH_BESIDE_SEALING: usize = 1024 * 1024;

/// `other` run on a thread of its own (named `name`) while `here` runs on
/// this one; where no thread is to be had, `other` runs here, after.
/// `None` if its thread panicked.
fn beside<A: Send, B>(
    name: &str,
    other: impl Fn() -> A + Sync,
    here: impl FnOnce() -> B,
) -> (Option<A>, B) {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(scope, &other);
        let done = here();
        let other = match thread {
            Ok(thread) => thread.join().ok(),
            Err(_) => Some(other()),
        };
        (other, done)
    })
}

/// Most threads that check one page's objects (each may start one more to
/// hash an object of `HASH_BESIDE_SEALING` bytes or more).
const MAX_THREADS: usize = 4;
/// A page with at least this many objects is checked on several threads;
/// a smaller one is not worth starting them (and a page of one large blob
/// is slower on a new thread: its buffers come from a fresh allocator
/// arena).
const PARALLEL_OBJECTS: usize = 64;

/// What a page has taken in so far: the shapes of its trees, and the
/// kinds of all its objects.
type PageSoFar<'a> = (
    &'a HashMap<ObjectId, TreeShape>,
    &'a HashMap<ObjectId, Kind>,
);

/// The entries of encoded tree entries (a whole tree, or a run of them).
fn tree_views(data: &[u8]) -> Result<Vec<EntryView<'_>>, VaultError> {
    let tree = gix::objs::TreeRef::from_bytes(data, HASH).map_err(VaultError::corrupt)?;
    Ok(tree
        .entries
        .iter()
        .map(|e| EntryView {
            mode: e.mode,
            name: e.filename.as_ref(),
            oid: e.oid.to_owned(),
        })
        .collect())
}

/// A tree that came as a delta, rebuilt against its base.
struct Rebuilt {
    object: RawObject,
    base: ObjectId,
    /// Deltas between it and a whole object, were it stored as a delta.
    depth: usize,
    /// The ids of the entries it inserts, when every other entry is one of
    /// its base's, unchanged (see [`delta::fresh_entries`]): only these
    /// need checking.
    fresh: Option<HashSet<ObjectId>>,
    /// What it removes from its base and inserts, when that alone shows
    /// it holds no name twice (see [`delta::splice`]): then neither its
    /// names nor its shape need a walk of all its entries.
    splice: Option<Spliced>,
}

/// A tree sent as a delta, as [`delta::splice`] sees it: the entries it
/// removes from its base (their bytes, which encode a tree of their own)
/// and the ranges of its ops that insert entries.
struct Spliced {
    removed: Zeroizing<Vec<u8>>,
    inserted: Vec<std::ops::Range<usize>>,
}

impl Rebuilt {
    /// Its deltas as stored: one too deep is stored whole.
    fn stored_depth(&self) -> usize {
        if self.depth <= delta::MAX_STORED_DEPTH {
            self.depth
        } else {
            0
        }
    }
}

/// A delta's base, read once per page.
struct Base {
    /// Its entries' starts and its length (see [`delta::entry_starts`]).
    starts: Option<Vec<usize>>,
    /// Whether its names ascend (see [`delta::names_ascend`]).
    ascends: bool,
    /// Its bytes when stored here (rebuilt and checked).
    stored: Option<Zeroizing<Vec<u8>>>,
    /// Its place in the page when it came in it and is not stored.
    in_page: Option<usize>,
    /// Deltas between it and a whole object, as stored.
    depth: usize,
}

/// The bytes of object `j` of a page: rebuilt if it came as a delta.
fn page_object<'a>(
    out: &'a [Option<Rebuilt>],
    objects: &'a [(Option<&str>, &RawObject)],
    j: usize,
) -> &'a [u8] {
    match &out[j] {
        Some(r) => &r.object.data,
        None => &objects[j].1.data,
    }
}

/// A page's object to check: the id it came with, the object whole, and
/// for a delta stored as one its base and ops.
type ToCheck<'a> = (Option<&'a str>, &'a RawObject, Option<(ObjectId, &'a [u8])>);

/// One object of a page, checked and sealed by [`Vault::prepare`].
struct Prepared {
    id: ObjectId,
    sealed: Vec<SealedRecord>,
}

/// Who may sign the commits a take-in accepts: anyone (a local, trusted
/// import) or the nodes a closure allows.
#[derive(Clone, Copy)]
enum Authors<'a> {
    Anyone,
    Only(MayAuthor<'a>),
}

impl Vault {
    /// Check and store one page of objects in `txn` (see
    /// [`Vault::receive_page`]); returns how many were new. Errors are the
    /// checks' own; the callers say whether they are refusals.
    fn take_in(
        &self,
        txn: &mut WriteTxn<'_>,
        incoming: &mut Incoming,
        objects: &[(Option<&str>, &RawObject)],
        authors: Authors<'_>,
    ) -> Result<usize, VaultError> {
        if !incoming.is_into(self) {
            return Err(refused(INTO_ANOTHER));
        }
        if incoming.failed {
            return Err(refused("this transfer was already refused"));
        }
        incoming.failed = true;
        if incoming.partial.is_some() {
            return Err(refused(
                "a page came before the rest of a blob sent in parts",
            ));
        }
        let count = incoming.objects.saturating_add(objects.len());
        if count > MAX_IMPORT_OBJECTS {
            return Err(refused("too many objects in one transfer"));
        }
        let bytes = objects.iter().fold(incoming.bytes, |sum, (_, o)| {
            sum.saturating_add(o.data.len())
        });
        if bytes > MAX_RECEIVE_BYTES {
            return Err(refused("a transfer passed its byte budget (1 GiB)"));
        }
        let rebuilt = self.rebuild_deltas(txn, objects, incoming)?;
        let checks: Vec<ToCheck<'_>> = objects
            .iter()
            .zip(&rebuilt)
            .map(|((claimed, object), rebuilt)| match rebuilt {
                Some(r) => (
                    *claimed,
                    &r.object,
                    // Stored as the peer's delta only when it keeps to
                    // whole entries (so it can be sent on as one).
                    (r.stored_depth() > 0 && r.fresh.is_some())
                        .then_some((r.base, object.data.as_slice())),
                ),
                None => (*claimed, *object, None),
            })
            .collect();
        let mut prepared = self.prepare(txn.db(), &checks, authors)?;
        let ids: Vec<ObjectId> = prepared.iter().map(|p| p.id).collect();
        let page: Vec<&RawObject> = checks.iter().map(|(_, o, _)| *o).collect();
        let kinds: HashMap<ObjectId, Kind> =
            ids.iter().zip(&page).map(|(id, o)| (*id, o.kind)).collect();
        // The shapes of the trees this page took in so far.
        let mut shapes: HashMap<ObjectId, TreeShape> = HashMap::new();
        let mut added = 0;
        let mut records = Vec::with_capacity(objects.len());
        for i in store_order(&ids, &page, &rebuilt)? {
            let (id, object) = (ids[i], page[i]);
            // A stored object was checked when it was stored, with
            // everything below it.
            if self.store.contains(txn, &id)? {
                continue;
            }
            match object.kind {
                Kind::Blob => {}
                Kind::Tree => {
                    let quick = match &rebuilt[i] {
                        Some(Rebuilt {
                            base,
                            splice: Some(splice),
                            ..
                        }) => self.spliced_tree(
                            txn,
                            incoming,
                            (&shapes, &kinds),
                            base,
                            splice,
                            &objects[i].1.data,
                        )?,
                        _ => None,
                    };
                    let shape = match quick {
                        Some(shape) => shape,
                        None => self.whole_tree(
                            txn,
                            incoming,
                            (&shapes, &kinds),
                            &object.data,
                            rebuilt[i]
                                .as_ref()
                                .filter(|r| r.fresh.is_some())
                                .map(|_| objects[i].1.data.as_slice()),
                        )?,
                    };
                    records.push(self.store.seal_shape(txn.db(), &id, &shape));
                    shapes.insert(id, shape);
                }
                Kind::Commit => {
                    // Its signature was checked by `prepare`.
                    let commit = gix::objs::CommitRef::from_bytes(&object.data, HASH)
                        .map_err(VaultError::corrupt)?;
                    // Its shape proves the tree is a tree, within bounds.
                    self.present_shape(txn, &shapes, &kinds, &commit.tree())?;
                    for parent in commit.parents() {
                        match kinds.get(&parent) {
                            // Earlier in this page, so already taken in.
                            Some(Kind::Commit) => {}
                            Some(_) => {
                                return Err(VaultError::corrupt(
                                    "a commit's parent is not a commit",
                                ))
                            }
                            None if self.store.contains(txn, &parent)? => {
                                self.store.commit(txn, &parent)?;
                            }
                            None => return Err(refused("the history sent is incomplete")),
                        }
                    }
                }
                Kind::Tag => return Err(VaultError::corrupt("vaults hold no tags")),
            }
            records.append(&mut prepared[i].sealed);
            added += 1;
            if object.kind == Kind::Blob {
                // A later page's tree naming it need not open it again
                // (a 10 MiB secret comes in a page of its own, its
                // directory in the next).
                incoming.stored_kinds.insert(id, Kind::Blob);
            }
        }
        // Stored together: what this page refers to is in this page (taken
        // from `kinds` and `shapes` above) or was stored before.
        txn.put_records(records)?;
        incoming.objects = count;
        incoming.bytes = bytes;
        incoming.added += added;
        incoming.failed = false;
        // The versions a long history's page rebuilt (up to 64 MiB) are
        // wiped on a thread of their own: 0.3 s of a 10,000-commit clone's
        // main thread.
        let rebuilt_bytes: usize = rebuilt.iter().flatten().map(|r| r.object.data.len()).sum();
        if rebuilt_bytes >= WIPE_ELSEWHERE {
            drop_elsewhere(rebuilt);
        }
        Ok(added)
    }

    /// The checks of a page that need no store, done on several threads
    /// for a large page: each object within its size bound and hashing to
    /// the id it came with, each commit signed by its author (a node
    /// `authors` allows, at the commit's time); and each object sealed for
    /// storing. The first failure, in page order, is the error.
    fn prepare(
        &self,
        db: &Db,
        objects: &[ToCheck<'_>],
        authors: Authors<'_>,
    ) -> Result<Vec<Prepared>, VaultError> {
        let one = |(claimed, object, compact): &ToCheck<'_>| {
            check_size(object)?;
            let hash = || {
                gix::objs::compute_hash(HASH, object.kind, &object.data)
                    .map_err(VaultError::corrupt)
            };
            let mismatch = || refused("an object does not match its id");
            let claimed = match claimed {
                Some(c) => Some(ObjectId::from_hex(c.as_bytes()).map_err(|_| mismatch())?),
                None => None,
            };
            let (id, sealed) = match claimed {
                Some(claimed) if compact.is_none() && object.data.len() >= HASH_BESIDE_SEALING => {
                    // Hashed on a second thread while this one seals it
                    // under the id it came with; the sealed record is
                    // dropped unless the two agree.
                    let (actual, sealed) = beside("polykey-hash", hash, || {
                        self.store.seal(db, object.kind, &object.data, &claimed)
                    });
                    let actual = actual
                        .unwrap_or_else(|| Err(VaultError::corrupt("hashing an object failed")));
                    (actual?, Some(sealed))
                }
                _ => (hash()?, None),
            };
            if claimed.is_some_and(|c| c != id) {
                return Err(mismatch());
            }
            if object.kind == Kind::Commit {
                let (signer, time) = verify_commit(&object.data)?;
                if let Authors::Only(may_author) = authors {
                    if !may_author(&signer, time) {
                        return Err(refused("a commit is signed by a node outside the gestalt"));
                    }
                }
            }
            let sealed = match (sealed, compact) {
                (Some(sealed), _) => sealed,
                (None, Some((base, ops))) => vec![self.store.seal_delta(db, &id, base, ops)],
                (None, None) => self.store.seal(db, object.kind, &object.data, &id),
            };
            Ok(Prepared { id, sealed })
        };
        if objects.len() < PARALLEL_OBJECTS {
            return objects.iter().map(one).collect();
        }
        // Each part stops at its first failure; a part that panicked is
        // an error like any other.
        let parts = in_parts(objects.iter().collect(), MAX_THREADS, |part| {
            part.into_iter().map(one).collect::<Result<Vec<_>, _>>()
        });
        let mut out = Vec::with_capacity(objects.len());
        for part in parts {
            let part = part.map_err(|_| VaultError::corrupt("checking a page failed"))??;
            out.extend(part);
        }
        Ok(out)
    }

    /// The trees of a page that came as deltas, rebuilt: each against a
    /// tree earlier in the page or one stored here (read and checked),
    /// within [`MAX_PAGE_REBUILT`] for the page and [`MAX_RECEIVE_REBUILT`]
    /// for the transfer. What they rebuild to is checked like any object
    /// (its id above all) by the caller.
    fn rebuild_deltas(
        &self,
        txn: &WriteTxn<'_>,
        objects: &[(Option<&str>, &RawObject)],
        incoming: &mut Incoming,
    ) -> Result<Vec<Option<Rebuilt>>, VaultError> {
        let mut out: Vec<Option<Rebuilt>> = Vec::with_capacity(objects.len());
        let mut trees: HashMap<ObjectId, usize> = HashMap::new();
        // Each base is read (a stored one: rebuilt and hashed) and indexed
        // once per page, and charged to the page's budget then: deltas that
        // share a base cost only their own bytes.
        let mut bases: HashMap<ObjectId, Base> = HashMap::new();
        let mut page_bytes = 0usize;
        let mut charge = |bytes: usize| {
            page_bytes = page_bytes.saturating_add(bytes);
            if page_bytes > MAX_PAGE_REBUILT {
                return Err(refused(
                    "a page's deltas rebuild to more than any device sends",
                ));
            }
            Ok(())
        };
        for (i, (claimed, object)) in objects.iter().enumerate() {
            let rebuilt = match &object.base {
                None => None,
                Some(base) => {
                    if object.kind != Kind::Tree {
                        return Err(VaultError::corrupt("only trees come as deltas"));
                    }
                    let base = ObjectId::from_hex(base.as_bytes())
                        .map_err(|_| refused("a malformed base id"))?;
                    let malformed = || VaultError::corrupt("a tree sent as a delta is malformed");
                    if !bases.contains_key(&base) {
                        // A stored base first: its depth is the stored one,
                        // whatever form the page sent it in.
                        let found = if self.store.contains(txn, &base)? {
                            let (kind, data, depth) = self.store.read_with_depth(txn, &base)?;
                            if kind != Kind::Tree {
                                return Err(VaultError::corrupt("a delta's base is not a tree"));
                            }
                            (Some(data), None, depth)
                        } else {
                            match trees.get(&base) {
                                Some(&j) => match &out[j] {
                                    Some(r) => (None, Some(j), r.stored_depth()),
                                    None => (None, Some(j), 0),
                                },
                                None => return Err(refused("the history sent is incomplete")),
                            }
                        };
                        let (stored, in_page, depth) = found;
                        let bytes = match (&stored, in_page) {
                            (Some(data), _) => data.as_slice(),
                            (None, Some(j)) => page_object(&out, objects, j),
                            (None, None) => return Err(malformed()),
                        };
                        charge(bytes.len())?;
                        // A base this page rebuilt from a splice: where its
                        // entries start follows from its own base's and its
                        // ops, and its names ascend (the splice showed it),
                        // so it is not read through again.
                        let spliced = in_page.and_then(|j| match &out[j] {
                            Some(r) if r.splice.is_some() => bases
                                .get(&r.base)
                                .and_then(|b| b.starts.as_deref())
                                .and_then(|starts| {
                                    delta::spliced_starts(starts, &objects[j].1.data)
                                }),
                            _ => None,
                        });
                        let (starts, ascends) = match spliced {
                            Some(starts) => (Some(starts), true),
                            None => {
                                let starts = delta::entry_starts(bytes);
                                let ascends = starts
                                    .as_deref()
                                    .is_some_and(|starts| delta::names_ascend(bytes, starts));
                                (starts, ascends)
                            }
                        };
                        bases.insert(
                            base,
                            Base {
                                ascends,
                                starts,
                                stored,
                                in_page,
                                depth,
                            },
                        );
                    }
                    let known = &bases[&base];
                    let base_data = match (&known.stored, known.in_page) {
                        (Some(data), _) => data.as_slice(),
                        (None, Some(j)) => page_object(&out, objects, j),
                        (None, None) => return Err(malformed()),
                    };
                    let fresh = known
                        .starts
                        .as_deref()
                        .and_then(|starts| delta::fresh_entries(starts, &object.data));
                    let splice = match (&fresh, &known.starts) {
                        (Some(_), Some(starts)) if known.ascends => {
                            delta::splice(base_data, starts, &object.data).map(|splice| Spliced {
                                removed: Zeroizing::new(
                                    splice
                                        .removed
                                        .iter()
                                        .flat_map(|range| &base_data[range.clone()])
                                        .copied()
                                        .collect(),
                                ),
                                inserted: splice.inserted,
                            })
                        }
                        _ => None,
                    };
                    if let Some(splice) = &splice {
                        charge(splice.removed.len())?;
                    }
                    let data = delta::apply(base_data, &object.data).ok_or_else(malformed)?;
                    charge(data.len())?;
                    Some(Rebuilt {
                        object: RawObject {
                            kind: Kind::Tree,
                            data,
                            base: None,
                        },
                        base,
                        depth: known.depth + 1,
                        fresh,
                        splice,
                    })
                }
            };
            if object.kind == Kind::Tree {
                if let Some(id) = claimed.and_then(|c| ObjectId::from_hex(c.as_bytes()).ok()) {
                    trees.entry(id).or_insert(i);
                }
            }
            out.push(rebuilt);
        }
        let total = incoming.rebuilt.saturating_add(page_bytes);
        if total > MAX_RECEIVE_REBUILT {
            return Err(refused("a transfer's deltas passed their budget (64 GiB)"));
        }
        incoming.rebuilt = total;
        Ok(out)
    }

    /// The checks and shape of a tree that came whole, or as a delta
    /// (`ops`) keeping to whole entries (then only the entries it inserts
    /// need their names checked): every entry read.
    fn whole_tree(
        &self,
        txn: &mut WriteTxn<'_>,
        incoming: &mut Incoming,
        page: PageSoFar<'_>,
        data: &[u8],
        ops: Option<&[u8]>,
    ) -> Result<TreeShape, VaultError> {
        if !delta::modes_canonical(data) {
            return Err(VaultError::corrupt(
                "a tree entry's mode is not spelled as git writes it",
            ));
        }
        let entries = tree_views(data)?;
        // A delta's entries copied from its base were checked with the
        // base: only those it inserts need a look (read from its ops, not
        // looked for among the rest).
        let inserted = ops
            .map(|ops| {
                delta::inserted_entries(ops)
                    .ok_or_else(|| VaultError::corrupt("a tree sent as a delta is malformed"))
            })
            .transpose()?;
        // Names and modes first: they need nothing else.
        check_entries(&entries, |_| inserted.is_none())?;
        let files: Vec<ObjectId> = match &inserted {
            Some(inserted) => {
                let mut files = Vec::new();
                for entry in inserted {
                    let malformed = || VaultError::corrupt("a tree sent as a delta is malformed");
                    check_segment(delta::entry_name(entry).ok_or_else(malformed)?)?;
                    let (is_tree, oid) = delta::entry_target(entry).ok_or_else(malformed)?;
                    if !is_tree {
                        files.push(oid);
                    }
                }
                files
            }
            None => entries
                .iter()
                .filter(|e| !e.mode.is_tree())
                .map(|e| e.oid)
                .collect(),
        };
        self.check_files(txn, incoming, page.1, &files)?;
        let below = self.subtree_shapes(txn, page, &entries)?;
        sum_shape(&entries, |oid| {
            below
                .get(oid)
                .copied()
                .ok_or_else(|| VaultError::corrupt("a subtree is missing"))
        })
    }

    /// The checks and shape of a tree that came as a delta against `base`
    /// whose result [`delta::splice`] showed to hold no name twice, from
    /// the entries it removes and inserts alone (the others are the
    /// base's, checked with it): what [`Vault::whole_tree`] would find,
    /// without reading every entry. `None` when its shape needs the whole
    /// tree.
    fn spliced_tree(
        &self,
        txn: &mut WriteTxn<'_>,
        incoming: &mut Incoming,
        page: PageSoFar<'_>,
        base: &ObjectId,
        splice: &Spliced,
        ops: &[u8],
    ) -> Result<Option<TreeShape>, VaultError> {
        let mut inserted = Vec::new();
        for range in &splice.inserted {
            let bytes = ops
                .get(range.clone())
                .ok_or_else(|| VaultError::corrupt("a tree sent as a delta is malformed"))?;
            inserted.extend(tree_views(bytes)?);
        }
        let removed = tree_views(&splice.removed)?;
        check_entries(&inserted, |_| true)?;
        let files: Vec<ObjectId> = inserted
            .iter()
            .filter(|e| !e.mode.is_tree())
            .map(|e| e.oid)
            .collect();
        self.check_files(txn, incoming, page.1, &files)?;
        let base_shape = self.present_shape(txn, page.0, page.1, base)?;
        let mut below = self.subtree_shapes(txn, page, &inserted)?;
        below.extend(self.subtree_shapes(txn, page, &removed)?);
        spliced_shape(base_shape, &removed, &inserted, |oid| {
            below
                .get(oid)
                .copied()
                .ok_or_else(|| VaultError::corrupt("a subtree is missing"))
        })
    }

    /// Files a tree of this transfer names must be blobs: sent (in this
    /// page, `kinds`, or an earlier one) or stored here. A stored tree or
    /// commit named as a secret's content would read as damaged on every
    /// copy.
    fn check_files(
        &self,
        txn: &WriteTxn<'_>,
        incoming: &mut Incoming,
        kinds: &HashMap<ObjectId, Kind>,
        files: &[ObjectId],
    ) -> Result<(), VaultError> {
        for file in files {
            let kind = match kinds.get(file) {
                Some(kind) => Some(*kind),
                None => self.stored_file_kind(txn, incoming, file)?,
            };
            match kind {
                Some(Kind::Blob) => {}
                Some(_) => return Err(VaultError::corrupt("a tree names a non-file as a file")),
                None => return Err(refused("the history sent is incomplete")),
            }
        }
        Ok(())
    }

    /// The shapes of the directories among `entries`, each looked up once.
    fn subtree_shapes(
        &self,
        txn: &mut WriteTxn<'_>,
        page: PageSoFar<'_>,
        entries: &[EntryView<'_>],
    ) -> Result<HashMap<ObjectId, TreeShape>, VaultError> {
        let mut below: HashMap<ObjectId, TreeShape> = HashMap::new();
        for entry in entries.iter().filter(|e| e.mode.is_tree()) {
            if let std::collections::hash_map::Entry::Vacant(slot) = below.entry(entry.oid) {
                slot.insert(self.present_shape(txn, page.0, page.1, &entry.oid)?);
            }
        }
        Ok(below)
    }

    /// The kind of object `id` if it is stored here, for a tree of this
    /// transfer naming it as a file. Its record is opened (a blob whole,
    /// or for one stored in chunks the record of its length),
    /// so each is opened once per transfer and the bytes count against the
    /// transfer's budget for rebuilding ([`MAX_RECEIVE_REBUILT`]): a tree
    /// naming one large stored secret half a million times costs one open.
    fn stored_file_kind(
        &self,
        txn: &WriteTxn<'_>,
        incoming: &mut Incoming,
        id: &ObjectId,
    ) -> Result<Option<Kind>, VaultError> {
        if let Some(kind) = incoming.stored_kinds.get(id) {
            return Ok(Some(*kind));
        }
        let Some((kind, opened)) = self.store.stored_kind(txn, id)? else {
            return Ok(None);
        };
        let total = incoming.rebuilt.saturating_add(opened);
        if total > MAX_RECEIVE_REBUILT {
            return Err(refused("a transfer's deltas passed their budget (64 GiB)"));
        }
        incoming.rebuilt = total;
        // One entry per distinct object named; a transfer names at most
        // as many as its trees hold entries.
        incoming.stored_kinds.insert(*id, kind);
        Ok(Some(kind))
    }

    /// The shape of tree `id`, which must be here: taken in by this page
    /// (`page`) or stored before (and then cached, or worked out).
    fn present_shape(
        &self,
        txn: &mut WriteTxn<'_>,
        page: &HashMap<ObjectId, TreeShape>,
        kinds: &HashMap<ObjectId, Kind>,
        id: &ObjectId,
    ) -> Result<TreeShape, VaultError> {
        if let Some(shape) = page.get(id) {
            return Ok(*shape);
        }
        // In this page but not a tree (a tree of the page is in `page`,
        // or was stored before and is read below).
        if let Some(kind) = kinds.get(id).filter(|k| **k != Kind::Tree) {
            return Err(VaultError::corrupt(format!(
                "object {id} is a {kind}, expected a tree"
            )));
        }
        if !self.store.contains(txn, id)? {
            return Err(refused("the history sent is incomplete"));
        }
        stored_shape(&self.store, txn, id)
    }

    /// Check that version `head` is here, complete, after `incoming`.
    fn finish_into(
        &self,
        src: &impl Source,
        incoming: &Incoming,
        head: &str,
    ) -> Result<ObjectId, VaultError> {
        if !incoming.is_into(self) {
            return Err(refused(INTO_ANOTHER));
        }
        if incoming.failed {
            return Err(refused("this transfer was already refused"));
        }
        if incoming.partial.is_some() {
            return Err(refused("the transfer ended inside a blob sent in parts"));
        }
        let head =
            ObjectId::from_hex(head.as_bytes()).map_err(|_| refused("a malformed version id"))?;
        match self.store.read(src, &head) {
            Ok((Kind::Commit, _)) => Ok(head),
            Ok(_) => Err(refused("the version sent is not a commit")),
            Err(VaultError::Db(e)) => Err(VaultError::Db(e)),
            Err(_) => Err(refused("the history sent is incomplete")),
        }
    }

    /// Take in one page of a transfer from another copy, in one
    /// transaction, and count it in `incoming`. Every object must hash to
    /// the id it came with and stay within its size bound (blobs
    /// [`crate::MAX_SECRET_SIZE`], trees [`MAX_TREE_SIZE`], commits
    /// [`MAX_COMMIT_SIZE`]); trees must hold only names
    /// [`crate::SecretPath`] accepts, no name twice, and stay within
    /// [`crate::MAX_TREE_DEPTH`] and the version bounds
    /// ([`crate::MAX_VERSION_ENTRIES`], [`crate::MAX_VERSION_PATH_BYTES`])
    /// counting subtrees already stored; commits must be signed by a node
    /// `may_author` accepts, naming it as author and committer. Objects may
    /// come in any order within a page, but everything an object refers to
    /// must be in the same page, an earlier one, or already here (as
    /// [`Vault::objects_page`] sends them). Refused once the transfer
    /// passes [`MAX_IMPORT_OBJECTS`] objects or [`MAX_RECEIVE_BYTES`]
    /// bytes. On refusal nothing of the page is stored, and the transfer
    /// cannot go on. Returns how many objects were new here.
    pub fn receive_page(
        &self,
        db: &Db,
        incoming: &mut Incoming,
        objects: &[(String, RawObject)],
        may_author: MayAuthor<'_>,
    ) -> Result<usize, VaultError> {
        let mut txn = db.write()?;
        incoming.relies_on(txn.handle())?;
        let added = self.take_page(&mut txn, incoming, objects, may_author)?;
        // Not flushed: the transfer's last transaction, on the same handle
        // of the file, makes its pages durable with it, and one on another
        // handle is refused (see `Incoming::on_same_handle`). A flush a page
        // took 13-18 ms of a 10,000-commit clone's 30 pages.
        txn.commit_in_memory()?;
        Ok(added)
    }

    /// Take in a part of a blob sent in parts ([`Part`]). Parts come in
    /// order, one a page, each whole chunks but for the blob's last; each
    /// is hashed and sealed as it comes, and its chunks stored as they
    /// come (by one transfer of the blob at a time, see `stored_parts`) or
    /// held until the last; the blob's record is written, in a durable
    /// transaction, only once the whole hashes to its id. A
    /// blob this vault holds already (a transfer tried again, say) is only
    /// hashed, and nothing is written. No page of whole objects may come
    /// while a blob is half received.
    /// Counted against the transfer's bounds like a page; on refusal the
    /// transfer cannot go on.
    pub fn receive_part(
        &self,
        db: &Db,
        incoming: &mut Incoming,
        part: &Part,
    ) -> Result<(), VaultError> {
        if !incoming.is_into(self) {
            return Err(refused(INTO_ANOTHER));
        }
        if incoming.failed {
            return Err(refused("this transfer was already refused"));
        }
        incoming.failed = true;
        // Refused, the transfer ends here: what it stored of the blob goes.
        let mut unfinished = Unfinished {
            vault: self,
            db,
            partial: incoming.partial.take(),
        };
        let id = ObjectId::from_hex(part.id.as_bytes())
            .map_err(|_| refused("an object does not match its id"))?;
        let (offset, len) = (part.offset, part.len);
        let end = offset
            .checked_add(part.data.len())
            .filter(|end| *end <= len);
        let whole_chunks = part.data.len().is_multiple_of(CHUNK_SIZE) || end == Some(len);
        if !is_chunked_len(len)
            || part.data.is_empty()
            || part.data.len() > PART_CHUNKS * CHUNK_SIZE
            || !offset.is_multiple_of(CHUNK_SIZE)
            || !whole_chunks
        {
            return Err(refused("a malformed part of a blob"));
        }
        let Some(end) = end else {
            return Err(refused("a malformed part of a blob"));
        };
        if incoming.objects >= MAX_IMPORT_OBJECTS {
            return Err(refused("too many objects in one transfer"));
        }
        let bytes = incoming.bytes.saturating_add(part.data.len());
        if bytes > MAX_RECEIVE_BYTES {
            return Err(refused("a transfer passed its byte budget (1 GiB)"));
        }
        let partial = match unfinished.partial.take() {
            None if offset == 0 => {
                let mut hasher = gix::hash::hasher(HASH);
                hasher.update(&gix::objs::encode::loose_header(Kind::Blob, len as u64));
                // Taken before the read: a blob found here may have come
                // in another transfer's page not yet flushed. Relied on
                // whether found or not: one stored by another transfer
                // while these parts come is found then (`store_part`) and
                // taken as held, and a collection may take it before the
                // last part, which writes nothing then (a transfer whose
                // first object this is knew no handle till its end).
                let handle = db.handle();
                let held = self.store.contains(&db.read()?, &id)?;
                incoming.relies_on(handle)?;
                Partial {
                    id,
                    len,
                    received: 0,
                    held,
                    hasher,
                    sealed: Vec::new(),
                    stored: if held {
                        None
                    } else {
                        self.store_parts(db, &id)
                    },
                }
            }
            Some(partial)
                if partial.id == id && partial.len == len && partial.received == offset =>
            {
                partial
            }
            other => {
                unfinished.partial = other;
                return Err(refused("a part of a blob came out of order"));
            }
        };
        let partial = unfinished.partial.insert(partial);
        if partial.held {
            // Checked all the same, but there is nothing to store.
            partial.hasher.update(&part.data);
        } else {
            // Sealed on other threads while this one hashes.
            let first = offset / CHUNK_SIZE;
            let seal = || self.store.seal_chunks(db, &id, len, first, &part.data);
            let (sealed, ()) = beside("polykey-seal", seal, || partial.hasher.update(&part.data));
            let sealed = sealed.ok_or_else(|| VaultError::corrupt("sealing a part failed"))?;
            match &partial.stored {
                // The last part's chunks go with the blob's record.
                Some(parts) if end < len => {
                    let chunks = end.div_ceil(CHUNK_SIZE);
                    if !self.store_part(db, parts, &id, sealed, chunks)? {
                        (partial.held, partial.stored) = (true, None);
                    }
                }
                _ => partial.sealed.extend(sealed),
            }
        }
        partial.received = end;
        incoming.bytes = bytes;
        if end < len {
            incoming.partial = unfinished.partial.take();
            incoming.failed = false;
            return Ok(());
        }
        let hasher = std::mem::replace(&mut partial.hasher, gix::hash::hasher(HASH));
        let actual = hasher
            .try_finalize()
            .map_err(|_| refused("an object does not match its id"))?;
        if actual != id {
            return Err(refused("an object does not match its id"));
        }
        if partial.held {
            // Still here: a copy keeps every object it stores, and one
            // dropped and begun again since is another (`is_into`).
            incoming.objects += 1;
            incoming.stored_kinds.insert(id, Kind::Blob);
            incoming.failed = false;
            return Ok(());
        }
        let mut txn = db.write()?;
        // Its kind is remembered below: what the transfer takes from here
        // counts on the blob, which holds only while the file stays open
        // on this handle (a lock and an unlock meanwhile, and a collection
        // at the lock may have taken it: the transfer is refused then).
        incoming.relies_on(txn.handle())?;
        if let Some(parts) = &partial.stored {
            if !self.finish_parts(&mut txn, parts, (&id, len), offset / CHUNK_SIZE)? {
                drop(txn);
                return Err(refused(
                    "the parts of a secret stored as they came are gone; it begins again",
                ));
            }
        }
        if !self.store.contains(&txn, &id)? {
            let mut records = std::mem::take(&mut partial.sealed);
            records.push(self.store.seal_chunked_header(db, &id, len));
            txn.put_records(records)?;
            incoming.added += 1;
        }
        // Durable, and with it the pages before it on this handle (see
        // `receive_page`).
        txn.commit()?;
        unfinished.partial = None;
        incoming.objects += 1;
        incoming.stored_kinds.insert(id, Kind::Blob);
        incoming.failed = false;
        Ok(())
    }

    /// The last page of a transfer, in one transaction (one durable commit
    /// for the usual small pull): taken in as [`Vault::receive_page`] takes
    /// a page, the transfer ended as [`Vault::finish_receive`] ends it, and
    /// the head moved to `head` when this copy is behind it (a
    /// fast-forward, as [`Vault::merge`] makes one). Returns whether the
    /// head moved; where the copies diverged, merge does the rest.
    pub fn receive_last_page(
        &self,
        db: &Db,
        incoming: &mut Incoming,
        objects: &[(String, RawObject)],
        may_author: MayAuthor<'_>,
        head: &str,
    ) -> Result<bool, VaultError> {
        let mut txn = db.write()?;
        incoming.on_same_handle(txn.handle())?;
        self.take_page(&mut txn, incoming, objects, may_author)?;
        let theirs = self.finish_into(&txn, incoming, head)?;
        let forward = self.fast_forward(&mut txn, theirs)?;
        txn.commit()?;
        Ok(forward)
    }

    /// End a transfer: version `head` must be a commit that is here (sent
    /// or already stored), and with it everything it needs. The head does
    /// not move; merge does that.
    pub fn finish_receive(
        &self,
        db: &Db,
        incoming: Incoming,
        head: &str,
    ) -> Result<(), VaultError> {
        // Written, to make the pages durable before anything uses them.
        let txn = db.write()?;
        incoming.on_same_handle(txn.handle())?;
        self.finish_into(&txn, &incoming, head)?;
        txn.commit()?;
        Ok(())
    }

    /// Take in objects received from another copy so that version `head`
    /// is complete here; the head does not move (merge does that). The
    /// checks of [`Vault::receive_page`] and [`Vault::finish_receive`], in
    /// one transaction: all or nothing.
    pub fn receive(
        &self,
        db: &Db,
        head: &str,
        objects: &[(String, RawObject)],
        may_author: MayAuthor<'_>,
    ) -> Result<usize, VaultError> {
        let mut txn = db.write()?;
        let added = self.receive_into(&mut txn, head, objects, may_author)?;
        txn.commit()?;
        Ok(added)
    }

    fn receive_into(
        &self,
        txn: &mut WriteTxn<'_>,
        head: &str,
        objects: &[(String, RawObject)],
        may_author: MayAuthor<'_>,
    ) -> Result<usize, VaultError> {
        let mut incoming = Incoming::new(self);
        let added = self.take_page(txn, &mut incoming, objects, may_author)?;
        self.finish_into(txn, &incoming, head)?;
        Ok(added)
    }

    /// Store objects from another copy, checked as [`Vault::receive_page`]
    /// checks them except that any node may have signed the commits. All
    /// or nothing. The head does not move; merge does that.
    pub fn import(&self, db: &Db, objects: &[RawObject]) -> Result<usize, VaultError> {
        let mut txn = db.write()?;
        let added = self.import_into(&mut txn, objects)?;
        txn.commit()?;
        Ok(added)
    }

    fn import_into(
        &self,
        txn: &mut WriteTxn<'_>,
        objects: &[RawObject],
    ) -> Result<usize, VaultError> {
        let page: Vec<(Option<&str>, &RawObject)> = objects.iter().map(|o| (None, o)).collect();
        let mut incoming = Incoming::new(self);
        self.take_in(txn, &mut incoming, &page, Authors::Anyone)
    }

    /// Take in a page of objects sent with their ids, from authors
    /// `may_author` accepts (see [`Vault::receive_page`]).
    fn take_page(
        &self,
        txn: &mut WriteTxn<'_>,
        incoming: &mut Incoming,
        objects: &[(String, RawObject)],
        may_author: MayAuthor<'_>,
    ) -> Result<usize, VaultError> {
        let page: Vec<(Option<&str>, &RawObject)> = objects
            .iter()
            .map(|(id, o)| (Some(id.as_str()), o))
            .collect();
        self.take_in(txn, incoming, &page, Authors::Only(may_author))
            .map_err(as_refusal)
    }

    /// Whether the vault has a version, and so is more than the start of a
    /// transfer ([`Vaults::begin_receive_vault`]). Only such vaults are
    /// listed.
    pub(crate) fn is_listed(&self, src: &impl Source) -> Result<bool, VaultError> {
        Ok(self.store.head(src)?.is_some())
    }
}

impl Vaults<'_> {
    /// Make a local copy of another node's vault (same id) from its objects
    /// and head, sealed under a fresh local key, checked as
    /// [`Vault::import`] checks. All or nothing.
    pub fn clone_vault(
        &self,
        name: &str,
        id: &str,
        head: &str,
        objects: &[RawObject],
    ) -> Result<Vault, VaultError> {
        let id: VaultId = id.parse()?;
        let mut txn = self.db.write()?;
        let vault = self.insert_record(&mut txn, name, id)?;
        vault.import_into(&mut txn, objects)?;
        let head = vault.finish_into(&txn, &Incoming::new(&vault), head)?;
        vault.store.set_head(&mut txn, &head)?;
        txn.commit()?;
        Ok(vault)
    }

    /// Make the local copy of another node's vault: same id, name and
    /// rename time, with its history received as [`Vault::receive`] checks
    /// it and sealed under a fresh local key. If the name is taken here by
    /// another vault, a suffix tells them apart (locally only). All or
    /// nothing.
    pub fn receive_vault(
        &self,
        name: &str,
        id: &str,
        renamed_at: i64,
        head: &str,
        objects: &[(String, RawObject)],
        may_author: MayAuthor<'_>,
    ) -> Result<Vault, VaultError> {
        let id: VaultId = id.parse()?;
        let head_id =
            ObjectId::from_hex(head.as_bytes()).map_err(|_| refused("a malformed version id"))?;
        let mut txn = self.db.write()?;
        if self.is_deleted(&txn, &id)? {
            return Err(VaultError::UnknownVault(id.to_string()));
        }
        let name = self.free_name(&txn, name)?;
        let vault = self.insert_record(&mut txn, &name, id)?;
        vault.receive_into(&mut txn, head, objects, may_author)?;
        vault.store.set_head(&mut txn, &head_id)?;
        self.set_renamed_at(&mut txn, &id, renamed_at)?;
        txn.commit()?;
        self.open(&id.to_string())
    }

    /// The vault `id` if it is here, found by id only (a name that happens
    /// to look like an id does not count).
    fn by_id(&self, id: &VaultId) -> Result<Option<Vault>, VaultError> {
        match self.open(&id.to_string()) {
            Ok(vault) if vault.id() == *id => Ok(Some(vault)),
            Ok(_) | Err(VaultError::UnknownVault(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Start receiving another node's vault page by page: a record with the
    /// vault's id, name (suffixed if taken here) and rename time, but no
    /// version, so it is not listed until [`Vaults::finish_receive_vault`]
    /// gives it one. Refused for a vault deleted here. A record left by an
    /// earlier transfer of the same vault that never finished is taken up
    /// again; a vault that is here already is refused.
    /// Take pages into it with [`Vault::receive_page`] and an
    /// [`Incoming::new`] of it.
    pub fn begin_receive_vault(
        &self,
        name: &str,
        id: &str,
        renamed_at: i64,
    ) -> Result<Vault, VaultError> {
        let id: VaultId = id.parse()?;
        let mut txn = self.db.write()?;
        if self.is_deleted(&txn, &id)? {
            return Err(VaultError::UnknownVault(id.to_string()));
        }
        let vault = match self.by_id(&id)? {
            Some(vault) if vault.is_listed(&txn)? => {
                return Err(VaultError::VaultExists(id.to_string()))
            }
            Some(unfinished) => unfinished,
            None => {
                let name = self.free_name(&txn, name)?;
                self.insert_record(&mut txn, &name, id)?
            }
        };
        self.set_renamed_at(&mut txn, &id, renamed_at)?;
        txn.commit()?;
        Ok(vault)
    }

    /// End a transfer begun by [`Vaults::begin_receive_vault`]: `head` must
    /// be complete here (as [`Vault::finish_receive`] checks), and becomes
    /// the vault's version, which lists it; then the vault is settled with
    /// a deletion kept here, as [`Vaults::receive_vault`] settles it (which
    /// may refuse it: the transfer should then be aborted).
    pub fn finish_receive_vault(
        &self,
        id: &str,
        incoming: Incoming,
        head: &str,
    ) -> Result<Vault, VaultError> {
        let mut finished =
            self.finish_receive_vaults(vec![(id.to_owned(), incoming, head.to_owned())])?;
        finished
            .pop()
            .ok_or_else(|| VaultError::corrupt("a finished transfer came back without its vault"))
    }

    /// [`Vaults::finish_receive_vault`] for several transfers (id, transfer,
    /// head) in one transaction: every vault is listed, or none is (a
    /// restore of several vaults is all or nothing).
    pub fn finish_receive_vaults(
        &self,
        transfers: Vec<(String, Incoming, String)>,
    ) -> Result<Vec<Vault>, VaultError> {
        if transfers.is_empty() {
            return Ok(Vec::new());
        }
        let mut txn = self.db.write()?;
        let mut finished = Vec::with_capacity(transfers.len());
        for (id, incoming, head) in transfers {
            let id: VaultId = id.parse()?;
            let vault = self
                .by_id(&id)?
                .ok_or_else(|| VaultError::UnknownVault(id.to_string()))?;
            if vault.is_listed(&txn)? {
                return Err(VaultError::VaultExists(id.to_string()));
            }
            incoming.on_same_handle(txn.handle())?;
            let head = vault.finish_into(&txn, &incoming, &head)?;
            vault.store.set_head(&mut txn, &head)?;
            self.set_renamed_at(&mut txn, &id, vault.info().renamed_at)?;
            finished.push(vault);
        }
        txn.commit()?;
        Ok(finished)
    }

    /// Give up a transfer begun by [`Vaults::begin_receive_vault`]: its
    /// record and everything it stored are dropped. A vault that has a
    /// version is never touched. Returns whether anything was dropped.
    pub fn abort_receive_vault(&self, id: &str) -> Result<bool, VaultError> {
        let id: VaultId = id.parse()?;
        let mut txn = self.db.write()?;
        let Some(vault) = self.by_id(&id)? else {
            return Ok(false);
        };
        if vault.is_listed(&txn)? {
            return Ok(false);
        }
        self.drop_copy(&mut txn, &vault)?;
        txn.commit()?;
        Ok(true)
    }

    /// Drop every copy begun by [`Vaults::begin_receive_vault`] and never
    /// finished, except those `arriving` says a transfer is still
    /// receiving: their records (which hold their names) and everything
    /// they stored. Returns how many were dropped.
    pub fn drop_unfinished(
        &self,
        arriving: impl Fn(&VaultId) -> bool,
    ) -> Result<usize, VaultError> {
        let mut txn = self.db.write()?;
        let mut dropped = 0;
        for (_, record) in self.records(&txn)? {
            let vault = crate::vault::vault_from(&record)?;
            if vault.is_listed(&txn)? || arriving(&vault.id()) {
                continue;
            }
            self.drop_copy(&mut txn, &vault)?;
            dropped += 1;
        }
        if dropped > 0 {
            txn.commit()?;
        }
        Ok(dropped)
    }

    fn drop_copy(&self, txn: &mut WriteTxn<'_>, vault: &Vault) -> Result<(), VaultError> {
        if !self.remove_record(txn, &vault.id())? {
            return Err(VaultError::corrupt(
                "an unfinished vault's record is missing",
            ));
        }
        txn.delete_raw_table(vault.store.objects_table())?;
        txn.delete_raw_table(vault.store.refs_table())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A value whose drop waits until it is let go.
    struct Held(Option<mpsc::Receiver<()>>);

    impl Drop for Held {
        fn drop(&mut self) {
            if let Some(go) = self.0.take() {
                let _ = go.recv_timeout(std::time::Duration::from_secs(30));
            }
        }
    }

    #[test]
    fn no_more_than_two_wipes_run_elsewhere_at_once() {
        let (first, first_go) = mpsc::channel();
        let (second, second_go) = mpsc::channel();
        assert!(drop_elsewhere(Held(Some(first_go))));
        assert!(drop_elsewhere(Held(Some(second_go))));
        // Both threads are busy: the third is dropped here, at once.
        assert!(!drop_elsewhere(Held(None)));
        first.send(()).unwrap();
        second.send(()).unwrap();
        let mut waited = 0;
        while WIPING.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            assert!(waited < 500, "the wiping threads never finished");
            std::thread::sleep(std::time::Duration::from_millis(10));
            waited += 1;
        }
        assert!(drop_elsewhere(Held(None)));
    }
}

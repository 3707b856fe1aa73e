use std::sync::Mutex;

use gix::hash::ObjectId;
use gix::objs::{Commit, Kind, Tree, WriteTo};
use polykey_db::{Db, RawTable, RecordKey, SealedRecord, WriteTxn};
use polykey_keys::aead::{NONCE_LEN, TAG_LEN};
use polykey_keys::{Plain, SymmetricKey};
use zeroize::Zeroizing;

use crate::delta;
use crate::error::VaultError;
use crate::transfer::{MAX_COMMIT_SIZE, MAX_TREE_SIZE};
use crate::tree::TreeShape;
use crate::vault::VaultId;

/// Vaults use SHA-1 object ids, like every git repository they export to.
pub(crate) const HASH: gix::hash::Kind = gix::hash::Kind::Sha1;
/// The one branch a vault has.
pub(crate) const MAIN_REF: &str = "refs/heads/main";

/// Reading sealed records, from a read or a write transaction alike.
pub(crate) use polykey_db::RawRead as Source;

/// A buffer for a record's `len` bytes of plaintext, to be pushed after
/// the room it leaves for both layers' nonces, with the capacity for both
/// tags (so it never moves, leaving plaintext behind, while it is filled
/// and sealed; see [`ObjectStore::seal_buffer`]).
fn record_buffer(len: usize) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(2 * (NONCE_LEN + TAG_LEN) + len);
    buffer.resize(2 * NONCE_LEN, 0);
    buffer
}

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    }
}

fn byte_kind(byte: u8) -> Option<Kind> {
    Some(match byte {
        1 => Kind::Commit,
        2 => Kind::Tree,
        3 => Kind::Blob,
        4 => Kind::Tag,
        _ => return None,
    })
}

/// An object read for sending ([`ObjectStore::read_to_send`]).
pub(crate) enum ToSend {
    /// The object, whole.
    Object(Kind, Zeroizing<Vec<u8>>),
    /// A blob stored in chunks, of this length.
    Chunked(usize),
}

/// What a stored commit or tree names (see [`ObjectStore::stored_links`]).
pub(crate) enum Links {
    /// A commit: its tree and parents.
    Commit {
        tree: ObjectId,
        parents: Vec<ObjectId>,
    },
    /// A tree stored whole, its bytes.
    Tree(Zeroizing<Vec<u8>>),
    /// A tree stored as a delta against `base`; `aligned` if its record
    /// says it keeps to whole entries (see [`ALIGNED`]).
    Delta {
        base: ObjectId,
        ops: Zeroizing<Vec<u8>>,
        aligned: bool,
    },
}

/// A tree as stored: the base it is a delta against, and the ops.
pub(crate) type StoredDelta = (ObjectId, Zeroizing<Vec<u8>>);

/// Set on the kind byte of a record that holds a delta.
const DELTA: u8 = 0x80;
/// Set on the kind byte of a record that holds the length of an object
/// stored in chunks (see [`CHUNK_SIZE`]).
const CHUNKED: u8 = 0x40;
/// Set, beside [`DELTA`], on a delta that keeps to whole entries: its
/// copies begin and end on its base's entry boundaries and its inserts
/// hold whole entries, so each entry of the tree is one of its base's or
/// one it inserts. Every delta this node writes does (its own, and a
/// peer's only then); records written before the mark may not say so.
const ALIGNED: u8 = 0x20;
/// Blobs longer than this are stored in chunks of this many bytes (the
/// last one shorter), each a record of its own: a large secret is sealed
/// and opened on several threads, and each record fits one of redb's
/// 1 MiB pages (a 10 MiB secret as one record took a page of 16 MiB).
/// Part of the stored format, and of the wire's (parts are whole chunks):
/// the chunks of a blob stored with another size would not open.
pub(crate) const CHUNK_SIZE: usize = (1 << 20) - 4096;
/// Threads that seal or open the chunks of one object.
const CHUNK_THREADS: usize = 4;
/// Trees smaller than this are stored whole: a delta would save little and
/// cost a rebuild on every read.
const MIN_DELTA_SIZE: usize = 4096;

/// The start of a stored record's plaintext.
enum Header {
    /// A kind byte, then the object.
    Whole(Kind),
    /// A kind byte with [`DELTA`] set (and [`ALIGNED`], if it keeps to
    /// whole entries), the base's id, this version's `seq` (little
    /// endian), then the ops of [`delta::apply`].
    Delta {
        kind: Kind,
        base: ObjectId,
        seq: u32,
        aligned: bool,
    },
    /// A blob's kind byte with [`CHUNKED`] set, then its length (u64,
    /// little endian): its bytes are in chunk records of their own.
    Chunked { kind: Kind, len: usize },
}

impl Header {
    /// Bytes of a delta header.
    const DELTA_LEN: usize = 1 + 20 + 4;

    /// Bytes of a chunked object's header.
    const CHUNKED_LEN: usize = 1 + 8;

    fn parse(plain: &[u8]) -> Option<Self> {
        let (&tag, rest) = plain.split_first()?;
        let kind = byte_kind(tag & !(DELTA | CHUNKED | ALIGNED))?;
        match tag & (DELTA | CHUNKED | ALIGNED) {
            0 => Some(Self::Whole(kind)),
            flags if flags & !ALIGNED == DELTA => {
                let base = ObjectId::try_from(rest.get(..20)?).ok()?;
                let seq = u32::from_le_bytes(rest.get(20..24)?.try_into().ok()?);
                let aligned = flags & ALIGNED != 0;
                Some(Self::Delta {
                    kind,
                    base,
                    seq,
                    aligned,
                })
            }
            // Only blobs are stored in chunks.
            CHUNKED if kind == Kind::Blob => {
                let len = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
                let len = usize::try_from(len).ok()?;
                Some(Self::Chunked { kind, len })
            }
            _ => None,
        }
    }
}

/// Whether a blob of `len` bytes is stored in chunks.
pub(crate) fn is_chunked_len(len: usize) -> bool {
    len > CHUNK_SIZE && len <= crate::MAX_SECRET_SIZE
}

/// `work` done on each of `items`, on up to [`CHUNK_THREADS`] threads (a
/// part of them each), the results in order. A panic in `work` is passed
/// on.
fn side_by_side<T: Send, R: Send>(items: Vec<T>, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    let mut out = Vec::with_capacity(items.len());
    let parts = in_parts(items, CHUNK_THREADS, |part| {
        part.into_iter().map(&work).collect::<Vec<R>>()
    });
    for part in parts {
        match part {
            Ok(done) => out.extend(done),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    out
}

/// `items` cut into up to `threads` parts in order (no more than the
/// machine has cores), each handed whole to `work` on a thread of its own:
/// the first on this thread, as is any whose thread cannot be had. The
/// parts' results in order, a part whose `work` panicked as its panic.
pub(crate) fn in_parts<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    work: impl Fn(Vec<T>) -> R + Sync,
) -> Vec<std::thread::Result<R>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(threads)
        .min(items.len());
    if threads < 2 {
        return vec![std::panic::catch_unwind(std::panic::AssertUnwindSafe(
            || work(items),
        ))];
    }
    let per = items.len().div_ceil(threads);
    let mut rest = items;
    let mut parts = Vec::with_capacity(threads);
    while rest.len() > per {
        let tail = rest.split_off(per);
        parts.push(Mutex::new(std::mem::replace(&mut rest, tail)));
    }
    parts.push(Mutex::new(rest));
    // A part stays where this thread can take it back when its own
    // thread cannot be had.
    let run = |part: &Mutex<Vec<T>>| {
        let taken = match part.lock() {
            Ok(mut part) => std::mem::take(&mut *part),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(taken)))
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = parts[1..]
            .iter()
            .map(|part| {
                std::thread::Builder::new()
                    .name("polykey-parts".into())
                    .spawn_scoped(scope, || run(part))
                    .ok()
            })
            .collect();
        let mut out = Vec::with_capacity(parts.len());
        out.push(run(&parts[0]));
        for (worker, part) in workers.into_iter().zip(&parts[1..]) {
            out.push(match worker.map(|worker| worker.join()) {
                Some(Ok(done)) => done,
                Some(Err(panic)) => Err(panic),
                None => run(part),
            });
        }
        out
    })
}

/// The domain and associated-data prefix of a tree's cached shape.
const SHAPE_RECORD: (&[u8], &[u8]) = (b"tree-shape", b"polykey-vault-tree-shape/v1\0");
/// The domain and associated-data prefix of a commit's cached generation.
const GENERATION_RECORD: (&[u8], &[u8]) = (
    b"commit-generation",
    b"polykey-vault-commit-generation/v1\0",
);

/// One vault's object database: every object sealed with the vault key,
/// stored under a keyed hash of its id in the vault's own table.
pub(crate) struct ObjectStore {
    id: VaultId,
    key: SymmetricKey,
    index_key: [u8; 32],
    objects: RawTable,
    refs: RawTable,
}

impl Drop for ObjectStore {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.index_key);
    }
}

impl ObjectStore {
    pub(crate) fn new(id: VaultId, key: SymmetricKey) -> Self {
        let index_key = blake3::derive_key("polykey-vaults object keys v1", key.expose_secret());
        Self {
            objects: RawTable::named(format!("vault_objects_{id}")),
            refs: RawTable::named(format!("vault_refs_{id}")),
            id,
            key,
            index_key,
        }
    }

    pub(crate) fn objects_table(&self) -> &RawTable {
        &self.objects
    }

    pub(crate) fn refs_table(&self) -> &RawTable {
        &self.refs
    }

    fn record_key(&self, domain: &[u8], name: &[u8]) -> RecordKey {
        let mut hasher = blake3::Hasher::new_keyed(&self.index_key);
        hasher.update(domain);
        hasher.update(name);
        RecordKey::from_bytes(*hasher.finalize().as_bytes())
    }

    /// A mark of this copy of the vault: a keyed hash under its key, so a
    /// copy dropped and made again (with a fresh key) has another, and
    /// the mark tells nothing of the key.
    pub(crate) fn copy_mark(&self) -> RecordKey {
        self.record_key(b"copy", b"")
    }

    /// Where chunk `index` of object `id` is stored.
    pub(crate) fn chunk_key(&self, id: &ObjectId, index: usize) -> RecordKey {
        let mut name = [0u8; 20 + 8];
        name[..20].copy_from_slice(id.as_bytes());
        name[20..].copy_from_slice(&(index as u64).to_le_bytes());
        self.record_key(b"chunk", &name)
    }

    /// What chunk `index` of object `id`, `len` bytes long, is sealed
    /// with: so a chunk opens only in its place, of its object, at its
    /// length.
    fn chunk_ad(&self, id: &ObjectId, len: usize, index: usize) -> Vec<u8> {
        [
            b"polykey-vault-chunk/v1\0".as_slice(),
            self.id.as_bytes(),
            id.as_bytes(),
            &(len as u64).to_le_bytes(),
            &(index as u64).to_le_bytes(),
        ]
        .concat()
    }

    /// Chunks `chunks` of object `id`, `len` bytes stored in chunks, one
    /// after another: each chunk record read here, in order, then opened
    /// side by side (both layers) and put in its place.
    pub(crate) fn open_chunks(
        &self,
        src: &impl Source,
        id: &ObjectId,
        len: usize,
        chunks: std::ops::Range<usize>,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if !is_chunked_len(len) {
            return Err(VaultError::corrupt(format!(
                "object {id} is stored in chunks at a length of {len}"
            )));
        }
        let start = chunks.start.saturating_mul(CHUNK_SIZE);
        let end = chunks.end.saturating_mul(CHUNK_SIZE).min(len);
        if start >= end {
            return Err(VaultError::corrupt(format!(
                "object {id} has no chunks {chunks:?}"
            )));
        }
        let mut data = Zeroizing::new(vec![0u8; end - start]);
        // A few chunks at a time: a chunk's sealed bytes are held only
        // until it is opened.
        let batch = CHUNK_SIZE * CHUNK_THREADS;
        for (n, batch) in data.chunks_mut(batch).enumerate() {
            let first = chunks.start + n * CHUNK_THREADS;
            let mut work = Vec::with_capacity(CHUNK_THREADS);
            for (index, out) in (first..).zip(batch.chunks_mut(CHUNK_SIZE)) {
                let sealed = src
                    .get_unopened(&self.objects, &self.chunk_key(id, index))?
                    .ok_or_else(|| VaultError::corrupt(format!("object {id} lacks a chunk")))?;
                work.push((index, sealed, out));
            }
            self.open_chunk_batch(id, len, work)?;
        }
        Ok(data)
    }

    /// Chunks of object `id` (`len` bytes) read by
    /// [`ObjectStore::open_chunks`], opened side by side into their places.
    fn open_chunk_batch(
        &self,
        id: &ObjectId,
        len: usize,
        work: Vec<(usize, polykey_db::Unopened<'_>, &mut [u8])>,
    ) -> Result<(), VaultError> {
        let opened = side_by_side(work, |(index, sealed, out)| {
            let plain = self
                .key
                .open_plain(sealed.open_plain()?, &self.chunk_ad(id, len, index))
                .map_err(|_| VaultError::corrupt(format!("object {id} failed authentication")))?;
            if plain.len() != out.len() {
                return Err(VaultError::corrupt(format!(
                    "object {id} has a chunk of the wrong length"
                )));
            }
            out.copy_from_slice(&plain);
            Ok(())
        });
        opened.into_iter().collect()
    }

    fn object_ad(&self, id: &ObjectId) -> Vec<u8> {
        [
            b"polykey-vault-object/v1\0".as_slice(),
            self.id.as_bytes(),
            id.as_bytes(),
        ]
        .concat()
    }

    /// The plaintext of the record stored for `id`: a kind byte and the
    /// object, or a delta header and ops (see [`crate::delta`]).
    fn open_record(&self, src: &impl Source, id: &ObjectId) -> Result<Plain, VaultError> {
        self.open_record_if_stored(src, id)?
            .ok_or_else(|| VaultError::corrupt(format!("object {id} is missing")))
    }

    /// [`ObjectStore::open_record`], `None` if nothing is stored for `id`.
    /// Both layers are opened where they lie: nothing is moved.
    fn open_record_if_stored(
        &self,
        src: &impl Source,
        id: &ObjectId,
    ) -> Result<Option<Plain>, VaultError> {
        let Some(sealed) =
            src.get_raw_plain(&self.objects, &self.record_key(b"object", id.as_bytes()))?
        else {
            return Ok(None);
        };
        let plain = self
            .key
            .open_plain(sealed, &self.object_ad(id))
            .map_err(|_| VaultError::corrupt(format!("object {id} failed authentication")))?;
        if plain.is_empty() {
            return Err(VaultError::corrupt(format!("object {id} is empty")));
        }
        Ok(Some(plain))
    }

    /// The kind of object `id` if it is stored here, from its record's
    /// header (authenticated with it) alone: the record is opened, never
    /// rebuilt or hashed. Also returns the bytes opened.
    pub(crate) fn stored_kind(
        &self,
        src: &impl Source,
        id: &ObjectId,
    ) -> Result<Option<(Kind, usize)>, VaultError> {
        let Some(plain) = self.open_record_if_stored(src, id)? else {
            return Ok(None);
        };
        match Header::parse(&plain) {
            Some(
                Header::Whole(kind) | Header::Delta { kind, .. } | Header::Chunked { kind, .. },
            ) => Ok(Some((kind, plain.len()))),
            None => Err(VaultError::corrupt(format!("object {id} has no kind"))),
        }
    }

    /// How many chunks object `id` is stored in: `None` if it is not
    /// stored, 0 if it is stored in a record of its own.
    pub(crate) fn stored_chunks(
        &self,
        src: &impl Source,
        id: &ObjectId,
    ) -> Result<Option<usize>, VaultError> {
        let Some(plain) = self.open_record_if_stored(src, id)? else {
            return Ok(None);
        };
        match Header::parse(&plain) {
            Some(Header::Chunked { len, .. }) => Ok(Some(len.div_ceil(CHUNK_SIZE))),
            Some(Header::Whole(_) | Header::Delta { .. }) => Ok(Some(0)),
            None => Err(VaultError::corrupt(format!("object {id} has no kind"))),
        }
    }

    /// What the record of commit or tree `id` names, read from it alone
    /// (opened, never rebuilt or hashed): `None` if nothing is stored for
    /// `id`. A record of another kind is damage.
    pub(crate) fn stored_links(
        &self,
        src: &impl Source,
        id: &ObjectId,
    ) -> Result<Option<Links>, VaultError> {
        let Some(plain) = self.open_record_if_stored(src, id)? else {
            return Ok(None);
        };
        let malformed = || VaultError::corrupt(format!("object {id} is malformed"));
        Ok(Some(match Header::parse(&plain).ok_or_else(malformed)? {
            Header::Whole(Kind::Commit) => {
                let commit =
                    gix::objs::CommitRef::from_bytes(&plain[1..], HASH).map_err(|_| malformed())?;
                Links::Commit {
                    tree: commit.tree(),
                    parents: commit.parents().collect(),
                }
            }
            Header::Whole(Kind::Tree) => Links::Tree(Zeroizing::new(plain[1..].to_vec())),
            Header::Delta {
                kind: Kind::Tree,
                base,
                aligned,
                ..
            } => Links::Delta {
                base,
                ops: Zeroizing::new(plain[Header::DELTA_LEN..].to_vec()),
                aligned,
            },
            _ => return Err(malformed()),
        }))
    }

    /// The keys of the records kept for commit or tree `id`: its own and
    /// its cached generation or shape.
    pub(crate) fn record_keys(&self, id: &ObjectId, commit: bool) -> [RecordKey; 2] {
        let side = if commit {
            GENERATION_RECORD.0
        } else {
            SHAPE_RECORD.0
        };
        // The side record's key, as `side_record` makes it.
        [
            self.record_key(b"object", id.as_bytes()),
            self.record_key(side, id.as_bytes()),
        ]
    }

    /// The keys of the records of blob `id`, without opening them (its
    /// record missing is damage): its own, and its chunks (any found at `chunk_key(id, 0..)`:
    /// one a transfer left past the blob's length is kept too).
    pub(crate) fn blob_keys(
        &self,
        src: &impl Source,
        id: &ObjectId,
    ) -> Result<Vec<RecordKey>, VaultError> {
        let own = self.record_key(b"object", id.as_bytes());
        if !src.contains_raw(&self.objects, &own)? {
            return Err(VaultError::corrupt(format!("object {id} is missing")));
        }
        let mut keys = vec![own];
        for index in 0.. {
            let chunk = self.chunk_key(id, index);
            if !src.contains_raw(&self.objects, &chunk)? {
                break;
            }
            keys.push(chunk);
        }
        Ok(keys)
    }

    /// Tree `id` rebuilt from its deltas, not hashed (see
    /// [`ObjectStore::rebuild`]).
    pub(crate) fn rebuild_tree(
        &self,
        src: &impl Source,
        id: &ObjectId,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        match self.rebuild(src, id)? {
            (Kind::Tree, data, _) => Ok(data),
            (kind, ..) => Err(VaultError::corrupt(format!(
                "object {id} is a {kind}, expected a tree"
            ))),
        }
    }

    /// Rebuild object `id`, following its deltas down to a whole object;
    /// not yet checked against its id. Also returns how many deltas it
    /// took (0 for an object stored whole).
    fn rebuild(
        &self,
        src: &impl Source,
        id: &ObjectId,
    ) -> Result<(Kind, Zeroizing<Vec<u8>>, usize), VaultError> {
        let first = self.open_record(src, id)?;
        self.rebuild_from(src, id, first)
    }

    /// [`ObjectStore::rebuild`] of `id`, whose record is `first`, opened.
    fn rebuild_from(
        &self,
        src: &impl Source,
        id: &ObjectId,
        first: Plain,
    ) -> Result<(Kind, Zeroizing<Vec<u8>>, usize), VaultError> {
        let mut deltas = Vec::new();
        let mut current = *id;
        let mut first = Some(first);
        let (kind, mut data) = loop {
            let plain = match first.take() {
                Some(plain) => plain,
                None => self.open_record(src, &current)?,
            };
            match Header::parse(&plain)
                .ok_or_else(|| VaultError::corrupt(format!("object {current} has no kind")))?
            {
                Header::Whole(kind) => {
                    // Both nonces and the kind byte passed over, then the
                    // object moved to the front of its buffer once.
                    let mut data = plain;
                    data.advance(1);
                    break (kind, data.into_vec());
                }
                Header::Chunked { kind, len } => {
                    let chunks = 0..len.div_ceil(CHUNK_SIZE);
                    break (kind, self.open_chunks(src, &current, len, chunks)?);
                }
                Header::Delta { base, .. } => {
                    if deltas.len() >= delta::MAX_CHAIN {
                        return Err(VaultError::corrupt(format!(
                            "object {id} is more than {} deltas from a whole object",
                            delta::MAX_CHAIN
                        )));
                    }
                    deltas.push((current, plain));
                    current = base;
                }
            }
        };
        for (at, plain) in deltas.iter().rev() {
            let Some(Header::Delta { kind: of, .. }) = Header::parse(plain) else {
                return Err(VaultError::corrupt(format!("object {at} has no kind")));
            };
            if of != kind {
                return Err(VaultError::corrupt(format!(
                    "object {at} is a delta of a {kind}, not of a {of}"
                )));
            }
            let next = delta::apply(&data, &plain[Header::DELTA_LEN..])
                .ok_or_else(|| VaultError::corrupt(format!("object {at} is a malformed delta")))?;
            // Each version on the way wiped in one pass (see `wipe`).
            polykey_keys::wipe(&mut data);
            data = Zeroizing::new(next);
        }
        Ok((kind, data, deltas.len()))
    }

    /// Read and verify one object: it must open under the vault key (with
    /// each delta it is built from) and hash to its id.
    pub(crate) fn read(
        &self,
        src: &impl Source,
        id: &ObjectId,
    ) -> Result<(Kind, Zeroizing<Vec<u8>>), VaultError> {
        let (kind, data, _) = self.read_with_depth(src, id)?;
        Ok((kind, data))
    }

    /// Object `id` as stored, rebuilt but not hashed: for sending it to
    /// another copy, which checks its id itself. Every record opened on the
    /// way is authenticated under the vault key and its own id, and was
    /// sealed only after its bytes were hashed to that id, so hashing here
    /// too would only repeat, on the sender, the check the receiver makes
    /// (for a 10 MiB secret, a pass of SHA-1 with collision detection on
    /// the path from one device to the other).
    ///
    /// With `parts`, a blob stored in chunks is not read: its length is
    /// returned, for sending it in parts ([`ObjectStore::open_chunks`]).
    pub(crate) fn read_to_send(
        &self,
        src: &impl Source,
        id: &ObjectId,
        parts: bool,
    ) -> Result<ToSend, VaultError> {
        let first = self.open_record(src, id)?;
        if let (true, Some(Header::Chunked { len, .. })) = (parts, Header::parse(&first)) {
            return Ok(ToSend::Chunked(len));
        }
        let (kind, data, _) = self.rebuild_from(src, id, first)?;
        Ok(ToSend::Object(kind, data))
    }

    /// [`ObjectStore::read`], and how many deltas the object is built from.
    pub(crate) fn read_with_depth(
        &self,
        src: &impl Source,
        id: &ObjectId,
    ) -> Result<(Kind, Zeroizing<Vec<u8>>, usize), VaultError> {
        let (kind, data, depth) = self.rebuild(src, id)?;
        let actual = gix::objs::compute_hash(HASH, kind, &data).map_err(VaultError::corrupt)?;
        if actual != *id {
            return Err(VaultError::corrupt(format!(
                "object {id} does not match its id"
            )));
        }
        Ok((kind, data, depth))
    }

    /// The delta object `id` is stored as, if it is one: its base and ops
    /// (what a copy that has the base needs to rebuild it).
    pub(crate) fn stored_delta(
        &self,
        src: &impl Source,
        id: &ObjectId,
    ) -> Result<Option<StoredDelta>, VaultError> {
        let plain = self.open_record(src, id)?;
        Ok(match Header::parse(&plain) {
            Some(Header::Delta { base, .. }) => {
                Some((base, Zeroizing::new(plain[Header::DELTA_LEN..].to_vec())))
            }
            _ => None,
        })
    }

    /// The record of tree `id` stored as `ops` against `base`, sealed for
    /// [`WriteTxn::put_records`] (a delta received from another copy, checked
    /// by rebuilding it).
    pub(crate) fn seal_delta(
        &self,
        db: &Db,
        id: &ObjectId,
        base: &ObjectId,
        ops: &[u8],
    ) -> SealedRecord {
        // Its place in a line of versions is not known here: `seq` 1 makes
        // the next local version of it a delta against its base.
        self.delta_record(db, id, base, 1, ops)
    }

    /// [`ObjectStore::seal_delta`] as records were sealed before deltas
    /// said whether they keep to whole entries.
    #[cfg(test)]
    pub(crate) fn seal_unmarked_delta(
        &self,
        db: &Db,
        id: &ObjectId,
        base: &ObjectId,
        ops: &[u8],
    ) -> SealedRecord {
        self.delta_record_tagged(db, (id, base, 1), ops, DELTA | kind_byte(Kind::Tree))
    }

    /// The record of tree `id` stored as `ops` against `base`, the `seq`th
    /// version of its line.
    fn delta_record(
        &self,
        db: &Db,
        id: &ObjectId,
        base: &ObjectId,
        seq: u32,
        ops: &[u8],
    ) -> SealedRecord {
        // Both writers' deltas keep to whole entries: `delta::tree_delta`
        // makes no other (checked in tests as it writes), and a peer's is
        // stored as sent only then (`fresh` in `Vault::take_in`).
        let tag = DELTA | ALIGNED | kind_byte(Kind::Tree);
        self.delta_record_tagged(db, (id, base, seq), ops, tag)
    }

    /// [`ObjectStore::delta_record`] with kind byte `tag`.
    fn delta_record_tagged(
        &self,
        db: &Db,
        (id, base, seq): (&ObjectId, &ObjectId, u32),
        ops: &[u8],
        tag: u8,
    ) -> SealedRecord {
        let mut buffer = record_buffer(Header::DELTA_LEN + ops.len());
        buffer.push(tag);
        buffer.extend_from_slice(base.as_bytes());
        buffer.extend_from_slice(&seq.to_le_bytes());
        buffer.extend_from_slice(ops);
        self.seal_buffer(db, id, buffer)
    }

    /// Where a new version of the directory last stored as `previous`
    /// takes its delta from: the version of it whose `seq` is
    /// [`delta::base_seq`] of the new one's, found by following delta
    /// headers (whole objects are `seq` 0). Returns that base and the new
    /// version's `seq`.
    fn delta_base(
        &self,
        src: &impl Source,
        previous: &ObjectId,
    ) -> Result<Option<(ObjectId, u32)>, VaultError> {
        let plain = self.open_record(src, previous)?;
        let (mut at_seq, mut next) = match Header::parse(&plain) {
            Some(Header::Whole(Kind::Tree)) => return Ok(Some((*previous, 1))),
            Some(Header::Delta {
                kind: Kind::Tree,
                base,
                seq,
                ..
            }) => (seq, base),
            _ => return Ok(None),
        };
        let Some(seq) = at_seq.checked_add(1) else {
            return Ok(None);
        };
        let want = delta::base_seq(seq);
        let mut current = *previous;
        for _ in 0..delta::MAX_CHAIN {
            if at_seq == want {
                return Ok(Some((current, seq)));
            }
            current = next;
            at_seq = delta::base_seq(at_seq);
            if at_seq != want {
                match Header::parse(&self.open_record(src, &current)?) {
                    Some(Header::Delta { base, .. }) => next = base,
                    _ => return Ok(None),
                }
            }
        }
        Ok(None)
    }

    /// Whether the object is stored.
    pub(crate) fn contains(&self, src: &impl Source, id: &ObjectId) -> Result<bool, VaultError> {
        Ok(src.contains_raw(&self.objects, &self.record_key(b"object", id.as_bytes()))?)
    }

    /// Store encoded object bytes; returns the id. Existing objects are not
    /// rewritten (content addressing makes them identical).
    pub(crate) fn write_raw(
        &self,
        txn: &mut WriteTxn<'_>,
        kind: Kind,
        data: &[u8],
    ) -> Result<ObjectId, VaultError> {
        let id = gix::objs::compute_hash(HASH, kind, data).map_err(VaultError::corrupt)?;
        self.write_hashed(txn, kind, data, id)
    }

    /// [`ObjectStore::write_raw`] for an object whose id the caller has just
    /// computed from these very bytes (saves hashing large blobs twice).
    pub(crate) fn write_hashed(
        &self,
        txn: &mut WriteTxn<'_>,
        kind: Kind,
        data: &[u8],
        id: ObjectId,
    ) -> Result<ObjectId, VaultError> {
        if self.contains(txn, &id)? {
            return Ok(id);
        }
        txn.put_records(self.seal(txn.db(), kind, data, &id))?;
        Ok(id)
    }

    /// The record of object `id` whose plaintext follows the room
    /// [`record_buffer`] left: sealed under the vault key, then as a record
    /// of `db`, in that one buffer (which then holds no plaintext).
    fn seal_buffer(&self, db: &Db, id: &ObjectId, mut buffer: Vec<u8>) -> SealedRecord {
        self.key
            .seal_in_place(&mut buffer, NONCE_LEN, &self.object_ad(id));
        db.seal_raw_in_place(
            &self.objects,
            &self.record_key(b"object", id.as_bytes()),
            buffer,
        )
    }

    /// Object `id` sealed for storing (under the vault key, then as a
    /// record of `db`), outside any transaction, so that a page of
    /// received objects can be sealed on several threads; stored with
    /// [`WriteTxn::put_records`].
    ///
    /// Both layers are sealed in one buffer, which holds the only copy of
    /// `data` (a 10 MiB secret was copied three times on the way). A blob
    /// longer than [`CHUNK_SIZE`] is a record of its length and a record
    /// per chunk, sealed side by side.
    pub(crate) fn seal(
        &self,
        db: &Db,
        kind: Kind,
        data: &[u8],
        id: &ObjectId,
    ) -> Vec<SealedRecord> {
        if kind != Kind::Blob || !is_chunked_len(data.len()) {
            let mut buffer = record_buffer(1 + data.len());
            buffer.push(kind_byte(kind));
            buffer.extend_from_slice(data);
            return vec![self.seal_buffer(db, id, buffer)];
        }
        let mut records = self.seal_chunks(db, id, data.len(), 0, data);
        records.push(self.seal_chunked_header(db, id, data.len()));
        records
    }

    /// The records of blob `id`'s chunks from chunk `first` on, whose
    /// bytes are `data` (whole chunks, but for the blob's last), the blob
    /// being `len` bytes long: sealed side by side.
    pub(crate) fn seal_chunks(
        &self,
        db: &Db,
        id: &ObjectId,
        len: usize,
        first: usize,
        data: &[u8],
    ) -> Vec<SealedRecord> {
        let chunks: Vec<_> = (first..).zip(data.chunks(CHUNK_SIZE)).collect();
        side_by_side(chunks, |(index, chunk)| {
            let mut buffer = record_buffer(chunk.len());
            buffer.extend_from_slice(chunk);
            self.key
                .seal_in_place(&mut buffer, NONCE_LEN, &self.chunk_ad(id, len, index));
            db.seal_raw_in_place(&self.objects, &self.chunk_key(id, index), buffer)
        })
    }

    /// The record of blob `id`, `len` bytes stored in chunks: its length.
    /// Stored with (or after) its chunks: what is stored under an id is
    /// always whole.
    pub(crate) fn seal_chunked_header(&self, db: &Db, id: &ObjectId, len: usize) -> SealedRecord {
        let mut header = record_buffer(Header::CHUNKED_LEN);
        header.push(CHUNKED | kind_byte(Kind::Blob));
        header.extend_from_slice(&(len as u64).to_le_bytes());
        self.seal_buffer(db, id, header)
    }

    /// Encode and store a tree or commit. Refuses one larger than another
    /// copy would accept ([`MAX_TREE_SIZE`], [`MAX_COMMIT_SIZE`]), so that
    /// nothing written here stops a vault from syncing.
    pub(crate) fn write(
        &self,
        txn: &mut WriteTxn<'_>,
        object: &dyn WriteTo,
    ) -> Result<ObjectId, VaultError> {
        let mut data = Zeroizing::new(Vec::with_capacity(256));
        object.write_to(&mut *data).map_err(VaultError::corrupt)?;
        match object.kind() {
            Kind::Tree if data.len() > MAX_TREE_SIZE => {
                return Err(VaultError::OverLimit(
                    "a directory holds too many entries (its listing passes 16 MiB)",
                ))
            }
            Kind::Commit if data.len() > MAX_COMMIT_SIZE => {
                return Err(VaultError::corrupt("a commit would be larger than 1 MiB"))
            }
            _ => {}
        }
        self.write_raw(txn, object.kind(), &data)
    }

    /// [`ObjectStore::write`] for a new version of a directory last stored
    /// as `previous`: stored as a delta against an earlier version of it
    /// when that is less than half the size (see [`crate::delta`]), so an
    /// edit in a large directory stores about one entry, not all of them.
    pub(crate) fn write_version(
        &self,
        txn: &mut WriteTxn<'_>,
        tree: &Tree,
        previous: Option<&ObjectId>,
    ) -> Result<ObjectId, VaultError> {
        let Some(previous) = previous else {
            return self.write(txn, tree);
        };
        let mut data = Zeroizing::new(Vec::with_capacity(256));
        tree.write_to(&mut *data).map_err(VaultError::corrupt)?;
        let written = self.write_encoded_version(txn, &data, previous);
        polykey_keys::wipe(&mut data);
        written
    }

    /// [`ObjectStore::write_version`] of the encoded tree `data`.
    fn write_encoded_version(
        &self,
        txn: &mut WriteTxn<'_>,
        data: &[u8],
        previous: &ObjectId,
    ) -> Result<ObjectId, VaultError> {
        if data.len() > MAX_TREE_SIZE {
            return Err(VaultError::OverLimit(
                "a directory holds too many entries (its listing passes 16 MiB)",
            ));
        }
        let id = gix::objs::compute_hash(HASH, Kind::Tree, data).map_err(VaultError::corrupt)?;
        if self.contains(txn, &id)? {
            return Ok(id);
        }
        if data.len() >= MIN_DELTA_SIZE {
            if let Some((base, seq)) = self.delta_base(txn, previous)? {
                let (_, mut base_data, depth) = self.rebuild(txn, &base)?;
                let ops = (depth < delta::MAX_STORED_DEPTH)
                    .then(|| delta::tree_delta(&base_data, data))
                    .flatten()
                    // It holds the names the version inserts.
                    .map(Zeroizing::new);
                // Its record says it keeps to whole entries (a collection
                // reads its entries from that): checked wherever tests run.
                debug_assert!(ops.as_ref().is_none_or(|ops| {
                    delta::entry_starts(&base_data)
                        .is_some_and(|starts| delta::fresh_entries(&starts, ops).is_some())
                }));
                polykey_keys::wipe(&mut base_data);
                if let Some(ops) = ops {
                    txn.put_records(vec![self.delta_record(txn.db(), &id, &base, seq, &ops)])?;
                    return Ok(id);
                }
            }
        }
        self.write_hashed(txn, Kind::Tree, data, id)
    }

    /// Where a small record kept beside object `id` lives: in the objects
    /// table under its own keyed-hash domain `name` (so the vault's
    /// deletion drops it with the objects), sealed with associated data
    /// `ad` + vault id + object id.
    fn side_record(&self, name: &[u8], ad: &[u8], id: &ObjectId) -> (RecordKey, Vec<u8>) {
        (
            self.record_key(name, id.as_bytes()),
            [ad, self.id.as_bytes(), id.as_bytes()].concat(),
        )
    }

    /// The record `name` kept beside `id`, opened; `what` names it in errors.
    fn open_side_record(
        &self,
        src: &impl Source,
        (name, ad, what): (&[u8], &[u8], &str),
        id: &ObjectId,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        let (key, ad) = self.side_record(name, ad, id);
        let Some(sealed) = src.get_raw(&self.objects, &key)? else {
            return Ok(None);
        };
        self.key
            .open(&sealed, &ad)
            .map(Some)
            .map_err(|_| VaultError::corrupt(format!("{what} failed authentication")))
    }

    /// Keep `plain` as the record `name` beside `id`.
    fn put_side_record(
        &self,
        txn: &mut WriteTxn<'_>,
        (name, ad): (&[u8], &[u8]),
        id: &ObjectId,
        plain: &[u8],
    ) -> Result<(), VaultError> {
        let (key, ad) = self.side_record(name, ad, id);
        txn.put_raw(&self.objects, &key, &self.key.seal(plain, &ad))?;
        Ok(())
    }

    /// The cached shape of a stored tree (see [`crate::tree::stored_shape`]).
    pub(crate) fn cached_shape(
        &self,
        src: &impl Source,
        id: &ObjectId,
    ) -> Result<Option<TreeShape>, VaultError> {
        let (name, ad) = SHAPE_RECORD;
        let Some(plain) = self.open_side_record(src, (name, ad, "a tree's cached shape"), id)?
        else {
            return Ok(None);
        };
        TreeShape::decode(&plain)
            .map(Some)
            .ok_or_else(|| VaultError::corrupt("a tree's cached shape is malformed"))
    }

    /// [`ObjectStore::put_shape`] sealed for [`WriteTxn::put_records`].
    pub(crate) fn seal_shape(&self, db: &Db, id: &ObjectId, shape: &TreeShape) -> SealedRecord {
        let (name, ad) = SHAPE_RECORD;
        let (key, ad) = self.side_record(name, ad, id);
        db.seal_raw(&self.objects, &key, &self.key.seal(&shape.encode(), &ad))
    }

    /// Cache the shape of a stored tree, worked out from its contents.
    pub(crate) fn put_shape(
        &self,
        txn: &mut WriteTxn<'_>,
        id: &ObjectId,
        shape: &TreeShape,
    ) -> Result<(), VaultError> {
        self.put_side_record(txn, SHAPE_RECORD, id, &shape.encode())
    }

    /// The cached generation of a stored commit (see
    /// [`crate::merge::generation`]), kept like a tree's shape.
    pub(crate) fn cached_generation(
        &self,
        src: &impl Source,
        id: &ObjectId,
    ) -> Result<Option<u64>, VaultError> {
        let (name, ad) = GENERATION_RECORD;
        let Some(plain) = self.open_side_record(src, (name, ad, "a commit's generation"), id)?
        else {
            return Ok(None);
        };
        let bytes: [u8; 8] = plain
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::corrupt("a commit's generation is malformed"))?;
        Ok(Some(u64::from_le_bytes(bytes)))
    }

    /// Cache the generation of a stored commit, worked out from its parents'.
    pub(crate) fn put_generation(
        &self,
        txn: &mut WriteTxn<'_>,
        id: &ObjectId,
        generation: u64,
    ) -> Result<(), VaultError> {
        self.put_side_record(txn, GENERATION_RECORD, id, &generation.to_le_bytes())
    }

    /// Read object `id`, which must be of kind `want`.
    pub(crate) fn expect(
        &self,
        src: &impl Source,
        id: &ObjectId,
        want: Kind,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (kind, data) = self.read(src, id)?;
        if kind != want {
            return Err(VaultError::corrupt(format!(
                "object {id} is a {kind}, expected a {want}"
            )));
        }
        Ok(data)
    }

    pub(crate) fn tree(&self, src: &impl Source, id: &ObjectId) -> Result<Tree, VaultError> {
        let mut data = self.expect(src, id, Kind::Tree)?;
        let tree = gix::objs::TreeRef::from_bytes(&data, HASH)
            .map_err(VaultError::corrupt)
            .map(|tree| tree.into_owned());
        polykey_keys::wipe(&mut data);
        tree
    }

    pub(crate) fn commit(&self, src: &impl Source, id: &ObjectId) -> Result<Commit, VaultError> {
        let data = self.expect(src, id, Kind::Commit)?;
        let parsed = gix::objs::CommitRef::from_bytes(&data, HASH).map_err(VaultError::corrupt)?;
        let commit = parsed.into_owned().map_err(VaultError::corrupt)?;
        Ok(commit)
    }

    pub(crate) fn blob(
        &self,
        src: &impl Source,
        id: &ObjectId,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.expect(src, id, Kind::Blob)
    }

    fn ref_ad(&self, name: &str) -> Vec<u8> {
        [
            b"polykey-vault-ref/v1\0".as_slice(),
            self.id.as_bytes(),
            name.as_bytes(),
        ]
        .concat()
    }

    /// The commit `refs/heads/main` points at; `None` for a vault without history.
    pub(crate) fn head(&self, src: &impl Source) -> Result<Option<ObjectId>, VaultError> {
        let Some(sealed) =
            src.get_raw(&self.refs, &self.record_key(b"ref", MAIN_REF.as_bytes()))?
        else {
            return Ok(None);
        };
        let plain = self
            .key
            .open(&sealed, &self.ref_ad(MAIN_REF))
            .map_err(|_| VaultError::corrupt("the branch ref failed authentication"))?;
        ObjectId::try_from(plain.as_slice())
            .map(Some)
            .map_err(|_| VaultError::corrupt("the branch ref is malformed"))
    }

    /// Point `refs/heads/main` at `id`, in the same transaction as the objects.
    pub(crate) fn set_head(&self, txn: &mut WriteTxn<'_>, id: &ObjectId) -> Result<(), VaultError> {
        let sealed = self.key.seal(id.as_bytes(), &self.ref_ad(MAIN_REF));
        txn.put_raw(
            &self.refs,
            &self.record_key(b"ref", MAIN_REF.as_bytes()),
            &sealed,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Vaults;

    fn large(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
            .collect()
    }

    /// A blob longer than a chunk is stored as chunks that open only in
    /// their own place; a chunk missing, or another's put in its place,
    /// is a corrupt object (an error, not a panic, nothing else lost);
    /// a large blob stored whole, as before chunks, still reads.
    #[test]
    fn chunks_open_only_in_their_place_and_whole_records_still_read() {
        let (_dir, keys, db) = crate::testing::db();
        let vault = Vaults::new(&db).create("v", &keys).expect("a vault");
        let store = &vault.store;
        let data = large(3 * CHUNK_SIZE + 17);
        let mut txn = db.write().expect("a write");
        let id = store
            .write_raw(&mut txn, Kind::Blob, &data)
            .expect("written");
        txn.commit().expect("committed");
        let read = |id: &ObjectId| store.read(&db.read().expect("a read"), id);
        assert_eq!(read(&id).expect("read").1.as_slice(), data);
        let whole = store.stored_kind(&db.read().expect("a read"), &id);
        assert_eq!(
            whole.expect("a kind"),
            Some((Kind::Blob, Header::CHUNKED_LEN))
        );

        // Chunk 1, its outer layer opened, stored again as chunk 0.
        let mut txn = db.write().expect("a write");
        let second = txn
            .get_raw(&store.objects, &store.chunk_key(&id, 1))
            .expect("read")
            .expect("chunk 1");
        let first = txn
            .get_raw(&store.objects, &store.chunk_key(&id, 0))
            .expect("read")
            .expect("chunk 0");
        txn.put_raw(&store.objects, &store.chunk_key(&id, 0), &second)
            .expect("put");
        txn.commit().expect("committed");
        let err = read(&id).expect_err("moved chunk");
        assert!(err.to_string().contains("failed authentication"), "{err}");
        let mut txn = db.write().expect("a write");
        txn.put_raw(&store.objects, &store.chunk_key(&id, 0), &first)
            .expect("put");
        txn.commit().expect("committed");
        assert_eq!(read(&id).expect("read").1.as_slice(), data);

        // A length whose chunks were never stored, and one too short to
        // have been chunked.
        let absent = ObjectId::from_hex(b"00000000000000000000000000000000000000aa").expect("id");
        let short = ObjectId::from_hex(b"00000000000000000000000000000000000000bb").expect("id");
        let mut txn = db.write().expect("a write");
        for (id, len) in [(absent, 2 * CHUNK_SIZE), (short, CHUNK_SIZE)] {
            let mut header = record_buffer(Header::CHUNKED_LEN);
            header.push(CHUNKED | kind_byte(Kind::Blob));
            header.extend_from_slice(&(len as u64).to_le_bytes());
            let record = store.seal_buffer(&db, &id, header);
            txn.put_records(vec![record]).expect("put");
        }
        txn.commit().expect("committed");
        let err = read(&absent).expect_err("no chunks");
        assert!(err.to_string().contains("lacks a chunk"), "{err}");
        let err = read(&short).expect_err("too short");
        assert!(err.to_string().contains("in chunks at a length"), "{err}");

        // A 2 MiB blob as one record, as stored before chunks.
        let data = large(2 << 20);
        let id = gix::objs::compute_hash(HASH, Kind::Blob, &data).expect("hashed");
        let mut buffer = record_buffer(1 + data.len());
        buffer.push(kind_byte(Kind::Blob));
        buffer.extend_from_slice(&data);
        let mut txn = db.write().expect("a write");
        txn.put_records(vec![store.seal_buffer(&db, &id, buffer)])
            .expect("put");
        txn.commit().expect("committed");
        assert_eq!(read(&id).expect("read").1.as_slice(), data);
    }

    /// The stored format: a blob one byte over a chunk is a whole chunk
    /// and a chunk of one byte; a kind byte with both flags, or a tree
    /// stored in chunks, is no object.
    #[test]
    fn a_blob_splits_at_the_chunk_size_and_only_blobs_are_chunked() {
        let (_dir, keys, db) = crate::testing::db();
        let vault = Vaults::new(&db).create("v", &keys).expect("a vault");
        let store = &vault.store;
        let data = large(CHUNK_SIZE + 1);
        let mut txn = db.write().expect("a write");
        let id = store
            .write_raw(&mut txn, Kind::Blob, &data)
            .expect("written");
        let sealed_len = |index| {
            txn.get_raw(&store.objects, &store.chunk_key(&id, index))
                .expect("read")
                .map(|sealed| sealed.len() - NONCE_LEN - TAG_LEN)
        };
        assert_eq!(
            (sealed_len(0), sealed_len(1), sealed_len(2)),
            (Some(1_044_480), Some(1), None)
        );
        for (tag, name) in [(CHUNKED | DELTA | 3, "c0"), (CHUNKED | 2, "chunked tree")] {
            let id = ObjectId::from_hex(format!("{:0>40}", format!("{tag:x}")).as_bytes())
                .expect("an id");
            let mut header = record_buffer(Header::CHUNKED_LEN);
            header.push(tag);
            header.extend_from_slice(&(2 * CHUNK_SIZE as u64).to_le_bytes());
            txn.put_records(vec![store.seal_buffer(&db, &id, header)])
                .expect("put");
            let err = store.read_to_send(&txn, &id, true).err();
            assert!(
                err.is_some_and(|e| e.to_string().contains("has no kind")),
                "{name}"
            );
        }
    }

    #[test]
    fn a_part_that_panics_is_its_own_result_and_the_others_stand() {
        let parts = in_parts((0..40).collect(), 4, |part: Vec<usize>| {
            assert!(!part.contains(&25), "a hostile item");
            part.iter().sum::<usize>()
        });
        assert!(!parts.is_empty());
        let sums: Vec<Option<usize>> = parts.into_iter().map(Result::ok).collect();
        assert_eq!(sums.iter().filter(|s| s.is_none()).count(), 1);
        let kept: usize = sums.iter().flatten().sum();
        let lost: usize = (0..40).sum::<usize>() - kept;
        assert!(
            lost >= 25,
            "the panicking part's items are the ones missing"
        );
    }

    #[test]
    fn side_by_side_keeps_order_whatever_the_count() {
        for count in [0, 1, 2, 3, 7, 16, 17] {
            let done = side_by_side((0..count).collect(), |i: usize| i * 10);
            assert_eq!(done, (0..count).map(|i| i * 10).collect::<Vec<_>>());
        }
    }
}

//! A blob received in parts is stored part by part as it arrives, each
//! part's chunks in a durable transaction of their own, so the disk works
//! while the next part is on the wire; the blob's record (what makes it
//! an object here) is written only once the whole hashes to its id. Until
//! then a mark records how many chunks the transfer stored, so whatever a
//! transfer leaves behind (refused, dropped, the process killed) is found
//! and deleted ([`Vaults::sweep_parts`]).
//!
//! A transfer stores its parts so only while it holds its mark's lease
//! ([`Db::lease`]): at most one transfer per blob and copy of a vault at a
//! time, and the sweep passes over marks a transfer holds. Chunks are
//! written only while the blob's record is absent (checked in the same
//! transaction), so the chunks of a stored object are never written over
//! by a transfer; and a mark is let go only with the chunks it counts
//! that are not the stored blob's own (all of them while it is absent,
//! those past its length once it is stored: a peer may have named a
//! longer blob under the same id), so none is left behind.

use gix::hash::ObjectId;
use polykey_db::{Db, Lease, RawRead, RecordKey, SealedRecord, Table, WriteTxn};
use serde::{Deserialize, Serialize};

use crate::error::VaultError;
use crate::objects::CHUNK_SIZE;
use crate::vault::{Vault, Vaults};

/// What a transfer that stores a blob's parts as they come has stored.
#[derive(Serialize, Deserialize)]
struct PartMark {
    /// The vault, and the blob's id.
    vault: String,
    blob: String,
    /// Chunks `0..chunks` may be stored.
    chunks: u64,
}

const PART_MARKS: Table<PartMark> = Table::new("vault_part_marks");

/// The hold of a transfer storing blob `id`'s parts into this copy of a
/// vault as they come.
#[derive(Debug)]
pub(super) struct StoredParts {
    mark: RecordKey,
    _lease: Lease,
}

impl Vault {
    /// Where the mark of blob `id` stored in parts into this copy is kept.
    fn part_mark(&self, db: &Db, id: &ObjectId) -> RecordKey {
        let copy = self.store.copy_mark();
        let name = [
            self.id().as_bytes().as_slice(),
            copy.as_bytes(),
            id.as_bytes(),
        ]
        .concat();
        db.record_key("vault_part_marks", &name)
    }

    /// Store blob `id`'s parts into this copy as they come, unless another
    /// transfer does so already (`None`: the parts are then held until the
    /// last, as before).
    pub(super) fn store_parts(&self, db: &Db, id: &ObjectId) -> Option<StoredParts> {
        let mark = self.part_mark(db, id);
        db.lease(mark).map(|lease| StoredParts {
            mark,
            _lease: lease,
        })
    }

    /// Store `records`, chunks of blob `id` up to chunk `chunks`, with the
    /// mark, durably. Returns `false`, storing nothing, when the blob is
    /// stored whole meanwhile (another transfer, a write here): its chunks
    /// are then its own, and the mark goes.
    pub(super) fn store_part(
        &self,
        db: &Db,
        parts: &StoredParts,
        id: &ObjectId,
        records: Vec<SealedRecord>,
        chunks: usize,
    ) -> Result<bool, VaultError> {
        let mut txn = db.write()?;
        if self.store.contains(&txn, id)? {
            self.let_go(&mut txn, &parts.mark, id, 0)?;
            txn.commit()?;
            return Ok(false);
        }
        txn.put_records(records)?;
        // A mark left by a transfer of the same blob before (dropped, not
        // yet swept) may name more chunks: it keeps naming them.
        let before = txn.get(&PART_MARKS, &parts.mark)?.map_or(0, |m| m.chunks);
        let mark = PartMark {
            vault: self.id().to_string(),
            blob: id.to_string(),
            chunks: before.max(chunks as u64),
        };
        txn.put(&PART_MARKS, &parts.mark, &mark)?;
        txn.commit()?;
        Ok(true)
    }

    /// In `txn`, which stores blob `id`, `len` bytes, whole: whether
    /// chunks `0..stored` this transfer stored are all still there; the
    /// mark let go.
    pub(super) fn finish_parts(
        &self,
        txn: &mut WriteTxn<'_>,
        parts: &StoredParts,
        (id, len): (&ObjectId, usize),
        stored: usize,
    ) -> Result<bool, VaultError> {
        // Its own chunks: those of the blob stored meanwhile, if one was.
        let own = self
            .store
            .stored_chunks(txn, id)?
            .unwrap_or(len.div_ceil(CHUNK_SIZE));
        self.let_go_beyond(txn, (&parts.mark, 0), id, own)?;
        for index in 0..stored {
            if !txn.contains_raw(self.store.objects_table(), &self.store.chunk_key(id, index))? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Let mark `mark` of blob `id` go, with the chunks it counts (or
    /// `at_least`, if more) that are not the stored blob's (all of them
    /// while it is not stored).
    fn let_go(
        &self,
        txn: &mut WriteTxn<'_>,
        mark: &RecordKey,
        id: &ObjectId,
        at_least: usize,
    ) -> Result<(), VaultError> {
        let own = self.store.stored_chunks(txn, id)?.unwrap_or(0);
        self.let_go_beyond(txn, (mark, at_least), id, own)
    }

    /// Let mark `mark` of blob `id` go, with the chunks it counts (or
    /// `at_least`, if more) from chunk `own` on (the blob's own, below,
    /// are kept).
    fn let_go_beyond(
        &self,
        txn: &mut WriteTxn<'_>,
        (mark, at_least): (&RecordKey, usize),
        id: &ObjectId,
        own: usize,
    ) -> Result<(), VaultError> {
        let chunks = txn.get(&PART_MARKS, mark)?.map_or(0, |m| m.chunks);
        let chunks = usize::try_from(chunks).unwrap_or(usize::MAX).max(at_least);
        for index in own..chunks {
            txn.delete_raw(self.store.objects_table(), &self.store.chunk_key(id, index))?;
        }
        txn.delete(&PART_MARKS, mark)?;
        Ok(())
    }

    /// The keys of the chunks the marks of blobs half received in parts
    /// into this copy count: left to [`Vaults::sweep_parts`], which
    /// knows whether a transfer still goes on with them.
    pub(crate) fn parts_kept(&self, txn: &WriteTxn<'_>) -> Result<Vec<RecordKey>, VaultError> {
        // Never more than a blob this node takes in has.
        let most = crate::MAX_SECRET_SIZE.div_ceil(CHUNK_SIZE) + 1;
        let mut keys = Vec::new();
        for (key, mark) in txn.entries(&PART_MARKS)? {
            let Ok(blob) = ObjectId::from_hex(mark.blob.as_bytes()) else {
                continue;
            };
            if self.part_mark(txn.db(), &blob) == key {
                let chunks = usize::try_from(mark.chunks).map_or(most, |n| n.min(most));
                keys.extend((0..chunks).map(|i| self.store.chunk_key(&blob, i)));
            }
        }
        Ok(keys)
    }

    /// Delete at once what a refused transfer stored of blob `id`
    /// (`received` bytes of it taken in).
    pub(super) fn drop_stored_parts(
        &self,
        db: &Db,
        parts: &StoredParts,
        id: &ObjectId,
        received: usize,
    ) -> Result<(), VaultError> {
        let mut txn = db.write()?;
        self.let_go(&mut txn, &parts.mark, id, received.div_ceil(CHUNK_SIZE))?;
        txn.commit()?;
        Ok(())
    }
}

impl Vaults<'_> {
    /// Delete the chunks of blobs half received in parts that no transfer
    /// in this process goes on with (refused, dropped, or left by a process
    /// that ended), unless the blob was stored whole since. Returns how
    /// many marks went.
    pub fn sweep_parts(&self) -> Result<usize, VaultError> {
        if self
            .db
            .read()?
            .entries(&PART_MARKS)?
            .iter()
            .all(|(key, _)| self.db.leased(key))
        {
            return Ok(0);
        }
        // Read again in the writer, where no transfer changes them: a
        // transfer takes a mark's lease before it writes, and writes only
        // in a transaction of its own.
        let mut txn = self.db.write()?;
        let marks = txn.entries(&PART_MARKS)?;
        let mut swept = 0;
        for (key, mark) in marks {
            if self.db.leased(&key) {
                continue;
            }
            let vault = mark
                .vault
                .parse()
                .ok()
                .and_then(|id| self.find_any(&txn, &id).ok())
                .map(|(_, record)| crate::vault::vault_from(&record))
                .transpose()?;
            let blob = ObjectId::from_hex(mark.blob.as_bytes()).ok();
            match (vault, blob) {
                // The same copy: its chunks are in its table. Another copy
                // (or none): the table went with the copy it was in.
                (Some(vault), Some(blob)) if vault.part_mark(self.db, &blob) == key => {
                    vault.let_go(&mut txn, &key, &blob, 0)?;
                }
                _ => {
                    txn.delete(&PART_MARKS, &key)?;
                }
            }
            swept += 1;
        }
        if swept > 0 {
            txn.commit()?;
        }
        Ok(swept)
    }
}

//! Deleting a vault is a signed, dated record, not the loss of its data.
//!
//! A [`Deletion`] says that node `by` deleted vault `vault` when its head was
//! `head`. The vault counts as deleted while such a record is stored *and*
//! the vault's head is still `head`: any later head (an edit, a merge, a
//! fast-forward to a peer's newer commit, a restore) makes it live again, so
//! an edit made after a deletion wins over it. While deleted, the vault's
//! record and objects stay: it leaves `list()` and `open()` and frees its
//! name, and can be restored from any device. [`RECOVERY_WINDOW_MS`] after
//! the deletion was recorded *here* (local time, never the peer's
//! `deleted_at`), [`Vaults::purge_expired`] drops the record and the
//! vault's tables and keeps the deletion as a tombstone, so a stale device
//! cannot bring that very version back; the tombstone itself is forgotten
//! [`TOMBSTONE_LIFETIME_MS`] after it was recorded.
//!
//! A deletion from a peer is taken only if it is signed, by a node the
//! caller allows, for a vault this node holds at exactly that head
//! ([`Vaults::apply_deletion`]); so the number of stored deletions is
//! bounded by the vaults this node holds or held within the tombstone
//! lifetime, and they are served in bounded pages
//! ([`Vaults::deletions_page`]).

use std::collections::HashSet;

use gix::hash::ObjectId;
use polykey_db::{RecordKey, Table, WriteTxn};
use polykey_keys::{NodeId, RootKeypair, Signature};

use crate::error::VaultError;
use crate::vault::{
    clamp_peer_time, info, now_ms, vault_from, write_commit, RecordSource, Vault, VaultId,
    VaultInfo, VaultRecord, Vaults, VAULTS,
};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// How long a deleted vault can be restored: its record and objects are kept
/// for 30 days after the deletion was recorded on this node.
pub const RECOVERY_WINDOW_MS: i64 = 30 * DAY_MS;
/// How long a purged vault's deletion is kept as a tombstone (refusing that
/// vault at that head from peers) after it was recorded: 90 days.
pub const TOMBSTONE_LIFETIME_MS: i64 = 90 * DAY_MS;
/// The most deletions one [`Vaults::deletions_page`] returns.
pub const MAX_DELETIONS_PAGE: usize = 1_000;
/// The domain separation tag that opens every signed deletion.
pub const DELETION_SIGNATURE_DOMAIN: &str = "polykey-vault-deletion/v1";

/// A signed, dated record that node `by` deleted vault `vault` when its head
/// was `head`.
///
/// The signature is Ed25519 by `by` over [`Deletion::signed_bytes`]:
/// `"polykey-vault-deletion/v1\n" ‖ vault id (32 hex) ‖ "\n" ‖ head (40 hex)
/// ‖ "\n" ‖ deleted_at (decimal ms) ‖ "\n" ‖ by (NodeId, multibase)`. Every
/// field is of a fixed alphabet without newlines (checked by
/// [`Deletion::verify`]), so the encoding is unambiguous.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Deletion {
    /// The vault deleted.
    pub vault: VaultId,
    /// Its head (commit id, 40 lowercase hex) when it was deleted.
    pub head: String,
    /// When, in ms since the Unix epoch, by the deleting node's clock.
    pub deleted_at: i64,
    /// The node that deleted it and signed this record.
    pub by: NodeId,
    /// Ed25519 signature (64 bytes) by `by` over [`Deletion::signed_bytes`].
    pub signature: Vec<u8>,
}

impl Deletion {
    /// The bytes a deletion's signature covers.
    pub fn signed_bytes(vault: &VaultId, head: &str, deleted_at: i64, by: &NodeId) -> Vec<u8> {
        format!("{DELETION_SIGNATURE_DOMAIN}\n{vault}\n{head}\n{deleted_at}\n{by}").into_bytes()
    }

    /// Record, signed by `signer`, that it deleted `vault` at `head`.
    pub fn sign(vault: VaultId, head: &str, deleted_at: i64, signer: &RootKeypair) -> Self {
        let by = signer.node_id();
        let signature = signer
            .sign(&Self::signed_bytes(&vault, head, deleted_at, &by))
            .0
            .to_vec();
        Self {
            vault,
            head: head.to_owned(),
            deleted_at,
            by,
            signature,
        }
    }

    /// Check that `by` signed exactly this record.
    pub fn verify(&self) -> Result<(), VaultError> {
        if !is_commit_id(&self.head) {
            return Err(VaultError::Refused(
                "a deletion names a malformed version".into(),
            ));
        }
        let signature: [u8; 64] = self
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::Refused("a deletion has a malformed signature".into()))?;
        polykey_keys::root::verify(
            &self.by,
            &Self::signed_bytes(&self.vault, &self.head, self.deleted_at, &self.by),
            &Signature(signature),
        )
        .map_err(|_| VaultError::Refused("a deletion's signature does not verify".into()))
    }
}

fn is_commit_id(head: &str) -> bool {
    head.len() == 40
        && head
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A deleted vault as "Recently deleted" shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedVault {
    /// The vault (its name is the one it had; it may be taken by now).
    pub info: VaultInfo,
    /// The deletion in force. A `deleted_at` that was in the future when it
    /// arrived is shown as the time it arrived.
    pub deletion: Deletion,
    /// When [`Vaults::purge_expired`] removes it for good (ms): local time
    /// the deletion was recorded here plus [`RECOVERY_WINDOW_MS`].
    pub purge_at: i64,
}

/// A deletion as stored here.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredDeletion {
    /// As signed, so it can be passed on and verified again.
    deletion: Deletion,
    /// This node's clock when it recorded the deletion (ms): the recovery
    /// window and the tombstone lifetime run from here.
    recorded_at: i64,
    /// `deleted_at`, clamped to `recorded_at` if it was in the future.
    shown_at: i64,
    /// The vault's record and objects are gone; only this tombstone is left.
    purged: bool,
}

/// One record per stored deletion, keyed by the vault's (random) id.
const DELETIONS: Table<StoredDeletion> = Table::new("vault_deletions");
/// The ids of the stored deletions, sorted, in 256 buckets by their first
/// byte: a page reads the buckets it needs and the records it serves, not
/// every record (the store has no range reads).
const DELETION_INDEX: Table<Vec<VaultId>> = Table::new("vault_deletion_index");

fn deletion_key(id: &VaultId) -> RecordKey {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(id.as_bytes());
    RecordKey::from_bytes(key)
}

fn bucket_key(bucket: u8) -> RecordKey {
    let mut key = [0u8; 32];
    key[0] = bucket;
    RecordKey::from_bytes(key)
}

fn bucket_of(id: &VaultId) -> u8 {
    id.as_bytes()[0]
}

/// Store a deletion (replacing the vault's previous one) and index it.
fn put_deletion(txn: &mut WriteTxn<'_>, stored: &StoredDeletion) -> Result<(), VaultError> {
    let id = stored.deletion.vault;
    txn.put(&DELETIONS, &deletion_key(&id), stored)?;
    let key = bucket_key(bucket_of(&id));
    let mut bucket = txn.get(&DELETION_INDEX, &key)?.unwrap_or_default();
    if let Err(position) = bucket.binary_search(&id) {
        bucket.insert(position, id);
        txn.put(&DELETION_INDEX, &key, &bucket)?;
    }
    Ok(())
}

/// Forget the deletion of vault `id`, if one is stored.
fn remove_deletion(txn: &mut WriteTxn<'_>, id: &VaultId) -> Result<(), VaultError> {
    txn.delete(&DELETIONS, &deletion_key(id))?;
    let key = bucket_key(bucket_of(id));
    let mut bucket = txn.get(&DELETION_INDEX, &key)?.unwrap_or_default();
    if let Ok(position) = bucket.binary_search(id) {
        bucket.remove(position);
        if bucket.is_empty() {
            txn.delete(&DELETION_INDEX, &key)?;
        } else {
            txn.put(&DELETION_INDEX, &key, &bucket)?;
        }
    }
    Ok(())
}

/// The head of the vault of `record`, as hex.
fn head_hex(src: &impl RecordSource, record: &VaultRecord) -> Result<Option<String>, VaultError> {
    Ok(vault_from(record)?
        .store
        .head(src)?
        .map(|head| head.to_string()))
}

/// Whether vault `vault`, now at `head` (`None`: a transfer into it has not
/// finished), has moved past a deletion at `deleted`: its history holds
/// `deleted` below its head, so an edit was made after the deletion.
fn moved_past(
    src: &impl RecordSource,
    vault: &Vault,
    head: Option<ObjectId>,
    deleted: &str,
) -> Result<bool, VaultError> {
    let Some(head) = head else {
        return Ok(false);
    };
    let Ok(deleted) = ObjectId::from_hex(deleted.as_bytes()) else {
        return Ok(false);
    };
    if head == deleted {
        return Ok(false);
    }
    // Iterative walk over the (verified, complete) history below the head.
    let mut seen = HashSet::from([head]);
    let mut pending = vec![head];
    while let Some(id) = pending.pop() {
        for parent in vault.store.commit(src, &id)?.parents {
            if parent == deleted {
                return Ok(true);
            }
            if seen.insert(parent) {
                pending.push(parent);
            }
        }
    }
    Ok(false)
}

/// The deletion that makes the vault of `record` deleted: one stored for it
/// at its current head. `None` for a live vault.
pub(crate) fn deletion_in_force(
    src: &impl RecordSource,
    record: &VaultRecord,
) -> Result<Option<StoredDeletion>, VaultError> {
    let id = info(record)?.id;
    let Some(stored) = src.get_of(&DELETIONS, &deletion_key(&id))? else {
        return Ok(None);
    };
    let vault = vault_from(record)?;
    let Some(head) = vault.store.head(src)? else {
        // A transfer into it has not finished: not listed either way.
        return Ok(None);
    };
    Ok(holds(src, &vault, head, &stored)?.then_some(stored))
}

/// Whether `vault`, at `head`, is deleted: a new commit on it would bring
/// it back (see [`crate::Vault::undo_removed`], which must not).
pub(crate) fn deleted_at(
    src: &impl RecordSource,
    vault: &Vault,
    head: ObjectId,
) -> Result<bool, VaultError> {
    match src.get_of(&DELETIONS, &deletion_key(&vault.id()))? {
        Some(stored) => holds(src, vault, head, &stored),
        None => Ok(false),
    }
}

/// Whether `stored` still deletes `vault`, now at `head`. A vault kept
/// since its deletion moves only forward here, so any other head is an
/// edit after it. A purged vault that is here again came from a peer: only
/// a version made after the deletion revives it; one that does not descend
/// from it (the deleted version or older, from a stale device, through a
/// path that did not check) is still deleted, and purged again.
fn holds(
    src: &impl RecordSource,
    vault: &Vault,
    head: ObjectId,
    stored: &StoredDeletion,
) -> Result<bool, VaultError> {
    if stored.purged {
        Ok(!moved_past(src, vault, Some(head), &stored.deletion.head)?)
    } else {
        Ok(
            ObjectId::from_hex(stored.deletion.head.as_bytes())
                .is_ok_and(|deleted| deleted == head),
        )
    }
}

impl Vaults<'_> {
    /// Delete a vault, softly: a deletion signed by `signer` at the vault's
    /// head is recorded; the vault's record and every object stay. It leaves
    /// [`Vaults::list`] and [`Vaults::open`], its name is free for a new
    /// vault, and [`Vaults::restore`] brings it back until it is purged.
    pub fn delete(&self, name_or_id: &str, signer: &RootKeypair) -> Result<Deletion, VaultError> {
        let mut txn = self.db.write()?;
        let (_, record) = self.find(&txn, name_or_id)?;
        let vault = vault_from(&record)?;
        let head = vault.head_of(&txn)?;
        let now = now_ms();
        let deletion = Deletion::sign(vault.id(), &head.to_string(), now, signer);
        let stored = StoredDeletion {
            deletion: deletion.clone(),
            recorded_at: now,
            shown_at: now,
            purged: false,
        };
        put_deletion(&mut txn, &stored)?;
        txn.commit()?;
        Ok(deletion)
    }

    /// "Recently deleted": the vaults deleted and not yet purged, the most
    /// recently deleted first.
    pub fn deleted_vaults(&self) -> Result<Vec<DeletedVault>, VaultError> {
        let txn = self.db.read()?;
        let mut out = Vec::new();
        for (_, record) in self.records(&txn)? {
            if let Some(stored) = deletion_in_force(&txn, &record)? {
                let mut deletion = stored.deletion;
                deletion.deleted_at = stored.shown_at;
                out.push((
                    stored.recorded_at,
                    DeletedVault {
                        info: info(&record)?,
                        deletion,
                        purge_at: stored.recorded_at.saturating_add(RECOVERY_WINDOW_MS),
                    },
                ));
            }
        }
        out.sort_by(|(a, x), (b, y)| b.cmp(a).then(x.info.id.cmp(&y.info.id)));
        Ok(out.into_iter().map(|(_, deleted)| deleted).collect())
    }

    /// Bring a deleted vault back with a signed "Restore vault" commit (the
    /// same tree, parent = its head), so the restore reaches every device
    /// as an edit and wins over the deletion there too. It gets its old name
    /// back, or `name (2)`… if a vault took that name meanwhile. A vault
    /// that is not deleted is returned as it is; a purged one is unknown.
    pub fn restore(&self, id: &VaultId, signer: &RootKeypair) -> Result<Vault, VaultError> {
        let mut txn = self.db.write()?;
        let (key, mut record) = self.find_any(&txn, id)?;
        if deletion_in_force(&txn, &record)?.is_none() {
            return vault_from(&record);
        }
        let vault = vault_from(&record)?;
        let head = vault.head_of(&txn)?;
        let tree = vault.root_of(&txn, &head)?;
        // Still deleted here, so its own name does not count as taken.
        let name = self.free_name(&txn, &record.name)?;
        let commit = write_commit(
            &vault.store,
            &mut txn,
            signer,
            tree,
            vec![head],
            "Restore vault",
        )?;
        vault.store.set_head(&mut txn, &commit)?;
        remove_deletion(&mut txn, id)?;
        if name != record.name {
            record.name = name;
            txn.put(&VAULTS, &key, &record)?;
        }
        txn.commit()?;
        vault_from(&record)
    }

    /// Take a deletion received from a peer. It must verify and be by a
    /// node `may_delete` accepts, else `Refused`. It is recorded (at
    /// `now_ms`, this node's clock) only if this node holds the vault, at
    /// exactly `d.head`, and it is not deleted already; returns whether it
    /// was. A vault unknown here or at another head (an edit after the
    /// deletion, or this copy is behind: the caller pulls heads first)
    /// stores nothing (and costs no write). A `deleted_at` more than
    /// [`MAX_CLOCK_SKEW_MS`](crate::MAX_CLOCK_SKEW_MS) ahead of `now_ms` is
    /// shown as `now_ms`.
    pub fn apply_deletion(
        &self,
        d: &Deletion,
        may_delete: &dyn Fn(&NodeId) -> bool,
        now_ms: i64,
    ) -> Result<bool, VaultError> {
        let check = |d: &Deletion| -> Result<(), VaultError> {
            d.verify()?;
            if !may_delete(&d.by) {
                return Err(VaultError::Refused(
                    "a deletion by a node that may not delete this vault".into(),
                ));
            }
            Ok(())
        };
        check(d)?;
        // Most deletions a peer serves change nothing here (vaults this node
        // does not hold, or holds at another version): those are settled in
        // a read transaction, without a write.
        if self.effect_of(&self.db.read()?, d)? == Effect::Nothing {
            return Ok(false);
        }
        let mut txn = self.db.write()?;
        // Again, in the writing transaction: the vault may have moved.
        match self.effect_of(&txn, d)? {
            Effect::Nothing => Ok(false),
            Effect::DropStale => {
                remove_deletion(&mut txn, &d.vault)?;
                txn.commit()?;
                Ok(false)
            }
            Effect::Record => {
                let stored = StoredDeletion {
                    deletion: d.clone(),
                    recorded_at: now_ms,
                    shown_at: clamp_to_now(d.deleted_at, now_ms),
                    purged: false,
                };
                put_deletion(&mut txn, &stored)?;
                txn.commit()?;
                Ok(true)
            }
        }
    }

    /// What a peer's (verified) deletion `d` would do here.
    fn effect_of(&self, src: &impl RecordSource, d: &Deletion) -> Result<Effect, VaultError> {
        let record = match self.find_any(src, &d.vault) {
            Ok((_, record)) => record,
            Err(VaultError::UnknownVault(_)) => return Ok(Effect::Nothing),
            Err(e) => return Err(e),
        };
        let stored = src.get_of(&DELETIONS, &deletion_key(&d.vault))?;
        let Some(head) = head_hex(src, &record)? else {
            // A transfer into it has not finished.
            return Ok(Effect::Nothing);
        };
        if head != d.head {
            // A stored deletion the vault has moved past (a vault kept here
            // moves only by commits on top of it) is dropped.
            let stale = stored
                .as_ref()
                .is_some_and(|s| !s.purged && s.deletion.head != head);
            return Ok(if stale {
                Effect::DropStale
            } else {
                Effect::Nothing
            });
        }
        if stored.is_some_and(|s| s.deletion.head == d.head) {
            return Ok(Effect::Nothing);
        }
        Ok(Effect::Record)
    }

    /// Purge what has expired at `now_ms` (this node's clock), in one
    /// transaction: a vault deleted here more than [`RECOVERY_WINDOW_MS`]
    /// ago loses its record and its tables (every object and ref) and its
    /// deletion stays as a tombstone; a tombstone recorded more than
    /// [`TOMBSTONE_LIFETIME_MS`] ago is forgotten; a deletion the vault has
    /// moved past is dropped. Returns how many vaults were purged.
    pub fn purge_expired(&self, now_ms: i64) -> Result<usize, VaultError> {
        let mut txn = self.db.write()?;
        let mut purged = 0;
        for (key, mut stored) in txn.entries(&DELETIONS)? {
            let age = now_ms.saturating_sub(stored.recorded_at);
            let record = match self.find_any(&txn, &stored.deletion.vault) {
                Ok(found) => Some(found),
                Err(VaultError::UnknownVault(_)) => None,
                Err(e) => return Err(e),
            };
            match record {
                Some((record_key, record)) => {
                    let vault = vault_from(&record)?;
                    let Some(head) = vault.store.head(&txn)? else {
                        // A transfer into it has not finished; decide later.
                        continue;
                    };
                    if !holds(&txn, &vault, head, &stored)? {
                        remove_deletion(&mut txn, &stored.deletion.vault)?;
                    } else if stored.purged || age >= RECOVERY_WINDOW_MS {
                        txn.delete(&VAULTS, &record_key)?;
                        txn.delete_raw_table(vault.store.objects_table())?;
                        txn.delete_raw_table(vault.store.refs_table())?;
                        stored.purged = true;
                        txn.put(&DELETIONS, &key, &stored)?;
                        purged += 1;
                    }
                }
                None if age >= TOMBSTONE_LIFETIME_MS => {
                    remove_deletion(&mut txn, &stored.deletion.vault)?;
                }
                None if !stored.purged => {
                    stored.purged = true;
                    txn.put(&DELETIONS, &key, &stored)?;
                }
                None => {}
            }
        }
        txn.commit()?;
        Ok(purged)
    }

    /// The deletions this node serves its peers, in vault-id order after
    /// `after`: every one in force (restorable) and every tombstone, at most
    /// `limit` (and at most [`MAX_DELETIONS_PAGE`]), with whether more
    /// follow. Each is the signed original.
    pub fn deletions_page(
        &self,
        after: Option<&VaultId>,
        limit: usize,
    ) -> Result<(Vec<Deletion>, bool), VaultError> {
        let limit = limit.min(MAX_DELETIONS_PAGE);
        let txn = self.db.read()?;
        let mut page = Vec::new();
        let first = after.map_or(0, bucket_of);
        for bucket in first..=u8::MAX {
            let ids = txn
                .get(&DELETION_INDEX, &bucket_key(bucket))?
                .unwrap_or_default();
            for id in ids {
                if after.is_some_and(|after| id <= *after) {
                    continue;
                }
                let Some(stored) = txn.get(&DELETIONS, &deletion_key(&id))? else {
                    return Err(VaultError::corrupt("an indexed deletion is missing"));
                };
                if !self.kept(&txn, &stored)? {
                    continue;
                }
                if page.len() == limit {
                    return Ok((page, true));
                }
                page.push(stored.deletion);
            }
        }
        Ok((page, false))
    }

    /// Whether a stored deletion still holds: its vault is gone (a
    /// tombstone) or still at the deleted head.
    fn kept(&self, src: &impl RecordSource, stored: &StoredDeletion) -> Result<bool, VaultError> {
        match self.find_any(src, &stored.deletion.vault) {
            Ok((_, record)) => {
                let vault = vault_from(&record)?;
                match vault.store.head(src)? {
                    Some(head) => holds(src, &vault, head, stored),
                    // A transfer into it has not finished.
                    None => Ok(stored.purged),
                }
            }
            Err(VaultError::UnknownVault(_)) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Every vault that has a version here, deleted or not, with its head and
    /// the deletion in force: what sync compares with a peer. Sync keeps
    /// fetching and merging into deleted vaults (through
    /// [`Vaults::open_any`]), so that an edit made elsewhere after the
    /// deletion revives them.
    pub fn list_for_sync(&self) -> Result<Vec<(VaultInfo, String, Option<Deletion>)>, VaultError> {
        let txn = self.db.read()?;
        let mut out = Vec::new();
        for (_, record) in self.records(&txn)? {
            // A vault still being received has no version to compare yet.
            let Some(head) = vault_from(&record)?.store.head(&txn)? else {
                continue;
            };
            let head = head.to_string();
            let deletion = deletion_in_force(&txn, &record)?.map(|s| s.deletion);
            out.push((info(&record)?, head, deletion));
        }
        out.sort_by_key(|(info, _, _)| info.id);
        Ok(out)
    }

    /// Open vault `id` whether or not it is deleted (for sync; user
    /// operations go through [`Vaults::open`]).
    pub fn open_any(&self, id: &VaultId) -> Result<Vault, VaultError> {
        let (_, record) = self.find_any(&self.db.read()?, id)?;
        vault_from(&record)
    }

    /// Whether to refuse vault `id` from a peer: this node holds it and a
    /// deletion of it at its head here is recorded. (For a vault this node
    /// no longer holds, the head received is checked once it is set, by
    /// [`Vaults::settle_received`].)
    pub(crate) fn is_deleted(&self, txn: &WriteTxn<'_>, id: &VaultId) -> Result<bool, VaultError> {
        match self.find_any(txn, id) {
            Ok((_, record)) => Ok(deletion_in_force(txn, &record)?.is_some()),
            Err(VaultError::UnknownVault(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether a deletion of vault `id` is kept here: it is in Recently
    /// deleted, or was purged and its tombstone stays (so a copy of it at
    /// that version is not taken back under its id).
    pub fn deletion_recorded(&self, id: &str) -> Result<bool, VaultError> {
        let id: VaultId = id.parse()?;
        // Read only; dropped without a commit.
        let txn = self.db.write()?;
        Ok(self.is_deleted(&txn, &id)? || txn.get(&DELETIONS, &deletion_key(&id))?.is_some())
    }

    /// Whether a copy of vault `id` at version `head` would be refused
    /// here before any of it is fetched: this node purged the vault at that
    /// very version and keeps its tombstone. (A copy at another version is
    /// fetched and then settled, [`Vaults::settle_received`]; a vault still
    /// here is refused by [`Vaults::begin_receive_vault`].)
    pub fn purged_at(&self, id: &VaultId, head: &str) -> Result<bool, VaultError> {
        let txn = self.db.read()?;
        let stored: Option<StoredDeletion> = txn.get_of(&DELETIONS, &deletion_key(id))?;
        Ok(stored.is_some_and(|s| s.purged && s.deletion.head == head))
    }

    /// Settle vault `id`, just received from a peer with its head set in
    /// `txn`, with a tombstone kept here: refused (`UnknownVault`) unless
    /// its history holds the deleted version below its head, i.e. unless
    /// an edit was made after the deletion; then the tombstone is stale and
    /// dropped. So a stale device cannot bring a purged vault back, at the
    /// deleted version or an older one. Nothing to do while no head is set.
    pub(crate) fn settle_received(
        &self,
        txn: &mut WriteTxn<'_>,
        id: &VaultId,
    ) -> Result<(), VaultError> {
        let key = deletion_key(id);
        let Some(stored) = txn.get(&DELETIONS, &key)? else {
            return Ok(());
        };
        let (_, record) = self.find_any(txn, id)?;
        let vault = vault_from(&record)?;
        let Some(head) = vault.store.head(txn)? else {
            return Ok(());
        };
        if !moved_past(txn, &vault, Some(head), &stored.deletion.head)? {
            return Err(VaultError::UnknownVault(id.to_string()));
        }
        remove_deletion(txn, id)?;
        Ok(())
    }
}

/// What applying a peer's deletion does here.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Nothing: the vault is not here, not at that head, or deleted already.
    Nothing,
    /// The vault has moved past the deletion stored for it: drop that one.
    DropStale,
    /// Record it: the vault is here, at that head, and not deleted.
    Record,
}

/// A time from a peer, or `now_ms` if it is further ahead than the skew
/// allows.
fn clamp_to_now(time: i64, now_ms: i64) -> i64 {
    if clamp_peer_time(time, now_ms) < time {
        now_ms
    } else {
        time
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::print_stdout)]

    use super::*;

    #[test]
    fn signed_bytes_are_stable() {
        let vault: VaultId = "00112233445566778899aabbccddeeff"
            .parse()
            .expect("a valid id");
        let by = NodeId::from_bytes([7; 32]);
        let bytes = Deletion::signed_bytes(&vault, &"ab".repeat(20), 1_700_000_000_000, &by);
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            format!(
                "polykey-vault-deletion/v1\n00112233445566778899aabbccddeeff\n{}\n1700000000000\n{by}",
                "ab".repeat(20)
            )
        );
    }

    /// Tombstones pile up as vaults are purged (one per vault held in the
    /// last 90 days); however many there are, they are served in bounded
    /// pages, in vault-id order, each exactly once.
    #[test]
    fn ten_thousand_and_one_tombstones_page_in_vault_id_order() {
        let (_dir, keys, db) = crate::testing::db();
        let vaults = Vaults::new(&db);
        let head = "cd".repeat(20);
        let mut txn = db.write().expect("a transaction");
        let mut ids = Vec::new();
        for _ in 0..10_001 {
            let id = VaultId::random();
            let stored = StoredDeletion {
                deletion: Deletion::sign(id, &head, 0, &keys),
                recorded_at: 0,
                shown_at: 0,
                purged: true,
            };
            put_deletion(&mut txn, &stored).expect("stored");
            ids.push(id);
        }
        txn.commit().expect("committed");
        ids.sort();

        let mut paging = std::time::Duration::ZERO;
        let mut served = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let started = std::time::Instant::now();
            let (page, more) = vaults
                .deletions_page(after.as_ref(), 5_000)
                .expect("a page");
            paging += started.elapsed();
            pages += 1;
            assert!(page.len() <= MAX_DELETIONS_PAGE, "a page is bounded");
            after = page.last().map(|d| d.vault);
            for deletion in &page {
                deletion.verify().expect("served as signed");
            }
            served.extend(page.into_iter().map(|d| d.vault));
            if !more {
                break;
            }
        }
        assert_eq!(pages, 11);
        assert_eq!(served, ids, "every tombstone once, in vault-id order");
        // Measured, not asserted: ~0.35–0.6 s per page in a debug build.
        let _ = paging;

        // A node that holds none of those vaults takes in all 10,001 and
        // stores nothing: bounded by the vaults it holds.
        let other_dir = tempfile::tempdir().expect("a temporary directory");
        let other_db =
            polykey_db::Db::create(&other_dir.path().join("db.redb"), &keys).expect("a db");
        let other = Vaults::new(&other_db);
        let (mut pages, mut after, started) = (0, None, std::time::Instant::now());
        loop {
            let (page, more) = vaults
                .deletions_page(after.as_ref(), MAX_DELETIONS_PAGE)
                .expect("a page");
            pages += 1;
            after = page.last().map(|d| d.vault);
            for deletion in &page {
                assert!(!other
                    .apply_deletion(deletion, &|_| true, 0)
                    .expect("applied"));
            }
            if !more {
                break;
            }
        }
        assert_eq!(pages, 11);
        let _ = started.elapsed();
        assert_eq!(
            other.deletions_page(None, 10).expect("a page"),
            (Vec::new(), false)
        );

        // Past their lifetime, all are forgotten in one purge.
        assert_eq!(
            vaults.purge_expired(TOMBSTONE_LIFETIME_MS).expect("purged"),
            0
        );
        assert_eq!(
            vaults.deletions_page(None, 10).expect("a page"),
            (Vec::new(), false)
        );
    }

    #[test]
    fn deletion_keys_sort_like_vault_ids() {
        let low: VaultId = "00ff0000000000000000000000000000"
            .parse()
            .expect("a valid id");
        let high: VaultId = "0100000000000000000000000000000f"
            .parse()
            .expect("a valid id");
        assert!(low < high);
        assert!(deletion_key(&low).as_bytes() < deletion_key(&high).as_bytes());
    }
}

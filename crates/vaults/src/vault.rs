use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use gix::hash::ObjectId;
use gix::objs::tree::EntryKind as GitEntryKind;
use gix::objs::{Commit, Kind, WriteTo};
use polykey_db::{Db, RecordKey, Table, WriteTxn};
use polykey_keys::{RootKeypair, SymmetricKey};
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::deletion::deletion_in_force;
use crate::error::VaultError;
use crate::items::{Attachment, ATTACHMENTS_DIR};
use crate::objects::{ObjectStore, Source};
use crate::path::SecretPath;
use crate::tree::{lookup, walk_files, TreeEdit};

/// The largest secret a vault accepts (16 MiB).
pub const MAX_SECRET_SIZE: usize = 16 * 1024 * 1024;
/// Marks a directory made with `mkdir`, since git does not keep empty ones.
/// Hidden from listings.
pub(crate) const KEEP_FILE: &str = ".gitkeep";
/// The longest name a vault may have, in characters.
pub const MAX_VAULT_NAME: usize = 100;
/// How far ahead of this node's clock a time from a peer may be (a rename
/// time, a deletion time) before it is clamped to now: peers' clocks drift,
/// but a time far in the future (`i64::MAX`) would otherwise win every
/// comparison for good.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// A vault's random, permanent id (its name can change).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VaultId([u8; 16]);

impl VaultId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        polykey_keys::random_bytes(&mut bytes);
        Self(bytes)
    }

    /// The raw id.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for VaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for VaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultId({self})")
    }
}

impl serde::Serialize for VaultId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for VaultId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        data_encoding_hex(&text)
            .map(Self)
            .ok_or_else(|| serde::de::Error::custom("a vault id is 32 hex characters"))
    }
}

impl FromStr for VaultId {
    type Err = VaultError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes =
            data_encoding_hex(text).ok_or_else(|| VaultError::UnknownVault(text.to_owned()))?;
        Ok(Self(bytes))
    }
}

fn data_encoding_hex(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

/// A vault as stored: name and key. A deleted vault keeps its record (and
/// its objects) until it is purged; whether it is deleted is decided by
/// `deletion::deletion_in_force`, never by this record.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct VaultRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    key: Vec<u8>,
    pub(crate) created_at: i64,
    /// When the name was last set by a rename (ms since the epoch; 0 for
    /// never): the newest rename wins when copies sync.
    #[serde(default)]
    pub(crate) renamed_at: i64,
}

impl Drop for VaultRecord {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

pub(crate) const VAULTS: Table<VaultRecord> = Table::new("vaults");

/// A vault as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultInfo {
    /// Permanent id.
    pub id: VaultId,
    /// Current name.
    pub name: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: i64,
    /// Time of the last rename, ms since the Unix epoch (0: never).
    pub renamed_at: i64,
}

/// What a path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A secret: any bytes.
    Secret,
    /// A directory of secrets.
    Directory,
}

/// What `stat` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretStat {
    /// The path asked about.
    pub path: String,
    /// Secret or directory.
    pub kind: EntryKind,
    /// Size in bytes for a secret; number of entries for a directory.
    pub size: u64,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `name` without the characters that show nothing, trimmed.
fn visible_name(name: &str) -> String {
    let visible: String = name
        .chars()
        .filter(|c| !polykey_keys::text::shows_nothing(*c))
        .collect();
    visible.trim().to_owned()
}

/// A time received from a peer, no later than `now_ms` plus the allowed skew.
pub(crate) fn clamp_peer_time(time: i64, now_ms: i64) -> i64 {
    time.min(now_ms.saturating_add(MAX_CLOCK_SKEW_MS))
}

/// A vault's name as kept: trimmed, and never spelled as a vault id (a
/// vault is found by its id before its name, so a peer naming its vault
/// with the id of one of yours would have a name-addressed view, the
/// desktop's list, open yours): such a name gets a mark. Characters that
/// show nothing are left out (a person sharing "Personal" with a
/// zero-width space or a bidi mark after it would show a vault named as
/// yours, and unnumbered); joiners and variation selectors, which emoji
/// need, stay.
fn check_name(name: &str) -> Result<String, VaultError> {
    let visible = visible_name(name);
    // Nothing but such characters (a name from before they were left
    // out, or a peer's): a name all the same, numbered where it is taken.
    let name = if visible.is_empty() && !name.trim().is_empty() {
        "Unnamed vault"
    } else {
        visible.as_str()
    };
    if name.parse::<VaultId>().is_ok() {
        return Ok(format!("{name} (name)"));
    }
    if name.is_empty() {
        return Err(VaultError::InvalidVaultName("the name is empty"));
    }
    if name.chars().count() > MAX_VAULT_NAME {
        return Err(VaultError::InvalidVaultName(
            "the name is longer than 100 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(VaultError::InvalidVaultName(
            "the name has a control character",
        ));
    }
    Ok(name.to_owned())
}

fn check_size(bytes: &[u8]) -> Result<(), VaultError> {
    if bytes.len() > MAX_SECRET_SIZE {
        return Err(VaultError::TooLarge {
            size: bytes.len(),
            max: MAX_SECRET_SIZE,
        });
    }
    Ok(())
}

/// The vaults of one node.
pub struct Vaults<'db> {
    pub(crate) db: &'db Db,
}

impl<'db> Vaults<'db> {
    /// The vaults stored in `db`.
    pub fn new(db: &'db Db) -> Self {
        Self { db }
    }

    /// Every vault record, deleted or not.
    pub(crate) fn records(
        &self,
        src: &impl RecordSource,
    ) -> Result<Vec<(RecordKey, VaultRecord)>, VaultError> {
        src.entries_of(&VAULTS)
    }

    /// The records of the vaults that are not deleted: the ones a user sees.
    fn live_records(
        &self,
        src: &impl RecordSource,
    ) -> Result<Vec<(RecordKey, VaultRecord)>, VaultError> {
        let mut live = Vec::new();
        for (key, record) in self.records(src)? {
            if deletion_in_force(src, &record)?.is_none() {
                live.push((key, record));
            }
        }
        Ok(live)
    }

    /// Every vault, by name. Deleted vaults are not listed (see
    /// [`Vaults::deleted_vaults`]), nor vaults still being received (they
    /// have no version yet).
    pub fn list(&self) -> Result<Vec<VaultInfo>, VaultError> {
        let txn = self.db.read()?;
        let mut out = Vec::new();
        for (_, record) in self.live_records(&txn)? {
            if vault_from(&record)?.store.head(&txn)?.is_some() {
                out.push(info(&record)?);
            }
        }
        out.sort_by_key(|v| v.name.to_lowercase());
        Ok(out)
    }

    /// A vault that is not deleted, by id or else by name. The id first:
    /// a vault renamed (by a device, a restore) to another vault's id must
    /// not take that vault's place where the node opens it by its id (a
    /// backup skipped the real one, and held the other twice).
    pub(crate) fn find(
        &self,
        src: &impl RecordSource,
        name_or_id: &str,
    ) -> Result<(RecordKey, VaultRecord), VaultError> {
        let mut records = self.live_records(src)?;
        // As typed, else as it was kept (typed with a character kept
        // names leave out, say pasted).
        let position = records
            .iter()
            .position(|(_, r)| r.id == name_or_id)
            .or_else(|| records.iter().position(|(_, r)| r.name == name_or_id))
            .or_else(|| {
                let visible = visible_name(name_or_id);
                records.iter().position(|(_, r)| r.name == visible)
            })
            .ok_or_else(|| VaultError::UnknownVault(name_or_id.to_owned()))?;
        Ok(records.swap_remove(position))
    }

    /// The record of vault `id`, deleted or not.
    pub(crate) fn find_any(
        &self,
        src: &impl RecordSource,
        id: &VaultId,
    ) -> Result<(RecordKey, VaultRecord), VaultError> {
        let key = self.db.record_key("vaults", id.as_bytes());
        match src.get_of(&VAULTS, &key)? {
            Some(record) => Ok((key, record)),
            None => Err(VaultError::UnknownVault(id.to_string())),
        }
    }

    /// Create a vault with a first, empty, signed commit.
    pub fn create(&self, name: &str, signer: &RootKeypair) -> Result<Vault, VaultError> {
        let mut txn = self.db.write()?;
        let vault = self.insert_record(&mut txn, name, VaultId::random())?;
        let tree = vault.store.write(&mut txn, &gix::objs::Tree::empty())?;
        let commit = write_commit(
            &vault.store,
            &mut txn,
            signer,
            tree,
            Vec::new(),
            "Create vault",
        )?;
        vault.store.set_head(&mut txn, &commit)?;
        txn.commit()?;
        Ok(vault)
    }

    /// Add a vault record with a fresh key. The name must be free (a
    /// deleted vault's name is), the id new (a deleted vault's is not).
    pub(crate) fn insert_record(
        &self,
        txn: &mut WriteTxn<'_>,
        name: &str,
        id: VaultId,
    ) -> Result<Vault, VaultError> {
        let name = check_name(name)?;
        if self.live_records(txn)?.iter().any(|(_, r)| r.name == name) {
            return Err(VaultError::VaultExists(name.to_owned()));
        }
        if self.find_any(txn, &id).is_ok() {
            return Err(VaultError::VaultExists(id.to_string()));
        }
        let key = SymmetricKey::generate();
        let record = VaultRecord {
            id: id.to_string(),
            name: name.to_owned(),
            key: key.expose_secret().to_vec(),
            created_at: now(),
            renamed_at: 0,
        };
        txn.put(
            &VAULTS,
            &self.db.record_key("vaults", id.as_bytes()),
            &record,
        )?;
        Ok(Vault {
            info: info(&record)?,
            store: ObjectStore::new(id, key),
        })
    }

    /// Open a vault by name (or by id). A deleted vault is unknown here
    /// (sync uses [`Vaults::open_any`]).
    pub fn open(&self, name_or_id: &str) -> Result<Vault, VaultError> {
        let (_, record) = self.find(&self.db.read()?, name_or_id)?;
        vault_from(&record)
    }

    /// Rename a vault. Its id, history and contents stay.
    pub fn rename(&self, name_or_id: &str, new_name: &str) -> Result<(), VaultError> {
        let new_name = check_name(new_name)?;
        let mut txn = self.db.write()?;
        let (key, mut record) = self.find(&txn, name_or_id)?;
        if record.name == new_name {
            return Ok(());
        }
        if self
            .live_records(&txn)?
            .iter()
            .any(|(_, r)| r.name == new_name)
        {
            return Err(VaultError::VaultExists(new_name.to_owned()));
        }
        let now = now_ms();
        record.name = new_name.to_owned();
        // A stored time from before peers' times were clamped may be far
        // in the future; clamping it here too lets this rename win anyway.
        let previous = clamp_peer_time(record.renamed_at, now);
        record.renamed_at = now.max(previous.saturating_add(1));
        txn.put(&VAULTS, &key, &record)?;
        txn.commit()?;
        Ok(())
    }

    /// Take another copy's name for vault `id` (deleted or not) if it was
    /// set by a newer rename than ours (ties keep ours, so copies never
    /// flip-flop). The peer's time is clamped to now plus
    /// [`MAX_CLOCK_SKEW_MS`], so a time far ahead cannot pin a name for
    /// good. A name taken here by another vault gets a local suffix.
    /// Returns whether the name changed.
    pub fn adopt_name(
        &self,
        id: &VaultId,
        name: &str,
        renamed_at: i64,
    ) -> Result<bool, VaultError> {
        let renamed_at = clamp_peer_time(renamed_at, now_ms());
        let mut txn = self.db.write()?;
        let (key, mut record) = self.find_any(&txn, id)?;
        if renamed_at <= record.renamed_at {
            return Ok(false);
        }
        let name = check_name(name)?;
        let name = if name == record.name {
            name
        } else {
            self.free_name(&txn, &name)?
        };
        record.name = name;
        record.renamed_at = renamed_at;
        txn.put(&VAULTS, &key, &record)?;
        txn.commit()?;
        Ok(true)
    }

    /// `name`, or `name (2)`, `name (3)`… whichever no vault that is not
    /// deleted has.
    pub(crate) fn free_name(&self, txn: &WriteTxn<'_>, name: &str) -> Result<String, VaultError> {
        let name = check_name(name)?;
        let records = self.live_records(txn)?;
        // Looked up, not scanned: with one name taken a thousand times
        // over (a hostile backup's), each candidate scanned every record.
        let names: std::collections::HashSet<&str> =
            records.iter().map(|(_, r)| r.name.as_str()).collect();
        let taken = |n: &str| names.contains(n);
        if !taken(&name) {
            return Ok(name);
        }
        let stem: String = name.chars().take(MAX_VAULT_NAME - 6).collect();
        (2..)
            .map(|n| format!("{stem} ({n})"))
            .find(|candidate| !taken(candidate))
            .ok_or(VaultError::InvalidVaultName("no free name"))
    }

    /// Finish taking in a vault received whole, in the receiving
    /// transaction and after its head is set: store the peer's rename time
    /// (clamped, as in [`Vaults::adopt_name`]) and settle the vault with a
    /// deletion kept here (see `Vaults::settle_received`: a tombstone at
    /// that very head refuses it, one at another head is dropped).
    pub(crate) fn set_renamed_at(
        &self,
        txn: &mut WriteTxn<'_>,
        id: &VaultId,
        renamed_at: i64,
    ) -> Result<(), VaultError> {
        let (key, mut record) = self.find_any(txn, id)?;
        record.renamed_at = clamp_peer_time(renamed_at, now_ms());
        txn.put(&VAULTS, &key, &record)?;
        self.settle_received(txn, id)
    }

    /// Drop vault `id`'s record (not its tables); returns whether there was
    /// one. For a transfer that never finished.
    pub(crate) fn remove_record(
        &self,
        txn: &mut WriteTxn<'_>,
        id: &VaultId,
    ) -> Result<bool, VaultError> {
        let key = self.db.record_key("vaults", id.as_bytes());
        Ok(txn.delete(&VAULTS, &key)?)
    }
}

/// Reading records from either kind of transaction (a write transaction
/// reads through its own snapshot, so checks and writes see one state).
pub(crate) trait RecordSource: Source {
    /// Every record of `table`, in record-key order.
    fn entries_of<V: DeserializeOwned>(
        &self,
        table: &Table<V>,
    ) -> Result<Vec<(RecordKey, V)>, VaultError>;
    /// One record of `table`.
    fn get_of<V: DeserializeOwned>(
        &self,
        table: &Table<V>,
        key: &RecordKey,
    ) -> Result<Option<V>, VaultError>;
}

impl RecordSource for polykey_db::ReadTxn<'_> {
    fn entries_of<V: DeserializeOwned>(
        &self,
        table: &Table<V>,
    ) -> Result<Vec<(RecordKey, V)>, VaultError> {
        Ok(self.entries(table)?)
    }

    fn get_of<V: DeserializeOwned>(
        &self,
        table: &Table<V>,
        key: &RecordKey,
    ) -> Result<Option<V>, VaultError> {
        Ok(self.get(table, key)?)
    }
}

impl RecordSource for WriteTxn<'_> {
    fn entries_of<V: DeserializeOwned>(
        &self,
        table: &Table<V>,
    ) -> Result<Vec<(RecordKey, V)>, VaultError> {
        Ok(self.entries(table)?)
    }

    fn get_of<V: DeserializeOwned>(
        &self,
        table: &Table<V>,
        key: &RecordKey,
    ) -> Result<Option<V>, VaultError> {
        Ok(self.get(table, key)?)
    }
}

pub(crate) fn info(record: &VaultRecord) -> Result<VaultInfo, VaultError> {
    Ok(VaultInfo {
        id: record
            .id
            .parse()
            .map_err(|_| VaultError::corrupt("a vault record has a bad id"))?,
        name: record.name.clone(),
        created_at: record.created_at,
        renamed_at: record.renamed_at,
    })
}

pub(crate) fn vault_from(record: &VaultRecord) -> Result<Vault, VaultError> {
    let info = info(record)?;
    let key: [u8; 32] = record
        .key
        .as_slice()
        .try_into()
        .map_err(|_| VaultError::corrupt("a vault record has a bad key"))?;
    Ok(Vault {
        store: ObjectStore::new(info.id, SymmetricKey::from_bytes(key)),
        info,
    })
}

/// Write a commit of `tree` authored and signed by `signer`.
pub(crate) fn write_commit(
    store: &ObjectStore,
    txn: &mut WriteTxn<'_>,
    signer: &RootKeypair,
    tree: ObjectId,
    parents: Vec<ObjectId>,
    message: &str,
) -> Result<ObjectId, VaultError> {
    let node = signer.node_id().to_string();
    let actor = gix::actor::Signature {
        name: node.clone().into(),
        email: format!("{node}@polykey").into(),
        time: gix::date::Time {
            seconds: now(),
            offset: 0,
        },
    };
    let mut commit = Commit {
        tree,
        parents: parents.into(),
        author: actor.clone(),
        committer: actor,
        encoding: None,
        message: format!("{message}\n").into(),
        extra_headers: Vec::new(),
    };
    let mut unsigned = Vec::new();
    commit
        .write_to(&mut unsigned)
        .map_err(VaultError::corrupt)?;
    let signature = polykey_keys::sshsig::sign(signer, "git", &unsigned);
    commit
        .extra_headers
        .push(("gpgsig".into(), signature.into()));
    let id = store.write(txn, &commit)?;
    // Kept for merges and fast-forwards, which walk no further down.
    crate::merge::generation(store, txn, id)?;
    Ok(id)
}

/// One open vault.
pub struct Vault {
    info: VaultInfo,
    pub(crate) store: ObjectStore,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vault({})", self.info.id)
    }
}

impl Vault {
    /// The vault's id.
    pub fn id(&self) -> VaultId {
        self.info.id
    }

    /// Id, name and creation time, as when it was opened.
    pub fn info(&self) -> &VaultInfo {
        &self.info
    }

    /// The vault's name when it was opened.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub(crate) fn head_of(&self, src: &impl Source) -> Result<ObjectId, VaultError> {
        self.store
            .head(src)?
            .ok_or_else(|| VaultError::corrupt("the vault has no history"))
    }

    pub(crate) fn root_of(
        &self,
        src: &impl Source,
        commit: &ObjectId,
    ) -> Result<ObjectId, VaultError> {
        Ok(self.store.commit(src, commit)?.tree)
    }

    /// The current version (commit id).
    pub fn head(&self, db: &Db) -> Result<String, VaultError> {
        Ok(self.head_of(&db.read()?)?.to_string())
    }

    /// Apply `edit` to the current tree and commit the result, signed, with
    /// the new objects and the ref update in one transaction; `edit` returns
    /// the commit message. No change, no commit. Returns the new head.
    pub(crate) fn change(
        &self,
        db: &Db,
        signer: &RootKeypair,
        edit: impl FnOnce(&mut TreeEdit<'_>, &mut WriteTxn<'_>) -> Result<String, VaultError>,
    ) -> Result<ObjectId, VaultError> {
        let mut txn = db.write()?;
        let head = self.head_of(&txn)?;
        let old_root = self.root_of(&txn, &head)?;
        let mut tree = TreeEdit::new(&self.store, &txn, Some(&old_root))?;
        let message = edit(&mut tree, &mut txn)?;
        let root = tree.write(&mut txn)?;
        if root == old_root {
            return Ok(head);
        }
        let commit = write_commit(&self.store, &mut txn, signer, root, vec![head], &message)?;
        self.store.set_head(&mut txn, &commit)?;
        txn.commit()?;
        Ok(commit)
    }

    pub(crate) fn read_path(
        &self,
        src: &impl Source,
        commit: &ObjectId,
        path: &SecretPath,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let root = self.root_of(src, commit)?;
        match lookup(&self.store, src, &root, path.as_str())? {
            Some(entry) if entry.mode.is_tree() => {
                Err(VaultError::WrongKind(path.to_string(), "directory"))
            }
            Some(entry) => self.store.blob(src, &entry.oid),
            None => Err(VaultError::NotFound(path.to_string())),
        }
    }

    /// Read a secret's current contents.
    pub fn get(&self, db: &Db, path: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let path = SecretPath::parse(path)?;
        let txn = db.read()?;
        let head = self.head_of(&txn)?;
        self.read_path(&txn, &head, &path)
    }

    /// Every secret under `dir` (the whole vault for `None`), recursively,
    /// sorted. Directory markers are hidden.
    pub fn list(&self, db: &Db, dir: Option<&str>) -> Result<Vec<String>, VaultError> {
        self.walk(db, dir, false)
    }

    /// Every path of the current version, sorted, with the markers
    /// (`.gitkeep`) that keep empty folders: all a new name must not take
    /// (an empty folder is still a folder).
    pub fn paths(&self, db: &Db) -> Result<Vec<String>, VaultError> {
        self.walk(db, None, true)
    }

    fn walk(&self, db: &Db, dir: Option<&str>, markers: bool) -> Result<Vec<String>, VaultError> {
        let txn = db.read()?;
        let head = self.head_of(&txn)?;
        let root = self.root_of(&txn, &head)?;
        let (start, prefix) = match dir {
            None => (root, String::new()),
            Some(dir) => {
                let dir = SecretPath::parse(dir)?;
                match lookup(&self.store, &txn, &root, dir.as_str())? {
                    Some(entry) if entry.mode.is_tree() => (entry.oid, dir.to_string()),
                    Some(_) => {
                        return Err(VaultError::WrongKind(
                            dir.to_string(),
                            "secret, not a directory",
                        ))
                    }
                    None => return Err(VaultError::NotFound(dir.to_string())),
                }
            }
        };
        let mut files = Vec::new();
        walk_files(&self.store, &txn, &start, &prefix, &mut files)?;
        let mut names: Vec<String> = files
            .into_iter()
            .map(|(path, _)| path)
            .filter(|path| markers || path.rsplit('/').next() != Some(KEEP_FILE))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every secret with the id of its content (a git blob id), sorted by
    /// path. Contents are addressed by hash, so a caller may keep whatever it
    /// derives from a blob, keyed by that id, for as long as it likes.
    pub fn files(&self, db: &Db) -> Result<Vec<(String, String)>, VaultError> {
        let txn = db.read()?;
        let head = self.head_of(&txn)?;
        Ok(self
            .files_at(&txn, &head)?
            .into_iter()
            .map(|(path, id)| (path, id.to_string()))
            .collect())
    }

    /// The contents of the blobs with these ids (from [`Vault::files`]), in
    /// one read transaction.
    pub fn blobs(&self, db: &Db, ids: &[String]) -> Result<Vec<Zeroizing<Vec<u8>>>, VaultError> {
        let txn = db.read()?;
        ids.iter()
            .map(|id| {
                let oid = ObjectId::from_hex(id.as_bytes())
                    .map_err(|_| VaultError::NotFound(id.clone()))?;
                self.store.blob(&txn, &oid)
            })
            .collect()
    }

    /// What is at `path`: a secret (with its size) or a directory.
    pub fn stat(&self, db: &Db, path: &str) -> Result<SecretStat, VaultError> {
        let path = SecretPath::parse(path)?;
        let txn = db.read()?;
        let head = self.head_of(&txn)?;
        let root = self.root_of(&txn, &head)?;
        let entry = lookup(&self.store, &txn, &root, path.as_str())?
            .ok_or_else(|| VaultError::NotFound(path.to_string()))?;
        let (kind, size) = if entry.mode.is_tree() {
            let entries = self.store.tree(&txn, &entry.oid)?.entries;
            let visible = entries
                .iter()
                .filter(|e| e.filename != KEEP_FILE.as_bytes())
                .count();
            (EntryKind::Directory, visible as u64)
        } else {
            (
                EntryKind::Secret,
                self.store.blob(&txn, &entry.oid)?.len() as u64,
            )
        };
        Ok(SecretStat {
            path: path.to_string(),
            kind,
            size,
        })
    }

    fn put_secret(
        &self,
        db: &Db,
        signer: &RootKeypair,
        path: &str,
        bytes: &[u8],
        must_exist: Option<bool>,
    ) -> Result<String, VaultError> {
        let path = SecretPath::parse(path)?;
        refuse_reserved(&path)?;
        check_size(bytes)?;
        self.change(db, signer, |tree, txn| {
            let verb = match (tree.get(txn, &path)?, must_exist) {
                (Some(entry), _) if entry.mode.is_tree() => {
                    return Err(VaultError::WrongKind(path.to_string(), "directory"))
                }
                (Some(_), Some(false)) => return Err(VaultError::AlreadyExists(path.to_string())),
                (None, Some(true)) => return Err(VaultError::NotFound(path.to_string())),
                (None, _) => "Add",
                (Some(_), _) => "Update",
            };
            let blob = self.store.write_raw(txn, Kind::Blob, bytes)?;
            tree.upsert(txn, &path, blob, GitEntryKind::Blob)?;
            Ok(format!("{verb} secret {path}"))
        })
        .map(|id| id.to_string())
    }

    /// Create a new secret; fails if something is already at `path`.
    pub fn create_secret(
        &self,
        db: &Db,
        signer: &RootKeypair,
        path: &str,
        bytes: &[u8],
    ) -> Result<String, VaultError> {
        self.put_secret(db, signer, path, bytes, Some(false))
    }

    /// Create or replace a secret.
    pub fn write_secret(
        &self,
        db: &Db,
        signer: &RootKeypair,
        path: &str,
        bytes: &[u8],
    ) -> Result<String, VaultError> {
        self.put_secret(db, signer, path, bytes, None)
    }

    /// Replace an existing secret; fails if there is none.
    pub fn edit_secret(
        &self,
        db: &Db,
        signer: &RootKeypair,
        path: &str,
        bytes: &[u8],
    ) -> Result<String, VaultError> {
        self.put_secret(db, signer, path, bytes, Some(true))
    }

    /// Create or replace many secrets in one commit (an import).
    pub fn write_secrets(
        &self,
        db: &Db,
        signer: &RootKeypair,
        secrets: &[(&str, &[u8])],
    ) -> Result<String, VaultError> {
        let parsed = secrets
            .iter()
            .map(|(path, bytes)| {
                let path = SecretPath::parse(path)?;
                refuse_reserved(&path)?;
                Ok((path, *bytes))
            })
            .collect::<Result<Vec<_>, VaultError>>()?;
        for (_, bytes) in &parsed {
            check_size(bytes)?;
        }
        let attaches = parsed
            .iter()
            .any(|(path, _)| Attachment::is_attachment_file(path.as_str()));
        self.change(db, signer, |tree, txn| {
            if attaches {
                attachments_folder_free(tree, txn)?;
            }
            let mut blobs = Vec::with_capacity(parsed.len());
            for (path, bytes) in &parsed {
                blobs.push((path, self.store.write_raw(txn, Kind::Blob, bytes)?));
            }
            tree.upsert_blobs(txn, &blobs)?;
            Ok(format!("Write {} secrets", parsed.len()))
        })
        .map(|id| id.to_string())
    }

    /// Make an (empty) directory.
    pub fn mkdir(&self, db: &Db, signer: &RootKeypair, path: &str) -> Result<String, VaultError> {
        let path = SecretPath::parse(path)?;
        let keep = SecretPath::parse(&format!("{path}/{KEEP_FILE}"))?;
        self.change(db, signer, |tree, txn| {
            if tree.get(txn, &path)?.is_some() {
                return Err(VaultError::AlreadyExists(path.to_string()));
            }
            let blob = self.store.write_raw(txn, Kind::Blob, b"")?;
            tree.upsert(txn, &keep, blob, GitEntryKind::Blob)?;
            Ok(format!("Create directory {path}"))
        })
        .map(|id| id.to_string())
    }

    /// Move or rename a secret or directory. The target must not exist.
    pub fn rename(
        &self,
        db: &Db,
        signer: &RootKeypair,
        from: &str,
        to: &str,
    ) -> Result<String, VaultError> {
        let from = SecretPath::parse(from)?;
        let to = SecretPath::parse(to)?;
        refuse_reserved(&to)?;
        if to.starts_with(&from) {
            return Err(VaultError::InvalidPath(
                "cannot move a directory into itself",
            ));
        }
        self.change(db, signer, |tree, txn| {
            if tree.get(txn, &to)?.is_some() {
                return Err(VaultError::AlreadyExists(to.to_string()));
            }
            let entry = tree
                .remove(txn, &from)?
                .ok_or_else(|| VaultError::NotFound(from.to_string()))?;
            tree.upsert(txn, &to, entry.oid, entry.mode.kind())?;
            Ok(format!("Rename {from} to {to}"))
        })
        .map(|id| id.to_string())
    }

    /// Remove a secret, or a directory (`recursive` unless it is empty).
    pub fn remove(
        &self,
        db: &Db,
        signer: &RootKeypair,
        path: &str,
        recursive: bool,
    ) -> Result<String, VaultError> {
        let path = SecretPath::parse(path)?;
        self.change(db, signer, |tree, txn| {
            let entry = tree
                .get(txn, &path)?
                .ok_or_else(|| VaultError::NotFound(path.to_string()))?;
            if entry.mode.is_tree() && !recursive {
                let entries = self.store.tree(txn, &entry.oid)?.entries;
                if entries.iter().any(|e| e.filename != KEEP_FILE.as_bytes()) {
                    return Err(VaultError::DirectoryNotEmpty(path.to_string()));
                }
            }
            tree.remove(txn, &path)?;
            Ok(format!("Remove {path}"))
        })
        .map(|id| id.to_string())
    }
}

/// No secret and no moved folder takes the name of the folder where
/// attached files are kept.
fn refuse_reserved(path: &SecretPath) -> Result<(), VaultError> {
    if path.as_str() == ATTACHMENTS_DIR {
        return Err(VaultError::InvalidPath(
            "'.attachments' is where attached files are kept; choose another name",
        ));
    }
    Ok(())
}

/// Attached files can be written: no secret sits where their folder goes
/// (one a device wrote before the name was kept, or a hostile one). Said
/// plainly, so the user renames it; nothing is changed.
fn attachments_folder_free(tree: &mut TreeEdit<'_>, txn: &WriteTxn<'_>) -> Result<(), VaultError> {
    let folder = SecretPath::parse(ATTACHMENTS_DIR)?;
    match tree.get(txn, &folder)? {
        Some(entry) if !entry.mode.is_tree() => Err(VaultError::InvalidPath(
            "a secret named '.attachments' is where attached files are kept; rename that secret, then save again",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name with a character that shows nothing is kept without it, so
    /// it is numbered beside the vault it would pass for.
    #[test]
    fn a_vault_name_keeps_no_character_that_shows_nothing() {
        let (_dir, keys, db) = crate::testing::db();
        let vaults = Vaults::new(&db);
        vaults.create("Personal", &keys).expect("a vault");
        for hidden in [
            "Personal\u{200B}",
            "Personal\u{202E}",
            "\u{2066}Personal\u{2069}",
        ] {
            assert!(
                matches!(
                    vaults.create(hidden, &keys),
                    Err(VaultError::VaultExists(_))
                ),
                "{hidden:?} passed for another vault"
            );
        }
        let txn = db.write().expect("a write");
        assert_eq!(
            vaults.free_name(&txn, "Personal\u{FEFF}").expect("a name"),
            "Personal (2)"
        );
        // Emoji keep their joiners and selectors.
        let family = "👨\u{200D}👩\u{200D}👧 Family ❤\u{FE0F}";
        assert_eq!(vaults.free_name(&txn, family).expect("a name"), family);
        // A name of nothing else is a name all the same.
        assert_eq!(
            vaults.free_name(&txn, "\u{200B}\u{200E}").expect("a name"),
            "Unnamed vault"
        );
        drop(txn);
        // Found as typed, with what names leave out.
        assert_eq!(
            vaults.open("Personal\u{200E}").expect("found").name(),
            "Personal"
        );
    }

    /// '.attachments' is kept for attached files: no secret is written or
    /// moved there; one already there (from a device before the name was
    /// kept, or a hostile one) leaves other saves alone, stops only saves
    /// with files, with a sentence saying what to do, and once renamed
    /// away the file is written.
    #[test]
    fn the_attachments_folder_name_is_kept_for_attached_files() {
        let (_dir, keys, db) = crate::testing::db();
        let vault = Vaults::new(&db).create("v", &keys).expect("a vault");
        let kept = |e: VaultError| e.to_string().contains("attached files are kept");
        assert!(kept(
            vault
                .write_secret(&db, &keys, ".attachments", b"x")
                .unwrap_err()
        ));
        assert!(kept(
            vault
                .write_secrets(&db, &keys, &[("ok", b"1"), (".attachments/", b"x")])
                .unwrap_err()
        ));
        vault
            .write_secret(&db, &keys, "note", b"n")
            .expect("written");
        assert!(kept(
            vault
                .rename(&db, &keys, "note", ".attachments")
                .unwrap_err()
        ));

        let planted = SecretPath::parse(ATTACHMENTS_DIR).expect("a path");
        vault
            .change(&db, &keys, |tree, txn| {
                let blob = vault.store.write_raw(txn, Kind::Blob, b"planted")?;
                tree.upsert(txn, &planted, blob, GitEntryKind::Blob)?;
                Ok("Add secret .attachments".into())
            })
            .expect("planted");
        let file = Attachment::file_for(b"scan");
        let save =
            |vault: &Vault| vault.write_secrets(&db, &keys, &[("item", b"{}"), (&file, b"scan")]);
        let err = save(&vault).unwrap_err();
        assert!(err.to_string().contains("rename that secret"), "{err}");
        assert!(vault.get(&db, "item").is_err(), "nothing of it was written");
        vault
            .write_secrets(&db, &keys, &[("other", b"2")])
            .expect("saves without files go on");
        vault
            .rename(&db, &keys, ".attachments", "planted")
            .expect("renamed away");
        save(&vault).expect("saved");
        assert_eq!(vault.get(&db, &file).expect("the file").as_slice(), b"scan");
        assert_eq!(
            vault.get(&db, "planted").expect("kept").as_slice(),
            b"planted"
        );
    }
}

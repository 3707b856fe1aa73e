//! Encrypted backups: the whole node's vaults (or chosen ones) with their
//! history in one file sealed with a passphrase, restorable into a fresh
//! node or beside the vaults already here. The format is in
//! docs/backup-format.md.
//!
//! The content is a run of records, each a tag byte, a little-endian u32
//! length and that many bytes: first a manifest (JSON), then per vault a
//! vault record (JSON) and its objects in the order a sync sends them
//! (each after everything it refers to, trees as deltas where smaller),
//! then an end record. A restore takes the objects through the checks a
//! sync applies (hashes, names, sizes, signatures), so a backup that was
//! made by someone else gains nothing over a device.

mod schedule;
mod sealed;
mod timed;

use std::collections::HashSet;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::time::Duration;

use polykey_keys::Password;
use polykey_vaults::{RawObject, Vault, VaultError, VaultId, Vaults};
use serde::{Deserialize, Serialize};

pub(crate) use schedule::back_up_periodically;
pub use schedule::{BackupSchedule, BACKUP_CHECK_EVERY};
use sealed::{SealedReader, SealedWriter};
pub use sealed::{CHUNK, MAGIC, VERSION};
use timed::{Timed, FILE_STALL};

use crate::api::{BackupDto, BackupVaultDto, RestoredDto};
use crate::error::NodeError;
use crate::node::{Node, Session};
use crate::peers::now_secs;

/// Why a backup could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The file does not start as a backup does.
    #[error("this file is not a Polykey backup")]
    NotABackup,
    /// A backup format this version does not know.
    #[error("this backup was made by a newer Polykey (format {0}); update Polykey to restore it")]
    NewerVersion(u16),
    /// The passphrase does not open the backup.
    #[error("wrong passphrase for this backup")]
    WrongPassphrase,
    /// The file ends early.
    #[error("the backup file is cut short (an interrupted copy?); nothing was restored from it")]
    Truncated,
    /// The file fails a check.
    #[error("the backup file is damaged or was changed ({0}); nothing was restored from it")]
    Damaged(String),
    /// The file could not be read or written.
    #[error("could not {action} the backup file: {source}")]
    Io {
        /// Read or write.
        action: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

impl BackupError {
    fn read(source: std::io::Error) -> Self {
        Self::Io {
            action: "read",
            source,
        }
    }

    fn write(source: std::io::Error) -> Self {
        Self::Io {
            action: "write",
            source,
        }
    }
}

/// Record tags.
const MANIFEST: u8 = 1;
const VAULT: u8 = 2;
const OBJECT: u8 = 3;
const END: u8 = 4;
const PAGE: u8 = 5;

/// The largest record: an object of the largest size a vault takes, and
/// its ids.
const MAX_RECORD: usize = polykey_vaults::MAX_SECRET_SIZE + 64;
/// The most vaults one backup holds.
const MAX_VAULTS: usize = 10_000;
/// Bytes of objects restored per transaction.
const PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Objects restored per transaction at most, however small (one per 64
/// bytes of a page, as a sync page holds): a file of a million empty
/// objects and no page end is handed on, and checked, as it is read.
const MAX_PAGE_OBJECTS: usize = PAGE_BYTES / polykey_vaults::PAGE_BYTES_PER_OBJECT;

/// What a backup holds, readable only with its passphrase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    /// When it was made, seconds since the Unix epoch.
    pub created_at: u64,
    /// The node that made it.
    pub node: String,
    /// Its vaults, in the order they follow.
    pub vaults: Vec<BackupVault>,
}

/// One vault in a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupVault {
    /// Its permanent id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its last rename, ms since the Unix epoch.
    pub renamed_at: i64,
    /// Its version when backed up.
    pub head: String,
    /// How many objects (versions, folders, secrets) of its history follow.
    pub objects: usize,
}

/// A backup written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupMade {
    /// What it holds.
    pub manifest: Manifest,
    /// Its size in bytes.
    pub bytes: u64,
}

/// How a vault of a backup came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restored {
    /// It was not here: restored as it was, under its name (suffixed if
    /// another vault has that name).
    Restored(String),
    /// It is here in another state (changed since, or deleted): restored
    /// beside it as a separate vault of this name, with the backup's
    /// history.
    Beside(String),
    /// It is here at exactly the backup's version: left alone.
    Unchanged(String),
}

/// Write one record.
fn put(
    out: &mut SealedWriter<impl std::io::Write>,
    tag: u8,
    parts: &[&[u8]],
) -> Result<(), BackupError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(len).map_err(|_| BackupError::Damaged("a record too large".into()))?;
    out.write(&[tag])?;
    out.write(&len.to_le_bytes())?;
    for part in parts {
        out.write(part)?;
    }
    Ok(())
}

/// Read the next record: its tag and body.
fn take_any(
    input: &mut SealedReader<impl std::io::Read>,
) -> Result<(u8, zeroize::Zeroizing<Vec<u8>>), BackupError> {
    let mut head = [0u8; 5];
    input.read_exact(&mut head)?;
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_RECORD {
        return Err(BackupError::Damaged(
            "a record larger than any vault holds".into(),
        ));
    }
    let mut body = zeroize::Zeroizing::new(vec![0u8; len]);
    input.read_exact(&mut body)?;
    Ok((head[0], body))
}

/// Read one record, which must have tag `want`.
fn take(
    input: &mut SealedReader<impl std::io::Read>,
    want: u8,
) -> Result<zeroize::Zeroizing<Vec<u8>>, BackupError> {
    let (tag, body) = take_any(input)?;
    if tag != want {
        return Err(BackupError::Damaged(format!(
            "a record of kind {tag} where {want} belongs"
        )));
    }
    Ok(body)
}

/// Read a vault's `count` objects, handing each page to `page` as the
/// writer cut them (a page end record after each, so what a page's trees
/// rebuild to stays within what a page may). A page larger than the
/// writer makes is handed on early, and refused there if it rebuilds to
/// too much.
fn take_objects(
    input: &mut SealedReader<impl std::io::Read>,
    count: usize,
    mut page: impl FnMut(&[(String, RawObject)]) -> Result<(), NodeError>,
) -> Result<(), NodeError> {
    let mut taken = 0;
    let mut current = Vec::new();
    let mut bytes = 0;
    loop {
        let (tag, body) = take_any(input)?;
        match tag {
            OBJECT if taken < count => {
                let object = object_of(&body)?;
                bytes += object.1.data.len();
                current.push(object);
                taken += 1;
                if bytes > PAGE_BYTES + MAX_RECORD || current.len() >= MAX_PAGE_OBJECTS {
                    page(&current)?;
                    current.clear();
                    bytes = 0;
                }
            }
            PAGE => {
                if !current.is_empty() {
                    page(&current)?;
                    current.clear();
                    bytes = 0;
                }
                if taken == count {
                    return Ok(());
                }
            }
            _ => {
                return Err(BackupError::Damaged(
                    "a vault's objects are not as its record says".into(),
                )
                .into())
            }
        }
    }
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, BackupError> {
    serde_json::from_slice(bytes).map_err(|_| BackupError::Damaged(format!("an unreadable {what}")))
}

fn hex_id(id: &str) -> Result<[u8; 20], BackupError> {
    let bytes = data_encoding::HEXLOWER
        .decode(id.as_bytes())
        .map_err(|_| BackupError::Damaged("a malformed object id".into()))?;
    bytes
        .try_into()
        .map_err(|_| BackupError::Damaged("a malformed object id".into()))
}

/// An object record: kind, id, whether a delta base follows, the base,
/// the data.
fn put_object(
    out: &mut SealedWriter<impl std::io::Write>,
    id: &str,
    object: &RawObject,
) -> Result<(), BackupError> {
    let kind = [polykey_vaults::kind_tag(object.kind)];
    let id = hex_id(id)?;
    match &object.base {
        Some(base) => put(
            out,
            OBJECT,
            &[&kind, &id, &[1], &hex_id(base)?, &object.data],
        ),
        None => put(out, OBJECT, &[&kind, &id, &[0], &object.data]),
    }
}

fn object_of(body: &[u8]) -> Result<(String, RawObject), BackupError> {
    let bad = || BackupError::Damaged("a malformed object record".into());
    if body.len() < 22 {
        return Err(bad());
    }
    let kind = polykey_vaults::kind_of_tag(body[0]).ok_or_else(bad)?;
    let id = data_encoding::HEXLOWER.encode(&body[1..21]);
    let (base, data) = match body[21] {
        0 => (None, &body[22..]),
        1 if body.len() >= 42 => (
            Some(data_encoding::HEXLOWER.encode(&body[22..42])),
            &body[42..],
        ),
        _ => return Err(bad()),
    };
    Ok((
        id,
        RawObject {
            kind,
            data: data.to_vec(),
            base,
        },
    ))
}

impl Node {
    /// Write an encrypted backup of `vaults` (every vault when `None`),
    /// with their whole history, to `target`, sealed with `passphrase`.
    /// `target` must not exist; the file appears only once complete, and
    /// only its owner can read it.
    pub async fn create_backup(
        &self,
        target: PathBuf,
        passphrase: Password,
        vaults: Option<Vec<String>>,
    ) -> Result<BackupMade, NodeError> {
        check_passphrase(&passphrase)?;
        let kdf = self.kdf_params();
        let limit = self.file_stall();
        self.with_vaults_read(move |s| {
            write_backup(s, &target, vaults.as_deref(), limit, |out| {
                SealedWriter::new(out, &passphrase, kdf)
            })
        })
        .await
    }

    /// How long one operation on a backup file may take before the backup
    /// or restore gives it up (see `timed`).
    pub(crate) fn file_stall(&self) -> Duration {
        match self
            .inner
            .file_stall_ms
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => FILE_STALL,
            ms => Duration::from_millis(ms),
        }
    }

    /// How many locks wait for the node's state (tests).
    #[doc(hidden)]
    pub fn locks_waiting(&self) -> usize {
        self.inner.locks_waiting()
    }

    /// Give up a backup file after `limit` without an answer instead of
    /// the 30 s a person waits (tests).
    #[doc(hidden)]
    pub fn set_file_stall(&self, limit: Duration) {
        let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1);
        self.inner
            .file_stall_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// What the backup at `file` holds, read with `passphrase` (every
    /// chunk checked).
    pub async fn read_backup(
        &self,
        file: PathBuf,
        passphrase: Password,
    ) -> Result<Manifest, NodeError> {
        let limit = self.file_stall();
        crate::node::blocking(move || {
            let mut input = open_backup(&file, &passphrase, limit)?;
            let manifest = take_manifest(&mut input)?;
            for vault in &manifest.vaults {
                take_vault_record(&mut input, vault)?;
                take_objects(&mut input, vault.objects, |_| Ok(()))?;
            }
            take_end(&mut input)?;
            Ok(manifest)
        })
        .await
    }

    /// Restore the backup at `file`, opened with `passphrase`: each vault
    /// not here comes back as it was; one here in another state comes
    /// back beside it; one here unchanged is left alone. Every object is
    /// checked as a sync checks it. All or nothing: a damaged file
    /// restores no vault.
    pub async fn restore_backup(
        &self,
        file: PathBuf,
        passphrase: Password,
    ) -> Result<Vec<Restored>, NodeError> {
        // The key is derived before the vaults are taken: nothing waits on
        // a derivation (or on a file that never answers).
        let limit = self.file_stall();
        let (input, manifest) = crate::node::blocking(move || {
            let mut input = open_backup(&file, &passphrase, limit)?;
            let manifest = take_manifest(&mut input)?;
            Ok((input, manifest))
        })
        .await?;
        // A transfer bringing one of these vaults here for the first time
        // (a pull, an accept) holds its lock until it ends: the restore
        // waits for it, then finds the vault here, rather than taking up
        // its unfinished copy (finished under it, the transfer failed the
        // sync; a failed restore dropped the copy). Taken in order, as no
        // transfer holds more than one.
        let mut ids: Vec<VaultId> = manifest
            .vaults
            .iter()
            .filter_map(|v| v.id.parse().ok())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let locks = async {
            let mut held = Vec::with_capacity(ids.len());
            for id in &ids {
                held.push(self.inner.new_vault_lock(*id).lock_owned().await);
            }
            held
        };
        // Each transfer ends by its sync's deadline; a device starting the
        // next as each ends would hold the restore up without end.
        let held = tokio::time::timeout(RESTORE_WAITS_FOR_TRANSFERS, locks)
            .await
            .map_err(|_| {
                NodeError::Network(
                    "a device is still sending one of the backup's vaults here; \
                     nothing was restored, try again once it has come"
                        .into(),
                )
            })?;
        // A copy a transfer set aside (cut off part way) waits for it to
        // go on: the restore leaves it to that transfer.
        let resuming = self.inner.vaults_resuming();
        let awaited: HashSet<String> = ids
            .iter()
            .filter(|id| resuming.contains(id))
            .map(ToString::to_string)
            .collect();
        let restored = self
            .with_vaults(move |s| restore(s, input, manifest, &awaited))
            .await;
        drop(held);
        let restored = restored?;
        self.notify();
        Ok(restored)
    }
}

/// How long a restore waits for transfers of its vaults under way.
const RESTORE_WAITS_FOR_TRANSFERS: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// A new backup's passphrase (one-off or scheduled): at least as long as a
/// node's password must be.
fn check_passphrase(passphrase: &Password) -> Result<(), NodeError> {
    if passphrase.expose_secret().chars().count() < crate::MIN_PASSWORD_LEN {
        return Err(NodeError::Invalid(format!(
            "the passphrase must be at least {} characters long",
            crate::MIN_PASSWORD_LEN
        )));
    }
    Ok(())
}

fn open_backup(
    file: &Path,
    passphrase: &Password,
    limit: Duration,
) -> Result<SealedReader<BufReader<Timed>>, NodeError> {
    let file = file.to_owned();
    let opened =
        Timed::open(move || std::fs::File::open(file), limit).map_err(BackupError::read)?;
    Ok(SealedReader::new(
        BufReader::with_capacity(FILE_BUFFER, opened),
        passphrase,
    )?)
}

/// The buffer between a backup's sealing and its file: each read or write
/// of the file is a round trip to the file's thread (see `timed`).
const FILE_BUFFER: usize = 256 * 1024;

/// The writer a backup's file is sealed with.
type Sealing = SealedWriter<BufWriter<Timed>>;

/// Write a backup of `chosen` (every vault when `None`) to `target`,
/// sealed by what `seal` makes of the file.
fn write_backup(
    s: &Session,
    target: &Path,
    chosen: Option<&[String]>,
    limit: Duration,
    seal: impl FnOnce(BufWriter<Timed>) -> Result<Sealing, BackupError>,
) -> Result<BackupMade, NodeError> {
    let all = Vaults::new(&s.db);
    let vaults: Vec<Vault> = match chosen {
        Some(names) => names
            .iter()
            .map(|name| all.open(name))
            .collect::<Result<_, _>>()?,
        None => all
            .list()?
            .iter()
            .map(|info| all.open(&info.id.to_string()))
            .collect::<Result<_, _>>()?,
    };
    let mut plans = Vec::with_capacity(vaults.len());
    let mut manifest = Manifest {
        created_at: now_secs(),
        node: s.keys.node_id().to_string(),
        vaults: Vec::with_capacity(vaults.len()),
    };
    for vault in &vaults {
        let head = vault.head(&s.db)?;
        let plan = vault.send_plan(&s.db, &head, &[])?;
        // What a restore (as a sync) would refuse is refused here, not
        // found out when the backup is needed.
        if plan.total() > polykey_vaults::MAX_IMPORT_OBJECTS {
            return Err(NodeError::Invalid(format!(
                "the vault {} holds more versions, folders and secrets than one backup restores \
                 ({}); export it with `polykey vaults export`",
                vault.name(),
                polykey_vaults::MAX_IMPORT_OBJECTS
            )));
        }
        manifest.vaults.push(BackupVault {
            id: vault.id().to_string(),
            name: vault.name().to_owned(),
            renamed_at: vault.info().renamed_at,
            head,
            objects: plan.total(),
        });
        plans.push(plan);
    }
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let there = target.to_owned();
    let exists = timed::run(limit, move || Ok(there.exists()))
        .map_err(|e| NodeError::io("look at the backup's folder", e))?;
    if exists {
        return Err(NodeError::Invalid(format!(
            "{} exists already; choose a new file name",
            target.display()
        )));
    }
    // A name of its own: two backups to one file never share it.
    let mut random = [0u8; 8];
    polykey_keys::random_bytes(&mut random);
    let partial = dir.join(format!(
        ".{}.{}.partial",
        target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("backup"),
        data_encoding::HEXLOWER.encode(&random)
    ));
    let (creating, undone) = (partial.clone(), partial.clone());
    let file = Timed::create(
        move || polykey_os::fs::create_new_private(&creating),
        move || drop(std::fs::remove_file(undone)),
        limit,
    )
    .map_err(|e| NodeError::io("create the backup file", e))?;
    let written = (|| -> Result<u64, NodeError> {
        let mut out = seal(BufWriter::with_capacity(FILE_BUFFER, file))?;
        let json = serde_json::to_vec(&manifest).map_err(|e| NodeError::Internal(e.to_string()))?;
        put(&mut out, MANIFEST, &[&json])?;
        for ((vault, plan), record) in vaults.iter().zip(&plans).zip(&manifest.vaults) {
            let json =
                serde_json::to_vec(record).map_err(|e| NodeError::Internal(e.to_string()))?;
            put(&mut out, VAULT, &[&json])?;
            let mut sent = 0;
            let mut bytes = 0;
            while sent < plan.total() {
                // A lock does not wait for the backup to end (the keys
                // stayed in memory, the store open, past the lock's wait).
                s.go_on()?;
                let page = vault.planned_page(&s.db, plan, sent, PAGE_BYTES)?;
                if page.is_empty() {
                    return Err(NodeError::Internal("a backup page came back empty".into()));
                }
                for (id, object) in &page {
                    bytes += object.data.len();
                    put_object(&mut out, id, object)?;
                }
                // The page as planned: a restore takes it as one.
                put(&mut out, PAGE, &[])?;
                sent += page.len();
            }
            if plan.total() == 0 {
                put(&mut out, PAGE, &[])?;
            }
            if bytes > polykey_vaults::MAX_RECEIVE_BYTES {
                return Err(NodeError::Invalid(format!(
                    "the vault {} has more history than one backup restores (1 GiB); export \
                     it with `polykey vaults export`",
                    vault.name()
                )));
            }
        }
        put(&mut out, END, &[])?;
        let (buffered, bytes) = out.finish()?;
        let mut file = buffered
            .into_inner()
            .map_err(|e| NodeError::io("write the backup file", e.into_error()))?;
        file.sync_all()
            .map_err(|e| NodeError::io("write the backup file", e))?;
        Ok(bytes)
    })();
    let bytes = match written {
        Ok(bytes) => bytes,
        Err(e) => {
            let partial = partial.clone();
            let _ = timed::run(limit, move || std::fs::remove_file(partial));
            return Err(e);
        }
    };
    // A link, not a rename: it never replaces a file that appeared since.
    // Where links are not made (FAT and exFAT sticks, some network
    // shares), a rename once the name is still free.
    let target = target.to_owned();
    let named = timed::run(limit, move || {
        let named = match std::fs::hard_link(&partial, &target) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists && !target.exists() => {
                std::fs::rename(&partial, &target)
            }
            other => other,
        };
        let _ = std::fs::remove_file(&partial);
        named
    });
    named.map_err(|e| NodeError::io("name the backup file", e))?;
    Ok(BackupMade { manifest, bytes })
}

fn take_manifest(input: &mut SealedReader<impl std::io::Read>) -> Result<Manifest, BackupError> {
    let manifest: Manifest = json(&take(input, MANIFEST)?, "list of vaults")?;
    if manifest.vaults.len() > MAX_VAULTS {
        return Err(BackupError::Damaged(
            "more vaults than a backup holds".into(),
        ));
    }
    // No vault takes more in one transfer (see `Vault::receive_page`).
    if manifest
        .vaults
        .iter()
        .any(|v| v.objects > polykey_vaults::MAX_IMPORT_OBJECTS)
    {
        return Err(BackupError::Damaged(
            "a vault with more objects than a backup holds".into(),
        ));
    }
    // Each id as a backup writes it: the restore finds a vault here, its
    // lock and its transfers by the id, whatever the spelling.
    if manifest
        .vaults
        .iter()
        .any(|v| v.id.parse::<VaultId>().ok().map(|id| id.to_string()) != Some(v.id.clone()))
    {
        return Err(BackupError::Damaged(
            "a vault id not as a backup writes it".into(),
        ));
    }
    // Each vault once: the second of two took up the first one's copy,
    // and failed once the first was finished, restored, in a restore
    // that said nothing was.
    let ids: HashSet<&str> = manifest.vaults.iter().map(|v| v.id.as_str()).collect();
    if ids.len() != manifest.vaults.len() {
        return Err(BackupError::Damaged("a vault listed twice".into()));
    }
    Ok(manifest)
}

fn take_vault_record(
    input: &mut SealedReader<impl std::io::Read>,
    listed: &BackupVault,
) -> Result<(), BackupError> {
    let record: BackupVault = json(&take(input, VAULT)?, "vault record")?;
    if record != *listed {
        return Err(BackupError::Damaged("a vault not as its list says".into()));
    }
    Ok(())
}

fn take_end(input: &mut SealedReader<impl std::io::Read>) -> Result<(), BackupError> {
    take(input, END)?;
    if !input.at_end() {
        return Err(BackupError::Damaged("content after its end".into()));
    }
    Ok(())
}

/// A vault being restored: its transfer, its id here and how it comes back.
struct Taking {
    id: String,
    incoming: polykey_vaults::Incoming,
    head: String,
    outcome: Restored,
}

/// Restore the vaults of `manifest`, read from `input`, the rest of the
/// backup; an unfinished copy of one of them that a transfer set aside
/// (`awaited`) is left to it, and the vault comes back beside.
fn restore(
    s: &Session,
    mut input: SealedReader<BufReader<Timed>>,
    manifest: Manifest,
    awaited: &HashSet<String>,
) -> Result<Vec<Restored>, NodeError> {
    let vaults = Vaults::new(&s.db);
    let mut taking: Vec<Taking> = Vec::new();
    let mut unchanged = Vec::new();
    let result = (|| -> Result<(), NodeError> {
        for listed in &manifest.vaults {
            take_vault_record(&mut input, listed)?;
            // A vault here with a version; a record a transfer left
            // unfinished is not one (the restore takes it up, unless the
            // transfer waits to go on).
            let here = match vaults.open(&listed.id) {
                Ok(vault) if vault.id().to_string() == listed.id => vault.head(&s.db).ok(),
                Ok(_) | Err(VaultError::UnknownVault(_)) => None,
                Err(e) => return Err(e.into()),
            };
            if here.as_deref() == Some(listed.head.as_str()) {
                take_objects(&mut input, listed.objects, |_| s.go_on())?;
                unchanged.push(listed.name.clone());
                continue;
            }
            let beside = here.is_some() || awaited.contains(&listed.id);
            let (vault, outcome) = begin(&vaults, listed, beside)?;
            let mut incoming = polykey_vaults::Incoming::new(&vault);
            let taken = take_objects(&mut input, listed.objects, |page| {
                // A lock waiting for the restore stops it (nothing is
                // restored), not the other way round.
                s.go_on()?;
                vault
                    .receive_page(&s.db, &mut incoming, page, &|_, _| true)
                    .map(|_| ())
                    .map_err(damaged)
            });
            taking.push(Taking {
                id: vault.id().to_string(),
                incoming,
                head: listed.head.clone(),
                outcome,
            });
            taken?;
        }
        take_end(&mut input)?;
        Ok(())
    })();
    let ids: Vec<String> = taking.iter().map(|t| t.id.clone()).collect();
    let abort_all = || {
        for id in &ids {
            let _ = vaults.abort_receive_vault(id);
        }
    };
    if let Err(e) = result {
        abort_all();
        return Err(e);
    }
    // Every vault listed in one transaction: one refused as it finished
    // (or a disk error) left those finished before it restored, in a
    // restore that said nothing was.
    let (transfers, outcomes): (Vec<_>, Vec<_>) = taking
        .into_iter()
        .map(|t| ((t.id, t.incoming, t.head), t.outcome))
        .unzip();
    let finished = match vaults.finish_receive_vaults(transfers) {
        Ok(finished) => finished,
        Err(e) => {
            abort_all();
            return Err(damaged(e));
        }
    };
    let mut restored = Vec::with_capacity(manifest.vaults.len());
    for (vault, outcome) in finished.iter().zip(outcomes) {
        restored.push(match outcome {
            Restored::Beside(_) => Restored::Beside(vault.name().to_owned()),
            _ => Restored::Restored(vault.name().to_owned()),
        });
    }
    restored.extend(unchanged.into_iter().map(Restored::Unchanged));
    Ok(restored)
}

/// Start restoring `listed`: under its own id when no vault here has it
/// (nor had it: a vault deleted here stays deleted) and it is not to go
/// `beside`, else beside as a new vault.
fn begin(
    vaults: &Vaults<'_>,
    listed: &BackupVault,
    beside: bool,
) -> Result<(Vault, Restored), NodeError> {
    if !beside && !vaults.deletion_recorded(&listed.id)? {
        match vaults.begin_receive_vault(&listed.name, &listed.id, listed.renamed_at) {
            Ok(vault) => return Ok((vault, Restored::Restored(listed.name.clone()))),
            Err(VaultError::UnknownVault(_) | VaultError::VaultExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Cut so that the mark fits a vault's name: a long name (90 to 100
    // characters) refused the whole restore.
    const MARK: &str = " (restored)";
    let stem: String = listed
        .name
        .chars()
        .take(polykey_vaults::MAX_VAULT_NAME - MARK.len())
        .collect();
    let name = format!("{}{MARK}", stem.trim_end());
    let id = polykey_vaults::VaultId::random().to_string();
    let vault = vaults.begin_receive_vault(&name, &id, 0)?;
    Ok((vault, Restored::Beside(name)))
}

/// A refusal of the backup's objects is damage to the backup.
fn damaged(e: VaultError) -> NodeError {
    match e {
        VaultError::Refused(why) | VaultError::Corrupt(why) => BackupError::Damaged(why).into(),
        e => e.into(),
    }
}

impl Node {
    /// [`Node::back_up_now`] as the transport type.
    pub async fn back_up_now_dto(&self) -> Result<BackupDto, NodeError> {
        let made = self.back_up_now().await?;
        Ok(made.manifest.to_dto(made.bytes))
    }

    /// [`Node::restore_backup`] as the transport type.
    pub async fn restore_backup_dto(
        &self,
        file: PathBuf,
        passphrase: Password,
    ) -> Result<Vec<RestoredDto>, NodeError> {
        let restored = self.restore_backup(file, passphrase).await?;
        Ok(restored.into_iter().map(Into::into).collect())
    }
}

impl Manifest {
    /// As the transport type, with the file's size.
    pub fn to_dto(&self, bytes: u64) -> BackupDto {
        BackupDto {
            created_at: self.created_at,
            node: self.node.clone(),
            vaults: self
                .vaults
                .iter()
                .map(|v| BackupVaultDto {
                    name: v.name.clone(),
                    id: v.id.clone(),
                    objects: v.objects,
                })
                .collect(),
            bytes,
        }
    }
}

impl From<Restored> for RestoredDto {
    fn from(restored: Restored) -> Self {
        let (name, how) = match restored {
            Restored::Restored(name) => (name, "restored"),
            Restored::Beside(name) => (name, "beside"),
            Restored::Unchanged(name) => (name, "unchanged"),
        };
        Self {
            name,
            how: how.into(),
        }
    }
}

impl Restored {
    /// The vault's name here.
    pub fn name(&self) -> &str {
        match self {
            Self::Restored(name) | Self::Beside(name) | Self::Unchanged(name) => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(byte: u8) -> (String, RawObject) {
        (
            data_encoding::HEXLOWER.encode(&[byte; 20]),
            RawObject {
                kind: polykey_vaults::kind_of_tag(1).unwrap(),
                data: vec![byte; 3],
                base: None,
            },
        )
    }

    fn stream(records: impl FnOnce(&mut SealedWriter<Vec<u8>>)) -> Vec<u8> {
        let mut out = SealedWriter::new(
            Vec::new(),
            &"pass phrase".into(),
            polykey_keys::KdfParams::fast_for_tests(),
        )
        .unwrap();
        records(&mut out);
        out.finish().unwrap().0
    }

    fn pages(file: &[u8], count: usize) -> Result<Vec<Vec<String>>, NodeError> {
        let mut input = SealedReader::new(file, &"pass phrase".into())?;
        let mut seen = Vec::new();
        take_objects(&mut input, count, |page| {
            seen.push(page.iter().map(|(id, _)| id[..2].to_owned()).collect());
            Ok(())
        })?;
        Ok(seen)
    }

    const PASSWORD: &str = "correct horse battery";

    /// A node at `dir` (cheap keys), with `vaults`, each holding one
    /// secret.
    async fn node_with(dir: &std::path::Path, vaults: &[&str]) -> Node {
        let node = crate::node::test_node(dir, PASSWORD).await;
        for vault in vaults {
            node.create_vault((*vault).into()).await.unwrap();
            node.write_secret((*vault).into(), "pin".into(), b"4711".to_vec().into())
                .await
                .unwrap();
        }
        node
    }

    /// A backup whose second vault's version is not among its objects
    /// (a hostile file, made with the passphrase) restores neither vault:
    /// the first was listed, restored, before the second was refused.
    #[tokio::test]
    async fn a_vault_refused_as_the_restore_finishes_restores_no_vault() {
        let dir = tempfile::tempdir().unwrap();
        let a = node_with(&dir.path().join("a"), &["Alpha", "Beta"]).await;
        let file = dir.path().join("honest.backup");
        a.create_backup(file.clone(), "pass phrase".into(), None)
            .await
            .unwrap();
        // The same backup, sealed again, with the last vault's version
        // swapped for one it does not hold.
        let honest = std::fs::read(&file).unwrap();
        let mut input = SealedReader::new(&honest[..], &"pass phrase".into()).unwrap();
        let mut last = String::new();
        let hostile = stream(|out| loop {
            let (tag, body) = take_any(&mut input).unwrap();
            let mut body = body.to_vec();
            if tag == MANIFEST {
                let mut manifest: Manifest = serde_json::from_slice(&body).unwrap();
                let vault = manifest.vaults.last_mut().unwrap();
                last = vault.id.clone();
                vault.head = "11".repeat(20);
                body = serde_json::to_vec(&manifest).unwrap();
            }
            if tag == VAULT {
                let mut record: BackupVault = serde_json::from_slice(&body).unwrap();
                if record.id == last {
                    record.head = "11".repeat(20);
                }
                body = serde_json::to_vec(&record).unwrap();
            }
            put(out, tag, &[&body]).unwrap();
            if tag == END {
                break;
            }
        });
        let hostile_file = dir.path().join("hostile.backup");
        std::fs::write(&hostile_file, hostile).unwrap();
        let b = node_with(&dir.path().join("b"), &[]).await;
        let err = b
            .restore_backup(hostile_file, "pass phrase".into())
            .await
            .unwrap_err();
        assert!(
            matches!(err, NodeError::Backup(BackupError::Damaged(_))),
            "{err}"
        );
        assert!(b.vaults().await.unwrap().is_empty());
        // Nothing left half taken: the honest backup restores both.
        let restored = b.restore_backup(file, "pass phrase".into()).await.unwrap();
        assert_eq!(
            restored,
            [
                Restored::Restored("Alpha".into()),
                Restored::Restored("Beta".into())
            ]
        );
    }

    /// A backup under way when the node locks stops: a one-off backup (a
    /// reader of the store) held the keys and the store open past the
    /// lock's wait, and an unlock meanwhile found the store in use; a
    /// scheduled one or Back up now (holding the node's state) kept the
    /// lock, and the person who pressed Lock, waiting to its end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backup_stops_when_the_node_locks() {
        for holding_the_state in [false, true] {
            backup_stops_at_a_lock(holding_the_state).await;
        }
    }

    async fn backup_stops_at_a_lock(holding_the_state: bool) {
        let dir = tempfile::tempdir().unwrap();
        let node = node_with(&dir.path().join("node"), &["Alpha"]).await;
        let backups = dir.path().join("backups");
        std::fs::create_dir(&backups).unwrap();
        let target = backups.join("polykey.backup");
        let locking = node.clone();
        let runtime = tokio::runtime::Handle::current();
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let work = move |s: &Session| {
            write_backup(s, &target, None, FILE_STALL, |out| {
                // The node locks once the file is open.
                std::thread::spawn(move || {
                    let started = std::time::Instant::now();
                    let locked = runtime.block_on(locking.lock());
                    let _ = locked_tx.send((locked, started.elapsed()));
                });
                let started = std::time::Instant::now();
                while !s.closing() && started.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                SealedWriter::new(
                    out,
                    &"pass phrase".into(),
                    polykey_keys::KdfParams::fast_for_tests(),
                )
            })
        };
        let made = if holding_the_state {
            node.with_vaults(work).await
        } else {
            node.with_vaults_read(work).await
        };
        assert!(
            matches!(made, Err(NodeError::Locked)),
            "{holding_the_state}: {made:?}"
        );
        let (locked, took) = locked_rx.recv_timeout(Duration::from_secs(60)).unwrap();
        locked.unwrap();
        assert!(took < Duration::from_secs(10), "the lock took {took:?}");
        // No file, whole or part, is left.
        assert_eq!(std::fs::read_dir(&backups).unwrap().count(), 0);
        node.unlock(PASSWORD.into()).await.unwrap();
        assert_eq!(node.vaults().await.unwrap().len(), 1);
    }

    #[test]
    fn a_vault_listed_twice_is_damage() {
        let vault = BackupVault {
            id: polykey_vaults::VaultId::random().to_string(),
            name: "V".into(),
            renamed_at: 0,
            head: "00".repeat(20),
            objects: 0,
        };
        let listing = |vaults: Vec<BackupVault>| {
            let json = serde_json::to_vec(&Manifest {
                created_at: 0,
                node: String::new(),
                vaults,
            })
            .unwrap();
            stream(|out| put(out, MANIFEST, &[&json]).unwrap())
        };
        let taken = |file: &[u8]| {
            let mut input = SealedReader::new(file, &"pass phrase".into()).unwrap();
            take_manifest(&mut input).map(|m| m.vaults.len())
        };
        assert_eq!(taken(&listing(vec![vault.clone()])).unwrap(), 1);
        let twice = taken(&listing(vec![vault.clone(), vault])).unwrap_err();
        assert!(twice.to_string().contains("listed twice"), "{twice}");
    }

    #[test]
    fn a_restore_takes_the_pages_as_the_backup_cut_them() {
        let file = stream(|out| {
            for byte in [1, 2] {
                let (id, object) = blob(byte);
                put_object(out, &id, &object).unwrap();
            }
            put(out, PAGE, &[]).unwrap();
            let (id, object) = blob(3);
            put_object(out, &id, &object).unwrap();
            put(out, PAGE, &[]).unwrap();
        });
        assert_eq!(pages(&file, 3).unwrap(), [vec!["01", "02"], vec!["03"]]);
        // A vault's objects that do not end with a page end are damage.
        let unended = stream(|out| {
            let (id, object) = blob(1);
            put_object(out, &id, &object).unwrap();
            put(out, END, &[]).unwrap();
        });
        assert!(pages(&unended, 1).is_err());
    }

    /// A vault of many tiny objects and no page end among them is handed
    /// on (and checked) in pages of at most `MAX_PAGE_OBJECTS`, not held
    /// whole until its end: a crafted file of a billion empty objects
    /// would otherwise take all memory, and a preview, which checks
    /// nothing, would read it all.
    #[test]
    fn a_flood_of_tiny_objects_is_handed_on_as_it_is_read() {
        let count = MAX_PAGE_OBJECTS + 10;
        let file = stream(|out| {
            let (id, object) = blob(1);
            for _ in 0..count {
                put_object(out, &id, &object).unwrap();
            }
            put(out, PAGE, &[]).unwrap();
        });
        let sizes: Vec<usize> = pages(&file, count).unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [MAX_PAGE_OBJECTS, 10]);
    }

    #[test]
    fn a_vault_listed_with_more_objects_than_any_transfer_takes_is_damage() {
        let listed = |objects| BackupVault {
            id: "00".repeat(16),
            name: "v".into(),
            renamed_at: 0,
            head: "00".repeat(20),
            objects,
        };
        let file = |objects| {
            stream(|out| {
                let manifest = Manifest {
                    created_at: 0,
                    node: String::new(),
                    vaults: vec![listed(objects)],
                };
                put(out, MANIFEST, &[&serde_json::to_vec(&manifest).unwrap()]).unwrap();
            })
        };
        let read = |file: Vec<u8>| {
            let mut input = SealedReader::new(&file[..], &"pass phrase".into()).unwrap();
            take_manifest(&mut input)
        };
        assert!(read(file(polykey_vaults::MAX_IMPORT_OBJECTS)).is_ok());
        assert!(read(file(polykey_vaults::MAX_IMPORT_OBJECTS + 1)).is_err());
    }

    /// A vault id spelled otherwise than a backup writes it (upper case, or
    /// not an id) is damage: the restore looked for vaults, transfers and
    /// their copies here by the spelling, and the store by the id, so an
    /// unfinished copy a transfer waits for was taken up, and dropped.
    #[test]
    fn a_vault_id_not_as_a_backup_writes_it_is_damage() {
        let read = |id: String| {
            let file = stream(|out| {
                let manifest = Manifest {
                    created_at: 0,
                    node: String::new(),
                    vaults: vec![BackupVault {
                        id,
                        name: "v".into(),
                        renamed_at: 0,
                        head: "00".repeat(20),
                        objects: 1,
                    }],
                };
                put(out, MANIFEST, &[&serde_json::to_vec(&manifest).unwrap()]).unwrap();
            });
            let mut input = SealedReader::new(&file[..], &"pass phrase".into()).unwrap();
            take_manifest(&mut input)
        };
        assert!(read("ab".repeat(16)).is_ok());
        for id in ["AB".repeat(16), "ab".repeat(15), "not an id".into()] {
            let err = read(id.clone()).unwrap_err();
            assert!(matches!(err, BackupError::Damaged(_)), "{id}: {err}");
        }
    }
}

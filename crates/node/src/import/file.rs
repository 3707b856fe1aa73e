//! An export read from its file, and the import the desktop's wizard
//! drives: a preview (counts, the first items, what is skipped and why,
//! the columns of a CSV it does not know) and the import, one commit.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use polykey_vaults::items::ItemKind;
use zeroize::Zeroizing;

use super::csv::Mapping;
use super::{ImportError, Parsed, MAX_IMPORT_BYTES};
use crate::api::EntryKindDto;
use crate::api::{
    ImportPreviewDto, ImportReportDto, ImportRequestDto, KindCountDto, PreviewItemDto, SkippedDto,
};
use crate::error::NodeError;
use crate::node::Node;
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The exports this reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A CSV export, recognised by its columns or read with a mapping.
    Csv,
    /// Bitwarden's JSON, unencrypted or password-protected.
    Bitwarden,
    /// 1Password's 1PUX.
    OnePux,
    /// A `pass` store: its folder, decrypted with the user's own gpg.
    Pass,
    /// A KeePass database (KDBX 3.1 or 4).
    KeePass,
}

impl std::str::FromStr for Source {
    type Err = ImportError;

    fn from_str(name: &str) -> Result<Self, ImportError> {
        Ok(match name {
            "csv" => Self::Csv,
            "bitwarden" => Self::Bitwarden,
            "1pux" => Self::OnePux,
            "pass" => Self::Pass,
            "keepass" | "kdbx" => Self::KeePass,
            other => {
                return Err(ImportError::Unrecognised(format!(
                    "`{other}` is not an export this reads (csv, bitwarden, 1pux, pass, keepass)"
                )))
            }
        })
    }
}

/// A file's bytes, refused past [`MAX_IMPORT_BYTES`] (one byte more is
/// read, so a larger file is refused, not cut).
pub fn read_bounded(file: &Path) -> Result<Zeroizing<Vec<u8>>, ImportError> {
    let unreadable = |e: std::io::Error| {
        ImportError::Unrecognised(format!("cannot read {}: {e}", file.display()))
    };
    // Only a file: a FIFO (an archive can hold one) or a device such as a
    // terminal is opened for ever, waiting for a writer or for input.
    let kind = std::fs::metadata(file).map_err(unreadable)?;
    if !kind.is_file() {
        return Err(ImportError::Unrecognised(format!(
            "{} is not a file",
            file.display()
        )));
    }
    // Refused again by what is opened: a FIFO put in its place since the
    // look above waited for a writer for ever.
    let opened = polykey_os::fs::open_regular(file).map_err(unreadable)?;
    let size = opened.metadata().map_or(0, |m| m.len() as usize);
    if size > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge);
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(size + 1));
    opened
        .take(MAX_IMPORT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge);
    }
    Ok(bytes)
}

/// Read the export at `file` as `source`: a CSV with `mapping` when given,
/// a protected Bitwarden export or a KeePass database with `password`
/// (and a KeePass `key_file`), a `pass` store with the `gpg` program.
pub fn read_source(
    source: Source,
    file: &Path,
    mapping: Option<&Mapping>,
    password: Option<&str>,
    key_file: Option<&Path>,
    gpg: &Path,
) -> Result<Parsed, ImportError> {
    if mapping.is_some() && source != Source::Csv {
        return Err(ImportError::Unrecognised(
            "a mapping of columns is for CSV files only".into(),
        ));
    }
    match source {
        Source::Pass => super::pass::read(file, gpg),
        Source::Csv => super::csv::read(&read_bounded(file)?, mapping),
        Source::OnePux => super::onepassword::read(&read_bounded(file)?),
        Source::Bitwarden => {
            super::bitwarden::read(&read_bounded(file)?, password.map(str::as_bytes))
        }
        Source::KeePass => {
            let key = key_file.map(read_bounded).transpose()?;
            super::keepass::read(
                &read_bounded(file)?,
                password,
                key.as_deref().map(|k| k.as_slice()),
            )
        }
    }
}

/// Items shown in a preview.
const PREVIEW_ITEMS: usize = 10;
/// Longest title, user name, website or folder a preview shows (bytes).
const PREVIEW_TEXT_BYTES: usize = 200;

fn kind_name(kind: &ItemKind) -> &'static str {
    match kind {
        ItemKind::Login { .. } => "login",
        ItemKind::SecureNote { .. } => "note",
        ItemKind::Card { .. } => "card",
        ItemKind::SshKey { .. } => "SSH key",
        ItemKind::Identity { .. } => "identity",
    }
}

struct Request {
    source: Source,
    file: PathBuf,
    mapping: Option<Mapping>,
    password: Option<Zeroizing<String>>,
    key_file: Option<PathBuf>,
}

/// How long a preview's parse waits for its import.
const PARSE_KEPT_FOR: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// The largest export whose parse is kept (a parse takes a few times its
/// file, up to 16 times for a hostile shape, and is held while the person
/// looks at the preview); a larger one is read again by its import.
const MAX_KEPT_FILE: u64 = 4 * 1024 * 1024;

/// The export a preview parsed, kept for the import that follows it (one,
/// for [`PARSE_KEPT_FOR`], dropped with the session): a KeePass database
/// or a protected Bitwarden export pays its key derivation once, not once
/// for the preview and again for the import, and a large file is read and
/// parsed once. Taken only by an import of the same file, unchanged
/// since (its length and time of change, and its key file's), read the
/// same way (mapping, password).
pub(crate) struct KeptParse {
    read: ReadAs,
    parsed: Parsed,
    at: std::time::Instant,
}

/// The most a kept parse may hold (its items as stored, their files).
const MAX_KEPT_PARSE: usize = 16 * 1024 * 1024;

/// A file as a parse read it.
#[derive(PartialEq)]
struct ReadAs {
    source: Source,
    file: (PathBuf, Stamp),
    mapping: Option<Mapping>,
    /// The password's digest under a key of this process (the password
    /// itself is not kept).
    password: Option<[u8; 32]>,
    key_file: Option<(PathBuf, Stamp)>,
}

/// A file's length and time of change, and where the platform tells them
/// its inode and the time its inode changed (which no one sets back).
type Stamp = (u64, std::time::SystemTime, u64, i64, i64);

fn stamp(file: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(file).ok()?;
    #[cfg(unix)]
    let inode = {
        use std::os::unix::fs::MetadataExt;
        (meta.ino(), meta.ctime(), meta.ctime_nsec())
    };
    #[cfg(not(unix))]
    let inode = (0, 0, 0);
    Some((meta.len(), meta.modified().ok()?, inode.0, inode.1, inode.2))
}

/// `password`'s digest under a key made once a process.
fn digest(password: &str) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        polykey_keys::random_bytes(&mut key);
        key
    });
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(password.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Whether `parsed` is small enough to keep (its items as stored, and
/// their files, counted until past the bound).
fn small_enough(parsed: &Parsed) -> bool {
    let mut bytes = 0usize;
    for imported in &parsed.items {
        bytes = bytes.saturating_add(imported.item.encoded_len());
        for (name, data) in &imported.files {
            bytes = bytes.saturating_add(name.len() + data.len());
        }
        if bytes > MAX_KEPT_PARSE {
            return false;
        }
    }
    true
}

impl TryFrom<ImportRequestDto> for Request {
    type Error = ImportError;

    fn try_from(dto: ImportRequestDto) -> Result<Self, ImportError> {
        let mut mapping = dto
            .mapping
            .as_deref()
            .filter(|m| !m.trim().is_empty())
            .map(Mapping::parse)
            .transpose()?;
        if dto.no_header == Some(true) {
            mapping.get_or_insert_with(Mapping::default).no_header = true;
        }
        Ok(Self {
            source: dto.source.parse()?,
            file: PathBuf::from(&dto.file),
            mapping,
            password: dto.password.map(Zeroizing::new),
            key_file: dto.key_file.filter(|k| !k.is_empty()).map(PathBuf::from),
        })
    }
}

impl Request {
    /// What a parse of it now would be known by: none for a `pass` store
    /// (a folder of files, each decrypted by gpg), or a file gone.
    fn read_as(&self) -> Option<ReadAs> {
        if self.source == Source::Pass {
            return None;
        }
        let key_file = match &self.key_file {
            Some(key) => Some((key.clone(), stamp(key)?)),
            None => None,
        };
        Some(ReadAs {
            source: self.source,
            file: (self.file.clone(), stamp(&self.file)?),
            mapping: self.mapping.clone(),
            password: self.password.as_deref().map(|p| digest(p)),
            key_file,
        })
    }

    fn read(&self) -> Result<Parsed, ImportError> {
        read_source(
            self.source,
            &self.file,
            self.mapping.as_ref(),
            self.password.as_deref().map(String::as_str),
            self.key_file.as_deref(),
            Path::new("gpg"),
        )
    }
}

impl Node {
    /// The logins of `vault` by [`super::login_key`], with their paths.
    async fn logins_in(&self, vault: &str) -> Result<HashMap<(String, String), String>, NodeError> {
        Ok(self
            .list_entries(vault.to_owned())
            .await?
            .into_iter()
            .filter(|e| matches!(e.kind, EntryKindDto::Login))
            .filter_map(|e| Some((super::login_key(&e.username, &e.urls)?, e.path)))
            .collect())
    }

    /// What importing `request` into `vault` would bring in, and which of
    /// its logins the vault has already; for a CSV whose columns are not
    /// known, its column names (`needs_mapping`); for a protected export
    /// without its password, `needs_password`. Nothing is written.
    pub async fn import_preview_dto(
        &self,
        request: ImportRequestDto,
        vault: String,
    ) -> Result<ImportPreviewDto, NodeError> {
        let here = self.logins_in(&vault).await?;
        let (preview, kept) = crate::node::blocking(move || {
            let request = Request::try_from(request)?;
            // Known by the file as it was before it was read: a change
            // while it is read makes it another.
            let read_as = request.read_as();
            let parsed = match request.read() {
                Ok(parsed) => parsed,
                Err(ImportError::NeedsPassword) => {
                    let preview = ImportPreviewDto {
                        needs_password: true,
                        ..ImportPreviewDto::default()
                    };
                    return Ok((preview, None));
                }
                Err(ImportError::Unrecognised(why)) if request.source == Source::Csv => {
                    let bytes = read_bounded(&request.file)?;
                    let preview = ImportPreviewDto {
                        needs_mapping: true,
                        columns: super::csv::headers(&bytes)?,
                        problem: Some(why),
                        ..ImportPreviewDto::default()
                    };
                    return Ok((preview, None));
                }
                Err(e) => return Err(e.into()),
            };
            // What the window shows is cut short: a title of 32 MiB went
            // to it whole, twice.
            let shown = |text: &str| super::cut(text, PREVIEW_TEXT_BYTES).to_owned();
            // Counted in one pass, the first few kept with the login here
            // each is the same as (what "replace" overwrites).
            let (mut duplicates, mut duplicate_titles) = (0, Vec::new());
            for (i, here) in parsed
                .items
                .iter()
                .filter_map(|i| Some((i, duplicate_of(&here, i)?)))
            {
                if duplicates < PREVIEW_ITEMS {
                    duplicate_titles.push(format!(
                        "{} (here: {})",
                        shown(&i.item.title),
                        shown(here)
                    ));
                }
                duplicates += 1;
            }
            let preview = ImportPreviewDto {
                duplicates,
                duplicate_titles,
                source: parsed.source.to_owned(),
                total: parsed.items.len(),
                counts: parsed
                    .counts()
                    .into_iter()
                    .map(|(kind, count)| KindCountDto {
                        kind: kind.to_owned(),
                        count,
                    })
                    .collect(),
                first: parsed
                    .items
                    .iter()
                    .take(PREVIEW_ITEMS)
                    .map(|imported| {
                        let (username, url) = match &imported.item.kind {
                            ItemKind::Login { username, urls, .. } => (
                                shown(username),
                                shown(urls.first().map_or("", String::as_str)),
                            ),
                            _ => (String::new(), String::new()),
                        };
                        PreviewItemDto {
                            title: shown(&imported.item.title),
                            kind: kind_name(&imported.item.kind).to_owned(),
                            folder: shown(&imported.folder.join("/")),
                            username,
                            url,
                        }
                    })
                    .collect(),
                skipped: parsed
                    .skipped
                    .iter()
                    .map(|s| SkippedDto {
                        row: s.row,
                        reason: s.reason.to_owned(),
                    })
                    .collect(),
                skipped_total: parsed.skipped_total,
                ..ImportPreviewDto::default()
            };
            let kept = read_as
                .filter(|r| r.file.1 .0 <= MAX_KEPT_FILE && small_enough(&parsed))
                .map(|read| KeptParse {
                    read,
                    parsed,
                    at: std::time::Instant::now(),
                });
            Ok((preview, kept))
        })
        .await?;
        self.inner.exports_read.fetch_add(1, Ordering::Relaxed);
        let kept_at = kept.as_ref().map(|k| k.at);
        let session = self
            .with_session_read(move |s| {
                *lock(&s.import_parsed) = kept;
                Ok(Arc::downgrade(s))
            })
            .await?;
        if let Some(at) = kept_at {
            // Not imported in time: let go of it (the export's secrets).
            tokio::spawn(async move {
                tokio::time::sleep(PARSE_KEPT_FOR).await;
                if let Some(session) = session.upgrade() {
                    let mut kept = lock(&session.import_parsed);
                    if kept.as_ref().is_some_and(|k| k.at == at) {
                        *kept = None;
                    }
                }
            });
        }
        Ok(preview)
    }

    /// Let go of what the last preview read, its secrets among it (the
    /// desktop wizard closed without importing): the next import reads
    /// its file again. Locked, there is nothing to let go of.
    pub async fn forget_import_preview(&self) -> Result<(), NodeError> {
        match self
            .with_vaults_read(|s| Ok(lock(&s.import_parsed).take()))
            .await
        {
            // Dropped here, not while the session's lock is held.
            Ok(kept) => {
                drop(kept);
                Ok(())
            }
            Err(NodeError::Locked | NodeError::NotInitialised) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Exports read (parsed) for previews and imports so far: an import
    /// after its preview reads none.
    #[doc(hidden)]
    pub fn exports_read(&self) -> u64 {
        self.inner.exports_read.load(Ordering::Relaxed)
    }

    /// Import `request` into `folder` of `vault`, in one commit that
    /// overwrites nothing (a name taken is numbered), except the logins
    /// the vault has already when `request.duplicates` is `replace` (and
    /// those are left out with `skip`).
    pub async fn import_dto(
        &self,
        request: ImportRequestDto,
        vault: String,
        folder: String,
    ) -> Result<ImportReportDto, NodeError> {
        let policy = request.duplicates.clone().unwrap_or_default();
        if !["", "keep", "skip", "replace"].contains(&policy.as_str()) {
            return Err(NodeError::Invalid(format!(
                "`{policy}` is not keep, skip or replace"
            )));
        }
        let here = self.logins_in(&vault).await?;
        let kept = self
            .with_vaults_read(|s| Ok(lock(&s.import_parsed).take()))
            .await?;
        let (mut parsed, read) = crate::node::blocking(move || {
            let request = Request::try_from(request)?;
            match kept {
                Some(kept)
                    if kept.at.elapsed() < PARSE_KEPT_FOR
                        && request.read_as().is_some_and(|now| now == kept.read) =>
                {
                    Ok((kept.parsed, false))
                }
                _ => Ok((request.read()?, true)),
            }
        })
        .await?;
        if read {
            self.inner.exports_read.fetch_add(1, Ordering::Relaxed);
        }
        // Every path, an empty folder's marker among them: a folder with
        // nothing in it is a folder still, not a free name (an item named
        // like it took its place).
        let existing: BTreeSet<String> =
            self.list_paths(vault.clone()).await?.into_iter().collect();
        // Counted before any is made (the replaced among them).
        super::check_stored_size(&parsed.items)?;
        let mut replacing = Vec::new();
        let mut replaced_paths = HashSet::new();
        let mut skipped_duplicates = 0;
        if policy == "skip" || policy == "replace" {
            let items = std::mem::take(&mut parsed.items);
            for imported in items {
                match duplicate_of(&here, &imported) {
                    // One login replaced once: a second row the same as it
                    // comes in beside it (it overwrote the first row's).
                    Some(path) if policy == "replace" && replaced_paths.insert(path) => {
                        let bytes = super::stored_item(&imported.item, path)?;
                        replacing.push((path.clone(), bytes));
                    }
                    Some(_) if policy == "replace" => parsed.items.push(imported),
                    Some(_) => skipped_duplicates += 1,
                    None => parsed.items.push(imported),
                }
            }
        }
        let replaced = replacing.len();
        let imported = parsed.items.len() + replaced;
        // (All counted above, the replaced among them.)
        let mut secrets = super::secrets_for_counted(&parsed.items, &folder, &existing)?;
        secrets.extend(replacing);
        let version = if secrets.is_empty() {
            None
        } else {
            Some(self.write_secrets(vault, secrets).await?)
        };
        Ok(ImportReportDto {
            source: parsed.source.to_owned(),
            imported,
            replaced,
            skipped_duplicates,
            skipped_total: parsed.skipped_total,
            version,
        })
    }
}

/// The path of the login in the vault (`here`) that `imported` is the
/// same as, if any.
fn duplicate_of<'a>(
    here: &'a HashMap<(String, String), String>,
    imported: &super::ImportedItem,
) -> Option<&'a String> {
    match &imported.item.kind {
        ItemKind::Login { username, urls, .. } => here.get(&super::login_key(username, urls)?),
        _ => None,
    }
}

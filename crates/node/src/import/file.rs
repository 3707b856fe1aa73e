//! An export read from its file, and the import the desktop's wizard
//! drives: a preview (counts, the first items, what is skipped and why,
//! the columns of a CSV it does not know) and the import, one commit.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use polykey_vaults::items::ItemKind;
use zeroize::Zeroizing;

use super::csv::Mapping;
use super::{ImportError, Parsed, MAX_IMPORT_BYTES};
use crate::api::{
    ImportPreviewDto, ImportReportDto, ImportRequestDto, KindCountDto, PreviewItemDto, SkippedDto,
};
use crate::error::NodeError;
use crate::node::Node;

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
    let opened = std::fs::File::open(file).map_err(unreadable)?;
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

fn kind_name(kind: &ItemKind) -> &'static str {
    match kind {
        ItemKind::Login { .. } => "login",
        ItemKind::SecureNote { .. } => "note",
        ItemKind::Card { .. } => "card",
        ItemKind::SshKey { .. } => "SSH key",
    }
}

struct Request {
    source: Source,
    file: PathBuf,
    mapping: Option<Mapping>,
    password: Option<Zeroizing<String>>,
    key_file: Option<PathBuf>,
}

impl TryFrom<ImportRequestDto> for Request {
    type Error = ImportError;

    fn try_from(dto: ImportRequestDto) -> Result<Self, ImportError> {
        let mapping = dto
            .mapping
            .as_deref()
            .filter(|m| !m.trim().is_empty())
            .map(Mapping::parse)
            .transpose()?;
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
    /// What importing `request` would bring in; for a CSV whose columns
    /// are not known, its column names (`needs_mapping`); for a protected
    /// export without its password, `needs_password`. Nothing is written.
    pub async fn import_preview_dto(
        &self,
        request: ImportRequestDto,
    ) -> Result<ImportPreviewDto, NodeError> {
        crate::node::blocking(move || {
            let request = Request::try_from(request)?;
            let parsed = match request.read() {
                Ok(parsed) => parsed,
                Err(ImportError::NeedsPassword) => {
                    return Ok(ImportPreviewDto {
                        needs_password: true,
                        ..ImportPreviewDto::default()
                    })
                }
                Err(ImportError::Unrecognised(why)) if request.source == Source::Csv => {
                    let bytes = read_bounded(&request.file)?;
                    return Ok(ImportPreviewDto {
                        needs_mapping: true,
                        columns: super::csv::headers(&bytes)?,
                        problem: Some(why),
                        ..ImportPreviewDto::default()
                    });
                }
                Err(e) => return Err(e.into()),
            };
            Ok(ImportPreviewDto {
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
                            ItemKind::Login { username, urls, .. } => {
                                (username.clone(), urls.first().cloned().unwrap_or_default())
                            }
                            _ => (String::new(), String::new()),
                        };
                        PreviewItemDto {
                            title: imported.item.title.clone(),
                            kind: kind_name(&imported.item.kind).to_owned(),
                            folder: imported.folder.join("/"),
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
            })
        })
        .await
    }

    /// Import `request` into `folder` of `vault`, in one commit that
    /// overwrites nothing (a name taken is numbered).
    pub async fn import_dto(
        &self,
        request: ImportRequestDto,
        vault: String,
        folder: String,
    ) -> Result<ImportReportDto, NodeError> {
        let parsed = crate::node::blocking(move || Ok(Request::try_from(request)?.read()?)).await?;
        let existing: BTreeSet<String> = self
            .list_secrets(vault.clone(), None)
            .await?
            .into_iter()
            .collect();
        let secrets = super::secrets_for(&parsed.items, &folder, &existing);
        let imported = secrets.len();
        let version = if secrets.is_empty() {
            None
        } else {
            Some(self.write_secrets(vault, secrets).await?)
        };
        Ok(ImportReportDto {
            source: parsed.source.to_owned(),
            imported,
            skipped_total: parsed.skipped_total,
            version,
        })
    }
}

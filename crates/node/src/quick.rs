//! Finding and using secrets quickly. Each secret gets a summary (title,
//! kind, user name, websites: never a secret field) for listing and search;
//! summaries are kept in memory by blob id, so they never go stale and are
//! dropped when the node locks. Favourites and recently used secrets live in
//! the encrypted store of this device; the tray and the quick-access palette
//! list them and copy a secret's main field.

use std::collections::HashMap;

use polykey_db::{Db, RecordKey, Table};
use polykey_vaults::items::{Attachment, Item, ItemError, ItemKind};
use polykey_vaults::{Vault, VaultError, Vaults};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::api::{EntryDto, EntryKindDto, QuickItemDto};
use crate::error::NodeError;
use crate::node::{Node, Session};

/// How many recently used secrets are remembered.
pub const RECENT_LIMIT: usize = 10;

/// Summaries by blob id.
pub(crate) type Index = HashMap<String, Summary>;

/// What search needs to know about one secret's contents.
#[derive(Clone)]
pub(crate) struct Summary {
    /// The item's title; plain secrets use their file name.
    title: Option<String>,
    kind: EntryKindDto,
    username: String,
    urls: Vec<String>,
}

fn summarize(bytes: &[u8]) -> Summary {
    let plain = |kind| Summary {
        title: None,
        kind,
        username: String::new(),
        urls: Vec::new(),
    };
    let item = match Item::from_bytes(bytes) {
        Ok(item) => item,
        Err(ItemError::NotAnItem) if std::str::from_utf8(bytes).is_ok() => {
            return plain(EntryKindDto::Text)
        }
        // A damaged or newer item is listed as what it is to us: bytes.
        Err(_) => return plain(EntryKindDto::Binary),
    };
    let (kind, username, urls) = match &item.kind {
        ItemKind::Login { username, urls, .. } => {
            (EntryKindDto::Login, username.clone(), urls.clone())
        }
        ItemKind::SecureNote { .. } => (EntryKindDto::SecureNote, String::new(), Vec::new()),
        ItemKind::Card { cardholder, .. } => (EntryKindDto::Card, cardholder.clone(), Vec::new()),
        ItemKind::SshKey { .. } => (EntryKindDto::SshKey, String::new(), Vec::new()),
        ItemKind::Identity {
            full_name, email, ..
        } => {
            let who = if full_name.is_empty() {
                email
            } else {
                full_name
            };
            (EntryKindDto::Identity, who.clone(), Vec::new())
        }
    };
    Summary {
        title: Some(item.title.clone()),
        kind,
        username,
        urls,
    }
}

/// A secret, by vault id (names change) and path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SecretRef {
    vault: String,
    path: String,
}

/// This device's favourites and recently used secrets (newest first).
#[derive(Default, Serialize, Deserialize)]
struct QuickAccess {
    favourites: Vec<SecretRef>,
    recent: Vec<SecretRef>,
}

const QUICK: Table<QuickAccess> = Table::new("quick_access");

fn quick_key(db: &Db) -> RecordKey {
    db.record_key("quick_access", b"quick")
}

fn load(db: &Db) -> Result<QuickAccess, VaultError> {
    Ok(db.read()?.get(&QUICK, &quick_key(db))?.unwrap_or_default())
}

fn update(db: &Db, change: impl FnOnce(&mut QuickAccess)) -> Result<(), VaultError> {
    let key = quick_key(db);
    let mut txn = db.write()?;
    let mut quick = txn.get(&QUICK, &key)?.unwrap_or_default();
    change(&mut quick);
    txn.put(&QUICK, &key, &quick)?;
    txn.commit()?;
    Ok(())
}

/// Every secret of `vault` with its summary, reading only blobs not yet
/// summarized.
fn entries(session: &Session, vault: &Vault) -> Result<Vec<EntryDto>, VaultError> {
    let files = vault.files(&session.db)?;
    let vault_id = vault.id().to_string();
    let favourites = load(&session.db)?.favourites;
    let mut index = session
        .index
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut missing: Vec<String> = files
        .iter()
        .filter(|(_, id)| !index.contains_key(id))
        .map(|(_, id)| id.clone())
        .collect();
    missing.sort();
    missing.dedup();
    for chunk in missing.chunks(512) {
        let blobs = vault.blobs(&session.db, chunk)?;
        for (id, bytes) in chunk.iter().zip(blobs) {
            index.insert(id.clone(), summarize(&bytes));
        }
    }
    Ok(files
        .into_iter()
        // Attachments' bytes are parts of items, not secrets of their own.
        .filter(|(path, _)| !Attachment::is_attachment_file(path))
        .filter_map(|(path, id)| {
            let summary = index.get(&id)?;
            let favourite = favourites
                .iter()
                .any(|f| f.vault == vault_id && f.path == path);
            Some(EntryDto {
                title: summary
                    .title
                    .clone()
                    .unwrap_or_else(|| file_name(&path).to_owned()),
                kind: summary.kind,
                username: summary.username.clone(),
                urls: summary.urls.clone(),
                favourite,
                path,
            })
        })
        .collect())
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Case-insensitive match of every word of `query` against what a person
/// would search a secret by: title, path, user name, websites, vault.
pub fn matches(entry: &EntryDto, vault: &str, query: &str) -> bool {
    let haystack = format!(
        "{}\n{}\n{}\n{}\n{}",
        entry.title,
        entry.path,
        entry.username,
        entry.urls.join("\n"),
        vault
    )
    .to_lowercase();
    query
        .to_lowercase()
        .split_whitespace()
        .all(|word| haystack.contains(word))
}

fn quick_item(vault: &str, entry: EntryDto) -> QuickItemDto {
    QuickItemDto {
        vault: vault.to_owned(),
        path: entry.path,
        title: entry.title,
        username: entry.username,
        kind: entry.kind,
        favourite: entry.favourite,
    }
}

/// The field quick copy takes from each kind of secret.
fn main_field(kind: EntryKindDto) -> Option<&'static str> {
    match kind {
        EntryKindDto::Login => Some("password"),
        EntryKindDto::Card => Some("number"),
        EntryKindDto::SshKey => Some("private_key"),
        EntryKindDto::Identity => Some("email"),
        EntryKindDto::SecureNote | EntryKindDto::Text => Some("value"),
        EntryKindDto::Binary => None,
    }
}

impl Node {
    /// Every secret of a vault with its title, kind, user name and websites,
    /// for listing and searching. No secret field is included.
    pub async fn list_entries(&self, vault: String) -> Result<Vec<EntryDto>, NodeError> {
        self.with_vault(vault, entries).await
    }

    /// Mark or unmark a secret as a favourite on this device.
    pub async fn set_favourite(
        &self,
        vault: String,
        path: String,
        favourite: bool,
    ) -> Result<(), NodeError> {
        self.with_vault(vault, move |s, v| {
            let secret = SecretRef {
                vault: v.id().to_string(),
                path,
            };
            if favourite {
                // Only what exists can be a favourite.
                v.stat(&s.db, &secret.path)?;
            }
            update(&s.db, |quick| {
                quick.favourites.retain(|f| *f != secret);
                if favourite {
                    quick.favourites.push(secret);
                }
            })
        })
        .await?;
        self.notify();
        Ok(())
    }

    /// What the tray offers: favourites (by title), then recently used
    /// secrets (newest first) that are not favourites. Secrets since
    /// removed are left out.
    pub async fn quick_items(&self) -> Result<Vec<QuickItemDto>, NodeError> {
        self.with_vaults(|s| {
            let quick = load(&s.db)?;
            let vaults = Vaults::new(&s.db);
            let mut by_vault: HashMap<String, (String, Vec<EntryDto>)> = HashMap::new();
            let mut resolve = |secret: &SecretRef| -> Result<Option<QuickItemDto>, NodeError> {
                if !by_vault.contains_key(&secret.vault) {
                    let listed = match vaults.open(&secret.vault) {
                        Ok(vault) => (vault.name().to_owned(), entries(s, &vault)?),
                        Err(VaultError::UnknownVault(_)) => (String::new(), Vec::new()),
                        Err(other) => return Err(other.into()),
                    };
                    by_vault.insert(secret.vault.clone(), listed);
                }
                let (name, entries) = &by_vault[&secret.vault];
                Ok(entries
                    .iter()
                    .find(|e| e.path == secret.path)
                    .map(|e| quick_item(name, e.clone())))
            };
            let mut favourites = Vec::new();
            for secret in &quick.favourites {
                favourites.extend(resolve(secret)?);
            }
            favourites.sort_by_key(|f| f.title.to_lowercase());
            let mut items = favourites;
            for secret in &quick.recent {
                if let Some(item) = resolve(secret)? {
                    if !item.favourite {
                        items.push(item);
                    }
                }
            }
            Ok(items)
        })
        .await
    }

    /// Search every vault (for the quick-access palette): favourites first,
    /// then by title; at most `limit` results.
    pub async fn quick_search(
        &self,
        query: String,
        limit: usize,
    ) -> Result<Vec<QuickItemDto>, NodeError> {
        self.with_vaults(move |s| {
            let vaults = Vaults::new(&s.db);
            let mut found = Vec::new();
            for info in vaults.list()? {
                let vault = vaults.open(&info.id.to_string())?;
                for entry in entries(s, &vault)? {
                    if matches(&entry, &info.name, &query) {
                        found.push(quick_item(&info.name, entry));
                    }
                }
            }
            found.sort_by_cached_key(|f| (!f.favourite, f.title.to_lowercase(), f.path.clone()));
            found.truncate(limit);
            Ok(found)
        })
        .await
    }

    /// The main field of a secret, for quick copy: a login's password, a
    /// card's number, an SSH key's private key, a note's or plain secret's
    /// text. Counts as a use.
    pub async fn quick_copy_value(
        &self,
        vault: String,
        path: String,
    ) -> Result<Zeroizing<String>, NodeError> {
        let kind = self.stat_entry_kind(vault.clone(), path.clone()).await?;
        let field = main_field(kind).ok_or_else(|| {
            NodeError::Item(ItemError::Malformed(
                "this secret is a file; open it to save it".into(),
            ))
        })?;
        self.secret_field(vault, path, field.to_owned()).await
    }

    async fn stat_entry_kind(
        &self,
        vault: String,
        path: String,
    ) -> Result<EntryKindDto, NodeError> {
        self.with_vault(vault, move |s, v| {
            let bytes = v.get(&s.db, &path)?;
            Ok(summarize(&bytes).kind)
        })
        .await
    }

    /// Remember that a secret was used (copied), newest first.
    pub(crate) async fn record_use(&self, vault: String, path: String) -> Result<(), NodeError> {
        self.with_vault(vault, move |s, v| {
            let secret = SecretRef {
                vault: v.id().to_string(),
                path,
            };
            update(&s.db, |quick| {
                quick.recent.retain(|r| *r != secret);
                quick.recent.insert(0, secret);
                quick.recent.truncate(RECENT_LIMIT);
            })
        })
        .await?;
        self.notify();
        Ok(())
    }

    /// Keep favourites and recent uses pointing at a moved secret or
    /// directory.
    pub(crate) async fn follow_rename(
        &self,
        vault: String,
        from: String,
        to: String,
    ) -> Result<(), NodeError> {
        self.with_vault(vault, move |s, v| {
            let id = v.id().to_string();
            let moved = |r: &mut SecretRef| {
                if r.vault != id {
                    return;
                }
                if r.path == from {
                    r.path.clone_from(&to);
                } else if let Some(rest) = r.path.strip_prefix(&format!("{from}/")) {
                    r.path = format!("{to}/{rest}");
                }
            };
            update(&s.db, |quick| {
                for r in quick.favourites.iter_mut().chain(quick.recent.iter_mut()) {
                    moved(r);
                }
            })
        })
        .await?;
        self.notify();
        Ok(())
    }
}

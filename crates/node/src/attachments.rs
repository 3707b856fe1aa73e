//! Files attached to items. An attachment's bytes are a file of the vault
//! under [`ATTACHMENTS_DIR`], named by their SHA-256, so they sync, version
//! and encrypt like any secret, are stored once however often attached,
//! and an edit of the item never rewrites them. A file attached in the
//! editor waits in memory (staged, wiped when dropped or the node locks)
//! and is written with the item in one version when it is saved: a
//! cancelled edit leaves nothing in the vault.
//!
//! Removing an attachment from an item (or deleting the item) leaves its
//! file in the vault, so every version in history still opens with its
//! files.

use std::collections::HashMap;

use polykey_vaults::items::{Attachment, Item, MAX_NAME_LEN};
use polykey_vaults::{VaultError, MAX_SECRET_SIZE};
use zeroize::Zeroizing;

use crate::api::AttachmentDto;
use crate::error::NodeError;
use crate::node::{Node, Session};

pub use polykey_vaults::items::ATTACHMENTS_DIR;

/// The largest file that can be attached: the largest secret.
pub const MAX_ATTACHMENT_SIZE: usize = MAX_SECRET_SIZE;
/// Most bytes staged at once (a few files of the largest size).
pub const MAX_STAGED_BYTES: usize = 4 * MAX_ATTACHMENT_SIZE;

/// Attached files not saved yet, by vault file.
pub(crate) type Staged = HashMap<String, Zeroizing<Vec<u8>>>;

/// Files to write: vault file and bytes.
pub(crate) type Files = Vec<(String, Zeroizing<Vec<u8>>)>;

fn staged(s: &Session) -> std::sync::MutexGuard<'_, Staged> {
    s.staged.lock().unwrap_or_else(|p| p.into_inner())
}

/// A file name fit to show and to save a file under: the last component
/// of `name` (after `/` or `\`), without control or invisible characters
/// (a right-to-left mark makes `scan<U+202E>fdp.exe` read as "scanexe.pdf"),
/// trimmed, at most [`MAX_NAME_LEN`] bytes; none if nothing is left but
/// `.` or `..`. A file attached, a binary secret saved as a file.
pub fn clean_file_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    let clean: String = base
        .chars()
        .filter(|c| !polykey_keys::text::hides_text(*c))
        .collect();
    let clean = clean.trim();
    if clean.is_empty() || clean == "." || clean == ".." {
        return None;
    }
    let mut end = clean.len().min(MAX_NAME_LEN);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    Some(clean[..end].to_owned())
}

/// The name of a file as attached ([`clean_file_name`]).
fn attachment_name(name: &str) -> Result<String, NodeError> {
    clean_file_name(name).ok_or_else(|| NodeError::Invalid("the file has no name".into()))
}

/// The files of `attachments` not in the vault yet, with their staged
/// bytes. Refused when one is neither in the vault nor staged here.
pub(crate) fn unsaved_files(
    s: &Session,
    vault: &polykey_vaults::Vault,
    attachments: &[AttachmentDto],
) -> Result<Files, NodeError> {
    let mut out: Files = Vec::new();
    for a in attachments {
        if out.iter().any(|(f, _)| *f == a.file) {
            continue;
        }
        // In the vault with the bytes its name says: nothing to write. Bytes
        // that do not match (a device wrote others under the name) are
        // replaced by the ones attached here.
        match vault.get(&s.db, &a.file) {
            Ok(bytes) if Attachment::file_for(&bytes) == a.file => continue,
            Ok(_) | Err(VaultError::NotFound(_)) => {}
            Err(other) => return Err(other.into()),
        }
        let bytes = staged(s).get(&a.file).cloned().ok_or_else(|| {
            NodeError::Invalid(format!(
                "the file “{}” is no longer waiting to be saved (the app was locked); attach it again",
                a.name
            ))
        })?;
        out.push((a.file.clone(), bytes));
    }
    Ok(out)
}

/// Forget staged files now saved.
pub(crate) fn saved(s: &Session, files: &[(String, Zeroizing<Vec<u8>>)]) {
    let mut staged = staged(s);
    for (file, _) in files {
        staged.remove(file);
    }
}

impl Node {
    /// Attach a file to the item being edited in `vault`: kept here until
    /// the item is saved (then written with it). Refused over the largest
    /// secret size.
    pub async fn stage_attachment(
        &self,
        vault: String,
        name: String,
        bytes: Zeroizing<Vec<u8>>,
    ) -> Result<AttachmentDto, NodeError> {
        if bytes.len() > MAX_ATTACHMENT_SIZE {
            return Err(NodeError::Invalid(format!(
                "that file is {} MiB; attachments can be up to {} MiB",
                bytes.len() / (1024 * 1024),
                MAX_ATTACHMENT_SIZE / (1024 * 1024)
            )));
        }
        let name = attachment_name(&name)?;
        self.with_vault_mut(vault, move |s, _| {
            let file = Attachment::file_for(&bytes);
            let size = bytes.len() as u64;
            let mut staged = staged(s);
            let held: usize = staged
                .iter()
                .filter(|(f, _)| **f != file)
                .map(|(_, b)| b.len())
                .sum();
            if held + bytes.len() > MAX_STAGED_BYTES {
                // The oldest edits' files make room (saved ones are gone).
                staged.clear();
            }
            staged.insert(file.clone(), bytes);
            Ok(AttachmentDto { name, size, file })
        })
        .await
    }

    /// The name and bytes of attachment `file` of the item at `path`, as
    /// it is now or at `version`. Only a file the item lists is read.
    pub async fn attachment(
        &self,
        vault: String,
        path: String,
        file: String,
        version: Option<String>,
    ) -> Result<(String, Zeroizing<Vec<u8>>), NodeError> {
        self.with_vault(vault, move |s, v| {
            let item_bytes = match &version {
                Some(version) => v.get_at(&s.db, version, &path)?,
                None => v.get(&s.db, &path)?,
            };
            let listed = Item::from_bytes(&item_bytes).ok().and_then(|item| {
                item.attachments
                    .iter()
                    .find(|a| a.file == file)
                    .map(|a| a.name.clone())
            });
            let Some(name) = listed else {
                return Err(VaultError::NotFound(format!("that attachment of {path}")));
            };
            // As of the version asked for (a file is never removed with an
            // item's edit, so an older version has its own); then the
            // latest, where a later save may have mended it.
            let then = match &version {
                Some(version) => match v.get_at(&s.db, version, &file) {
                    Ok(bytes) => Some(bytes),
                    Err(VaultError::NotFound(_)) => None,
                    Err(other) => return Err(other),
                },
                None => None,
            };
            let bytes = match then {
                Some(bytes) if Attachment::file_for(&bytes) == file => bytes,
                _ => v.get(&s.db, &file)?,
            };
            // Only the bytes the item named (by their SHA-256).
            if Attachment::file_for(&bytes) != file {
                return Err(VaultError::Corrupt(format!(
                    "the bytes of “{name}” are not the ones the item names; attach the file again"
                )));
            }
            Ok((name, bytes))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::attachment_name;

    #[test]
    fn attached_names_are_file_names() {
        assert_eq!(attachment_name("/home/a/scan.pdf").unwrap(), "scan.pdf");
        assert_eq!(attachment_name("C:\\x\\id.png").unwrap(), "id.png");
        assert_eq!(attachment_name(" a\u{7}b ").unwrap(), "ab");
        assert!(attachment_name("  ").is_err());
        assert!(attachment_name("/tmp/..").is_err());
        assert_eq!(
            attachment_name("scan\u{202E}fdp.exe").unwrap(),
            "scanfdp.exe"
        );
        assert_eq!(attachment_name(&"é".repeat(300)).unwrap().len(), 200);
    }
}

//! KeePass databases (KDBX 3.1 and 4, as KeePass and KeePassXC write
//! them), opened with their password and/or key file: groups become
//! folders, entries logins (or notes, with no password), KeePassXC's
//! `otp` field the one-time code, other fields and the expiry in the
//! notes, attachments files beside the item. The Recycle Bin is left out.

use std::sync::Arc;

use keepass::db::{EntryRef, GroupRef};
use keepass::{Database, DatabaseKey};
use polykey_vaults::items::{Item, ItemKind};
use zeroize::Zeroizing;

use super::{
    add_line, ImportError, ImportedItem, Parsed, Skips, MAX_IMPORT_BYTES, MAX_IMPORT_ITEMS,
};

/// The most a database's key derivation may cost before it is refused
/// unopened: a hostile file must not take this device's memory or
/// minutes of its time (KeePassXC's defaults are a second's worth).
const MAX_AES_ROUNDS: u64 = 300_000_000;
const MAX_ARGON2_MEMORY: u64 = 2 * 1024 * 1024 * 1024;
const MAX_ARGON2_ITERATIONS: u64 = 100;
const MAX_ARGON2_LANES: u64 = 64;
/// The most memory times passes of Argon2 (each bound above alone would
/// let 2 GiB × 100 passes through: minutes of work, twice, for the
/// preview and the import): 16 GiB in all, seconds rather than minutes
/// (KeePassXC's usual second is about 1 GiB).
const MAX_ARGON2_WORK: u64 = 16 * 1024 * 1024 * 1024;
/// The most attachment bytes one import takes (as the largest export).
const MAX_ATTACHMENT_BYTES: usize = MAX_IMPORT_BYTES;
/// The deepest groups are followed.
const MAX_DEPTH: usize = 64;

/// The fields an entry's own form holds; the others go to its notes.
const STANDARD: &[&str] = &["Title", "UserName", "Password", "URL", "Notes", "otp"];

fn malformed(what: &str) -> ImportError {
    ImportError::Malformed(what.into())
}

/// Read `n` bytes at `at` of the header, or say the file is cut short.
fn bytes_at(data: &[u8], at: usize, n: usize) -> Result<&[u8], ImportError> {
    data.get(at..at + n)
        .ok_or_else(|| malformed("its header is cut short"))
}

fn u16_at(data: &[u8], at: usize) -> Result<u16, ImportError> {
    let b = bytes_at(data, at, 2)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, ImportError> {
    let b = bytes_at(data, at, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_of(value: &[u8]) -> Option<u64> {
    match value.len() {
        4 => Some(u64::from(u32::from_le_bytes(value.try_into().ok()?))),
        8 => Some(u64::from_le_bytes(value.try_into().ok()?)),
        _ => None,
    }
}

/// Check the key derivation a database's header asks for, before any of
/// it is run: KDBX 3.1's AES rounds, KDBX 4's AES rounds or Argon2 cost.
/// Returns the format's major version.
pub fn check_header(data: &[u8]) -> Result<u16, ImportError> {
    const SIG1: u32 = 0x9AA2_D903;
    const SIG2_KDBX: u32 = 0xB54B_FB67;
    const SIG2_KDB: u32 = 0xB54B_FB65;
    if data.len() < 12 || u32_at(data, 0)? != SIG1 {
        return Err(ImportError::Unrecognised(
            "this is not a KeePass database (.kdbx)".into(),
        ));
    }
    match u32_at(data, 4)? {
        SIG2_KDBX => {}
        SIG2_KDB => {
            return Err(ImportError::Unrecognised(
                "this is a KeePass 1 database (.kdb); open it in KeePassXC and save it as .kdbx \
                 first"
                    .into(),
            ))
        }
        _ => {
            return Err(ImportError::Unrecognised(
                "this is not a KeePass database (.kdbx)".into(),
            ))
        }
    }
    let major = u16_at(data, 10)?;
    if major != 3 && major != 4 {
        return Err(ImportError::Unrecognised(format!(
            "KeePass database format {major} is not one this reads (3.1 and 4 are)"
        )));
    }
    let mut at = 12;
    loop {
        let id = *bytes_at(data, at, 1)?.first().unwrap_or(&0);
        let (len, start) = if major == 3 {
            (u16_at(data, at + 1)? as usize, at + 3)
        } else {
            (u32_at(data, at + 1)? as usize, at + 5)
        };
        let value = bytes_at(data, start, len)?;
        at = start + len;
        // Fields of a fixed size must have it: the keepass crate reads
        // them without looking (a 2-byte CompressionFlags, found by
        // fuzzing, made it panic).
        let size = match (major, id) {
            (_, 2) => Some(16),     // CipherID
            (_, 3) => Some(4),      // CompressionFlags
            (_, 4) => Some(32),     // MasterSeed
            (3, 5 | 9) => Some(32), // TransformSeed, StreamStartBytes
            (3, 6) => Some(8),      // TransformRounds
            (3, 10) => Some(4),     // InnerRandomStreamID
            _ => None,
        };
        if size.is_some_and(|size| size != len) {
            return Err(malformed("a header field has the wrong size"));
        }
        match (major, id) {
            (_, 0) => return Ok(major),
            // KDBX 3.1: TransformRounds.
            (3, 6) => {
                let rounds = u64_of(value).ok_or_else(|| malformed("its key rounds"))?;
                if rounds > MAX_AES_ROUNDS {
                    return Err(too_costly());
                }
            }
            // KDBX 4: KdfParameters.
            (4, 11) => check_kdf_parameters(value)?,
            _ => {}
        }
    }
}

fn too_costly() -> ImportError {
    ImportError::Unrecognised(
        "the database's key derivation costs more than this imports (over 300 million AES \
         rounds, or Argon2 over 2 GiB, 100 passes or 16 GiB in all); lower it in KeePassXC \
         (Database security) and export again"
            .into(),
    )
}

/// KDBX 4's KDF parameters, a variant dictionary: `R` rounds (AES), `M`
/// memory in bytes, `I` passes and `P` lanes (Argon2), each within its
/// bound, and Argon2's memory times passes within [`MAX_ARGON2_WORK`].
fn check_kdf_parameters(dict: &[u8]) -> Result<(), ImportError> {
    // Argon2's memory and passes as given (KeePassXC always gives both).
    let (mut memory, mut passes) = (0u64, 1u64);
    let mut at = 2; // its version
    loop {
        let kind = *bytes_at(dict, at, 1)?.first().unwrap_or(&0);
        if kind == 0 {
            if memory.saturating_mul(passes) > MAX_ARGON2_WORK {
                return Err(too_costly());
            }
            if memory == 0 {
                return Ok(()); // AES-KDF: no memory to speak of
            }
            return super::memory::check(
                memory,
                "the database",
                "lower its memory in KeePassXC (Database security) and export again",
            );
        }
        let name_len = u32_at(dict, at + 1)? as usize;
        let name = bytes_at(dict, at + 5, name_len)?;
        let value_len = u32_at(dict, at + 5 + name_len)? as usize;
        let value = bytes_at(dict, at + 9 + name_len, value_len)?;
        at += 9 + name_len + value_len;
        let limit = match name {
            b"R" => MAX_AES_ROUNDS,
            b"M" => MAX_ARGON2_MEMORY,
            b"I" => MAX_ARGON2_ITERATIONS,
            b"P" => MAX_ARGON2_LANES,
            _ => continue,
        };
        let value = u64_of(value)
            .filter(|v| *v <= limit)
            .ok_or_else(too_costly)?;
        match name {
            b"M" => memory = value,
            b"I" => passes = value,
            _ => {}
        }
    }
}

/// Read a KeePass database with its `password` and/or `key_file` bytes.
pub fn read(
    data: &[u8],
    password: Option<&str>,
    key_file: Option<&[u8]>,
) -> Result<Parsed, ImportError> {
    if data.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge);
    }
    // One derivation at a time, measured against what is free then.
    let _one_at_a_time = super::memory::one_at_a_time();
    check_header(data)?;
    let mut key = DatabaseKey::new();
    if let Some(password) = password {
        key = key.with_password(password);
    }
    if let Some(mut file) = key_file {
        key = key
            .with_keyfile(&mut file)
            .map_err(|_| ImportError::Unrecognised("the key file cannot be read".into()))?;
    }
    if password.is_none() && key_file.is_none() {
        return Err(ImportError::NeedsPassword);
    }
    // A panic in the keepass crate on a damaged or hostile file is that
    // file's error, not the importer's end.
    let parsed =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Database::parse(data, key)))
            .map_err(|_| malformed("the database cannot be read"))?;
    // A payload unpacking past the bound stops there, whatever error the
    // crate then wraps it in (vendor/README.md).
    if parsed.is_err() && keepass::unpacked_too_much() {
        return Err(ImportError::Unrecognised(format!(
            "the database unpacks to more than {} MiB; export fewer entries (or attachments) at \
             a time",
            keepass::MAX_DECOMPRESSED_BYTES / (1024 * 1024)
        )));
    }
    use keepass::error::{
        DatabaseFormatError as Format, Kdbx3OpenError, Kdbx4OpenError, ParseXmlError,
    };
    const _: () = assert!(
        keepass::MAX_ENTRIES_AND_GROUPS == 250_000,
        "the message below"
    );
    let db = parsed.map_err(|e| match e {
        keepass::error::DatabaseOpenError::Format(
            Format::Kdbx4(Kdbx4OpenError::Xml(ParseXmlError::TooMany))
            | Format::Kdbx3(Kdbx3OpenError::Xml(ParseXmlError::TooMany)),
        ) => ImportError::Unrecognised(
            "the database holds more than 250,000 entries, versions, groups, attachments and \
             custom icons; \
             delete old versions (KeePassXC: Database > Maintenance) or export fewer entries at \
             a time"
                .into(),
        ),
        // Opened, but its XML is not KeePass's: damage, or hostile nesting
        // (quick-xml stops at 128 levels rather than overflow the stack).
        keepass::error::DatabaseOpenError::Format(
            Format::Kdbx4(Kdbx4OpenError::Xml(_)) | Format::Kdbx3(Kdbx3OpenError::Xml(_)),
        ) => malformed("its entries are not the XML KeePass writes (or are nested over 128 deep)"),
        // KDBX 3.1 finds a wrong key when the payload's padding is wrong,
        // before its start bytes are compared.
        keepass::error::DatabaseOpenError::Key(keepass::error::DatabaseKeyError::IncorrectKey)
        | keepass::error::DatabaseOpenError::Cryptography(_) => ImportError::WrongPassword,
        keepass::error::DatabaseOpenError::Key(_) => {
            ImportError::Unrecognised("the key file is not one KeePass makes".into())
        }
        keepass::error::DatabaseOpenError::UnsupportedVersion => {
            ImportError::Unrecognised("a KeePass database format this does not read".into())
        }
        _ => malformed("the database cannot be decrypted or read"),
    })?;
    let mut reading = Reading::default();
    let recycle = db.recycle_bin().map(|g| g.id());
    let root = db.root();
    reading.group(&root, &mut Vec::new(), recycle, 0)?;
    Ok(Parsed::new("KeePass", reading.items, reading.skipped))
}

#[derive(Default)]
struct Reading {
    items: Vec<ImportedItem>,
    skipped: Skips,
    entries: usize,
    attachment_bytes: usize,
}

impl Reading {
    fn group(
        &mut self,
        group: &GroupRef<'_>,
        path: &mut Vec<String>,
        recycle: Option<keepass::db::GroupId>,
        depth: usize,
    ) -> Result<(), ImportError> {
        if depth > MAX_DEPTH {
            return Err(malformed("its groups are nested deeper than 64"));
        }
        // The group's folders, once for all its entries.
        let folder: Arc<[String]> = path.as_slice().into();
        for entry in group.entries() {
            self.entry(&entry, &folder)?;
        }
        for child in group.groups() {
            if Some(child.id()) == recycle {
                continue;
            }
            // Each item keeps its folders as the vault will name them (at
            // most 16, of 200 bytes each): a group's whole name, copied
            // into each of its items, let one name of 100 MiB take
            // gigabytes (found by an attack review).
            let name = super::safe_name(&child.name);
            let keep = !name.is_empty() && path.len() < super::MAX_FOLDER_DEPTH;
            if keep {
                path.push(name);
            }
            self.group(&child, path, recycle, depth + 1)?;
            if keep {
                path.pop();
            }
        }
        Ok(())
    }

    fn entry(&mut self, entry: &EntryRef<'_>, folder: &Arc<[String]>) -> Result<(), ImportError> {
        self.entries += 1;
        if self.items.len() >= MAX_IMPORT_ITEMS {
            return Err(ImportError::TooMany);
        }
        let field = |name: &str| entry.get(name).unwrap_or("").to_owned();
        let title = field("Title");
        let username = field("UserName");
        let password = Zeroizing::new(field("Password"));
        let url = field("URL");
        let mut notes = field("Notes");
        let mut others: Vec<(&String, String)> = entry
            .fields
            .iter()
            .filter(|(name, _)| !STANDARD.contains(&name.as_str()))
            .map(|(name, value)| (name, value.get().clone()))
            .filter(|(_, value)| !value.is_empty())
            .collect();
        others.sort();
        // A TOTP secret as KeePass 2.47+ and the KeeOtp plug-in keep it.
        let totp = Some(field("otp")).filter(|v| !v.is_empty()).or_else(|| {
            others
                .iter()
                .find(|(name, _)| {
                    name.as_str() == "TimeOtp-Secret-Base32" || name.as_str() == "TOTP Seed"
                })
                .map(|(_, v)| v.clone())
        });
        for (name, value) in &others {
            add_line(&mut notes, &format!("{name}: {value}"));
        }
        if !entry.tags.is_empty() {
            add_line(&mut notes, &format!("Tags: {}", entry.tags.join(", ")));
        }
        if entry.times.expires == Some(true) {
            add_line(&mut notes, &format!("Expires: {}", entry.times.expiry));
        }
        if title.is_empty()
            && username.is_empty()
            && password.is_empty()
            && url.is_empty()
            && notes.is_empty()
        {
            self.skipped.push(self.entries, "nothing in it");
            return Ok(());
        }
        let mut files = Vec::new();
        for (name, attachment) in entry.attachments_named() {
            let data = attachment.data.get();
            self.attachment_bytes += data.len();
            if self.attachment_bytes > MAX_ATTACHMENT_BYTES {
                return Err(ImportError::TooLarge);
            }
            files.push((name.to_owned(), Zeroizing::new(data.clone())));
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let title = if title.is_empty() {
            if url.is_empty() {
                username.clone()
            } else {
                url.clone()
            }
        } else {
            title
        };
        let kind = if password.is_empty() && username.is_empty() && url.is_empty() && totp.is_none()
        {
            ItemKind::SecureNote { text: notes }
        } else {
            ItemKind::Login {
                username,
                password: password.to_string(),
                urls: if url.is_empty() {
                    Vec::new()
                } else {
                    vec![url]
                },
                totp,
                notes,
            }
        };
        self.items.push(ImportedItem {
            folder: folder.clone(),
            item: Item::new(title, kind),
            files,
        });
        Ok(())
    }
}

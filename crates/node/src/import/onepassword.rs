//! 1Password's 1PUX export: a zip archive whose `export.data` holds the
//! accounts, their vaults and items. Each 1Password vault becomes a folder;
//! logins, passwords, secure notes, credit cards and SSH keys become items
//! of those kinds (with every website, the one-time code and the tags), any
//! other category a note of its fields. Archived items go to an "Archive"
//! folder of their vault. Attached files are not read yet: their items are
//! imported and the files named in the notes.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::sync::Arc;

use polykey_vaults::items::{Item, ItemKind};
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use super::{ImportError, ImportedItem, Parsed, Skips, MAX_IMPORT_BYTES, MAX_IMPORT_ITEMS};

#[derive(Deserialize)]
struct Export {
    #[serde(default)]
    accounts: Vec<Account>,
}

#[derive(Deserialize)]
struct Account {
    #[serde(default)]
    vaults: Vec<Vault>,
}

#[derive(Deserialize)]
struct Vault {
    #[serde(default)]
    attrs: VaultAttrs,
    #[serde(default)]
    items: Vec<OpItem>,
}

#[derive(Default, Deserialize)]
struct VaultAttrs {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpItem {
    #[serde(default)]
    state: String,
    #[serde(default)]
    category_uuid: String,
    #[serde(default)]
    details: Details,
    #[serde(default)]
    overview: Overview,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Details {
    #[serde(default)]
    login_fields: Vec<LoginField>,
    #[serde(default)]
    notes_plain: Option<String>,
    #[serde(default)]
    sections: Vec<Section>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    document_attributes: Option<Value>,
}

#[derive(Deserialize)]
struct LoginField {
    #[serde(default)]
    value: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    designation: String,
}

#[derive(Deserialize)]
struct Section {
    #[serde(default)]
    title: String,
    #[serde(default)]
    fields: Vec<SectionField>,
}

#[derive(Deserialize)]
struct SectionField {
    #[serde(default)]
    title: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    value: Value,
}

#[derive(Default, Deserialize)]
struct Overview {
    #[serde(default)]
    title: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    urls: Vec<OverviewUrl>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct OverviewUrl {
    #[serde(default)]
    url: String,
}

/// Most files a 1PUX archive may hold: one attachment an item at most,
/// besides `export.data` and `export.attributes`. The zip reader keeps each
/// one it lists (a few hundred bytes and its name): a hostile 64 MiB
/// archive of 1.4 million empty ones took about 400 MB, this many about
/// 30 MB.
const MAX_ARCHIVE_FILES: usize = MAX_IMPORT_ITEMS + 16;

/// Most bytes of extra fields (the zip format's per-file additions) the
/// files listed may carry in all: a few dozen bytes a file honestly. The
/// zip reader keeps each small record of them (32 bytes or more for 5).
const MAX_EXTRA_BYTES: u64 = 8 * 1024 * 1024;

/// Most copying the zip reader may do for the extra fields: it copies a
/// file's whole field again for each zip64 record taken out of it, so a
/// field of 64 KiB made of 16,383 empty ones took half a gigabyte of
/// copying, the thousand such files 64 MiB holds half a minute. Counted as
/// each field's length times a quarter of it, in bytes.
const MAX_EXTRA_WORK: u64 = 4 * 1024 * 1024 * 1024;

/// The archive as the zip reader sees it: reading more than `left` bytes
/// ends its reading (an error). It looks for the archive's end from the
/// last bytes back and tried every end record it found until one led to
/// a list of files, each time reading what lies before the record: a file
/// of nothing but false end records took the time of its size squared
/// (hours for 64 MiB). An archive read honestly reads its bytes about
/// once; [`read`] allows twice over.
struct Bounded<'a> {
    inner: Cursor<&'a [u8]>,
    left: u64,
}

impl Read for Bounded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 && !buf.is_empty() {
            return Err(std::io::Error::other("read more than the archive twice"));
        }
        let most = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let read = self.inner.read(&mut buf[..most])?;
        self.left -= read as u64;
        Ok(read)
    }
}

impl Seek for Bounded<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(to)
    }
}

/// Read a 1PUX file (the zip archive itself).
pub fn read(bytes: &[u8]) -> Result<Parsed, ImportError> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge);
    }
    let not_1pux = || {
        ImportError::Unrecognised(
            "this is not a 1PUX file (1Password: File > Export > 1PUX)".into(),
        )
    };
    // Every file the zip reader lists has its entry's signature in the
    // archive: counted first, with the extra fields they say they carry,
    // they bound what the listing holds and takes.
    let (mut listed, mut extra, mut extra_work) = (0usize, 0u64, 0u64);
    for at in memchr::memmem::find_iter(bytes, b"PK\x01\x02") {
        listed += 1;
        let len = bytes
            .get(at + 30..at + 32)
            .map_or(0, |b| u64::from(u16::from_le_bytes([b[0], b[1]])));
        extra += len;
        extra_work += len * len / 4;
    }
    if listed > MAX_ARCHIVE_FILES {
        return Err(ImportError::Malformed(format!(
            "it lists more than {MAX_ARCHIVE_FILES} files"
        )));
    }
    if extra > MAX_EXTRA_BYTES || extra_work > MAX_EXTRA_WORK {
        return Err(ImportError::Malformed(
            "its list of files carries more than a 1PUX export does".into(),
        ));
    }
    let reader = Bounded {
        inner: Cursor::new(bytes),
        left: 2 * bytes.len() as u64 + 1024 * 1024,
    };
    let mut archive = zip::ZipArchive::new(reader).map_err(|_| not_1pux())?;
    let mut data = Zeroizing::new(Vec::new());
    {
        let entry = archive.by_name("export.data").map_err(|_| not_1pux())?;
        // What it says it unpacks to is not trusted: read at most the bound.
        entry
            .take(MAX_IMPORT_BYTES as u64 + 1)
            .read_to_end(&mut data)
            .map_err(|_| ImportError::Malformed("its export.data cannot be unpacked".into()))?;
    }
    if data.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge);
    }
    let export: Export = super::parse_json(&data, "its export.data is not 1Password's")?;
    let mut items = Vec::new();
    let mut skipped = Skips::default();
    let mut n = 0usize;
    for vault in export.accounts.iter().flat_map(|a| &a.vaults) {
        // The vault's name as a folder, once (as `folder_names` keeps it).
        let vault_folder = super::safe_name(&vault.attrs.name);
        let active: Arc<[String]> = Arc::new([vault_folder.clone()]);
        let archived: Arc<[String]> = Arc::new([vault_folder, "Archive".to_owned()]);
        for entry in &vault.items {
            n += 1;
            if n > MAX_IMPORT_ITEMS {
                return Err(ImportError::TooMany);
            }
            if entry.state == "deleted" {
                skipped.push(n, "deleted in 1Password");
                continue;
            }
            items.push(ImportedItem {
                folder: if entry.state == "archived" {
                    archived.clone()
                } else {
                    active.clone()
                },
                item: item_of(entry),
                files: Vec::new(),
            });
        }
    }
    Ok(Parsed::new("1Password", items, skipped))
}

/// A field's value as text: strings as they are, month-years as `MM/YYYY`,
/// addresses and emails by their parts; `None` for an empty or unknown one.
fn field_text(value: &Value) -> Option<String> {
    let (kind, inner) = value.as_object()?.iter().next()?;
    let text = match (kind.as_str(), inner) {
        ("monthYear", Value::Number(n)) => {
            let n = n.as_u64()?;
            format!("{:02}/{}", n % 100, n / 100)
        }
        ("email", Value::Object(email)) => email.get("email_address")?.as_str()?.to_owned(),
        ("address", Value::Object(parts)) => ["street", "city", "state", "zip", "country"]
            .iter()
            .filter_map(|k| parts.get(*k).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        ("sshKey", Value::Object(key)) => key.get("privateKey")?.as_str()?.to_owned(),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Number(n)) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// Longest section title a field without a title of its own is labelled
/// with (in bytes).
const MAX_LABEL_BYTES: usize = 100;

/// The fields of an item's sections: the first one-time code, and the
/// others as `title: value` lines (those `taken` uses are left out).
fn section_lines(details: &Details, taken: &[&str]) -> (Option<String>, Vec<String>) {
    let mut totp = None;
    let mut lines = Vec::new();
    for section in &details.sections {
        for field in &section.fields {
            if let Some(code) = field.value.get("totp").and_then(Value::as_str) {
                if totp.is_none() && !code.is_empty() {
                    totp = Some(code.to_owned());
                    continue;
                }
            }
            if taken.contains(&field.id.as_str()) {
                continue;
            }
            let Some(value) = field_text(&field.value) else {
                continue;
            };
            // A field without a title goes by its section's, cut short:
            // a section title copied whole into each of its fields' lines
            // let one title of 10 MiB over a thousand fields take 30 GB.
            let label = match (field.title.is_empty(), section.title.is_empty()) {
                (false, _) => field.title.as_str(),
                (true, false) => super::cut(&section.title, MAX_LABEL_BYTES),
                (true, true) => field.id.as_str(),
            };
            lines.push(format!("{label}: {value}"));
        }
    }
    (totp, lines)
}

/// The value of the section field named `id`, as text.
fn field(details: &Details, id: &str) -> String {
    details
        .sections
        .iter()
        .flat_map(|s| &s.fields)
        .find(|f| f.id == id)
        .and_then(|f| field_text(&f.value))
        .unwrap_or_default()
}

fn item_of(entry: &OpItem) -> Item {
    let details = &entry.details;
    let overview = &entry.overview;
    // Fields a kind below takes as its own.
    let taken: &[&str] = match entry.category_uuid.as_str() {
        "002" => &["cardholder", "ccnum", "cvv", "expiry"],
        "114" => &["private_key", "public_key"],
        _ => &[],
    };
    let (totp, lines) = section_lines(details, taken);
    let mut notes = details.notes_plain.clone().unwrap_or_default();
    let mut extra = lines;
    if !overview.tags.is_empty() {
        extra.push(format!("Tags: {}", overview.tags.join(", ")));
    }
    if details.document_attributes.is_some() {
        extra.push("(1Password held a file here; it was not imported)".to_owned());
    }
    if !extra.is_empty() {
        super::add_line(&mut notes, &extra.join("\n"));
    }
    let designated = |designation: &str| {
        details
            .login_fields
            .iter()
            .find(|f| f.designation == designation)
            .or_else(|| {
                details
                    .login_fields
                    .iter()
                    .find(|f| f.name.eq_ignore_ascii_case(designation))
            })
            .map(|f| f.value.clone())
            .unwrap_or_default()
    };
    let mut urls: Vec<String> = overview
        .urls
        .iter()
        .map(|u| u.url.trim().to_owned())
        .filter(|u| !u.is_empty())
        .take(super::MAX_URLS)
        .collect();
    if urls.is_empty() && !overview.url.trim().is_empty() {
        urls.push(overview.url.trim().to_owned());
    }
    let kind = match entry.category_uuid.as_str() {
        "001" => ItemKind::Login {
            username: designated("username"),
            password: designated("password"),
            urls,
            totp,
            notes,
        },
        "005" => ItemKind::Login {
            username: String::new(),
            password: details.password.clone().unwrap_or_default(),
            urls,
            totp,
            notes,
        },
        "002" => {
            let expiry = field(details, "expiry");
            // `MM/YYYY` from a month-year, shown as `MM/YY`.
            let expiry = match expiry.split_once('/') {
                Some((month, year))
                    if year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    format!("{month}/{}", &year[2..])
                }
                _ => expiry,
            };
            ItemKind::Card {
                cardholder: field(details, "cardholder"),
                number: field(details, "ccnum"),
                expiry,
                cvv: field(details, "cvv"),
                notes,
            }
        }
        "114" => {
            let key = details
                .sections
                .iter()
                .flat_map(|s| &s.fields)
                .find_map(|f| f.value.get("sshKey"));
            let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
            ItemKind::SshKey {
                private_key: text(key.and_then(|k| k.get("privateKey"))),
                public_key: text(
                    key.and_then(|k| k.get("metadata"))
                        .and_then(|m| m.get("publicKey")),
                ),
                passphrase: String::new(),
                notes,
            }
        }
        _ if totp.is_some() || !urls.is_empty() => ItemKind::Login {
            username: designated("username"),
            password: designated("password"),
            urls,
            totp,
            notes,
        },
        _ => ItemKind::SecureNote { text: notes },
    };
    Item::new(overview.title.trim(), kind)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const EXPORT_DATA: &str = r#"{"accounts": [{"attrs": {"accountName": "Me"}, "vaults": [
      {"attrs": {"uuid": "v1", "name": "Personal", "type": "P"}, "items": [
        {"uuid": "1", "state": "active", "categoryUuid": "001",
         "details": {"loginFields": [
             {"value": "me@example.com", "name": "email", "fieldType": "E", "designation": "username"},
             {"value": " pw ", "name": "password", "fieldType": "P", "designation": "password"}],
           "notesPlain": "note",
           "sections": [{"title": "", "fields": [
             {"title": "one-time password", "id": "TOTP_1", "value": {"totp": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP"}},
             {"title": "PIN", "id": "pin", "value": {"concealed": "1234"}}]}]},
         "overview": {"title": "Dropbox", "url": "https://www.dropbox.com/",
           "urls": [{"label": "", "url": "https://www.dropbox.com/"}, {"label": "", "url": "https://db.tt"}],
           "tags": ["work", "cloud"]}},
        {"uuid": "2", "state": "archived", "categoryUuid": "003",
         "details": {"notesPlain": "old note"}, "overview": {"title": "Old"}},
        {"uuid": "3", "state": "active", "categoryUuid": "002",
         "details": {"sections": [{"title": "", "fields": [
           {"title": "cardholder name", "id": "cardholder", "value": {"string": "A Person"}},
           {"title": "number", "id": "ccnum", "value": {"creditCardNumber": "4111111111111111"}},
           {"title": "verification number", "id": "cvv", "value": {"concealed": "123"}},
           {"title": "expiry date", "id": "expiry", "value": {"monthYear": 203012}}]}]},
         "overview": {"title": "Visa"}},
        {"uuid": "4", "state": "active", "categoryUuid": "005",
         "details": {"password": "router-pw"}, "overview": {"title": "Router"}},
        {"uuid": "5", "state": "deleted", "categoryUuid": "001", "details": {}, "overview": {"title": "Gone"}}
      ]}]}]}"#;

    fn onepux(data: &str) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut out);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            zip.start_file("export.attributes", options).unwrap();
            zip.write_all(br#"{"version": 3, "description": "1Password Unencrypted Export"}"#)
                .unwrap();
            zip.start_file("export.data", options).unwrap();
            zip.write_all(data.as_bytes()).unwrap();
            zip.finish().unwrap();
        }
        out.into_inner()
    }

    #[test]
    fn each_category_is_read_field_by_field() {
        let parsed = read(&onepux(EXPORT_DATA)).unwrap();
        assert_eq!(parsed.source, "1Password");
        assert_eq!(parsed.items.len(), 4);
        let dropbox = &parsed.items[0];
        assert_eq!(*dropbox.folder, ["Personal"]);
        match &dropbox.item.kind {
            ItemKind::Login {
                username,
                password,
                urls,
                totp,
                notes,
            } => {
                assert_eq!(
                    (username.as_str(), password.as_str()),
                    ("me@example.com", " pw ")
                );
                assert_eq!(urls, &["https://www.dropbox.com/", "https://db.tt"]);
                assert_eq!(
                    totp.as_deref(),
                    Some("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP")
                );
                assert_eq!(notes, "note\nPIN: 1234\nTags: work, cloud");
            }
            _ => panic!("not a login"),
        }
        assert_eq!(*parsed.items[1].folder, ["Personal", "Archive"]);
        match &parsed.items[2].item.kind {
            ItemKind::Card {
                cardholder,
                number,
                expiry,
                cvv,
                ..
            } => assert_eq!(
                (
                    cardholder.as_str(),
                    number.as_str(),
                    expiry.as_str(),
                    cvv.as_str()
                ),
                ("A Person", "4111111111111111", "12/30", "123")
            ),
            _ => panic!("not a card"),
        }
        assert!(matches!(&parsed.items[3].item.kind,
            ItemKind::Login { password, .. } if password == "router-pw"));
        assert_eq!(parsed.skipped[0].reason, "deleted in 1Password");
    }

    /// An end-of-archive record: `entries` in a central directory of
    /// `size` bytes at `offset`.
    fn end_record(entries: u16, size: u32, offset: u32) -> Vec<u8> {
        let mut record = b"PK\x05\x06\0\0\0\0".to_vec();
        record.extend_from_slice(&entries.to_le_bytes());
        record.extend_from_slice(&entries.to_le_bytes());
        record.extend_from_slice(&size.to_le_bytes());
        record.extend_from_slice(&offset.to_le_bytes());
        record.extend_from_slice(&[0, 0]);
        record
    }

    /// A zip reader looks for the end of the archive from its last bytes
    /// back, and tried every record it found until one led to a central
    /// directory, each search reading what lies before it: a file of
    /// nothing but such records, none leading anywhere, took the time of
    /// its size squared (in a debug build 2.5 s for 1 MiB, more than 10 s
    /// for this one of 4 MiB; hours for the 64 MiB an import takes).
    /// Refused at once now.
    #[test]
    fn a_file_of_false_ends_is_refused_at_once() {
        let mut file = Vec::new();
        while file.len() < 4 * 1024 * 1024 {
            file.extend(end_record(1, 46, 0));
        }
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(read(&file).map(|_| ()));
        });
        let outcome = wait.recv_timeout(std::time::Duration::from_secs(10));
        assert!(
            matches!(outcome, Ok(Err(ImportError::Unrecognised(_)))),
            "{:?}",
            outcome.map(|r| r.map_err(|e| e.to_string()))
        );
    }

    /// The zip reader lists every file of an archive before any is read,
    /// a few hundred bytes each: 64 MiB of empty ones (zip64 lifts the
    /// count past 65,535) took about 400 MB. Past the bound, refused
    /// before they are listed.
    #[test]
    fn an_archive_of_too_many_files_is_refused_before_they_are_listed() {
        let archive = |files: usize| {
            let mut out = Cursor::new(Vec::new());
            let mut zip = zip::ZipWriter::new(&mut out);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            zip.start_file("export.data", options).unwrap();
            zip.write_all(EXPORT_DATA.as_bytes()).unwrap();
            for n in 0..files {
                zip.start_file(format!("files/{n}"), options).unwrap();
            }
            zip.finish().unwrap();
            out.into_inner()
        };
        let most = MAX_ARCHIVE_FILES - 1;
        assert_eq!(read(&archive(most)).unwrap().items.len(), 4);
        let err = read(&archive(most + 1)).unwrap_err().to_string();
        assert!(err.contains("more than 100016 files"), "{err}");
    }

    /// A zip archive written by hand, stored: `export.data` holding
    /// `data`, then `files` more files listed (never written), each with
    /// the extra field `extra`.
    fn archive_by_hand(data: &[u8], files: usize, extra: &[u8]) -> Vec<u8> {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let crc = crc.sum().to_le_bytes();
        let mut out = b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0".to_vec();
        out.extend_from_slice(&crc);
        let size = u32::try_from(data.len()).unwrap().to_le_bytes();
        out.extend_from_slice(&size);
        out.extend_from_slice(&size);
        out.extend_from_slice(&11u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(b"export.data");
        out.extend_from_slice(data);
        let directory = out.len();
        let entry =
            |out: &mut Vec<u8>, name: &[u8], (crc, size): ([u8; 4], [u8; 4]), extra: &[u8]| {
                out.extend_from_slice(b"PK\x01\x02\x14\0\x14\0\0\0\0\0\0\0\0\0");
                out.extend_from_slice(&crc);
                out.extend_from_slice(&size);
                out.extend_from_slice(&size);
                out.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
                out.extend_from_slice(&u16::try_from(extra.len()).unwrap().to_le_bytes());
                out.extend_from_slice(&[0; 14]);
                out.extend_from_slice(name);
                out.extend_from_slice(extra);
            };
        entry(&mut out, b"export.data", (crc, size), &[]);
        for n in 0..files {
            entry(
                &mut out,
                format!("files/{n}").as_bytes(),
                ([0; 4], [0; 4]),
                extra,
            );
        }
        let listing = u32::try_from(out.len() - directory).unwrap();
        let count = u16::try_from(files + 1).unwrap();
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&listing.to_le_bytes());
        out.extend_from_slice(&u32::try_from(directory).unwrap().to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    /// The zip reader copies a file's whole extra field again for each
    /// zip64 record it takes out of it: 300 files with fields of 16,383
    /// empty records each (20 MB) took 160 GB of copying, 8.6 s here; a
    /// 64 MiB file, half a minute for the preview and again for the
    /// import. Refused from what the fields say they hold, before they
    /// are read.
    #[test]
    fn extra_fields_made_to_be_copied_over_and_over_are_refused_at_once() {
        // The hand-made archive is one the zip reader takes.
        let honest = archive_by_hand(EXPORT_DATA.as_bytes(), 3, &[0x55, 0x54, 1, 0, 0]);
        assert_eq!(read(&honest).unwrap().items.len(), 4);
        let records = [1u8, 0, 0, 0].repeat(16_383);
        let hostile = archive_by_hand(EXPORT_DATA.as_bytes(), 300, &records);
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(read(&hostile).map(|_| ()));
        });
        let outcome = wait.recv_timeout(std::time::Duration::from_secs(10));
        assert!(
            matches!(&outcome, Ok(Err(ImportError::Malformed(why))) if why.contains("carries more")),
            "{:?}",
            outcome.map(|r| r.map_err(|e| e.to_string()))
        );
    }

    #[test]
    fn not_a_1pux_or_a_bomb_is_refused() {
        assert!(matches!(
            read(b"not a zip"),
            Err(ImportError::Unrecognised(_))
        ));
        // 80 MiB of zeros unpack from a small archive: refused at the bound.
        let mut out = std::io::Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut out);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            zip.start_file("export.data", options).unwrap();
            let zeros = vec![b' '; 1024 * 1024];
            for _ in 0..80 {
                zip.write_all(&zeros).unwrap();
            }
            zip.finish().unwrap();
        }
        let bomb = out.into_inner();
        assert!(bomb.len() < 1024 * 1024);
        assert!(matches!(read(&bomb), Err(ImportError::TooLarge)));
        let damaged = read(&onepux(&EXPORT_DATA[..200])).unwrap_err().to_string();
        assert!(
            damaged.contains("line") && !damaged.contains("pw"),
            "{damaged}"
        );
    }

    #[test]
    fn an_odd_expiry_is_kept_as_it_is() {
        let data = EXPORT_DATA.replace(r#"{"monthYear": 203012}"#, r#"{"string": "1/€1"}"#);
        let parsed = read(&onepux(&data)).unwrap();
        assert!(matches!(&parsed.items[2].item.kind,
            ItemKind::Card { expiry, .. } if expiry == "1/€1"));
    }

    /// A field without a title is labelled with its section's title cut
    /// to 100 bytes: copied whole into each field's line, a title of 1 MiB
    /// over 50 fields made notes of 50 MiB (10 MiB over a thousand: 30 GB).
    #[test]
    fn a_long_section_title_labels_each_field_cut_short() {
        let title = "s".repeat(1 << 20);
        let fields: Vec<String> = (0..50)
            .map(|i| format!(r#"{{"title": "", "id": "f{i}", "value": {{"string": "v{i}"}}}}"#))
            .collect();
        let data = format!(
            r#"{{"accounts": [{{"attrs": {{"accountName": "Me"}}, "vaults": [
              {{"attrs": {{"uuid": "v1", "name": "Personal", "type": "P"}}, "items": [
                {{"uuid": "1", "state": "active", "categoryUuid": "003",
                 "details": {{"notesPlain": "n", "sections": [{{"title": "{title}", "fields": [{}]}}]}},
                 "overview": {{"title": "Note"}}}}]}}]}}]}}"#,
            fields.join(",")
        );
        let parsed = read(&onepux(&data)).unwrap();
        let ItemKind::SecureNote { text } = &parsed.items[0].item.kind else {
            panic!("not a note");
        };
        assert!(text.len() < 50 * 200, "{}", text.len());
        assert!(text.contains(&format!("{}: v49", "s".repeat(100))));
    }
}

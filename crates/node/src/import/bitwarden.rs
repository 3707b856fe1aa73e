//! Bitwarden's JSON export (unencrypted): logins, secure notes, cards,
//! identities and SSH keys, with their folders, custom fields, TOTP and
//! every website.

use std::collections::HashMap;
use std::sync::Arc;

use polykey_vaults::items::{
    Field as CustomField, FieldKind, Item, ItemKind, MAX_FIELDS, MAX_NAME_LEN,
};
use serde::Deserialize;

use super::{ImportError, ImportedItem, Parsed, Skips, MAX_IMPORT_BYTES, MAX_IMPORT_ITEMS};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Export {
    #[serde(default)]
    encrypted: bool,
    #[serde(default)]
    password_protected: bool,
    #[serde(default)]
    folders: Vec<Folder>,
    #[serde(default)]
    items: Vec<BwItem>,
    // A password-protected export: how its key is derived, and the
    // sealed export.
    #[serde(default)]
    salt: Option<String>,
    #[serde(default)]
    kdf_type: Option<u8>,
    #[serde(default)]
    kdf_iterations: Option<u32>,
    #[serde(default)]
    kdf_memory: Option<u32>,
    #[serde(default)]
    kdf_parallelism: Option<u32>,
    #[serde(default, rename = "encKeyValidation_DO_NOT_EDIT")]
    key_check: Option<String>,
    #[serde(default)]
    data: Option<String>,
}

#[derive(Deserialize)]
struct Folder {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BwItem {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    folder_id: Option<String>,
    #[serde(default)]
    fields: Option<Vec<Field>>,
    #[serde(default)]
    login: Option<Login>,
    #[serde(default)]
    card: Option<Card>,
    #[serde(default)]
    identity: Option<HashMap<String, Option<String>>>,
    #[serde(default)]
    ssh_key: Option<SshKey>,
}

#[derive(Deserialize)]
struct Field {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<String>,
    /// 0 text, 1 hidden, 2 boolean, 3 linked (to another field: no value).
    #[serde(default, rename = "type")]
    kind: Option<u8>,
}

#[derive(Deserialize)]
struct Login {
    #[serde(default)]
    uris: Option<Vec<Uri>>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    totp: Option<String>,
}

#[derive(Deserialize)]
struct Uri {
    #[serde(default)]
    uri: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Card {
    #[serde(default)]
    cardholder_name: Option<String>,
    #[serde(default)]
    brand: Option<String>,
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    exp_month: Option<String>,
    #[serde(default)]
    exp_year: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SshKey {
    #[serde(default)]
    private_key: Option<String>,
    #[serde(default)]
    public_key: Option<String>,
}

fn text(value: &Option<String>) -> String {
    value.as_deref().unwrap_or("").trim().to_owned()
}

/// A value kept exactly (a password may start or end with a space).
fn raw(value: &Option<String>) -> String {
    value.as_deref().unwrap_or("").to_owned()
}

/// Custom fields as the item's own (hidden ones hidden; a linked field,
/// which only points at another, left out), at most as many as an item
/// holds (the rest go to the notes, one `name: value` line each).
fn custom_fields(fields: &Option<Vec<Field>>, notes: &mut String) -> Vec<CustomField> {
    let mut out = Vec::new();
    for field in fields.iter().flatten() {
        let (name, value) = (text(&field.name), raw(&field.value));
        if (name.is_empty() && value.is_empty()) || field.kind == Some(3) {
            continue;
        }
        // A name an item may not hold (blank, too long, or with control or
        // invisible characters) goes to the notes with its field: kept as
        // a field, it made the whole item one that no longer opens.
        if out.len() == MAX_FIELDS
            || name.trim().is_empty()
            || name.len() > MAX_NAME_LEN
            || name.chars().any(polykey_keys::text::hides_text)
        {
            super::add_line(notes, &format!("{name}: {value}"));
            continue;
        }
        let kind = match field.kind {
            Some(1) => FieldKind::Hidden,
            _ => FieldKind::Text,
        };
        out.push(CustomField { name, kind, value });
    }
    out
}

/// Read a Bitwarden JSON export: unencrypted, or protected with a
/// password (which `password` must give). One encrypted with the account's
/// key is refused with what to do (only Bitwarden can open it).
pub fn read(bytes: &[u8], password: Option<&[u8]>) -> Result<Parsed, ImportError> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge);
    }
    let export = parse(bytes)?;
    if !export.encrypted {
        return items_of(export);
    }
    if !export.password_protected {
        return Err(ImportError::Unrecognised(
            "this Bitwarden export is encrypted with the account's key, which only Bitwarden \
             can open; export again as \"JSON\" or \"JSON (Encrypted)\" with a password"
                .into(),
        ));
    }
    let password = password.ok_or(ImportError::NeedsPassword)?;
    let keys = protected_keys(&export, password)?;
    // The check value opens with the right password only.
    let check = export
        .key_check
        .as_deref()
        .ok_or_else(|| ImportError::Malformed("it has no key check".into()))?;
    open_enc_string(&keys, check).map_err(|_| ImportError::WrongPassword)?;
    let data = export
        .data
        .as_deref()
        .ok_or_else(|| ImportError::Malformed("it holds no data".into()))?;
    let inner = open_enc_string(&keys, data)?;
    let inner = parse(&inner)?;
    if inner.encrypted {
        return Err(ImportError::Malformed("it is encrypted twice".into()));
    }
    items_of(inner)
}

fn parse(bytes: &[u8]) -> Result<Export, ImportError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    super::parse_json(bytes, "it is not a Bitwarden JSON export")
}

/// The AES and HMAC keys of a password-protected export, derived as
/// Bitwarden derives them: PBKDF2-SHA256 over the salt's text, or Argon2id
/// over its SHA-256, then HKDF-expanded into "enc" and "mac" keys. The
/// file's cost parameters are held to Bitwarden's own ranges, so a crafted
/// file cannot make this run for hours or take all memory.
fn protected_keys(export: &Export, password: &[u8]) -> Result<Keys, ImportError> {
    use hkdf::Hkdf;
    use sha2::{Digest, Sha256};
    let salt = export
        .salt
        .as_deref()
        .ok_or_else(|| ImportError::Malformed("it has no salt".into()))?;
    let iterations = export.kdf_iterations.unwrap_or(0);
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    match export.kdf_type {
        Some(0) => {
            if !(5_000..=2_000_000).contains(&iterations) {
                return Err(ImportError::Malformed(
                    "its PBKDF2 iterations are outside what Bitwarden uses".into(),
                ));
            }
            pbkdf2::pbkdf2_hmac::<Sha256>(password, salt.as_bytes(), iterations, &mut *key);
        }
        Some(1) => {
            let memory_mib = export.kdf_memory.unwrap_or(0);
            let lanes = export.kdf_parallelism.unwrap_or(0);
            if !(1..=10).contains(&iterations)
                || !(16..=1024).contains(&memory_mib)
                || !(1..=16).contains(&lanes)
            {
                return Err(ImportError::Malformed(
                    "its Argon2id costs are outside what Bitwarden uses".into(),
                ));
            }
            let _one_at_a_time = super::memory::one_at_a_time();
            super::memory::check(
                u64::from(memory_mib) * 1024 * 1024,
                "the export",
                "export it again with a lower KDF memory in Bitwarden",
            )?;
            let params = argon2::Params::new(memory_mib * 1024, iterations, lanes, Some(32))
                .map_err(|_| ImportError::Malformed("its Argon2id costs are invalid".into()))?;
            let salt = Sha256::digest(salt.as_bytes());
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(password, &salt, &mut *key)
                .map_err(|_| ImportError::Malformed("its Argon2id costs are invalid".into()))?;
        }
        _ => {
            return Err(ImportError::Unrecognised(
                "the export's key derivation is not one Bitwarden uses".into(),
            ))
        }
    }
    let expand = Hkdf::<Sha256>::from_prk(&*key)
        .map_err(|_| ImportError::Malformed("its key cannot be derived".into()))?;
    let mut keys = Keys {
        enc: zeroize::Zeroizing::new([0u8; 32]),
        mac: zeroize::Zeroizing::new([0u8; 32]),
    };
    expand
        .expand(b"enc", &mut *keys.enc)
        .and_then(|_| expand.expand(b"mac", &mut *keys.mac))
        .map_err(|_| ImportError::Malformed("its key cannot be derived".into()))?;
    Ok(keys)
}

/// The two keys of a Bitwarden "type 2" encrypted string.
struct Keys {
    enc: zeroize::Zeroizing<[u8; 32]>,
    mac: zeroize::Zeroizing<[u8; 32]>,
}

/// Open a Bitwarden encrypted string of type 2 (`2.IV|DATA|MAC`, each
/// base64: AES-256-CBC with PKCS#7 padding, then HMAC-SHA256 over IV and
/// DATA), checking the MAC before decrypting anything.
fn open_enc_string(keys: &Keys, text: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, ImportError> {
    use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    use hmac::{Hmac, Mac};
    let malformed =
        || ImportError::Malformed("its encrypted data is not in Bitwarden's form".into());
    let body = text.strip_prefix("2.").ok_or_else(malformed)?;
    let mut parts = body.split('|');
    let mut next = || -> Result<Vec<u8>, ImportError> {
        let part = parts.next().ok_or_else(malformed)?;
        data_encoding::BASE64
            .decode(part.trim().as_bytes())
            .map_err(|_| malformed())
    };
    let (iv, data, mac) = (next()?, next()?, next()?);
    if parts.next().is_some() || iv.len() != 16 || mac.len() != 32 {
        return Err(malformed());
    }
    let mut check =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(&*keys.mac).map_err(|_| malformed())?;
    check.update(&iv);
    check.update(&data);
    check
        .verify_slice(&mac)
        .map_err(|_| ImportError::WrongPassword)?;
    let cipher =
        cbc::Decryptor::<aes::Aes256>::new_from_slices(&*keys.enc, &iv).map_err(|_| malformed())?;
    let plain = cipher
        .decrypt_padded_vec_mut::<Pkcs7>(&data)
        .map_err(|_| malformed())?;
    Ok(zeroize::Zeroizing::new(plain))
}

/// The items of an unencrypted export.
fn items_of(export: Export) -> Result<Parsed, ImportError> {
    if export.items.len() > MAX_IMPORT_ITEMS {
        return Err(ImportError::TooMany);
    }
    // Each folder's names once (an item copies them, at most 16 of 200
    // bytes, never its whole name).
    let folders: HashMap<&str, Arc<[String]>> = export
        .folders
        .iter()
        .filter_map(|f| {
            f.name
                .as_deref()
                .map(|name| (f.id.as_str(), super::folder_names(name).into()))
        })
        .collect();
    let mut items = Vec::with_capacity(export.items.len());
    let mut skipped = Skips::default();
    for (n, entry) in export.items.iter().enumerate() {
        let row = n + 1;
        let mut notes = raw(&entry.notes);
        let mut fields = custom_fields(&entry.fields, &mut notes);
        let kind = match (entry.kind, &entry.login, &entry.card, &entry.identity) {
            (1, login, _, _) => {
                let empty = Login {
                    uris: None,
                    username: None,
                    password: None,
                    totp: None,
                };
                let login = login.as_ref().unwrap_or(&empty);
                ItemKind::Login {
                    username: text(&login.username),
                    password: raw(&login.password),
                    urls: login
                        .uris
                        .iter()
                        .flatten()
                        .map(|u| text(&u.uri))
                        .filter(|u| !u.is_empty())
                        .take(super::MAX_URLS)
                        .collect(),
                    totp: Some(text(&login.totp)).filter(|t| !t.is_empty()),
                    notes,
                }
            }
            (2, _, _, _) => ItemKind::SecureNote { text: notes },
            (3, _, Some(card), _) => {
                let (month, year) = (text(&card.exp_month), text(&card.exp_year));
                let expiry = match (month.is_empty(), year.is_empty()) {
                    (false, false) => format!(
                        "{:0>2}/{}",
                        month,
                        year.get(year.len().saturating_sub(2)..).unwrap_or(&year)
                    ),
                    // Only one of them: kept as it is, nothing invented.
                    _ => format!("{month}{year}"),
                };
                let brand = text(&card.brand);
                ItemKind::Card {
                    cardholder: text(&card.cardholder_name),
                    number: text(&card.number),
                    expiry,
                    cvv: text(&card.code),
                    notes: match brand.is_empty() {
                        true => notes,
                        false if notes.is_empty() => format!("Brand: {brand}"),
                        false => format!("Brand: {brand}\n{notes}"),
                    },
                }
            }
            (4, _, _, Some(identity)) => {
                let get = |key: &str| identity.get(key).map(text).unwrap_or_default();
                let joined = |keys: &[&str], by: &str| {
                    keys.iter()
                        .map(|k| get(k))
                        .filter(|v| !v.is_empty())
                        .collect::<Vec<_>>()
                        .join(by)
                };
                let town = joined(&["city", "state", "postalCode"], ", ");
                let address = [
                    get("address1"),
                    get("address2"),
                    get("address3"),
                    town,
                    get("country"),
                ]
                .into_iter()
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n");
                // One number in the form; the others as hidden fields.
                let numbers = [
                    ("passportNumber", "Passport number"),
                    ("licenseNumber", "Licence number"),
                    ("ssn", "National insurance / social security number"),
                ];
                let mut id_number = String::new();
                for (key, label) in numbers {
                    let value = get(key);
                    if value.is_empty() {
                        continue;
                    }
                    if id_number.is_empty() {
                        id_number = value;
                    } else if fields.len() < MAX_FIELDS {
                        fields.push(CustomField {
                            name: label.into(),
                            kind: FieldKind::Hidden,
                            value,
                        });
                    }
                }
                for (key, label) in [("title", "Title"), ("username", "User name")] {
                    let value = get(key);
                    if !value.is_empty() && fields.len() < MAX_FIELDS {
                        fields.push(CustomField {
                            name: label.into(),
                            kind: FieldKind::Text,
                            value,
                        });
                    }
                }
                ItemKind::Identity {
                    full_name: joined(&["firstName", "middleName", "lastName"], " "),
                    email: get("email"),
                    phone: get("phone"),
                    address,
                    birthday: String::new(),
                    company: get("company"),
                    id_number,
                    notes,
                }
            }
            (5, _, _, _) => {
                let key = entry.ssh_key.as_ref();
                ItemKind::SshKey {
                    // Kept exactly: OpenSSH wants the final newline.
                    private_key: key.map(|k| raw(&k.private_key)).unwrap_or_default(),
                    public_key: key.map(|k| text(&k.public_key)).unwrap_or_default(),
                    passphrase: String::new(),
                    notes,
                }
            }
            _ => {
                skipped.push(row, "a kind of item this does not know");
                continue;
            }
        };
        let folder = entry
            .folder_id
            .as_deref()
            .and_then(|id| folders.get(id))
            .cloned()
            .unwrap_or_default();
        let mut item = Item::new(text(&entry.name), kind);
        item.fields = fields;
        items.push(ImportedItem {
            folder,
            item,
            files: Vec::new(),
        });
    }
    Ok(Parsed::new("Bitwarden", items, skipped))
}

#[cfg(test)]
mod tests {
    use super::super::Skipped;
    use super::*;

    const EXPORT: &str = r#"{
      "encrypted": false,
      "folders": [{"id": "f1", "name": "Work/Mail"}],
      "items": [
        {"id": "1", "folderId": "f1", "type": 1, "reprompt": 0, "name": "Mail",
         "notes": "n", "favorite": false,
         "fields": [{"name": "PIN", "value": "1234", "type": 1}],
         "login": {"uris": [{"match": null, "uri": "https://a.example"},
                            {"match": 3, "uri": "https://b.example"}],
                   "username": "me", "password": "pw", "totp": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP"},
         "collectionIds": null},
        {"id": "2", "folderId": null, "type": 2, "name": "Wifi", "notes": "code 42",
         "secureNote": {"type": 0}},
        {"id": "3", "type": 3, "name": "Visa", "notes": null,
         "card": {"cardholderName": "A Person", "brand": "Visa", "number": "4111111111111111",
                  "expMonth": "3", "expYear": "2031", "code": "123"}},
        {"id": "4", "type": 4, "name": "Me", "notes": "",
         "identity": {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
                      "passportNumber": "P123", "licenseNumber": "L9", "address1": "1 Main St",
                      "city": "London", "postalCode": "W1", "country": "UK", "ssn": null}},
        {"id": "5", "type": 9, "name": "Future"}
      ]
    }"#;

    #[test]
    fn each_kind_is_read_field_by_field() {
        let parsed = read(EXPORT.as_bytes(), None).unwrap();
        assert_eq!(parsed.source, "Bitwarden");
        assert_eq!(parsed.items.len(), 4);
        let mail = &parsed.items[0];
        assert_eq!(*mail.folder, ["Work", "Mail"]);
        assert_eq!(mail.item.title, "Mail");
        match &mail.item.kind {
            ItemKind::Login {
                username,
                password,
                urls,
                totp,
                notes,
            } => {
                assert_eq!((username.as_str(), password.as_str()), ("me", "pw"));
                assert_eq!(urls, &["https://a.example", "https://b.example"]);
                assert_eq!(
                    totp.as_deref(),
                    Some("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP")
                );
                assert_eq!(notes, "n");
            }
            _ => panic!("not a login"),
        }
        assert_eq!(mail.item.fields.len(), 1);
        assert_eq!(
            (
                mail.item.fields[0].name.as_str(),
                mail.item.fields[0].kind,
                mail.item.fields[0].value.as_str()
            ),
            ("PIN", FieldKind::Hidden, "1234")
        );
        assert!(
            matches!(&parsed.items[1].item.kind, ItemKind::SecureNote { text } if text == "code 42")
        );
        match &parsed.items[2].item.kind {
            ItemKind::Card {
                cardholder,
                number,
                expiry,
                cvv,
                notes,
            } => {
                assert_eq!(cardholder, "A Person");
                assert_eq!(number, "4111111111111111");
                assert_eq!(expiry, "03/31");
                assert_eq!(cvv, "123");
                assert_eq!(notes, "Brand: Visa");
            }
            _ => panic!("not a card"),
        }
        match &parsed.items[3].item.kind {
            ItemKind::Identity {
                full_name,
                email,
                address,
                id_number,
                ..
            } => {
                assert_eq!(full_name, "Ada Lovelace");
                assert_eq!(email, "ada@example.com");
                assert_eq!(address, "1 Main St\nLondon, W1\nUK");
                assert_eq!(id_number, "P123");
            }
            _ => panic!("not an identity"),
        }
        let extra: Vec<&str> = parsed.items[3]
            .item
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(extra, ["Licence number"]);
        assert_eq!(
            parsed.skipped,
            [Skipped {
                row: 5,
                reason: "a kind of item this does not know"
            }]
        );
    }

    /// Items left out are listed one by one only up to 100, the rest
    /// counted, as a CSV's rows are: the list grew with the export.
    #[test]
    fn items_left_out_past_a_hundred_are_counted_not_listed() {
        let items: Vec<String> = (0..150)
            .map(|i| format!(r#"{{"id": "{i}", "type": 99, "name": "n{i}"}}"#))
            .collect();
        let export = format!(
            r#"{{"encrypted": false, "folders": [], "items": [{}]}}"#,
            items.join(",")
        );
        let parsed = read(export.as_bytes(), None).unwrap();
        assert_eq!(parsed.skipped.len(), 100);
        assert_eq!(parsed.skipped_total, 150);
        assert_eq!(parsed.skipped[99].row, 100);
    }

    #[test]
    fn encrypted_and_damaged_exports_are_refused_naming_no_value() {
        let protected = r#"{"encrypted": true, "passwordProtected": true, "salt": "x",
            "kdfType": 0, "kdfIterations": 600000, "data": "2.a|b|c"}"#;
        let refused = read(protected.as_bytes(), None).unwrap_err().to_string();
        assert!(refused.contains("password"), "{refused}");
        let account = r#"{"encrypted": true, "items": []}"#;
        assert!(read(account.as_bytes(), None).is_err());
        let cut = &EXPORT[..EXPORT.len() / 2];
        let damaged = read(cut.as_bytes(), None).unwrap_err().to_string();
        assert!(damaged.contains("line"), "{damaged}");
        assert!(
            !damaged.contains("pw") && !damaged.contains("4111"),
            "{damaged}"
        );
        let wrong_type = r#"{"items": [{"type": 1, "name": "x", "login": {"password": 5}}]}"#;
        let refused = read(wrong_type.as_bytes(), None).unwrap_err().to_string();
        assert!(
            refused.contains("line") && !refused.contains("integer"),
            "{refused}"
        );
    }

    /// `text` sealed as Bitwarden seals a string (type 2), with fixed IV.
    fn seal(keys: &Keys, text: &[u8], iv: [u8; 16]) -> String {
        use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
        use hmac::{Hmac, Mac};
        let data = cbc::Encryptor::<aes::Aes256>::new_from_slices(&*keys.enc, &iv)
            .unwrap()
            .encrypt_padded_vec_mut::<Pkcs7>(text);
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&*keys.mac).unwrap();
        mac.update(&iv);
        mac.update(&data);
        let b64 = |b: &[u8]| data_encoding::BASE64.encode(b);
        format!(
            "2.{}|{}|{}",
            b64(&iv),
            b64(&data),
            b64(&mac.finalize().into_bytes())
        )
    }

    /// A password-protected export of [`EXPORT`], laid out as Bitwarden
    /// documents it, with the key derivation `kdf` (JSON fields).
    fn protected(password: &str, kdf: &str) -> String {
        let header: Export =
            serde_json::from_str(&format!(r#"{{"salt": "c2FsdHNhbHQ=", {kdf}}}"#)).unwrap();
        let keys = protected_keys(&header, password.as_bytes()).unwrap();
        format!(
            r#"{{"encrypted": true, "passwordProtected": true, "salt": "c2FsdHNhbHQ=", {kdf},
                "encKeyValidation_DO_NOT_EDIT": "{}", "data": "{}"}}"#,
            seal(&keys, b"5f0b7c43-0000-4000-8000-000000000000", [7; 16]),
            seal(&keys, EXPORT.as_bytes(), [9; 16])
        )
    }

    #[test]
    fn a_password_protected_export_opens_with_its_password_only() {
        for kdf in [
            r#""kdfType": 0, "kdfIterations": 5000"#,
            r#""kdfType": 1, "kdfIterations": 2, "kdfMemory": 16, "kdfParallelism": 1"#,
        ] {
            let file = protected("correct horse", kdf);
            let parsed = read(file.as_bytes(), Some(b"correct horse")).unwrap();
            assert_eq!(parsed.items.len(), 4, "{kdf}");
            assert_eq!(parsed.items[0].item.title, "Mail");
            assert!(matches!(
                read(file.as_bytes(), None),
                Err(ImportError::NeedsPassword)
            ));
            assert!(matches!(
                read(file.as_bytes(), Some(b"wrong")),
                Err(ImportError::WrongPassword)
            ));
            // A flipped byte of the sealed data is refused, not opened.
            let at = file.find(r#""data": "2."#).unwrap() + 20;
            let mut flipped = file.clone().into_bytes();
            flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
            assert!(read(&flipped, Some(b"correct horse")).is_err());
        }
        // Costs beyond Bitwarden's own are refused before any work.
        for kdf in [
            r#""kdfType": 0, "kdfIterations": 4000000000"#,
            r#""kdfType": 1, "kdfIterations": 3, "kdfMemory": 1000000, "kdfParallelism": 1"#,
            r#""kdfType": 7, "kdfIterations": 5000"#,
        ] {
            let file = format!(
                r#"{{"encrypted": true, "passwordProtected": true, "salt": "x", {kdf},
                    "encKeyValidation_DO_NOT_EDIT": "2.a|b|c", "data": "2.a|b|c"}}"#
            );
            let refused = read(file.as_bytes(), Some(b"pw")).unwrap_err();
            assert!(
                matches!(
                    refused,
                    ImportError::Malformed(_) | ImportError::Unrecognised(_)
                ),
                "{kdf}: {refused}"
            );
        }
    }

    /// A folder's name is kept as the vault will name it (16 levels of
    /// 200 bytes), once per folder: its whole name, split and copied for
    /// each of its items, let one name of a few MiB take gigabytes and
    /// minutes in an export of a few thousand items; and even cut, its
    /// 3 KiB copied into each of 100,000 items took 370 MB.
    #[test]
    fn a_long_folder_name_is_cut_once_not_copied_whole_into_each_item() {
        let name = format!("{}/{}", "n".repeat(4 * 1024 * 1024), "m/".repeat(100));
        let items: Vec<String> = (0..2_000)
            .map(|i| format!(r#"{{"id": "{i}", "folderId": "f", "type": 2, "name": "n{i}", "notes": "x", "secureNote": {{"type": 0}}}}"#))
            .collect();
        let export = format!(
            r#"{{"encrypted": false, "folders": [{{"id": "f", "name": "{name}"}}], "items": [{}]}}"#,
            items.join(",")
        );
        let parsed = read(export.as_bytes(), None).unwrap();
        assert_eq!(parsed.items.len(), 2_000);
        for item in &parsed.items {
            assert!(
                Arc::ptr_eq(&item.folder, &parsed.items[0].folder),
                "one folder's names are shared by its items, not copied"
            );
            assert_eq!(item.folder.len(), 16);
            assert_eq!(item.folder[0].len(), 200);
            assert_eq!(item.folder[1], "m");
        }
    }

    /// A custom field whose name an item may not hold (invisible or control
    /// characters, or only spaces) goes to the notes: kept as a field, it
    /// made the imported item one that no longer opens.
    #[test]
    fn a_field_name_an_item_may_not_hold_goes_to_the_notes() {
        let export = r#"{"encrypted": false, "folders": [], "items": [
          {"id": "1", "type": 2, "name": "N", "notes": "n", "secureNote": {"type": 0},
           "fields": [{"name": "a\u200bb", "value": "1", "type": 0},
                      {"name": "c\u0001", "value": "2", "type": 0},
                      {"name": "   ", "value": "3", "type": 0},
                      {"name": "ok", "value": "4", "type": 0}]}]}"#;
        let parsed = read(export.as_bytes(), None).unwrap();
        let item = &parsed.items[0].item;
        item.check().unwrap();
        let names: Vec<&str> = item.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["ok"]);
        let ItemKind::SecureNote { text } = &item.kind else {
            panic!("not a note");
        };
        assert!(
            text.contains(": 1") && text.contains(": 2") && text.contains(": 3"),
            "{text}"
        );
    }
}

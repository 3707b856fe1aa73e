//! Bitwarden's JSON export (unencrypted): logins, secure notes, cards,
//! identities and SSH keys, with their folders, custom fields, TOTP and
//! every website.

use std::collections::HashMap;

use polykey_vaults::items::{Item, ItemKind};
use serde::Deserialize;

use super::{ImportError, ImportedItem, Parsed, Skipped, MAX_IMPORT_BYTES, MAX_IMPORT_ITEMS};

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

/// An identity's fields in the order Bitwarden shows them, with labels.
const IDENTITY_FIELDS: &[(&str, &str)] = &[
    ("title", "Title"),
    ("firstName", "First name"),
    ("middleName", "Middle name"),
    ("lastName", "Last name"),
    ("username", "User name"),
    ("company", "Company"),
    ("ssn", "National insurance / social security number"),
    ("passportNumber", "Passport number"),
    ("licenseNumber", "Licence number"),
    ("email", "Email"),
    ("phone", "Phone"),
    ("address1", "Address"),
    ("address2", "Address 2"),
    ("address3", "Address 3"),
    ("city", "City"),
    ("state", "State / county"),
    ("postalCode", "Postcode"),
    ("country", "Country"),
];

fn text(value: &Option<String>) -> String {
    value.as_deref().unwrap_or("").trim().to_owned()
}

/// Notes with the custom fields after them, one `name: value` line each.
fn notes_with_fields(notes: &Option<String>, fields: &Option<Vec<Field>>) -> String {
    let mut out = text(notes);
    for field in fields.iter().flatten() {
        let (name, value) = (text(&field.name), text(&field.value));
        if name.is_empty() && value.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("{name}: {value}"));
    }
    out
}

/// Read a Bitwarden JSON export. A password-protected or account-encrypted
/// export is refused with what to do (nothing of it is read).
pub fn read(bytes: &[u8]) -> Result<Parsed, ImportError> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let export: Export = serde_json::from_slice(bytes).map_err(|e| {
        // serde_json's message names a line and column, and at most the
        // type it expected: never a value of the file.
        ImportError::Malformed(format!(
            "it is not a Bitwarden JSON export (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if export.encrypted {
        return Err(ImportError::Unrecognised(if export.password_protected {
            "this Bitwarden export is protected with a password, which this version cannot \
             open yet; export again as \"JSON\" (not encrypted), import it, then delete the file"
                .into()
        } else {
            "this Bitwarden export is encrypted with the account's key, which only Bitwarden \
             can open; export again as \"JSON\" (not encrypted)"
                .into()
        }));
    }
    if export.items.len() > MAX_IMPORT_ITEMS {
        return Err(ImportError::TooMany);
    }
    let folders: HashMap<&str, &str> = export
        .folders
        .iter()
        .filter_map(|f| f.name.as_deref().map(|name| (f.id.as_str(), name)))
        .collect();
    let mut items = Vec::with_capacity(export.items.len());
    let mut skipped = Vec::new();
    for (n, entry) in export.items.iter().enumerate() {
        let row = n + 1;
        let notes = notes_with_fields(&entry.notes, &entry.fields);
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
                    password: text(&login.password),
                    urls: login
                        .uris
                        .iter()
                        .flatten()
                        .map(|u| text(&u.uri))
                        .filter(|u| !u.is_empty())
                        .collect(),
                    totp: Some(text(&login.totp)).filter(|t| !t.is_empty()),
                    notes,
                }
            }
            (2, _, _, _) => ItemKind::SecureNote { text: notes },
            (3, _, Some(card), _) => {
                let (month, year) = (text(&card.exp_month), text(&card.exp_year));
                let expiry = match (month.is_empty(), year.is_empty()) {
                    (true, true) => String::new(),
                    _ => format!(
                        "{:0>2}/{}",
                        month,
                        year.get(year.len().saturating_sub(2)..).unwrap_or(&year)
                    ),
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
                let mut lines: Vec<String> = IDENTITY_FIELDS
                    .iter()
                    .filter_map(|(key, label)| {
                        let value = identity.get(*key).map(text).unwrap_or_default();
                        (!value.is_empty()).then(|| format!("{label}: {value}"))
                    })
                    .collect();
                if !notes.is_empty() {
                    lines.push(notes);
                }
                ItemKind::SecureNote {
                    text: lines.join("\n"),
                }
            }
            (5, _, _, _) => {
                let key = entry.ssh_key.as_ref();
                ItemKind::SshKey {
                    private_key: key.map(|k| text(&k.private_key)).unwrap_or_default(),
                    public_key: key.map(|k| text(&k.public_key)).unwrap_or_default(),
                    passphrase: String::new(),
                    notes,
                }
            }
            _ => {
                skipped.push(Skipped {
                    row,
                    reason: "a kind of item this does not know",
                });
                continue;
            }
        };
        let folder = entry
            .folder_id
            .as_deref()
            .and_then(|id| folders.get(id))
            .map(|name| {
                name.split('/')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        items.push(ImportedItem {
            folder,
            item: Item::new(text(&entry.name), kind),
        });
    }
    Ok(Parsed {
        source: "Bitwarden",
        items,
        skipped,
    })
}

#[cfg(test)]
mod tests {
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
                      "passportNumber": null}},
        {"id": "5", "type": 9, "name": "Future"}
      ]
    }"#;

    #[test]
    fn each_kind_is_read_field_by_field() {
        let parsed = read(EXPORT.as_bytes()).unwrap();
        assert_eq!(parsed.source, "Bitwarden");
        assert_eq!(parsed.items.len(), 4);
        let mail = &parsed.items[0];
        assert_eq!(mail.folder, ["Work", "Mail"]);
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
                assert_eq!(notes, "n\nPIN: 1234");
            }
            _ => panic!("not a login"),
        }
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
        assert!(
            matches!(&parsed.items[3].item.kind, ItemKind::SecureNote { text }
            if text == "First name: Ada\nLast name: Lovelace\nEmail: ada@example.com")
        );
        assert_eq!(
            parsed.skipped,
            [Skipped {
                row: 5,
                reason: "a kind of item this does not know"
            }]
        );
    }

    #[test]
    fn encrypted_and_damaged_exports_are_refused_naming_no_value() {
        let protected = r#"{"encrypted": true, "passwordProtected": true, "salt": "x",
            "kdfType": 0, "kdfIterations": 600000, "data": "2.a|b|c"}"#;
        let refused = read(protected.as_bytes()).unwrap_err().to_string();
        assert!(refused.contains("password"), "{refused}");
        let account = r#"{"encrypted": true, "items": []}"#;
        assert!(read(account.as_bytes()).is_err());
        let cut = &EXPORT[..EXPORT.len() / 2];
        let damaged = read(cut.as_bytes()).unwrap_err().to_string();
        assert!(damaged.contains("line"), "{damaged}");
        assert!(
            !damaged.contains("pw") && !damaged.contains("4111"),
            "{damaged}"
        );
        let wrong_type = r#"{"items": [{"type": 1, "name": "x", "login": {"password": 5}}]}"#;
        let refused = read(wrong_type.as_bytes()).unwrap_err().to_string();
        assert!(
            refused.contains("line") && !refused.contains("integer"),
            "{refused}"
        );
    }
}

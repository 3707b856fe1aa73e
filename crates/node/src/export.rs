//! Moving out: a vault's secrets as a Bitwarden-compatible JSON or CSV
//! file, which Bitwarden, 1Password, KeePassXC and most managers import.
//! **Plain text**: the front ends say so and write the file private.

use std::collections::BTreeMap;

use polykey_vaults::items::{Item, ItemKind};
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// A vault's secrets by path, with their bytes.
pub type Secrets = [(String, Zeroizing<Vec<u8>>)];

/// The folder and title of a secret at `path`.
fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// What a secret exports as: its item, or for a plain secret that is text
/// a note titled by its name; `None` for bytes that are not text (they are
/// left out, and counted).
fn item_of(path: &str, bytes: &[u8]) -> Option<Item> {
    match Item::from_bytes(bytes) {
        Ok(item) => Some(item),
        Err(_) => {
            let text = std::str::from_utf8(bytes).ok()?;
            Some(Item::new(
                split(path).1,
                ItemKind::SecureNote {
                    text: text.to_owned(),
                },
            ))
        }
    }
}

/// `MM/YY` as Bitwarden's month and four-digit year.
fn month_year(expiry: &str) -> (String, String) {
    match expiry.split_once('/') {
        Some((month, year)) => {
            let month = month.trim().trim_start_matches('0').to_owned();
            let year = year.trim();
            let year = if year.len() == 2 {
                format!("20{year}")
            } else {
                year.to_owned()
            };
            (month, year)
        }
        None => (String::new(), String::new()),
    }
}

/// The secrets as Bitwarden's unencrypted JSON export; returns it and how
/// many secrets were left out (bytes that are not text).
pub fn bitwarden_json(secrets: &Secrets) -> (Zeroizing<String>, usize) {
    let mut folders: BTreeMap<&str, String> = BTreeMap::new();
    for (path, _) in secrets {
        let folder = split(path).0;
        if !folder.is_empty() {
            let id = format!("polykey-folder-{}", folders.len() + 1);
            folders.entry(folder).or_insert(id);
        }
    }
    let mut items = Vec::new();
    let mut left_out = 0;
    for (n, (path, bytes)) in secrets.iter().enumerate() {
        let Some(item) = item_of(path, bytes) else {
            left_out += 1;
            continue;
        };
        let folder_id = folders.get(split(path).0).cloned();
        let mut out = json!({
            "id": format!("polykey-item-{}", n + 1),
            "folderId": folder_id,
            "favorite": false,
            "reprompt": 0,
            "name": item.title,
            "collectionIds": null,
        });
        let fields = match &item.kind {
            ItemKind::Login {
                username,
                password,
                urls,
                totp,
                notes,
            } => json!({
                "type": 1,
                "notes": notes,
                "login": {
                    "uris": urls.iter().map(|u| json!({ "match": null, "uri": u })).collect::<Vec<_>>(),
                    "username": username,
                    "password": password,
                    "totp": totp,
                },
            }),
            ItemKind::SecureNote { text } => json!({
                "type": 2,
                "notes": text,
                "secureNote": { "type": 0 },
            }),
            ItemKind::Card {
                cardholder,
                number,
                expiry,
                cvv,
                notes,
            } => {
                let (month, year) = month_year(expiry);
                json!({
                    "type": 3,
                    "notes": notes,
                    "card": {
                        "cardholderName": cardholder,
                        "brand": null,
                        "number": number,
                        "expMonth": month,
                        "expYear": year,
                        "code": cvv,
                    },
                })
            }
            ItemKind::SshKey {
                private_key,
                public_key,
                passphrase,
                notes,
            } => {
                let mut notes = notes.clone();
                if !passphrase.is_empty() {
                    crate::import::add_line(&mut notes, &format!("Passphrase: {passphrase}"));
                }
                json!({
                    "type": 5,
                    "notes": notes,
                    "sshKey": {
                        "privateKey": private_key,
                        "publicKey": public_key,
                        "keyFingerprint": "",
                    },
                })
            }
            ItemKind::Identity {
                full_name,
                email,
                phone,
                address,
                birthday,
                company,
                id_number,
                notes,
            } => {
                let (first, last) = match full_name.trim().rsplit_once(' ') {
                    Some((first, last)) => (first.trim(), last),
                    None => (full_name.trim(), ""),
                };
                let mut lines = address.lines();
                let mut notes = notes.clone();
                if !birthday.is_empty() {
                    crate::import::add_line(&mut notes, &format!("Birthday: {birthday}"));
                }
                json!({
                    "type": 4,
                    "notes": notes,
                    "identity": {
                        "firstName": first,
                        "lastName": last,
                        "email": email,
                        "phone": phone,
                        "company": company,
                        "address1": lines.next().unwrap_or_default(),
                        "address2": lines.collect::<Vec<_>>().join(", "),
                        "passportNumber": id_number,
                    },
                })
            }
        };
        // Custom fields as Bitwarden's: text (0) or hidden (1).
        let custom: Vec<Value> = item
            .fields
            .iter()
            .map(|f| {
                let hidden = f.kind == polykey_vaults::items::FieldKind::Hidden;
                json!({ "name": f.name, "value": f.value, "type": u8::from(hidden) })
            })
            .collect();
        if !custom.is_empty() {
            if let Value::Object(out) = &mut out {
                out.insert("fields".into(), Value::Array(custom));
            }
        }
        if let (Value::Object(out), Value::Object(fields)) = (&mut out, fields) {
            out.extend(fields);
        }
        items.push(out);
    }
    let folders: Vec<Value> = folders
        .iter()
        .map(|(name, id)| json!({ "id": id, "name": name }))
        .collect();
    let export = json!({ "encrypted": false, "folders": folders, "items": items });
    let text = serde_json::to_string_pretty(&export).unwrap_or_default();
    (Zeroizing::new(text), left_out)
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, a tab
/// or a carriage return first) made inert with a leading `'`.
pub fn inert_cell(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

/// The secrets as Bitwarden's CSV export (its columns, logins and notes;
/// cards and SSH keys as notes of their fields), every cell made inert for
/// spreadsheets; returns it, how many secrets were left out, and how many
/// cells gained a `'` (a value that must lose it again where it is
/// imported, a password above all).
pub fn bitwarden_csv(secrets: &Secrets) -> (Zeroizing<String>, usize, usize) {
    let mut escaped = 0;
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    let header = [
        "folder",
        "favorite",
        "type",
        "name",
        "notes",
        "fields",
        "reprompt",
        "login_uri",
        "login_username",
        "login_password",
        "login_totp",
    ];
    // Writing to memory cannot fail.
    let _ = writer.write_record(header);
    let mut left_out = 0;
    for (path, bytes) in secrets {
        let Some(item) = item_of(path, bytes) else {
            left_out += 1;
            continue;
        };
        let folder = split(path).0;
        let mut row: [String; 11] = match &item.kind {
            ItemKind::Login {
                username,
                password,
                urls,
                totp,
                notes,
            } => [
                folder.into(),
                String::new(),
                "login".into(),
                item.title.clone(),
                notes.clone(),
                String::new(),
                "0".into(),
                urls.join(","),
                username.clone(),
                password.clone(),
                totp.clone().unwrap_or_default(),
            ],
            other => {
                let text = match other {
                    ItemKind::SecureNote { text } => text.clone(),
                    ItemKind::Card {
                        cardholder,
                        number,
                        expiry,
                        cvv,
                        notes,
                    } => format!(
                        "Cardholder: {cardholder}\nNumber: {number}\nExpiry: {expiry}\nSecurity code: {cvv}\n{notes}"
                    ),
                    ItemKind::SshKey {
                        private_key,
                        public_key,
                        passphrase,
                        notes,
                    } => format!(
                        "{private_key}\n{public_key}\nPassphrase: {passphrase}\n{notes}"
                    ),
                    ItemKind::Identity {
                        full_name,
                        email,
                        phone,
                        address,
                        birthday,
                        company,
                        id_number,
                        notes,
                    } => format!(
                        "Name: {full_name}\nEmail: {email}\nPhone: {phone}\nAddress: {address}\nBirthday: {birthday}\nCompany: {company}\nID number: {id_number}\n{notes}"
                    ),
                    ItemKind::Login { .. } => String::new(),
                };
                [
                    folder.into(),
                    String::new(),
                    "note".into(),
                    item.title.clone(),
                    text.trim_end().to_owned(),
                    String::new(),
                    "0".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]
            }
        };
        // Custom fields as Bitwarden's CSV has them: `name: value` lines.
        row[5] = item
            .fields
            .iter()
            .map(|f| format!("{}: {}", f.name, f.value))
            .collect::<Vec<_>>()
            .join("\n");
        let cells: Vec<String> = row.iter().map(|cell| inert_cell(cell)).collect();
        escaped += cells.iter().zip(&row).filter(|(a, b)| a != b).count();
        let _ = writer.write_record(&cells);
    }
    let bytes = Zeroizing::new(writer.into_inner().unwrap_or_default());
    (
        Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()),
        left_out,
        escaped,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Vec<(String, Zeroizing<Vec<u8>>)> {
        let login = Item::new(
            "GitHub",
            ItemKind::Login {
                username: "octo".into(),
                password: "=HYPERLINK(\"x\")".into(),
                urls: vec![
                    "https://github.com".into(),
                    "https://gist.github.com".into(),
                ],
                totp: Some("JBSWY3DPEHPK3PXP".into()),
                notes: "n".into(),
            },
        );
        let card = Item::new(
            "Visa",
            ItemKind::Card {
                cardholder: "A".into(),
                number: "4111".into(),
                expiry: "03/31".into(),
                cvv: "123".into(),
                notes: String::new(),
            },
        );
        vec![
            ("Dev/GitHub".into(), login.to_bytes()),
            ("Visa".into(), card.to_bytes()),
            ("env/TOKEN".into(), Zeroizing::new(b"plain text".to_vec())),
            ("blob".into(), Zeroizing::new(vec![0xff, 0xfe, 0])),
        ]
    }

    #[test]
    fn the_json_export_is_read_back_by_the_bitwarden_import() {
        let (json, left_out) = bitwarden_json(&secrets());
        assert_eq!(left_out, 1, "bytes that are not text");
        let parsed = crate::import::bitwarden::read(json.as_bytes(), None).unwrap();
        assert_eq!(parsed.items.len(), 3);
        assert_eq!(*parsed.items[0].folder, ["Dev"]);
        match &parsed.items[0].item.kind {
            ItemKind::Login {
                password,
                urls,
                totp,
                ..
            } => {
                assert_eq!(password, "=HYPERLINK(\"x\")", "JSON keeps values exactly");
                assert_eq!(urls.len(), 2);
                assert_eq!(totp.as_deref(), Some("JBSWY3DPEHPK3PXP"));
            }
            _ => panic!("not a login"),
        }
        assert!(matches!(&parsed.items[1].item.kind,
            ItemKind::Card { expiry, .. } if expiry == "03/31"));
        assert_eq!(parsed.items[2].item.title, "TOKEN");
    }

    #[test]
    fn the_csv_export_is_inert_in_a_spreadsheet_and_read_back() {
        let (csv, left_out, escaped) = bitwarden_csv(&secrets());
        assert_eq!((left_out, escaped), (1, 1));
        assert!(csv.contains("'=HYPERLINK"), "{}", csv.as_str());
        assert!(!csv.contains(",=HYPERLINK"));
        let parsed = crate::import::csv::read(csv.as_bytes(), None).unwrap();
        assert_eq!(parsed.source, "Bitwarden");
        assert_eq!(parsed.items.len(), 3);
        assert_eq!(parsed.items[0].item.title, "GitHub");
        assert_eq!(inert_cell("-1"), "'-1");
        assert_eq!(inert_cell("@SUM"), "'@SUM");
        assert_eq!(inert_cell("plain"), "plain");
    }
}

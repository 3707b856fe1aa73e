//! Typed items: a login, secure note, card, SSH key or identity, stored as
//! one JSON file in a vault, with custom fields and attachments (files
//! stored beside it, see [`ATTACHMENTS_DIR`]). Any other bytes remain a
//! plain secret, as in Polykey.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Marks a secret's bytes as a typed item.
pub const ITEM_FORMAT: &str = "polykey-item";
/// The item format version this build writes and reads.
pub const ITEM_VERSION: u32 = 1;

/// Where an item's attachments are stored in its vault: one file per
/// content, named by its SHA-256 (hex), so the same file attached twice is
/// stored once and an item's edits never rewrite its files.
pub const ATTACHMENTS_DIR: &str = ".attachments";
/// Custom fields one item may have.
pub const MAX_FIELDS: usize = 100;
/// Attachments one item may have (each up to the vault's secret size).
pub const MAX_ATTACHMENTS: usize = 50;
/// Longest field or attachment name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Why bytes are not a readable item.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ItemError {
    /// The bytes are a plain secret, not an item.
    #[error("this secret is not a typed item")]
    NotAnItem,
    /// Written by a newer version of Polykey.
    #[error("this item was saved by a newer Polykey (format version {0}); update to edit it")]
    NewerVersion(u32),
    /// It claims to be an item but its fields are malformed.
    #[error("this item is damaged: {0}")]
    Malformed(String),
}

/// The kinds of item the app renders as forms.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ItemKind {
    /// A website or app login.
    Login {
        /// User name or email.
        #[serde(default)]
        username: String,
        /// The password.
        #[serde(default)]
        password: String,
        /// Where it is used.
        #[serde(default)]
        urls: Vec<String>,
        /// An `otpauth://totp/` URI or base32 secret, if the login has 2FA.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        totp: Option<String>,
        /// Free text.
        #[serde(default)]
        notes: String,
    },
    /// Free text.
    SecureNote {
        /// The note.
        #[serde(default)]
        text: String,
    },
    /// A payment card.
    Card {
        /// Name on the card.
        #[serde(default)]
        cardholder: String,
        /// Card number.
        #[serde(default)]
        number: String,
        /// Expiry, `MM/YY`.
        #[serde(default)]
        expiry: String,
        /// Security code.
        #[serde(default)]
        cvv: String,
        /// Free text.
        #[serde(default)]
        notes: String,
    },
    /// An SSH key pair.
    SshKey {
        /// The private key, OpenSSH PEM.
        #[serde(default)]
        private_key: String,
        /// The public key line.
        #[serde(default)]
        public_key: String,
        /// The passphrase protecting the private key, if any.
        #[serde(default)]
        passphrase: String,
        /// Free text.
        #[serde(default)]
        notes: String,
    },
    /// A person's details, for forms.
    Identity {
        /// Full name.
        #[serde(default)]
        full_name: String,
        /// Email address.
        #[serde(default)]
        email: String,
        /// Phone number.
        #[serde(default)]
        phone: String,
        /// Postal address, one line per line.
        #[serde(default)]
        address: String,
        /// Date of birth, `YYYY-MM-DD`.
        #[serde(default)]
        birthday: String,
        /// Company or organisation.
        #[serde(default)]
        company: String,
        /// A passport, licence or national id number.
        #[serde(default)]
        id_number: String,
        /// Free text.
        #[serde(default)]
        notes: String,
    },
}

/// How a custom field is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// Plain text.
    #[default]
    Text,
    /// Hidden until shown, like a password.
    Hidden,
    /// A link.
    Url,
    /// A date, `YYYY-MM-DD`.
    Date,
}

/// A field the user added to an item.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Field {
    /// Its label.
    pub name: String,
    /// How it is shown.
    #[serde(default)]
    #[zeroize(skip)]
    pub kind: FieldKind,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

/// A file attached to an item: its bytes are the vault file `file`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Attachment {
    /// The file's name as the user attached it.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where its bytes are in the vault: `.attachments/<sha256 hex>`.
    pub file: String,
}

impl Attachment {
    /// The vault path of the attachment with these bytes.
    pub fn file_for(bytes: &[u8]) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{ATTACHMENTS_DIR}/{hex}")
    }

    /// Whether `path` is where an attachment's bytes are kept.
    pub fn is_attachment_file(path: &str) -> bool {
        path.strip_prefix(ATTACHMENTS_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|hex| {
                hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
    }
}

/// A typed item as stored: format marker, version, title and fields.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Item {
    /// Always [`ITEM_FORMAT`].
    pub format: String,
    /// The format version.
    pub version: u32,
    /// What the user calls it.
    pub title: String,
    /// The fields.
    #[serde(flatten)]
    pub kind: ItemKind,
    /// Fields the user added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    /// Files attached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ItemKind::Login { .. } => "login",
            ItemKind::SecureNote { .. } => "secure_note",
            ItemKind::Card { .. } => "card",
            ItemKind::SshKey { .. } => "ssh_key",
            ItemKind::Identity { .. } => "identity",
        };
        write!(f, "Item({kind}, <redacted>)")
    }
}

#[derive(Deserialize)]
struct Header {
    format: String,
    version: u32,
}

impl Item {
    /// A new item of the current version.
    pub fn new(title: impl Into<String>, kind: ItemKind) -> Self {
        Self {
            format: ITEM_FORMAT.into(),
            version: ITEM_VERSION,
            title: title.into(),
            kind,
            fields: Vec::new(),
            attachments: Vec::new(),
        }
    }

    /// Whether its custom fields and attachments are within bounds, each
    /// named, and every attachment where attachments are kept.
    pub fn check(&self) -> Result<(), ItemError> {
        let bad = |why: &str| Err(ItemError::Malformed(why.into()));
        if self.fields.len() > MAX_FIELDS {
            return bad(&format!("more than {MAX_FIELDS} custom fields"));
        }
        if self.attachments.len() > MAX_ATTACHMENTS {
            return bad(&format!("more than {MAX_ATTACHMENTS} attachments"));
        }
        let names = self
            .fields
            .iter()
            .map(|f| &f.name)
            .chain(self.attachments.iter().map(|a| &a.name));
        for name in names {
            if name.trim().is_empty() {
                return bad("a custom field or attachment has no name");
            }
            if name.len() > MAX_NAME_LEN || name.chars().any(polykey_keys::text::hides_text) {
                return bad(
                    "a custom field or attachment name is too long or has control or invisible characters",
                );
            }
        }
        // An attachment's name becomes a file's name when saved: no folder
        // in it, nor one of the names that mean a folder.
        if let Some(a) = self
            .attachments
            .iter()
            .find(|a| a.name.contains(['/', '\\']) || matches!(a.name.trim(), "." | ".."))
        {
            return bad(&format!(
                "attachment name \"{}\" is not a plain file name",
                a.name.escape_debug()
            ));
        }
        if let Some(a) = self
            .attachments
            .iter()
            .find(|a| !Attachment::is_attachment_file(&a.file))
        {
            return bad(&format!(
                "attachment \"{}\" is not stored where attachments are",
                a.name
            ));
        }
        Ok(())
    }

    /// The bytes stored in the vault, made in a buffer of their size (one
    /// grown as it fills leaves copies of the secret behind, unwiped).
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        self.to_bytes_within(usize::MAX).unwrap_or_default()
    }

    /// [`Item::to_bytes`], unless they are more than `max` bytes: counted
    /// first, and nothing made past it.
    pub fn to_bytes_within(&self, max: usize) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        let len = self.encoded_len();
        if len > max {
            return None;
        }
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(len));
        // Serializing plain strings and vectors cannot fail.
        if serde_json::to_writer_pretty(&mut *out, self).is_err() {
            out.clear();
        }
        Some(out)
    }

    /// How many bytes [`Item::to_bytes`] makes, counted without making
    /// them (a field of control characters takes six times its size).
    pub fn encoded_len(&self) -> usize {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0 += bytes.len();
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut count = Count(0);
        let _ = serde_json::to_writer_pretty(&mut count, self);
        count.0
    }

    /// Read an item from a secret's bytes: [`ItemError::NotAnItem`] for plain
    /// secrets, a distinct error for newer or damaged items.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ItemError> {
        let header: Header = serde_json::from_slice(bytes).map_err(|_| ItemError::NotAnItem)?;
        if header.format != ITEM_FORMAT {
            return Err(ItemError::NotAnItem);
        }
        if header.version > ITEM_VERSION {
            return Err(ItemError::NewerVersion(header.version));
        }
        let item: Self = serde_json::from_slice(bytes).map_err(|e| {
            // serde's message names the field, never its value.
            ItemError::Malformed(
                e.to_string()
                    .split(" at line")
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })?;
        item.check()?;
        Ok(item)
    }

    /// The login's current TOTP code and seconds left, if it has 2FA.
    pub fn totp_code(&self, now: u64) -> Option<Result<(String, u64), crate::totp::TotpError>> {
        let ItemKind::Login {
            totp: Some(setting),
            ..
        } = &self.kind
        else {
            return None;
        };
        Some(crate::totp::Totp::parse(setting).map(|t| (t.code_at(now), t.seconds_left(now))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> Item {
        Item::new(
            "Bank",
            ItemKind::Login {
                username: "alice".into(),
                password: "s3cret!".into(),
                urls: vec!["https://bank.example".into()],
                totp: Some("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into()),
                notes: String::new(),
            },
        )
    }

    #[test]
    fn items_round_trip_and_plain_secrets_are_not_items() {
        let item = login();
        let bytes = item.to_bytes();
        assert_eq!(Item::from_bytes(&bytes).unwrap(), item);
        assert_eq!(
            Item::from_bytes(b"just a password"),
            Err(ItemError::NotAnItem)
        );
        assert_eq!(
            Item::from_bytes(br#"{"format":"other","version":1}"#),
            Err(ItemError::NotAnItem)
        );
        assert!(!format!("{item:?}").contains("s3cret"));
    }

    #[test]
    fn stored_form_is_stable() {
        let note = Item::new(
            "Wifi",
            ItemKind::SecureNote {
                text: "pw: x".into(),
            },
        );
        assert_eq!(
            String::from_utf8(note.to_bytes().to_vec()).unwrap(),
            "{\n  \"format\": \"polykey-item\",\n  \"version\": 1,\n  \"title\": \"Wifi\",\n  \"type\": \"secure_note\",\n  \"text\": \"pw: x\"\n}"
        );
    }

    #[test]
    fn newer_and_damaged_items_get_distinct_errors() {
        assert_eq!(
            Item::from_bytes(
                br#"{"format":"polykey-item","version":9,"title":"x","type":"login"}"#
            ),
            Err(ItemError::NewerVersion(9))
        );
        let err = Item::from_bytes(
            br#"{"format":"polykey-item","version":1,"title":"x","type":"spaceship"}"#,
        )
        .unwrap_err();
        assert!(matches!(err, ItemError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn custom_fields_and_attachments_round_trip_and_are_bounded() {
        let mut item = Item::new(
            "Passport",
            ItemKind::Identity {
                full_name: "Alice Liddell".into(),
                email: "alice@example.com".into(),
                phone: String::new(),
                address: "1 Rabbit Hole\nOxford".into(),
                birthday: "1852-05-04".into(),
                company: String::new(),
                id_number: "X1234567".into(),
                notes: String::new(),
            },
        );
        item.fields.push(Field {
            name: "Recovery PIN".into(),
            kind: FieldKind::Hidden,
            value: "8812".into(),
        });
        let scan = b"%PDF scan";
        item.attachments.push(Attachment {
            name: "scan.pdf".into(),
            size: scan.len() as u64,
            file: Attachment::file_for(scan),
        });
        let bytes = item.to_bytes();
        assert_eq!(Item::from_bytes(&bytes).unwrap(), item);
        assert!(!format!("{item:?}").contains("8812"));
        assert!(Attachment::is_attachment_file(&item.attachments[0].file));

        // An item naming another secret as its attachment, or a path out
        // of the attachments folder, is damaged (a peer's item is input).
        for file in ["Personal/bank", ".attachments/../bank", ".attachments/ABC"] {
            let mut hostile = item.clone();
            hostile.attachments[0].file = file.into();
            let err = Item::from_bytes(&hostile.to_bytes()).unwrap_err();
            assert!(matches!(err, ItemError::Malformed(_)), "{file}: {err:?}");
        }
        let mut crowded = item.clone();
        crowded.fields = vec![item.fields[0].clone(); MAX_FIELDS + 1];
        assert!(matches!(
            Item::from_bytes(&crowded.to_bytes()),
            Err(ItemError::Malformed(_))
        ));
        let mut unnamed = item.clone();
        unnamed.fields[0].name = "  ".into();
        assert!(unnamed.check().is_err());

        // An attachment's name is saved as a file's: a folder in it, a name
        // meaning a folder, or text reversed by an invisible mark ("scan",
        // U+202E, "fdp.exe" reads as "scanexe.pdf") is damaged, as is a field name
        // hiding text.
        for name in [
            "../.bashrc",
            "a/b",
            "a\\b",
            "..",
            ".",
            "scan\u{202E}fdp.exe",
            "x\u{200B}",
        ] {
            let mut hostile = item.clone();
            hostile.attachments[0].name = name.into();
            let err = Item::from_bytes(&hostile.to_bytes()).unwrap_err();
            assert!(matches!(err, ItemError::Malformed(_)), "{name:?}: {err:?}");
        }
        let mut hidden = item.clone();
        hidden.fields[0].name = "PIN\u{202E}".into();
        assert!(hidden.check().is_err());
        let mut dotted = item.clone();
        dotted.attachments[0].name = "archive..tar.gz".into();
        assert!(dotted.check().is_ok(), "dots inside a name are fine");
    }

    #[test]
    fn login_totp_code() {
        let (code, left) = login().totp_code(59).unwrap().unwrap();
        assert_eq!((code.as_str(), left), ("287082", 1));
        assert!(Item::new(
            "n",
            ItemKind::SecureNote {
                text: String::new()
            }
        )
        .totp_code(0)
        .is_none());
    }
}

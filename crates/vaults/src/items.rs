//! Typed items: a login, secure note, card or SSH key, stored as one JSON
//! file in a vault. Any other bytes remain a plain secret, as in Polykey.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Marks a secret's bytes as a typed item.
pub const ITEM_FORMAT: &str = "polykey-item";
/// The item format version this build writes and reads.
pub const ITEM_VERSION: u32 = 1;

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
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ItemKind::Login { .. } => "login",
            ItemKind::SecureNote { .. } => "secure_note",
            ItemKind::Card { .. } => "card",
            ItemKind::SshKey { .. } => "ssh_key",
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
        }
    }

    /// The bytes stored in the vault.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        // Serializing plain strings and vectors cannot fail.
        zeroize::Zeroizing::new(serde_json::to_vec_pretty(self).unwrap_or_default())
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
        serde_json::from_slice(bytes).map_err(|e| {
            // serde's message names the field, never its value.
            ItemError::Malformed(
                e.to_string()
                    .split(" at line")
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
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

//! Contact codes: how one person gives another what it takes to find their
//! node, as text or a QR code: `polykey-contact:` and base64url JSON of the
//! NodeId and the addresses it listens on. Nothing in it is secret, and it
//! grants nothing: whoever reads it can find and ask the node, which still
//! answers only what its trust allows. Read from a stranger, every part is
//! bounded and checked.

use data_encoding::BASE64URL_NOPAD;
use polykey_keys::NodeId;
use serde::{Deserialize, Serialize};

/// What every contact code starts with.
pub const CONTACT_PREFIX: &str = "polykey-contact:";
/// The longest contact code read (a QR code holds about 2,900 bytes).
pub const MAX_CONTACT_CODE_LEN: usize = 2048;
/// Most addresses a contact code may carry.
pub const MAX_CONTACT_ADDRESSES: usize = 16;
/// The longest address (a multiaddr) a contact code may carry.
pub const MAX_CONTACT_ADDRESS_LEN: usize = 256;

/// Why a contact code was not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContactError {
    /// Not a contact code, or damaged (the reason says which part).
    #[error("not a Polykey contact code: {0}")]
    Malformed(&'static str),
}

/// A node and where to reach it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// The node.
    #[serde(rename = "n")]
    pub node: NodeId,
    /// Where it listens (multiaddrs), possibly none.
    #[serde(rename = "a", default)]
    pub addresses: Vec<String>,
}

impl Contact {
    /// The contact for `node` at `addresses` (the first
    /// [`MAX_CONTACT_ADDRESSES`] that fit the bounds).
    pub fn new(node: NodeId, addresses: impl IntoIterator<Item = String>) -> Self {
        let addresses = addresses
            .into_iter()
            .filter(|a| !a.is_empty() && a.len() <= MAX_CONTACT_ADDRESS_LEN)
            .take(MAX_CONTACT_ADDRESSES)
            .collect();
        Self { node, addresses }
    }

    /// The text to share (and to put in a QR code).
    pub fn to_code(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{CONTACT_PREFIX}{}", BASE64URL_NOPAD.encode(&json))
    }

    /// Read a pasted or scanned contact code.
    pub fn from_code(code: &str) -> Result<Self, ContactError> {
        let code = code.trim();
        if code.len() > MAX_CONTACT_CODE_LEN {
            return Err(ContactError::Malformed("too long"));
        }
        let body = code
            .strip_prefix(CONTACT_PREFIX)
            .ok_or(ContactError::Malformed(
                "it does not start with polykey-contact:",
            ))?;
        let json = BASE64URL_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| ContactError::Malformed("damaged"))?;
        let contact: Self =
            serde_json::from_slice(&json).map_err(|_| ContactError::Malformed("damaged"))?;
        if contact.addresses.len() > MAX_CONTACT_ADDRESSES {
            return Err(ContactError::Malformed("too many addresses"));
        }
        if contact.addresses.iter().any(|a| {
            a.is_empty() || a.len() > MAX_CONTACT_ADDRESS_LEN || a.chars().any(char::is_control)
        }) {
            return Err(ContactError::Malformed("a damaged address"));
        }
        Ok(contact)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use polykey_keys::RootKeypair;

    use super::*;

    fn node() -> NodeId {
        RootKeypair::from_seed(&[9; 32]).node_id()
    }

    fn code_of(json: &str) -> String {
        format!(
            "{CONTACT_PREFIX}{}",
            BASE64URL_NOPAD.encode(json.as_bytes())
        )
    }

    #[test]
    fn a_contact_round_trips_and_carries_no_more_than_its_bounds() {
        let contact = Contact::new(node(), ["/ip4/127.0.0.1/tcp/4100".to_owned()]);
        let code = contact.to_code();
        assert!(code.starts_with(CONTACT_PREFIX));
        assert_eq!(Contact::from_code(&format!("  {code}\n")).unwrap(), contact);
        // Only the first 16 addresses, none empty or too long, are kept.
        let many = (0..40)
            .map(|i| format!("/ip4/10.0.0.{i}/tcp/1"))
            .chain([String::new(), "x".repeat(MAX_CONTACT_ADDRESS_LEN + 1)]);
        let bounded = Contact::new(node(), many);
        assert_eq!(bounded.addresses.len(), MAX_CONTACT_ADDRESSES);
        assert_eq!(Contact::from_code(&bounded.to_code()).unwrap(), bounded);
        // A node with no addresses yet is still a contact (found by NodeId).
        let bare = Contact::new(node(), []);
        assert_eq!(Contact::from_code(&bare.to_code()).unwrap(), bare);
    }

    #[test]
    fn hostile_or_damaged_codes_are_refused_with_a_reason() {
        let id = node().to_string();
        let too_many: Vec<String> = (0..17).map(|i| format!("/ip4/10.0.0.{i}/tcp/1")).collect();
        let cases = [
            ("polykey-pair:abc".to_owned(), "polykey-contact:"),
            (format!("{CONTACT_PREFIX}!!!"), "damaged"),
            (
                format!("{CONTACT_PREFIX}{}", "A".repeat(MAX_CONTACT_CODE_LEN)),
                "too long",
            ),
            (code_of(r#"{"n":"vnotanode"}"#), "damaged"),
            (code_of(&format!(r#"{{"n":"{id}","x":1}}"#)), "damaged"),
            (
                code_of(&serde_json::json!({ "n": id, "a": too_many }).to_string()),
                "too many addresses",
            ),
            (code_of(&format!(r#"{{"n":"{id}","a":[""]}}"#)), "address"),
            (
                code_of(&format!(r#"{{"n":"{id}","a":["/ip4/1\u0000"]}}"#)),
                "address",
            ),
            (
                code_of(r#"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"#),
                "damaged",
            ),
        ];
        for (code, why) in cases {
            let error = Contact::from_code(&code).unwrap_err().to_string();
            assert!(error.contains(why), "{code}: {error}");
        }
    }
}

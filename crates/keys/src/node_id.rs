use std::fmt;
use std::str::FromStr;

use data_encoding::{Encoding, Specification};

/// Length of a NodeId in bytes: an Ed25519 public key.
pub const NODE_ID_LEN: usize = 32;

/// The multibase prefix for lowercase, unpadded base32hex.
const MULTIBASE_PREFIX: char = 'v';

fn base32hex_lower() -> Encoding {
    let mut spec = Specification::new();
    spec.symbols.push_str("0123456789abcdefghijklmnopqrstuv");
    spec.encoding()
        .unwrap_or_else(|_| unreachable!("static alphabet is valid"))
}

/// The public name of a node: its 32-byte Ed25519 public key.
///
/// Shown and parsed as multibase base32hex (lowercase, unpadded, prefixed
/// `v`), the format of the original Polykey, so its users keep their ids.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId([u8; NODE_ID_LEN]);

/// Why a string is not a NodeId.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NodeIdError {
    /// The text does not start with the multibase `v` prefix.
    #[error("a NodeId starts with 'v' (multibase base32hex)")]
    MissingPrefix,
    /// The text after the prefix is not lowercase base32hex.
    #[error("a NodeId uses only the characters 0-9 and a-v after its 'v' prefix")]
    InvalidCharacters,
    /// The text decodes to the wrong number of bytes.
    #[error("a NodeId encodes 32 bytes, this one encodes {0}")]
    WrongLength(usize),
}

impl NodeId {
    /// The NodeId of an Ed25519 public key.
    pub fn from_bytes(bytes: [u8; NODE_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw public key bytes.
    pub fn as_bytes(&self) -> &[u8; NODE_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{MULTIBASE_PREFIX}{}", base32hex_lower().encode(&self.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = NodeIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let body = text
            .trim()
            .strip_prefix(MULTIBASE_PREFIX)
            .ok_or(NodeIdError::MissingPrefix)?;
        let bytes = base32hex_lower()
            .decode(body.as_bytes())
            .map_err(|_| NodeIdError::InvalidCharacters)?;
        let array: [u8; NODE_ID_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| NodeIdError::WrongLength(bytes.len()))?;
        let id = Self(array);
        // Non-canonical trailing bits would give two strings for one id.
        if id.to_string() != text.trim() {
            return Err(NodeIdError::InvalidCharacters);
        }
        Ok(id)
    }
}

impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let id = NodeId::from_bytes([0xab; 32]);
        let text = id.to_string();
        assert!(text.starts_with('v'));
        assert_eq!(text.len(), 1 + 52);
        assert_eq!(text.parse::<NodeId>().unwrap(), id);
    }

    #[test]
    fn zero_key_has_known_text() {
        assert_eq!(
            NodeId::from_bytes([0; 32]).to_string(),
            format!("v{}", "0".repeat(52))
        );
    }

    #[test]
    fn malformed_ids_give_clear_errors() {
        let good = NodeId::from_bytes([1; 32]).to_string();
        assert_eq!("".parse::<NodeId>(), Err(NodeIdError::MissingPrefix));
        assert_eq!(good[1..].parse::<NodeId>(), Err(NodeIdError::MissingPrefix));
        assert_eq!(
            "vxyz!".parse::<NodeId>(),
            Err(NodeIdError::InvalidCharacters)
        );
        assert_eq!(
            good.to_uppercase().parse::<NodeId>(),
            Err(NodeIdError::MissingPrefix)
        );
        assert_eq!("v0000".parse::<NodeId>(), Err(NodeIdError::WrongLength(2)));
        let msg = "vzz".parse::<NodeId>().unwrap_err().to_string();
        assert!(msg.contains("0-9 and a-v"), "{msg}");
    }

    #[test]
    fn non_canonical_trailing_bits_are_rejected() {
        let good = NodeId::from_bytes([0; 32]).to_string();
        let mut bad = good.clone();
        bad.pop();
        bad.push('1');
        assert!(bad.parse::<NodeId>().is_err());
    }
}

//! OpenSSH signatures (PROTOCOL.sshsig), the format `git verify-commit`
//! checks when `gpg.format = ssh` and `ssh-keygen -Y verify` checks.
//!
//! The signed data starts with the magic `SSHSIG` and names its namespace,
//! so a signature made for one purpose (a commit: [`GIT_NAMESPACE`]; a
//! user's file: [`FILE_NAMESPACE`]) never verifies for another, nor as a bare
//! Ed25519 signature over other bytes.

use data_encoding::BASE64;
use sha2::{Digest, Sha512};

use crate::node_id::NodeId;
use crate::root::{verify, RootKeypair, Signature, SignatureError};

const MAGIC: &[u8] = b"SSHSIG";
const VERSION: u32 = 1;
const KEY_TYPE: &[u8] = b"ssh-ed25519";
const HASH: &[u8] = b"sha512";
const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const END: &str = "-----END SSH SIGNATURE-----";

/// The namespace of commit signatures, as git uses it.
pub const GIT_NAMESPACE: &str = "git";
/// The namespace of a user's signature over a file (`polykey keys sign`), as
/// `ssh-keygen -Y sign -n file` uses it.
pub const FILE_NAMESPACE: &str = "file";
/// The longest armored signature read. An ssh-ed25519 one is about 300
/// characters; this leaves room for line ends and longer namespaces, and
/// keeps a hostile input from being decoded whole.
pub const MAX_ARMORED_LEN: usize = 4096;
/// The longest namespace echoed back in an error.
const MAX_SHOWN_NAMESPACE: usize = 64;

/// Why an armored SSH signature was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SshSigError {
    /// The text is not an armored SSHSIG blob.
    #[error("malformed SSH signature")]
    Malformed,
    /// It was made for another purpose (namespace) than the one checked.
    #[error("the SSH signature was made in the namespace \"{found}\", not this one")]
    WrongNamespace {
        /// The signature's namespace, shown only if short and printable.
        found: String,
    },
    /// It was made with another key type or hash.
    #[error("unsupported SSH signature ({0})")]
    Unsupported(&'static str),
    /// The text is longer than [`MAX_ARMORED_LEN`].
    #[error("the SSH signature is too long")]
    TooLong,
    /// It was made by another key than expected.
    #[error("the SSH signature was made by another key")]
    WrongSigner,
    /// The signature does not match the message.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn public_key_blob(node: &NodeId) -> Vec<u8> {
    let mut blob = Vec::with_capacity(51);
    put_string(&mut blob, KEY_TYPE);
    put_string(&mut blob, node.as_bytes());
    blob
}

fn signed_data(namespace: &str, message: &[u8]) -> Vec<u8> {
    let mut data = MAGIC.to_vec();
    put_string(&mut data, namespace.as_bytes());
    put_string(&mut data, b"");
    put_string(&mut data, HASH);
    put_string(&mut data, &Sha512::digest(message));
    data
}

/// The node's public key in OpenSSH form: `ssh-ed25519 AAAA…`, for an
/// allowed-signers file.
pub fn ssh_public_key(node: &NodeId) -> String {
    format!("ssh-ed25519 {}", BASE64.encode(&public_key_blob(node)))
}

/// Sign `message` in `namespace` (git uses `"git"`), returning the armored
/// signature without a trailing newline.
pub fn sign(keys: &RootKeypair, namespace: &str, message: &[u8]) -> String {
    armor_blob(&signature_blob(keys, namespace, message))
}

/// Sign as [`sign`], returning the same signature unarmored: the base64 of
/// the SSHSIG blob on one line (what goes between the armor lines). A
/// command line passes it as one argument; [`armor`] makes it a `.sig` file.
pub fn sign_unarmored(keys: &RootKeypair, namespace: &str, message: &[u8]) -> String {
    BASE64.encode(&signature_blob(keys, namespace, message))
}

/// Armor an unarmored signature (see [`sign_unarmored`]) for
/// `ssh-keygen -Y verify -s`. Only an SSHSIG blob is armored.
pub fn armor(unarmored: &str) -> Result<String, SshSigError> {
    Ok(armor_blob(&decode_unarmored(unarmored)?))
}

fn signature_blob(keys: &RootKeypair, namespace: &str, message: &[u8]) -> Vec<u8> {
    let signature = keys.sign(&signed_data(namespace, message));
    let mut sig_blob = Vec::with_capacity(83);
    put_string(&mut sig_blob, KEY_TYPE);
    put_string(&mut sig_blob, &signature.0);

    let mut blob = MAGIC.to_vec();
    blob.extend_from_slice(&VERSION.to_be_bytes());
    put_string(&mut blob, &public_key_blob(&keys.node_id()));
    put_string(&mut blob, namespace.as_bytes());
    put_string(&mut blob, b"");
    put_string(&mut blob, HASH);
    put_string(&mut blob, &sig_blob);
    blob
}

fn armor_blob(blob: &[u8]) -> String {
    let encoded = BASE64.encode(blob);
    let mut armored = String::from(BEGIN);
    for line in encoded.as_bytes().chunks(70) {
        armored.push('\n');
        armored.push_str(&String::from_utf8_lossy(line));
    }
    armored.push('\n');
    armored.push_str(END);
    armored
}

fn decode_armored(armored: &str) -> Result<Vec<u8>, SshSigError> {
    if armored.len() > MAX_ARMORED_LEN {
        return Err(SshSigError::TooLong);
    }
    let body = armored
        .trim()
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.strip_suffix(END))
        .ok_or(SshSigError::Malformed)?;
    decode_unarmored(body)
}

fn decode_unarmored(text: &str) -> Result<Vec<u8>, SshSigError> {
    if text.len() > MAX_ARMORED_LEN {
        return Err(SshSigError::TooLong);
    }
    let body: String = text.split_whitespace().collect();
    let blob = BASE64
        .decode(body.as_bytes())
        .map_err(|_| SshSigError::Malformed)?;
    if !blob.starts_with(MAGIC) {
        return Err(SshSigError::Malformed);
    }
    Ok(blob)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SshSigError> {
        if self.0.len() < n {
            return Err(SshSigError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, SshSigError> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn string(&mut self) -> Result<&'a [u8], SshSigError> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

/// Verify an armored signature over `message` in `namespace`, and return the
/// NodeId that made it. Only the armored form is read (as git reads it).
pub fn verify_armored(
    armored: &str,
    namespace: &str,
    message: &[u8],
) -> Result<NodeId, SshSigError> {
    verify_blob(&decode_armored(armored)?, namespace, message)
}

/// Verify as [`verify_armored`] a signature given armored or unarmored (see
/// [`sign_unarmored`]).
pub fn verify_armored_or_unarmored(
    text: &str,
    namespace: &str,
    message: &[u8],
) -> Result<NodeId, SshSigError> {
    let blob = if text.trim_start().starts_with(BEGIN) {
        decode_armored(text)?
    } else {
        decode_unarmored(text)?
    };
    verify_blob(&blob, namespace, message)
}

fn verify_blob(blob: &[u8], namespace: &str, message: &[u8]) -> Result<NodeId, SshSigError> {
    let mut reader = Reader(blob);
    if reader.take(6)? != MAGIC || reader.u32()? != VERSION {
        return Err(SshSigError::Malformed);
    }
    let mut key = Reader(reader.string()?);
    if key.string()? != KEY_TYPE {
        return Err(SshSigError::Unsupported("key type"));
    }
    let public: [u8; 32] = key
        .string()?
        .try_into()
        .map_err(|_| SshSigError::Malformed)?;
    let found = reader.string()?;
    if found != namespace.as_bytes() {
        return Err(SshSigError::WrongNamespace {
            found: shown_namespace(found),
        });
    }
    reader.string()?; // reserved
    if reader.string()? != HASH {
        return Err(SshSigError::Unsupported("hash"));
    }
    let mut sig = Reader(reader.string()?);
    if sig.string()? != KEY_TYPE {
        return Err(SshSigError::Unsupported("signature type"));
    }
    let signature: [u8; 64] = sig
        .string()?
        .try_into()
        .map_err(|_| SshSigError::Malformed)?;
    let signer = NodeId::from_bytes(public);
    verify(
        &signer,
        &signed_data(namespace, message),
        &Signature(signature),
    )?;
    Ok(signer)
}

/// A namespace fit for an error message: short printable ASCII as it is,
/// anything else replaced (it comes from untrusted input).
fn shown_namespace(bytes: &[u8]) -> String {
    if bytes.len() <= MAX_SHOWN_NAMESPACE && bytes.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        "<unprintable>".to_owned()
    }
}

/// Verify as [`verify_armored`] and also require the signer to be `expected`.
pub fn verify_by(
    armored: &str,
    namespace: &str,
    message: &[u8],
    expected: &NodeId,
) -> Result<(), SshSigError> {
    if verify_armored(armored, namespace, message)? != *expected {
        return Err(SshSigError::WrongSigner);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trips_and_binds_message_namespace_and_key() {
        let keys = RootKeypair::from_seed(&[8; 32]);
        let armored = sign(&keys, "git", b"tree 123\n");
        assert!(armored.starts_with(BEGIN) && armored.ends_with(END));
        assert!(armored.lines().all(|l| l.len() <= 70));
        assert_eq!(
            verify_armored(&armored, "git", b"tree 123\n"),
            Ok(keys.node_id())
        );
        assert!(verify_armored(&armored, "git", b"tree 124\n").is_err());
        assert_eq!(
            verify_armored(&armored, "file", b"tree 123\n"),
            Err(SshSigError::WrongNamespace {
                found: "git".into()
            })
        );
        let other = RootKeypair::from_seed(&[9; 32]).node_id();
        assert_eq!(
            verify_by(&armored, "git", b"tree 123\n", &other),
            Err(SshSigError::WrongSigner)
        );
        assert_eq!(
            verify_armored("garbage", "git", b""),
            Err(SshSigError::Malformed)
        );
    }

    #[test]
    fn a_file_signature_is_not_a_commit_signature_nor_a_bare_one() {
        let keys = RootKeypair::from_seed(&[8; 32]);
        let armored = sign(&keys, FILE_NAMESPACE, b"tree 123\n");
        assert_eq!(
            verify_armored(&armored, FILE_NAMESPACE, b"tree 123\n"),
            Ok(keys.node_id())
        );
        assert_eq!(
            verify_armored(&armored, GIT_NAMESPACE, b"tree 123\n"),
            Err(SshSigError::WrongNamespace {
                found: "file".into()
            })
        );
        // The Ed25519 signature inside is over the SSHSIG data, not the file.
        let body: String = armored
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let blob = BASE64.decode(body.as_bytes()).unwrap();
        let inner: [u8; 64] = blob[blob.len() - 64..].try_into().unwrap();
        assert!(verify(&keys.node_id(), b"tree 123\n", &Signature(inner)).is_err());
    }

    #[test]
    fn the_unarmored_form_is_the_same_signature_on_one_line() {
        let keys = RootKeypair::from_seed(&[8; 32]);
        let bare = sign_unarmored(&keys, FILE_NAMESPACE, b"x");
        assert!(!bare.contains(char::is_whitespace) && !bare.starts_with('-'));
        assert_eq!(
            verify_armored_or_unarmored(&bare, FILE_NAMESPACE, b"x"),
            Ok(keys.node_id())
        );
        let armored = armor(&bare).unwrap();
        assert_eq!(armored, sign(&keys, FILE_NAMESPACE, b"x"));
        assert_eq!(
            verify_armored_or_unarmored(&armored, FILE_NAMESPACE, b"x"),
            Ok(keys.node_id())
        );
        // Git's reading stays strict: armored only.
        assert_eq!(
            verify_armored(&bare, FILE_NAMESPACE, b"x"),
            Err(SshSigError::Malformed)
        );
        // Base64 that is not an SSHSIG blob (a bare Ed25519 signature) is no
        // signature here, and is not armored.
        let raw = BASE64.encode(&keys.sign(b"x").0);
        assert_eq!(
            verify_armored_or_unarmored(&raw, FILE_NAMESPACE, b"x"),
            Err(SshSigError::Malformed)
        );
        assert_eq!(armor(&raw), Err(SshSigError::Malformed));
    }

    #[test]
    fn an_overlong_signature_is_refused_before_decoding() {
        let keys = RootKeypair::from_seed(&[8; 32]);
        let armored = sign(&keys, FILE_NAMESPACE, b"x");
        let padded = format!("{armored}{}", " ".repeat(MAX_ARMORED_LEN - armored.len()));
        assert_eq!(
            verify_armored(&padded, FILE_NAMESPACE, b"x"),
            Ok(keys.node_id())
        );
        let over = format!("{padded} ");
        assert_eq!(
            verify_armored(&over, FILE_NAMESPACE, b"x"),
            Err(SshSigError::TooLong)
        );
    }

    #[test]
    fn a_hostile_namespace_is_not_echoed() {
        let keys = RootKeypair::from_seed(&[8; 32]);
        let armored = sign(&keys, "line\nbreak", b"x");
        assert_eq!(
            verify_armored(&armored, FILE_NAMESPACE, b"x"),
            Err(SshSigError::WrongNamespace {
                found: "<unprintable>".into()
            })
        );
    }

    #[test]
    fn public_key_is_openssh_form() {
        let keys = RootKeypair::from_seed(&[8; 32]);
        let text = ssh_public_key(&keys.node_id());
        assert!(
            text.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"),
            "{text}"
        );
    }
}

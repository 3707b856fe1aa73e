//! Wire-format stability: a fixed recovery code must always give the same
//! NodeId. The expected value was computed independently (Python hashlib
//! PBKDF2-HMAC-SHA512 + PyNaCl Ed25519 + base64.b32hexencode), so this also
//! checks compatibility with the original Polykey's derivation.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use polykey_keys::{NodeId, RecoveryCode};

const CODE: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
    abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
    abandon abandon abandon abandon abandon art";
const NODE_ID: &str = "v3nhl5p2cqcpme9cju8pkksoe305aua8dt2da2ra81nip9oqe55gg";

#[test]
fn fixed_recovery_code_gives_fixed_node_id() {
    let code: RecoveryCode = CODE.parse().expect("valid code");
    let id = code.root_keypair().node_id();
    assert_eq!(id.to_string(), NODE_ID);
    assert_eq!(NODE_ID.parse::<NodeId>().expect("valid id"), id);
}

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

/// The original Polykey accepts 12-word codes too, with the same derivation
/// (`generateDeterministicKeyPair`: BIP39 seed of the words, first 32 bytes as
/// the Ed25519 seed). Computed independently (Python hashlib
/// PBKDF2-HMAC-SHA512 over the words with salt "mnemonic", 2048 rounds, then
/// `cryptography`'s Ed25519 and base64.b32hexencode), which also gives the
/// 24-word vector above.
const CODES_12_AND_24: [(&str, &str); 4] = [
    (
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
         abandon about",
        "vols5s635ms4972nvg5gtaso0cib6ceoqk4439osmrhb6gqd2opl0",
    ),
    (
        "legal winner thank year wave sausage worth useful legal winner thank yellow",
        "vorpaolcois67iopn2j9umn1kquvs7q9dkm676l5jf6bdj95f7ap0",
    ),
    (
        "abandon amount liar amount expire adjust cage candy arch gather drum buyer",
        "vlvu07mrnd0gmtttfi2ovfr1f3dpv0gcbvm8tjbie0kucrhd86nmg",
    ),
    (
        "abandon amount liar amount expire adjust cage candy arch gather drum bullet \
         absurd math era live bid rhythm alien crouch range attend journey unaware",
        "vda7aoa2o5o53m6fku7jpjkqc375ger9ot740k4s55a9cn22rlf6g",
    ),
];

#[test]
fn twelve_and_twenty_four_word_codes_give_the_original_polykeys_node_ids() {
    for (code, node_id) in CODES_12_AND_24 {
        let code: RecoveryCode = code.parse().expect("valid code");
        assert_eq!(code.root_keypair().node_id().to_string(), node_id);
    }
}

//! KeePass databases made here around a payload given whole: KDBX 4 as
//! KeePassXC seals it (ChaCha20, HMAC-SHA-256 blocks), with an AES-KDF of
//! no rounds so it opens at once. What lies past the password (the gzip,
//! the inner header, the XML) can then be fuzzed and tested: a database
//! the fuzzer makes from nothing never passes the header's HMAC.
//! Shared by the fuzz targets (`targets.rs`) and the node's import tests
//! (`crates/node/tests/node/import.rs`), which include this file.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// AES-KDF's UUID, as KDBX 3.1 and KeePassXC give it.
const AES_KDF: [u8; 16] = [
    0xc9, 0xd9, 0xf3, 0x9a, 0x62, 0x8a, 0x44, 0x60, 0xbf, 0x74, 0x0d, 0x08, 0xc1, 0x8a, 0x4f, 0xea,
];
/// The ChaCha20 cipher's UUID.
const CHACHA20: [u8; 16] = [
    0xd6, 0x03, 0x8a, 0x2b, 0x8b, 0x6f, 0x4c, 0xb5, 0xa5, 0x24, 0x33, 0x9a, 0x31, 0xdb, 0xb5, 0x9a,
];

/// One header field: its id, length and value.
fn field(out: &mut Vec<u8>, id: u8, value: &[u8]) {
    out.push(id);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The inner header KeePassXC writes before the XML: the protected
/// values' stream (ChaCha20) and its key. (Only the node's tests use it.)
#[allow(dead_code)]
pub fn inner_header() -> Vec<u8> {
    let mut out = Vec::new();
    field(&mut out, 1, &3u32.to_le_bytes());
    field(&mut out, 2, &[3u8; 64]);
    field(&mut out, 0, &[]);
    out
}

/// A KDBX 4 database that `password` opens, whose payload (the inner
/// header and XML, gzipped first when `gzip` says so) is `payload`.
pub fn sealed(password: &str, gzip: bool, payload: &[u8]) -> Vec<u8> {
    let (master_seed, kdf_seed, iv) = ([7u8; 32], [9u8; 32], [5u8; 12]);
    // The KDF's parameters: a variant dictionary of AES-KDF's UUID, no
    // rounds and its seed.
    let mut kdf = vec![0x00, 0x01];
    for (kind, name, value) in [
        (0x42, "$UUID", &AES_KDF[..]),
        (0x05, "R", &0u64.to_le_bytes()[..]),
        (0x42, "S", &kdf_seed[..]),
    ] {
        kdf.push(kind);
        kdf.extend_from_slice(&(name.len() as u32).to_le_bytes());
        kdf.extend_from_slice(name.as_bytes());
        kdf.extend_from_slice(&(value.len() as u32).to_le_bytes());
        kdf.extend_from_slice(value);
    }
    kdf.push(0);
    let mut header = Vec::new();
    header.extend_from_slice(&0x9AA2_D903u32.to_le_bytes());
    header.extend_from_slice(&0xB54B_FB67u32.to_le_bytes());
    header.extend_from_slice(&1u16.to_le_bytes()); // 4.1
    header.extend_from_slice(&4u16.to_le_bytes());
    field(&mut header, 2, &CHACHA20);
    field(&mut header, 3, &u32::from(gzip).to_le_bytes());
    field(&mut header, 4, &master_seed);
    field(&mut header, 7, &iv);
    field(&mut header, 11, &kdf);
    field(&mut header, 0, b"\r\n\r\n");
    // No AES rounds: the transformed key is the composite key's hash.
    let composite = Sha256::digest(Sha256::digest(password.as_bytes()));
    let transformed = Sha256::digest(composite);
    let master_key = Sha256::digest([&master_seed[..], &transformed].concat());
    let hmac_key = Sha512::digest([&master_seed[..], &transformed, &[1]].concat());
    let block_key = |index: u64| Sha512::digest([&index.to_le_bytes()[..], &hmac_key].concat());
    let mut out = header.clone();
    out.extend_from_slice(&Sha256::digest(&header));
    out.extend_from_slice(&hmac(&block_key(u64::MAX), &[&header]));
    let mut payload = payload.to_vec();
    chacha20::ChaCha20::new(&master_key, &iv.into()).apply_keystream(&mut payload);
    // The payload in one block, then the empty block that ends them.
    for (index, block) in [(0u64, &payload[..]), (1, &[][..])] {
        let size = (block.len() as u32).to_le_bytes();
        out.extend_from_slice(&hmac(
            &block_key(index),
            &[&index.to_le_bytes(), &size, block],
        ));
        out.extend_from_slice(&size);
        out.extend_from_slice(block);
    }
    out
}

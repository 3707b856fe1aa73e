//! What each fuzz target feeds to a decoder that input from outside
//! reaches. Shared by the libFuzzer targets (`fuzz/fuzz_targets/`, run with
//! `scripts/fuzz.sh TARGET SECONDS` on the nightly toolchain) and the
//! stable smoke test (`tests/fuzz_smoke.rs`), which replays the committed
//! seed corpora and mutations of them in every test run. A target passes
//! when the decoder returns, whatever it returns: a panic, a hang or an
//! unbounded allocation is the finding.

use std::sync::{Mutex, OnceLock};

use polykey_db::Db;
use polykey_gestalts::claims::SignedClaim;
use polykey_gestalts::contact::Contact;
use polykey_gestalts::pairing::Invitation;
use polykey_keys::RootKeypair;
use polykey_node::import::{bitwarden, csv, keepass, onepassword};
use polykey_vaults::items::Item;
use polykey_vaults::totp::Totp;
use polykey_vaults::{RawObject, Vault, Vaults};

/// A target: it takes any bytes and must return.
pub type Target = fn(&[u8]);

/// Every target by name, for the smoke test and the script.
pub const TARGETS: &[(&str, Target)] = &[
    ("wire", wire),
    ("codes", codes),
    ("claims", claims),
    ("otpauth", otpauth),
    ("item", item),
    ("import_csv", import_csv),
    ("import_bitwarden", import_bitwarden),
    ("import_1pux", import_1pux),
    ("import_kdbx", import_kdbx),
    ("transfer", transfer),
];

/// A peer's request or response on the wire (CBOR), as the codec decodes
/// it after the size bound.
pub fn wire(data: &[u8]) {
    let _ = polykey_network::decode_request(data);
    let _ = polykey_network::decode_response(data);
}

/// Invitation codes (with their words) and contact codes, as typed or
/// pasted.
pub fn codes(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Invitation::from_code(text);
        let _ = Contact::from_code(text);
    }
}

/// A claim as a peer or an identity provider serves it, then its payload.
pub fn claims(data: &[u8]) {
    if let Ok(claim) = SignedClaim::from_json(data) {
        let _ = claim.decode();
    }
}

/// An `otpauth://` URI (or a bare secret) from a QR code or an import, and
/// a code from it.
pub fn otpauth(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(totp) = Totp::parse(text) {
            let _ = totp.code_at(1_700_000_000);
        }
    }
}

/// A typed item's JSON as stored in a secret (another device wrote it).
pub fn item(data: &[u8]) {
    if let Ok(item) = Item::from_bytes(data) {
        let _ = item.to_bytes();
        let _ = item.totp_code(1_700_000_000);
    }
}

/// A CSV export: its header row and its rows.
pub fn import_csv(data: &[u8]) {
    let _ = csv::headers(data);
    let _ = csv::read(data, None);
}

/// A Bitwarden JSON export (not encrypted).
pub fn import_bitwarden(data: &[u8]) {
    let _ = bitwarden::read(data, None);
}

/// A 1Password 1PUX export (a zip).
pub fn import_1pux(data: &[u8]) {
    let _ = onepassword::read(data);
}

/// A KeePass database (the header's bounds are checked before any key is
/// derived).
pub fn import_kdbx(data: &[u8]) {
    let _ = keepass::read(data, Some("password"), None);
}

/// One store and vault for every `transfer` input of a process.
fn store() -> &'static Mutex<(tempfile::TempDir, Db, Vault)> {
    static STORE: OnceLock<Mutex<(tempfile::TempDir, Db, Vault)>> = OnceLock::new();
    STORE.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .unwrap_or_else(|e| panic!("a scratch folder: {e}"));
        let keys = RootKeypair::from_seed(&[9; 32]);
        let db = Db::create(&dir.path().join("db.redb"), &keys)
            .unwrap_or_else(|e| panic!("a store: {e}"));
        let vault = Vaults::new(&db)
            .create("fuzz", &keys)
            .unwrap_or_else(|e| panic!("a vault: {e}"));
        Mutex::new((dir, db, vault))
    })
}

/// A set of git objects another copy sends (`Vault::import`): each framed
/// as a kind byte (bit 2: a tree sent as a delta against the 20-byte id
/// that follows), a little-endian u16 length and its bytes.
pub fn transfer(mut data: &[u8]) {
    let mut objects = Vec::new();
    while data.len() >= 3 && objects.len() < 64 {
        let tag = data[0];
        let len = usize::from(u16::from_le_bytes([data[1], data[2]]));
        data = &data[3..];
        let base = if tag & 4 != 0 && data.len() >= 20 {
            let hex: String = data[..20].iter().map(|b| format!("{b:02x}")).collect();
            data = &data[20..];
            Some(hex)
        } else {
            None
        };
        let take = len.min(data.len());
        let kind = match tag % 3 {
            0 => gix::objs::Kind::Blob,
            1 => gix::objs::Kind::Tree,
            _ => gix::objs::Kind::Commit,
        };
        objects.push(RawObject {
            base,
            kind,
            data: data[..take].to_vec(),
        });
        data = &data[take..];
    }
    let guard = store().lock().unwrap_or_else(|e| e.into_inner());
    let (_, db, vault) = &*guard;
    let _ = vault.import(db, &objects);
}

//! What each fuzz target feeds to a decoder that input from outside
//! reaches. Shared by the libFuzzer targets (`fuzz/fuzz_targets/`, run with
//! `scripts/fuzz.sh TARGET SECONDS` on the nightly toolchain) and the
//! stable smoke test (`tests/fuzz_smoke.rs`), which replays the committed
//! seed corpora and mutations of them in every test run. A target passes
//! when the decoder returns, whatever it returns: a panic, a hang or an
//! unbounded allocation is the finding.

use std::sync::{Mutex, OnceLock};

use data_encoding::BASE64URL_NOPAD;
use polykey_db::Db;
use polykey_gestalts::claims::{ClaimSignature, SignedClaim};
use polykey_gestalts::contact::{Contact, CONTACT_PREFIX};
use polykey_gestalts::pairing::{Invitation, CODE_PREFIX as INVITATION_PREFIX};
use polykey_keys::RootKeypair;
use polykey_node::import::{bitwarden, csv, keepass, onepassword};
use polykey_vaults::items::Item;
use polykey_vaults::totp::Totp;
use polykey_vaults::{RawObject, Vault, Vaults};

/// KeePass databases sealed around a payload given whole.
#[path = "kdbx.rs"]
pub mod kdbx;

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
    ("import_kdbx_payload", import_kdbx_payload),
    ("transfer", transfer),
    ("merge", merge),
];

/// A peer's request or response on the wire (CBOR), as the codec decodes
/// it after the size bound.
pub fn wire(data: &[u8]) {
    let _ = polykey_network::decode_request(data);
    let _ = polykey_network::decode_response(data);
}

/// Invitation codes (with their words) and contact codes, as typed or
/// pasted. The first byte says what the rest is: text as typed (0), or
/// the JSON inside an invitation (1) or a contact code (2), wrapped here
/// so that mutations reach the JSON rather than break its base64.
pub fn codes(data: &[u8]) {
    let Some((&how, rest)) = data.split_first() else {
        return;
    };
    let text = match how % 3 {
        0 => match std::str::from_utf8(rest) {
            Ok(text) => text.to_owned(),
            Err(_) => return,
        },
        1 => format!("{INVITATION_PREFIX}{}", BASE64URL_NOPAD.encode(rest)),
        _ => format!("{CONTACT_PREFIX}{}", BASE64URL_NOPAD.encode(rest)),
    };
    let _ = Invitation::from_code(&text);
    let _ = Contact::from_code(&text);
}

/// The two nodes whose keys sign the claims the `claims` target makes.
pub fn claim_signers() -> &'static [RootKeypair; 2] {
    static KEYS: OnceLock<[RootKeypair; 2]> = OnceLock::new();
    KEYS.get_or_init(|| [1u8, 2].map(|seed| RootKeypair::from_seed(&[seed; 32])))
}

/// Claims and sigchains as a peer or an identity provider serves them.
/// The first byte says what the rest is: a claim token's JSON (even), or
/// (odd) up to 8 claims split at 0xFF bytes, each a byte (bit 0: also
/// signed by the second node) and its payload's JSON, that the target signs
/// with the first of [`claim_signers`], so that mutations reach what is
/// checked after the signatures: each claim is verified, then the whole as
/// the first node's chain.
pub fn claims(data: &[u8]) {
    let Some((&how, rest)) = data.split_first() else {
        return;
    };
    if how % 2 == 0 {
        if let Ok(claim) = SignedClaim::from_json(rest) {
            let _ = claim.verify();
            let _ =
                polykey_gestalts::sigchain::verify_chain(&claim_signers()[0].node_id(), &[claim]);
        }
        return;
    }
    let chain: Vec<SignedClaim> = rest
        .split(|&b| b == 0xff)
        .take(8)
        .filter_map(|claim| {
            let (&flags, payload) = claim.split_first()?;
            let signers = if flags & 1 != 0 { 2 } else { 1 };
            let payload = BASE64URL_NOPAD.encode(payload);
            let signatures = claim_signers()[..signers]
                .iter()
                .map(|keys| {
                    let protected = BASE64URL_NOPAD.encode(
                        format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, keys.node_id()).as_bytes(),
                    );
                    let signature = keys.sign(format!("{protected}.{payload}").as_bytes());
                    ClaimSignature {
                        protected,
                        signature: BASE64URL_NOPAD.encode(&signature.0),
                    }
                })
                .collect();
            let claim = SignedClaim {
                payload,
                signatures,
            };
            let _ = claim.verify();
            SignedClaim::from_json(&claim.to_json()).ok()
        })
        .collect();
    let _ = polykey_gestalts::sigchain::verify_chain(&claim_signers()[0].node_id(), &chain);
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

/// What a KeePass database holds past its password: the inner header
/// (attachments among it) and the XML, sealed here around the input so
/// that every input opens (a database made from nothing never passes the
/// header's HMAC, so `import_kdbx` stops there).
pub fn import_kdbx_payload(data: &[u8]) {
    let sealed = kdbx::sealed("password", false, data);
    let _ = keepass::read(&sealed, Some("password"), None);
}

/// One store and vault for every `transfer` input of a process.
/// A scratch folder, in memory where there is one.
fn scratch() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .unwrap_or_else(|e| panic!("a scratch folder: {e}"))
}

fn store() -> &'static Mutex<(tempfile::TempDir, Db, Vault)> {
    static STORE: OnceLock<Mutex<(tempfile::TempDir, Db, Vault)>> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = scratch();
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

/// A merge over arbitrary trees: two devices' copies of a vault diverge by
/// the input's writes, removals, renames and syncs, over names that
/// collide every way a merge meets (a secret and a directory of one name,
/// a merge's copy names taken by secrets and by directories, a copy's
/// copy), then sync both ways. Each 3 bytes are one step: the device and
/// what it does, then two names. A local change the vault refuses is
/// skipped; a merge that fails, copies that do not converge, or a version
/// missing from history is a finding (a panic).
pub fn merge(data: &[u8]) {
    use polykey_vaults::{conflict_copy_path, MergeOutcome, VaultError};
    let mut names: Vec<String> = ["a", "b", "dir", "dir/c", "e/f", "a/x"]
        .map(String::from)
        .to_vec();
    for taken in ["a", "dir"] {
        let copy = conflict_copy_path(taken);
        names.push(format!("{copy}/y"));
        names.push(conflict_copy_path(&copy));
        names.push(copy);
    }
    let devices: Vec<(tempfile::TempDir, Db, RootKeypair)> = (1..=2u8)
        .map(|seed| {
            let dir = scratch();
            let keys = RootKeypair::from_seed(&[seed; 32]);
            let db = Db::create(&dir.path().join("db.redb"), &keys)
                .unwrap_or_else(|e| panic!("a store: {e}"));
            (dir, db, keys)
        })
        .collect();
    let first = Vaults::new(&devices[0].1)
        .create("merge", &devices[0].2)
        .unwrap_or_else(|e| panic!("a vault: {e}"));
    let (head, objects) = first
        .objects_for(&devices[0].1, &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let second = Vaults::new(&devices[1].1)
        .clone_vault("merge", &first.id().to_string(), &head, &objects)
        .unwrap_or_else(|e| panic!("a clone: {e}"));
    let vaults = [first, second];
    let head = |i: usize| {
        vaults[i]
            .head(&devices[i].1)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    // What `to` lacks from `from`, sent and merged there.
    let sync = |from: usize, to: usize| -> MergeOutcome {
        let theirs = head(to);
        let (their_head, objects) = vaults[from]
            .objects_for(&devices[from].1, &[theirs])
            .unwrap_or_else(|e| panic!("objects to send: {e}"));
        vaults[to]
            .import(&devices[to].1, &objects)
            .unwrap_or_else(|e| panic!("import: {e}"));
        vaults[to]
            .merge(&devices[to].1, &devices[to].2, &their_head)
            .unwrap_or_else(|e| panic!("merge: {e}"))
    };
    let mut committed = vec![head(0)];
    for (step, chunk) in data.chunks_exact(3).take(48).enumerate() {
        let on = usize::from(chunk[0] & 1);
        let (db, keys, vault) = (&devices[on].1, &devices[on].2, &vaults[on]);
        let name = names[usize::from(chunk[1]) % names.len()].as_str();
        let other = names[usize::from(chunk[2]) % names.len()].as_str();
        let done = match (chunk[0] >> 1) % 6 {
            0..=2 => vault.write_secret(db, keys, name, format!("{step}").as_bytes()),
            3 => vault.remove(db, keys, name, true),
            4 => vault.rename(db, keys, name, other),
            _ => {
                sync(1 - on, on);
                Ok(String::new())
            }
        };
        match done {
            Ok(_) => committed.push(head(on)),
            Err(
                VaultError::NotFound(_)
                | VaultError::AlreadyExists(_)
                | VaultError::InvalidPath(_)
                | VaultError::WrongKind(..)
                | VaultError::DirectoryNotEmpty(_),
            ) => {}
            Err(e) => panic!("step {step} failed: {e}"),
        }
    }
    for _ in 0..3 {
        if head(0) == head(1) {
            break;
        }
        sync(1, 0);
        committed.push(head(0));
        sync(0, 1);
        committed.push(head(1));
    }
    assert_eq!(head(0), head(1), "the copies did not converge");
    let history: std::collections::BTreeSet<String> = vaults[0]
        .log(&devices[0].1, None)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|c| c.id)
        .collect();
    for version in &committed {
        assert!(history.contains(version), "version {version} was lost");
    }
}

//! The node's keys: `polykey keys sign/verify` (user signatures are SSH
//! signatures in their own namespace, `file`, checked here with the real
//! `ssh-keygen`, and never stand in for a claim or a commit signature made
//! with the same key), and recovery codes of 12 and 24 words.

use std::path::Path;
use std::process::Command;

use data_encoding::{BASE64, BASE64URL_NOPAD};
use polykey_gestalts::claims::{ClaimPayload, ClaimSignature, ClaimType, SignedClaim};
use polykey_keys::kdf::KdfFloor;
use polykey_keys::{sshsig, RootKeypair};
use polykey_keys::{KdfParams, RecoveryCode, RecoveryCodeError, WrappedRootKey};
use polykey_node::{keyops, Node, NodeError, NodeId};

use crate::{open, PASSWORD};

const MESSAGE: &[u8] = b"the release tarball, byte for byte\n";

async fn unlocked(dir: &Path) -> (Node, NodeId) {
    let node = open(dir).await;
    let created = node.create(PASSWORD.into()).await.unwrap();
    (node, created.node_id)
}

/// Run `ssh-keygen -Y verify` for `signer` over `message` in `namespace`;
/// whether it accepted the signature.
fn ssh_keygen_verifies(
    dir: &Path,
    signer: &NodeId,
    namespace: &str,
    signature: &str,
    message: &[u8],
) -> bool {
    let allowed = dir.join("allowed_signers");
    std::fs::write(
        &allowed,
        format!("node@polykey {}\n", sshsig::ssh_public_key(signer)),
    )
    .unwrap();
    let sig = dir.join("message.sig");
    std::fs::write(&sig, format!("{signature}\n")).unwrap();
    let message_file = dir.join("message");
    std::fs::write(&message_file, message).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&allowed)
        .args(["-I", "node@polykey", "-n", namespace, "-s"])
        .arg(&sig)
        .stdin(std::fs::File::open(&message_file).unwrap())
        .output()
        .expect("ssh-keygen runs (openssh-client is installed)");
    out.status.success()
}

/// The raw Ed25519 signature a `keys sign` output carries, whatever its form:
/// the 64 bytes themselves (base64), or the signature inside an SSHSIG blob.
fn raw_signature(output: &str) -> [u8; 64] {
    let text = output.trim();
    let body: String = match text
        .strip_prefix("-----BEGIN SSH SIGNATURE-----")
        .and_then(|rest| rest.strip_suffix("-----END SSH SIGNATURE-----"))
    {
        Some(body) => body.split_whitespace().collect(),
        None => text.to_owned(),
    };
    let bytes = BASE64.decode(body.as_bytes()).unwrap();
    // An SSHSIG blob ends with string(string("ssh-ed25519") string(sig)).
    bytes[bytes.len() - 64..].try_into().unwrap()
}

#[tokio::test]
async fn user_signatures_are_sshsig_in_namespace_file_as_ssh_keygen_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let (node, id) = unlocked(dir.path()).await;
    let signature = node.sign_file(MESSAGE.to_vec()).await.unwrap();
    assert!(
        signature.starts_with("-----BEGIN SSH SIGNATURE-----"),
        "{signature}"
    );
    assert_eq!(keyops::USER_SIGNATURE_NAMESPACE, "file");

    let work = tempfile::tempdir().unwrap();
    assert!(
        ssh_keygen_verifies(work.path(), &id, "file", &signature, MESSAGE),
        "ssh-keygen -Y verify -n file accepts a keys sign signature"
    );
    assert!(
        !ssh_keygen_verifies(work.path(), &id, "git", &signature, MESSAGE),
        "ssh-keygen -Y verify -n git (commit signatures) refuses it"
    );
    assert!(
        !ssh_keygen_verifies(work.path(), &id, "file", &signature, b"another file"),
        "ssh-keygen refuses it over other bytes"
    );

    // Our own verification agrees, and never in the commit namespace.
    assert!(keyops::verify(&id, MESSAGE, &signature).unwrap());
    assert!(!keyops::verify(&id, b"another file", &signature).unwrap());
    let stranger = RootKeypair::from_seed(&[7; 32]).node_id();
    assert!(!keyops::verify(&stranger, MESSAGE, &signature).unwrap());
    assert!(sshsig::verify_armored(&signature, "git", MESSAGE).is_err());

    // The name the CLI calls gives the same format.
    let again = node.sign_base64(MESSAGE.to_vec()).await.unwrap();
    assert!(again.starts_with("-----BEGIN SSH SIGNATURE-----"));
    assert!(keyops::verify(&id, MESSAGE, &again).unwrap());
    // One line (the base64 between the armor lines) is read too.
    let line: String = again.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(keyops::verify(&id, MESSAGE, &line).unwrap());
    assert!(!keyops::verify(&id, b"another file", &line).unwrap());
}

#[test]
fn a_commit_signature_or_a_raw_signature_is_not_a_user_signature() {
    let keys = RootKeypair::from_seed(&[11; 32]);
    let id = keys.node_id();
    // A commit signature by the same key over the same bytes: valid in `git`,
    // refused by `keys verify` with a clear error.
    let commit_signature = sshsig::sign(&keys, "git", MESSAGE);
    let err = keyops::verify(&id, MESSAGE, &commit_signature).unwrap_err();
    assert!(err.to_string().contains("file"), "{err}");
    // A bare Ed25519 signature (what `keys sign` wrote before) is refused.
    let raw = BASE64.encode(&keys.sign(MESSAGE).0);
    let err = keyops::verify(&id, MESSAGE, &raw).unwrap_err();
    assert!(err.to_string().contains("SSH signature"), "{err}");
}

#[tokio::test]
async fn a_keys_sign_signature_over_a_claim_does_not_verify_as_that_claim() {
    let dir = tempfile::tempdir().unwrap();
    let (node, id) = unlocked(dir.path()).await;
    // A revocation needs its issuer's signature alone: the most valuable
    // claim to forge. The attacker crafts one by this node against a device.
    let victim = RootKeypair::from_seed(&[42; 32]).node_id();
    let payload = ClaimPayload {
        jti: polykey_gestalts::claims::new_claim_id(1_700_000_000_000),
        iat: 1_700_000_000,
        nbf: 1_700_000_000,
        seq: 1,
        prev_claim_id: None,
        prev_digest: None,
        typ: ClaimType::ClaimRevokeNode,
        iss: id,
        sub: victim,
        heads: None,
        identity: None,
        name: None,
    };
    let payload = BASE64URL_NOPAD.encode(&serde_json::to_vec(&payload).unwrap());
    let protected = BASE64URL_NOPAD.encode(format!(r#"{{"alg":"EdDSA","kid":"{id}"}}"#).as_bytes());
    // The file a user is talked into signing: exactly the claim's signing
    // input.
    let crafted = format!("{protected}.{payload}");
    let output = node
        .sign_base64(crafted.clone().into_bytes())
        .await
        .unwrap();

    let forged = SignedClaim {
        payload,
        signatures: vec![ClaimSignature {
            protected,
            signature: BASE64URL_NOPAD.encode(&raw_signature(&output)),
        }],
    };
    assert!(
        forged.verify().is_err(),
        "a keys sign output over a claim's bytes must not make a valid claim"
    );
    // The user signature itself is valid, as a user signature.
    assert!(keyops::verify(&id, crafted.as_bytes(), &output).unwrap());
}

/// The original Polykey's 12-word code of zero entropy and its NodeId
/// (computed independently: see polykey-keys `tests/vectors.rs`).
const CODE_12: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                       abandon abandon abandon about";
const NODE_ID_12: &str = "vols5s635ms4972nvg5gtaso0cib6ceoqk4439osmrhb6gqd2opl0";

/// Recover in `dir` with `code`; the NodeId, after checking the existing
/// vault is there (if any) and that a second recovery finds it again.
async fn recover_twice(dir: &Path, code: &str) -> NodeId {
    let node = open(dir).await;
    node.recover(code, PASSWORD.into()).await.unwrap();
    let id = node.status().node_id.unwrap();
    node.create_vault("kept".into()).await.unwrap();
    node.lock().await.unwrap();
    // The same code on the same device reopens the existing data.
    node.recover(code, "a different password".into())
        .await
        .unwrap();
    assert_eq!(node.status().node_id, Some(id));
    let names: Vec<String> = node
        .vaults()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["kept"]);
    id
}

#[tokio::test]
async fn a_12_word_code_recovers_the_same_node_id() {
    let first = tempfile::tempdir().unwrap();
    let id = recover_twice(first.path(), CODE_12).await;
    assert_eq!(id.to_string(), NODE_ID_12);
    // On another device, with the words typed loosely, the same identity.
    let second = tempfile::tempdir().unwrap();
    let node = open(second.path()).await;
    let typed = format!("  {}\n", CODE_12.to_uppercase().replace(' ', "   "));
    node.recover(&typed, PASSWORD.into()).await.unwrap();
    assert_eq!(node.status().node_id, Some(id));
}

#[tokio::test]
async fn a_24_word_code_recovers_the_same_node_id() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let created = node.create(PASSWORD.into()).await.unwrap();
    let code = created.recovery_code.expose_secret();
    assert_eq!(code.split(' ').count(), 24, "new nodes keep 24 words");
    drop(node);
    let other = tempfile::tempdir().unwrap();
    assert_eq!(recover_twice(other.path(), &code).await, created.node_id);
}

#[tokio::test]
async fn a_wrong_checksum_word_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let wrong = CODE_12.replace("about", "abandon");
    let err = node.recover(&wrong, PASSWORD.into()).await.unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::InvalidRecoveryCode(RecoveryCodeError::Checksum)
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("checksum"), "{message}");
    assert!(!message.contains("abandon"), "{message}");
    // Nothing was written: the directory holds no node yet.
    assert!(node.status().node_id.is_none());
    let err = node
        .recover("abandon abandon abandon", PASSWORD.into())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("12 or 24 words"), "{err}");
}

#[tokio::test]
async fn a_key_file_below_the_kdf_floor_does_not_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    node.recover(CODE_12, PASSWORD.into()).await.unwrap();
    node.lock().await.unwrap();
    drop(node);

    // The same root key under the same password, rewritten with 8 KiB and
    // one pass (cheap to guess): a file a planted or switched build could
    // leave. Its seal is genuine, so only the floor can refuse it.
    let keys = CODE_12.parse::<RecoveryCode>().unwrap().root_keypair();
    let mut weak = KdfParams::fast_for_tests();
    weak.memory_kib = 8;
    let kek = weak
        .derive_with_floor(
            &PASSWORD.into(),
            KdfFloor {
                memory_kib: 8,
                iterations: 1,
            },
        )
        .unwrap();
    let associated = [
        b"polykey/root-key/v1:".as_slice(),
        keys.node_id().as_bytes(),
    ]
    .concat();
    let file = WrappedRootKey {
        version: 1,
        node_id: keys.node_id(),
        sealed_seed: kek.seal(keys.expose_seed().as_ref(), &associated),
        kdf: weak,
    };
    std::fs::write(
        dir.path().join("root_key.json"),
        serde_json::to_vec_pretty(&file).unwrap(),
    )
    .unwrap();

    let node = open(dir.path()).await;
    let err = node.unlock(PASSWORD.into()).await.unwrap_err();
    assert!(matches!(err, NodeError::KeyFileCorrupt), "{err:?}");
    assert!(err.to_string().contains("recovery code"), "{err}");
    // The recovery code rewrites it at the build's profile, and it unlocks.
    node.recover(CODE_12, PASSWORD.into()).await.unwrap();
    node.lock().await.unwrap();
    node.unlock(PASSWORD.into()).await.unwrap();
}

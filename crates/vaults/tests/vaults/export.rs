use std::path::Path;
use std::process::Command;

use polykey_vaults::{VaultError, Vaults};

use crate::fixture;

pub fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", repo.parent().unwrap())
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Check with `git verify-commit` that every commit of the exported
/// repository `out` is signed by `keys`; returns the allowed-signers file.
pub fn verify_every_commit(out: &Path, keys: &polykey_keys::RootKeypair) -> std::path::PathBuf {
    let allowed = out.parent().unwrap().join("allowed_signers");
    let principal = format!("{}@polykey", keys.node_id());
    let public = polykey_keys::sshsig::ssh_public_key(&keys.node_id());
    std::fs::write(&allowed, format!("{principal} {public}\n")).unwrap();
    let allowed_config = format!("gpg.ssh.allowedSignersFile={}", allowed.display());
    for commit in git(out, &["rev-list", "HEAD"]).lines() {
        let verified = Command::new("git")
            .arg("--git-dir")
            .arg(out)
            .args([
                "-c",
                "gpg.format=ssh",
                "-c",
                &allowed_config,
                "verify-commit",
                "-v",
                commit,
            ])
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "commit {commit} did not verify: {}",
            String::from_utf8_lossy(&verified.stderr)
        );
        assert!(String::from_utf8_lossy(&verified.stderr).contains("Good \"git\" signature"));
    }
    allowed
}

#[test]
fn exported_repository_passes_fsck_and_verifies_every_commit() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    vault
        .write_secret(&f.db, &f.keys, "email/work", b"pw")
        .unwrap();
    vault.mkdir(&f.db, &f.keys, "empty").unwrap();
    vault
        .write_secret(&f.db, &f.keys, "email/work", b"pw2")
        .unwrap();
    vault.rename(&f.db, &f.keys, "email", "mail").unwrap();

    let out = f.dir.path().join("export.git");
    vault.export_bare(&f.db, &out).unwrap();
    git(&out, &["fsck", "--strict", "--no-dangling"]);
    assert_eq!(git(&out, &["rev-list", "--count", "HEAD"]).trim(), "5");
    assert_eq!(
        git(&out, &["rev-parse", "HEAD"]).trim(),
        vault.head(&f.db).unwrap()
    );
    assert_eq!(git(&out, &["show", "HEAD:mail/work"]), "pw2");

    let allowed = verify_every_commit(&out, &f.keys);
    let principal = format!("{}@polykey", f.keys.node_id());
    let allowed_config = format!("gpg.ssh.allowedSignersFile={}", allowed.display());

    // A key that is not allowed makes verification fail: the check is real.
    let stranger = polykey_keys::RootKeypair::from_seed(&[7; 32]);
    let stranger_key = polykey_keys::sshsig::ssh_public_key(&stranger.node_id());
    std::fs::write(&allowed, format!("{principal} {stranger_key}\n")).unwrap();
    let refused = Command::new("git")
        .arg("--git-dir")
        .arg(&out)
        .args([
            "-c",
            "gpg.format=ssh",
            "-c",
            &allowed_config,
            "verify-commit",
            "HEAD",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

#[test]
fn export_refuses_a_non_empty_target() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    let target = f.dir.path().join("taken");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("file"), b"mine").unwrap();
    assert!(matches!(
        vault.export_bare(&f.db, &target),
        Err(VaultError::Export(_))
    ));
    assert_eq!(std::fs::read(target.join("file")).unwrap(), b"mine");
}

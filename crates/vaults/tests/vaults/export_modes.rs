//! An export holds plaintext: it is written 0600/0700 whatever the umask,
//! and never through a symlink.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use polykey_vaults::{VaultError, Vaults};

use crate::fixture;

/// Every entry under `root` (and `root` itself) with its permission bits.
fn modes(root: &Path) -> Vec<(String, bool, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        out.push((
            path.display().to_string(),
            meta.is_dir(),
            meta.permissions().mode() & 0o777,
        ));
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        }
    }
    out
}

#[test]
fn export_writes_private_files_and_directories() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    vault
        .write_secret(&f.db, &f.keys, "email/work", b"pw")
        .unwrap();
    // A fresh target and an existing empty one readable by all.
    let fresh = f.dir.path().join("fresh.git");
    let existing = f.dir.path().join("existing.git");
    std::fs::create_dir(&existing).unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o755)).unwrap();
    for target in [&fresh, &existing] {
        vault.export_bare(&f.db, target).unwrap();
        let all = modes(target);
        assert!(all.len() > 8, "{all:?}");
        for (path, is_dir, mode) in all {
            let want = if is_dir { 0o700 } else { 0o600 };
            assert_eq!(mode, want, "{path} is {mode:o}");
        }
    }
}

#[test]
fn export_refuses_a_symlinked_target() {
    let f = fixture();
    let vault = Vaults::new(&f.db).create("v", &f.keys).unwrap();
    vault
        .write_secret(&f.db, &f.keys, "email/work", b"pw")
        .unwrap();
    // A link to an empty directory and a dangling link: both refused,
    // nothing written where they point.
    let elsewhere = f.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let link = f.dir.path().join("link.git");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    assert!(matches!(
        vault.export_bare(&f.db, &link),
        Err(VaultError::Export(_))
    ));
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    let missing = f.dir.path().join("missing");
    let dangling = f.dir.path().join("dangling.git");
    std::os::unix::fs::symlink(&missing, &dangling).unwrap();
    assert!(matches!(
        vault.export_bare(&f.db, &dangling),
        Err(VaultError::Export(_))
    ));
    assert!(!missing.exists());
}

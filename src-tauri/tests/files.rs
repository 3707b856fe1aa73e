//! "Save secret as file" writes a file only its owner can read, never
//! through a symlink.
#![allow(clippy::unwrap_used)]

use polykey_desktop::files::write_private;

#[cfg(unix)]
#[test]
fn a_saved_secret_is_private_even_over_an_open_file_and_never_follows_a_link() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    let fresh = dir.path().join("fresh");
    write_private(&fresh, b"secret one").unwrap();
    assert_eq!(mode(&fresh), 0o600);

    // Saved over a file everyone could read: it is private now, and holds
    // only the new bytes; a reader who had the old file open never sees
    // them.
    let open = dir.path().join("id_ed25519");
    std::fs::write(&open, b"a much longer old content").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut earlier = std::fs::File::open(&open).unwrap();
    write_private(&open, b"secret two").unwrap();
    assert_eq!(mode(&open), 0o600);
    assert_eq!(std::fs::read(&open).unwrap(), b"secret two");
    let mut seen = Vec::new();
    std::io::Read::read_to_end(&mut earlier, &mut seen).unwrap();
    assert_eq!(seen, b"a much longer old content");
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // Through a link: refused, and the file it points to is untouched.
    let other = dir.path().join("shared.txt");
    std::fs::write(&other, b"public").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&other, &link).unwrap();
    assert!(write_private(&link, b"secret three").is_err());
    assert_eq!(std::fs::read(&other).unwrap(), b"public");
}

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

/// The name the save dialog offers for a secret holds no character that
/// turns it around: `scan\u{202E}fdp.exe` read as "scanexe.pdf".
#[test]
fn a_saved_secret_is_offered_under_a_name_that_reads_as_it_is() {
    use polykey_desktop::files::suggested_name;
    assert_eq!(suggested_name("docs/scan\u{202E}fdp.exe"), "scanfdp.exe");
    assert_eq!(suggested_name("id_ed25519"), "id_ed25519");
    assert_eq!(suggested_name("keys/\u{200B}\u{202E}"), "secret");
    assert_eq!(suggested_name("a/.."), "secret");
}

/// Only websites that read as where they go open in the browser.
#[test]
fn a_link_opens_only_if_it_reads_as_where_it_goes() {
    use polykey_desktop::files::openable_url;
    assert_eq!(
        openable_url(" https://bank.example/login ").unwrap(),
        "https://bank.example/login"
    );
    for refused in [
        "file:///etc/passwd",
        "javascript:alert(1)",
        // Shown as bank.example, goes to evil.example.
        "https://bank.example@evil.example/",
        "https://bank.example:pw@evil.example/",
        // Shown turned around by a right-to-left override.
        "https://\u{202E}@evil.net/moc.knab",
        "https://bank.example\u{200B}.evil.example/",
        "https://",
    ] {
        assert!(openable_url(refused).is_err(), "{refused:?}");
    }
}

/// The app's windows show only its own pages.
#[test]
fn the_windows_show_only_the_app_s_own_pages() {
    use polykey_desktop::is_app_url;
    let url = |u: &str| tauri::Url::parse(u).unwrap();
    let (own, not_here) = if cfg!(windows) {
        (
            [
                "http://tauri.localhost/",
                "https://tauri.localhost/index.html#vaults",
            ],
            "tauri://localhost/",
        )
    } else {
        (
            ["tauri://localhost/", "tauri://localhost/index.html#vaults"],
            // Another platform's address names a server of this machine.
            "http://tauri.localhost/",
        )
    };
    for own in own {
        assert!(is_app_url(&url(own)), "{own}");
    }
    for other in [
        not_here,
        "https://evil.example/polykey-locked",
        "http://localhost:1420/",
        "https://tauri.localhost.evil.example/",
        "file:///etc/passwd",
        "data:text/html,<p>locked</p>",
        "about:blank",
    ] {
        assert!(!is_app_url(&url(other)), "{other}");
    }
}

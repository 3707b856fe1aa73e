//! Imports from stores made by the real tools.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use polykey_node::import;
use polykey_vaults::items::ItemKind;

/// KeePass databases sealed around a payload given whole.
#[path = "../../../../fuzz/src/kdbx.rs"]
mod kdbx;

/// A throwaway GnuPG home with one key without a passphrase; its agent is
/// stopped when dropped.
struct Gnupg {
    home: PathBuf,
}

impl Gnupg {
    fn new(root: &Path) -> Self {
        let home = root.join("gnupg");
        std::fs::create_dir(&home).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let gnupg = Self { home };
        let made = gnupg
            .gpg()
            .args(["--batch", "--passphrase", "", "--quick-gen-key"])
            .args([
                "Polykey Test <test@example.invalid>",
                "default",
                "default",
                "never",
            ])
            .output()
            .expect("gpg is installed (scripts/setup.sh)");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        gnupg
    }

    fn gpg(&self) -> Command {
        let mut command = Command::new("gpg");
        command.arg("--homedir").arg(&self.home);
        command
    }

    /// A `gpg` that uses this home: what the import runs.
    fn wrapper(&self, root: &Path) -> PathBuf {
        let path = root.join("gpg-here");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nexec gpg --homedir '{}' \"$@\"\n",
                self.home.display()
            ),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        path
    }
}

impl Drop for Gnupg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(&self.home)
            .args(["--kill", "all"])
            .status();
    }
}

fn pass(gnupg: &Gnupg, store: &Path, args: &[&str], input: &str) {
    let mut child = Command::new("pass")
        .args(args)
        .env("GNUPGHOME", &gnupg.home)
        .env("PASSWORD_STORE_DIR", store)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pass is installed (scripts/setup.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "pass {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A store's entries are held to 64 MiB in all, as an export is: each
/// is held to 1 MiB, but a store of links to one small file that unpacks
/// to 1 MiB (a hundred thousand of them: 100 GB) was held whole.
#[test]
fn a_store_whose_entries_decrypt_to_more_than_an_export_may_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let gnupg = Gnupg::new(root.path());
    let store = root.path().join("store");
    pass(&gnupg, &store, &["init", "test@example.invalid"], "");
    // Just under 1 MiB, sealed too (65 of them are past 64 MiB).
    let mut text = "p".repeat((1 << 20) - 4096);
    text.push('\n');
    pass(&gnupg, &store, &["insert", "-m", "big"], &text);
    let big = store.join("big.gpg");
    assert!(std::fs::metadata(&big).unwrap().len() < 1 << 20);
    for i in 0..64 {
        std::fs::hard_link(&big, store.join(format!("big-{i}.gpg"))).unwrap();
    }
    let refused = import::pass::read(&store, &gnupg.wrapper(root.path())).unwrap_err();
    assert!(
        refused.to_string().contains("more than 64 MiB in all"),
        "{refused}"
    );
    // Fewer of them are read.
    for i in 8..64 {
        std::fs::remove_file(store.join(format!("big-{i}.gpg"))).unwrap();
    }
    let parsed = import::pass::read(&store, &gnupg.wrapper(root.path())).unwrap();
    assert_eq!(parsed.items.len(), 9);
}

#[test]
fn a_store_made_by_pass_is_read_field_by_field() {
    let root = tempfile::tempdir().unwrap();
    let gnupg = Gnupg::new(root.path());
    let store = root.path().join("store");
    pass(&gnupg, &store, &["init", "test@example.invalid"], "");
    pass(
        &gnupg,
        &store,
        &["insert", "-m", "Email/gmail"],
        "p4ss word\nlogin: me@example.com\nurl: https://mail.google.com\n\
         otpauth://totp/Google:me?secret=JBSWY3DPEHPK3PXP&issuer=Google\nrecovery codes: 1 2 3\n",
    );
    pass(
        &gnupg,
        &store,
        &["insert", "-m", "wifi"],
        "just-a-password\n",
    );
    // 4 MiB that compress to a few KiB: refused when it unpacks past 1 MiB.
    let mut bomb = gnupg
        .gpg()
        .args([
            "--batch",
            "--yes",
            "--compress-algo",
            "zlib",
            "--compress-level",
            "9",
        ])
        .args([
            "--encrypt",
            "--recipient",
            "test@example.invalid",
            "--output",
        ])
        .arg(store.join("zbomb.gpg"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    bomb.stdin
        .take()
        .unwrap()
        .write_all(&vec![b'a'; 4 << 20])
        .unwrap();
    assert!(bomb.wait().unwrap().success());
    // Not an entry: left alone.
    std::fs::write(store.join("README"), "hello").unwrap();

    let parsed = import::pass::read(&store, &gnupg.wrapper(root.path())).unwrap();
    assert_eq!(parsed.source, "pass");
    assert_eq!(parsed.items.len(), 2);
    let gmail = &parsed.items[0];
    assert_eq!(
        (&*gmail.folder, gmail.item.title.as_str()),
        (&["Email".to_owned()][..], "gmail")
    );
    match &gmail.item.kind {
        ItemKind::Login {
            username,
            password,
            urls,
            totp,
            notes,
        } => {
            assert_eq!(password, "p4ss word");
            assert_eq!(username, "me@example.com");
            assert_eq!(urls, &["https://mail.google.com"]);
            assert_eq!(
                totp.as_deref(),
                Some("otpauth://totp/Google:me?secret=JBSWY3DPEHPK3PXP&issuer=Google")
            );
            assert_eq!(notes, "recovery codes: 1 2 3");
        }
        _ => panic!("not a login"),
    }
    assert_eq!(parsed.items[1].item.title, "wifi");
    assert_eq!(parsed.skipped.len(), 1);
    assert_eq!(parsed.skipped[0].reason, "it decrypts to more than 1 MiB");
    assert!(std::fs::metadata(store.join("zbomb.gpg")).unwrap().len() < 1 << 20);

    // An entry encrypted to a key that is not here is skipped, said so.
    let other = Gnupg::new(&root.path().join("other").tap_mkdir());
    let foreign = root.path().join("foreign");
    pass(&other, &foreign, &["init", "test@example.invalid"], "");
    pass(&other, &foreign, &["insert", "-m", "x"], "secret\n");
    let refused = import::pass::read(&foreign, &gnupg.wrapper(root.path())).unwrap_err();
    assert!(refused.to_string().contains("decrypt"), "{refused}");
    assert!(!refused.to_string().contains("secret\n"));
    // A store none of whose entries this key opens is given up after 16
    // spread over it (gpg was run for every one).
    for i in 0..40 {
        std::fs::copy(foreign.join("x.gpg"), foreign.join(format!("y{i:02}.gpg"))).unwrap();
    }
    let runs = root.path().join("gpg-runs");
    let counting = root.path().join("gpg-counting");
    std::fs::write(
        &counting,
        format!(
            "#!/bin/sh\necho run >> '{}'\nexec '{}' \"$@\"\n",
            runs.display(),
            gnupg.wrapper(root.path()).display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&counting, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let refused = import::pass::read(&foreign, &counting).unwrap_err();
    assert!(
        refused.to_string().contains("could not decrypt any"),
        "{refused}"
    );
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 16);
    // Entries of another key first are no reason to stop: the sample
    // reaches past them, and the rest are read.
    std::fs::remove_file(&runs).unwrap();
    for i in 0..20 {
        pass(
            &gnupg,
            &foreign,
            &["insert", "-m", &format!("z{i:02}")],
            "mine\n",
        );
    }
    let parsed = import::pass::read(&foreign, &counting).unwrap();
    assert_eq!(parsed.items.len(), 20);
    assert_eq!(parsed.skipped.len(), 41);
    // Each entry decrypted once (the sample's kept for the rest).
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 61);
    // A folder that is not a store.
    assert!(import::pass::read(root.path(), Path::new("gpg")).is_err());
}

trait Mkdir {
    fn tap_mkdir(self) -> Self;
}

impl Mkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

/// A KeePass database as KeePassXC writes it (KDBX 3.1): groups, a login
/// with a TOTP field, a custom field, an expiry and an attachment, and a
/// note. Made by `keepassxc-cli import` from KeePass's XML.
fn keepassxc_database(root: &Path, password: &str) -> PathBuf {
    let xml = root.join("kp.xml");
    std::fs::write(
        &xml,
        r#"<?xml version="1.0" encoding="utf-8" standalone="yes"?>
<KeePassFile>
  <Meta>
    <Generator>Polykey test</Generator>
    <DatabaseName>Imported</DatabaseName>
    <Binaries><Binary ID="0" Compressed="False">cmVjb3ZlcnkgY29kZXM6IDExMTEgMjIyMgo=</Binary></Binaries>
  </Meta>
  <Root>
    <Group>
      <UUID>AAAAAAAAAAAAAAAAAAAAAQ==</UUID>
      <Name>Root</Name>
      <Group>
        <UUID>AAAAAAAAAAAAAAAAAAAAAg==</UUID>
        <Name>Dev</Name>
        <Group>
          <UUID>AAAAAAAAAAAAAAAAAAAABQ==</UUID>
          <Name>Code</Name>
          <Entry>
            <UUID>AAAAAAAAAAAAAAAAAAAAAw==</UUID>
            <String><Key>Title</Key><Value>GitHub</Value></String>
            <String><Key>UserName</Key><Value>octo</Value></String>
            <String><Key>Password</Key><Value ProtectInMemory="True">gh-pass</Value></String>
            <String><Key>URL</Key><Value>https://github.com</Value></String>
            <String><Key>Notes</Key><Value>work account</Value></String>
            <String><Key>otp</Key><Value>otpauth://totp/GitHub:octo?secret=JBSWY3DPEHPK3PXP&amp;period=30&amp;digits=6&amp;issuer=GitHub</Value></String>
            <String><Key>PIN</Key><Value ProtectInMemory="True">4711</Value></String>
            <Binary><Key>recovery.txt</Key><Value Ref="0"/></Binary>
            <Times><Expires>True</Expires><ExpiryTime>2030-01-01T00:00:00Z</ExpiryTime></Times>
          </Entry>
        </Group>
      </Group>
      <Entry>
        <UUID>AAAAAAAAAAAAAAAAAAAABA==</UUID>
        <String><Key>Title</Key><Value>Door code</Value></String>
        <String><Key>Notes</Key><Value>1234#</Value></String>
      </Entry>
    </Group>
  </Root>
</KeePassFile>
"#,
    )
    .unwrap();
    let database = root.join("kp.kdbx");
    let mut child = Command::new("keepassxc-cli")
        .args(["import", "-q", "-p", "-t", "100"])
        .arg(&xml)
        .arg(&database)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keepassxc-cli is installed (scripts/setup.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    database
}

#[test]
fn a_database_made_by_keepassxc_is_read_field_by_field() {
    let root = tempfile::tempdir().unwrap();
    let file = keepassxc_database(root.path(), "kp-pass-1");
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(import::keepass::check_header(&bytes).unwrap(), 3);

    assert!(matches!(
        import::keepass::read(&bytes, None, None),
        Err(import::ImportError::NeedsPassword)
    ));
    assert!(matches!(
        import::keepass::read(&bytes, Some("not it"), None),
        Err(import::ImportError::WrongPassword)
    ));
    let parsed = import::keepass::read(&bytes, Some("kp-pass-1"), None).unwrap();
    assert_eq!(parsed.source, "KeePass");
    assert_eq!(parsed.items.len(), 2, "{:?}", parsed.items);
    let github = parsed
        .items
        .iter()
        .find(|i| i.item.title == "GitHub")
        .unwrap();
    assert_eq!(*github.folder, ["Dev", "Code"]);
    match &github.item.kind {
        ItemKind::Login {
            username,
            password,
            urls,
            totp,
            notes,
        } => {
            assert_eq!(username, "octo");
            assert_eq!(password, "gh-pass");
            assert_eq!(urls, &["https://github.com"]);
            assert_eq!(
                totp.as_deref(),
                Some("otpauth://totp/GitHub:octo?secret=JBSWY3DPEHPK3PXP&period=30&digits=6&issuer=GitHub")
            );
            assert_eq!(
                notes,
                "work account\nPIN: 4711\nExpires: 2030-01-01 00:00:00"
            );
        }
        _ => panic!("not a login"),
    }
    assert_eq!(github.files.len(), 1);
    assert_eq!(github.files[0].0, "recovery.txt");
    assert_eq!(github.files[0].1.as_slice(), b"recovery codes: 1111 2222\n");
    let door = parsed
        .items
        .iter()
        .find(|i| i.item.title == "Door code")
        .unwrap();
    assert!(door.folder.is_empty());
    assert!(matches!(&door.item.kind, ItemKind::SecureNote { text } if text == "1234#"));

    // Placed in a vault: the attachment beside its login.
    let placed: Vec<String> = import::secrets_for(&parsed.items, "", &Default::default())
        .unwrap()
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        placed,
        [
            "Door code",
            "Dev/Code/GitHub files/recovery.txt",
            "Dev/Code/GitHub"
        ]
    );

    // Damaged: cut short, or asking for a key derivation of hours.
    assert!(import::keepass::read(&bytes[..bytes.len() / 2], Some("kp-pass-1"), None).is_err());
    // Found by fuzzing: a KDBX 3.1 header whose CompressionFlags field is
    // 2 bytes, not 4, made the keepass crate panic (a range out of bounds).
    let short_field = include_bytes!("data/kdbx3-compression-flags-of-2-bytes.kdbx");
    assert!(matches!(
        import::keepass::read(short_field, Some("x"), None),
        Err(import::ImportError::Malformed(_))
    ));
    let mut costly = bytes.clone();
    let mut at = 12;
    loop {
        let id = costly[at];
        let len = u16::from_le_bytes([costly[at + 1], costly[at + 2]]) as usize;
        if id == 6 {
            costly[at + 3..at + 3 + len].copy_from_slice(&u64::MAX.to_le_bytes());
            break;
        }
        assert_ne!(id, 0, "no rounds field");
        at += 3 + len;
    }
    let refused = import::keepass::read(&costly, Some("kp-pass-1"), None).unwrap_err();
    assert!(refused.to_string().contains("key derivation"), "{refused}");
    assert!(matches!(
        import::keepass::read(b"PK\x03\x04 not a database", Some("x"), None),
        Err(import::ImportError::Unrecognised(_))
    ));
}

/// The same website and user name as a login in the vault: counted in the
/// preview, then skipped, replaced (in place, its history kept) or kept
/// beside, as the person chooses.
#[tokio::test]
async fn logins_already_in_the_vault_are_found_and_skipped_replaced_or_kept() {
    use polykey_node::api::ImportRequestDto;
    let root = tempfile::tempdir().unwrap();
    let node = crate::open(&root.path().join("node")).await;
    node.create(crate::PASSWORD.into()).await.unwrap();
    node.create_vault("V".into()).await.unwrap();
    let first = root.path().join("first.csv");
    std::fs::write(
        &first,
        "name,url,username,password\nForum,https://www.forum.example/login,Me,old-pass\n",
    )
    .unwrap();
    let second = root.path().join("second.csv");
    std::fs::write(
        &second,
        "name,url,username,password\nForum again,https://forum.example/,me,new-pass\n\
         Shop,https://shop.example,me,shop-pass\n",
    )
    .unwrap();
    let request = |file: &Path, duplicates: Option<&str>| ImportRequestDto {
        source: "csv".into(),
        file: file.display().to_string(),
        duplicates: duplicates.map(str::to_owned),
        ..Default::default()
    };
    node.import_dto(request(&first, None), "V".into(), String::new())
        .await
        .unwrap();
    let preview = node
        .import_preview_dto(request(&second, None), "V".into())
        .await
        .unwrap();
    assert_eq!(preview.total, 2);
    assert_eq!(preview.duplicates, 1);
    assert_eq!(
        preview.duplicate_titles,
        ["Forum again (here: Forum)"],
        "each with the login it would replace"
    );

    let skipped = node
        .import_dto(request(&second, Some("skip")), "V".into(), String::new())
        .await
        .unwrap();
    assert_eq!((skipped.imported, skipped.skipped_duplicates), (1, 1));
    assert_eq!(
        node.list_secrets("V".into(), None).await.unwrap(),
        ["Forum", "Shop"]
    );
    let replaced = node
        .import_dto(request(&second, Some("replace")), "V".into(), String::new())
        .await
        .unwrap();
    // Shop came in with the skip: both are here now.
    assert_eq!((replaced.imported, replaced.replaced), (2, 2));
    let forum = node
        .get_secret("V".into(), "Forum".into(), None)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&forum).contains("new-pass"));
    assert_eq!(
        node.secret_history("V".into(), "Forum".into())
            .await
            .unwrap()
            .len(),
        2,
        "the old password stays in its history"
    );
    let kept = node
        .import_dto(request(&second, Some("keep")), "V".into(), String::new())
        .await
        .unwrap();
    assert_eq!(kept.imported, 2);
    assert_eq!(
        node.list_secrets("V".into(), None).await.unwrap(),
        ["Forum", "Forum again", "Shop", "Shop (2)"]
    );
    let refused = node
        .import_dto(request(&second, Some("merge")), "V".into(), String::new())
        .await;
    assert!(refused.is_err());

    // A folder with nothing in it is not taken for a free name: an item
    // named like it goes beside it (it took the folder's place).
    node.make_directory("V".into(), "Shop (3)".into())
        .await
        .unwrap();
    let again = node
        .import_dto(request(&second, Some("keep")), "V".into(), String::new())
        .await
        .unwrap();
    assert_eq!(again.imported, 2);
    let listed = node.list_secrets("V".into(), None).await.unwrap();
    assert!(listed.contains(&"Shop (4)".to_owned()), "{listed:?}");
    assert!(!listed.contains(&"Shop (3)".to_owned()), "{listed:?}");
    assert_eq!(
        node.stat_secret("V".into(), "Shop (3)".into())
            .await
            .unwrap()
            .kind,
        polykey_vaults::EntryKind::Directory
    );

    // What the preview shows is cut short (a title of 1 MiB went to the
    // window whole, twice: once as a duplicate, once as a first item).
    let long = root.path().join("long.csv");
    let title = "t".repeat(1 << 20);
    let user = "u".repeat(1 << 20);
    std::fs::write(
        &long,
        format!("name,url,username,password\n{title},https://forum.example/,{user},p\n"),
    )
    .unwrap();
    let preview = node
        .import_preview_dto(request(&long, None), "V".into())
        .await
        .unwrap();
    assert_eq!(preview.first[0].title.len(), 200);
    assert_eq!(preview.first[0].username.len(), 200);
    assert_eq!(preview.duplicate_titles.len(), 0);

    // Two rows the same as one login: the first replaces it, the second
    // comes in beside it (it overwrote the first, which was lost).
    let twice = root.path().join("twice.csv");
    std::fs::write(
        &twice,
        "name,url,username,password
Shop,https://shop.example,me,pw-first-row
         Shop,https://shop.example,me,pw-second-row
",
    )
    .unwrap();
    let before = node.list_secrets("V".into(), None).await.unwrap();
    let report = node
        .import_dto(request(&twice, Some("replace")), "V".into(), String::new())
        .await
        .unwrap();
    assert_eq!((report.imported, report.replaced), (2, 1));
    let after = node.list_secrets("V".into(), None).await.unwrap();
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    let mut values = String::new();
    for path in &after {
        let value = node
            .get_secret("V".into(), path.clone(), None)
            .await
            .unwrap();
        values.push_str(&String::from_utf8_lossy(&value));
    }
    assert!(
        values.contains("pw-first-row") && values.contains("pw-second-row"),
        "both rows are kept"
    );
}

/// The start of a KDBX 4 file whose KDF parameters are `params` (each a
/// name and a UInt64 value), as far as `check_header` reads.
fn kdbx4_header(params: &[(&str, u64)]) -> Vec<u8> {
    let mut dict = vec![0x00, 0x01]; // the dictionary's version
    for (name, value) in params {
        dict.push(0x05); // UInt64
        dict.extend_from_slice(&(name.len() as u32).to_le_bytes());
        dict.extend_from_slice(name.as_bytes());
        dict.extend_from_slice(&8u32.to_le_bytes());
        dict.extend_from_slice(&value.to_le_bytes());
    }
    dict.push(0);
    let mut out = Vec::new();
    out.extend_from_slice(&0x9AA2_D903u32.to_le_bytes());
    out.extend_from_slice(&0xB54B_FB67u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // minor
    out.extend_from_slice(&4u16.to_le_bytes()); // major
    out.push(11); // KdfParameters
    out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    out.extend_from_slice(&dict);
    out.push(0); // end of the header
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}

/// A database asking for Argon2 within each bound alone but far past them
/// together (2 GiB, 100 passes: minutes of work before the password is
/// even checked) is refused unopened; KeePassXC's usual cost is not.
#[test]
fn a_database_whose_argon2_costs_minutes_in_all_is_refused_unopened() {
    const GIB: u64 = 1024 * 1024 * 1024;
    let usual = kdbx4_header(&[("M", 64 * 1024 * 1024), ("I", 10), ("P", 2)]);
    assert_eq!(import::keepass::check_header(&usual).unwrap(), 4);
    let heaviest_allowed = kdbx4_header(&[("M", 2 * GIB), ("I", 8), ("P", 64)]);
    assert_eq!(import::keepass::check_header(&heaviest_allowed).unwrap(), 4);
    let costly = kdbx4_header(&[("M", 2 * GIB), ("I", 100), ("P", 64)]);
    match import::keepass::check_header(&costly) {
        Err(import::ImportError::Unrecognised(why)) => assert!(why.contains("16 GiB"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// A database of a quarter MiB whose payload unpacks to more than 256 MiB
/// (a gzip bomb, sealed with the password its sender gives) is refused
/// at the bound, with what to do, rather than unpacked whole into memory;
/// one just under the bound is read on (to the damage this one has).
#[test]
fn a_database_that_unpacks_to_gigabytes_is_refused_at_the_bound() {
    fn zeros_gzipped(bytes: usize) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![0u8; 1024 * 1024];
        for _ in 0..bytes / chunk.len() {
            gz.write_all(&chunk).unwrap();
        }
        gz.finish().unwrap()
    }
    // What the vendored keepass crate unpacks at most.
    const BOUND: usize = 256 * 1024 * 1024;
    let bomb = kdbx::sealed("shared", true, &zeros_gzipped(BOUND + 1024 * 1024));
    assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
    match import::keepass::read(&bomb, Some("shared"), None) {
        Err(import::ImportError::Unrecognised(why)) => {
            assert!(why.contains("unpacks to more than 256 MiB"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // Under the bound it is unpacked and read: its zeros are no inner
    // header, and it says so.
    let under = kdbx::sealed("shared", true, &zeros_gzipped(BOUND / 2));
    match import::keepass::read(&under, Some("shared"), None) {
        Err(import::ImportError::Malformed(_)) => {}
        other => panic!("{other:?}"),
    }
    // And the wrong password is still told as such.
    assert!(matches!(
        import::keepass::read(&bomb, Some("guess"), None),
        Err(import::ImportError::WrongPassword)
    ));
}

/// A database whose groups nest a hundred thousand deep is refused as damaged, with why, not followed down until the
/// importing thread's stack runs out and the process ends (quick-xml, under
/// the keepass crate, stops at 128 levels; this holds it to that).
#[test]
fn a_database_nested_beyond_reason_is_refused_not_a_crash() {
    let mut payload = kdbx::inner_header();
    payload.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"utf-8\"?><KeePassFile><Root>");
    payload.extend_from_slice(&b"<Group>".repeat(100_000));
    payload.extend_from_slice(&b"</Group>".repeat(100_000));
    payload.extend_from_slice(b"</Root></KeePassFile>");
    let deep = kdbx::sealed("shared", false, &payload);
    match import::keepass::read(&deep, Some("shared"), None) {
        Err(import::ImportError::Malformed(why)) => assert!(why.contains("nested"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// The seeds of the `import_kdbx_payload` fuzz target are databases this
/// reads in full (so the fuzzer starts from inputs that reach every part
/// of the reading): attachments in KDBX 3.1's gzipped Meta and in KDBX 4's
/// inner header, history, tags and the Recycle Bin left out.
#[test]
fn the_kdbx_payload_fuzz_seeds_import_whole() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/import_kdbx_payload");
    for name in [
        "keepassxc-xml-attachment-compressed",
        "keepassxc-inner-attachment",
    ] {
        let payload = std::fs::read(seeds.join(name)).unwrap();
        let parsed = import::keepass::read(
            &kdbx::sealed("password", false, &payload),
            Some("password"),
            None,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let titles: Vec<&str> = parsed.items.iter().map(|i| i.item.title.as_str()).collect();
        assert_eq!(titles, ["Door code", "GitHub"], "{name}");
        let github = &parsed.items[1];
        assert_eq!(*github.folder, ["Dev"], "{name}");
        assert!(
            matches!(&github.item.kind, ItemKind::Login { password, .. } if password == "gh-pass")
        );
        assert_eq!(github.files.len(), 1, "{name}");
        assert_eq!(
            github.files[0].1.as_slice(),
            b"recovery codes: 1111 2222\n",
            "{name}"
        );
    }
}

/// The payload of a database whose root group holds `body` (XML), after
/// an inner header with `attachments` (KDBX 4's own, each a flags byte
/// and its bytes).
fn payload_of(attachments: &[&[u8]], body: &str) -> Vec<u8> {
    let mut payload = kdbx::inner_header();
    // Attachments go before the header's end (its last 5 bytes).
    let end = payload.split_off(payload.len() - 5);
    for attachment in attachments {
        payload.push(3);
        payload.extend_from_slice(&(attachment.len() as u32 + 1).to_le_bytes());
        payload.push(0);
        payload.extend_from_slice(attachment);
    }
    payload.extend_from_slice(&end);
    payload.extend_from_slice(b"<KeePassFile><Meta></Meta><Root><Group>");
    payload.extend_from_slice(b"<UUID>AAAAAAAAAAAAAAAAAAAAAQ==</UUID><Name>Root</Name>");
    payload.extend_from_slice(body.as_bytes());
    payload.extend_from_slice(b"</Group></Root></KeePassFile>");
    payload
}

/// `count` entries, each its own UUID (the crate refuses a repeated one,
/// but only once all are parsed), as `<{tag}>` elements holding `inside`.
fn entries(count: u32, tag: &str, inside: &str) -> String {
    (0..count)
        .map(|i| {
            let uuid = data_encoding::BASE64.encode(&(u128::from(i) + 2).to_be_bytes());
            format!("<{tag}><UUID>{uuid}</UUID>{inside}</{tag}>")
        })
        .collect()
}

fn read_payload(payload: &[u8]) -> Result<import::Parsed, import::ImportError> {
    let sealed = kdbx::sealed("shared", false, payload);
    assert!(sealed.len() < import::MAX_IMPORT_BYTES);
    import::keepass::read(&sealed, Some("shared"), None)
}

/// A database of tiny entries (a UUID each, 50 bytes of XML) is refused
/// by their count before it is parsed: parsed, each took about 2 KiB, and
/// a million of them (49 MiB, within the file bound without gzip) took
/// 2 GB of memory before the item bound was reached. Entries under a
/// namespace prefix (`<a:Entry>`, which quick-xml takes for entries) count
/// too, and so do KDBX 4's attachments (a 6-byte record each).
#[test]
fn a_database_of_countless_tiny_entries_is_refused_before_it_is_parsed() {
    for tag in ["Entry", "a:Entry"] {
        match read_payload(&payload_of(&[], &entries(250_001, tag, ""))) {
            Err(import::ImportError::Unrecognised(why)) => {
                assert!(why.contains("more than 250,000 entries"), "{tag}: {why}")
            }
            other => panic!("{tag}: {other:?}"),
        }
    }
    let empty: &[u8] = &[];
    let attachments = vec![empty; 250_001];
    assert!(matches!(
        read_payload(&payload_of(&attachments, "")),
        Err(import::ImportError::Malformed(_))
    ));
    // Within the bounds, such a database is read.
    let some = payload_of(&vec![empty; 1_000], &entries(1_000, "Entry", ""));
    assert!(read_payload(&some).is_ok());
    // Custom icons count too: 48 bytes of XML took about 470 each parsed.
    let icons = entries(250_001, "Icon", "<Data>AA==</Data>");
    let mut payload = payload_of(&[], "");
    let meta = b"<Meta></Meta>";
    let at = payload.windows(meta.len()).position(|w| w == meta).unwrap();
    payload.splice(
        at..at + meta.len(),
        format!("<Meta><CustomIcons>{icons}</CustomIcons></Meta>").into_bytes(),
    );
    match read_payload(&payload) {
        Err(import::ImportError::Unrecognised(why)) => {
            assert!(why.contains("custom icons"), "{why}")
        }
        other => panic!("icons: {other:?}"),
    }
}

/// A group's name is kept as the vault will name the folder (200 bytes):
/// copied whole into each of its items, a name of 100 MiB in a database
/// of a few hundred entries took gigabytes. Tags are kept to 1,024 an
/// entry, empty ones none: a string of a million delimiters was a million
/// empty tags (24 bytes and more each, from one byte).
#[test]
fn a_long_group_name_and_countless_tags_take_no_more_than_they_show() {
    let name = "n".repeat(1024 * 1024);
    let titled = "<String><Key>Title</Key><Value>t</Value></String>";
    let body = format!(
        "<Group><UUID>AAAAAAAAAAAAAAAAAAAAAA==</UUID><Name>{name}</Name>{}</Group>",
        entries(100, "Entry", titled)
    );
    let parsed = read_payload(&payload_of(&[], &body)).unwrap();
    assert_eq!(parsed.items.len(), 100);
    for item in &parsed.items {
        assert_eq!(item.folder.len(), 1);
        assert!(item.folder[0].len() <= 200, "{}", item.folder[0].len());
    }

    let tags: Vec<String> = (0..2_000).map(|i| format!("t{i}")).collect();
    let body = format!(
        "{}{}",
        entries(
            1,
            "Entry",
            &format!("{titled}<Tags>{}</Tags>", tags.join(";"))
        ),
        // Its own UUID.
        entries(
            1,
            "Entry",
            &format!("{titled}<Tags>{}</Tags>", ";".repeat(1_000_000))
        )
        .replace("AAAAAAAAAAAAAAAAAAAAAg==", "AAAAAAAAAAAAAAAAAAAAAw==")
    );
    let parsed = read_payload(&payload_of(&[], &body)).unwrap();
    let notes = |item: &import::ImportedItem| match &item.item.kind {
        ItemKind::SecureNote { text } => text.clone(),
        _ => panic!("not a note"),
    };
    let many = notes(&parsed.items[0]);
    assert!(many.contains("t1023") && !many.contains("t1024"), "{many}");
    assert!(!notes(&parsed.items[1]).contains("Tags"));
}

/// A CSV without a header row, as the desktop wizard takes it: the
/// preview offers its first row's values to map, and with no header and
/// columns by place, the first row is an entry like the rest.
#[tokio::test]
async fn a_csv_without_a_header_row_previews_and_imports_every_row() {
    use polykey_node::api::ImportRequestDto;
    let root = tempfile::tempdir().unwrap();
    let node = crate::open(&root.path().join("node")).await;
    node.create(crate::PASSWORD.into()).await.unwrap();
    node.create_vault("V".into()).await.unwrap();
    let file = root.path().join("bare.csv");
    std::fs::write(&file, "Forum,me,pw-one\nShop,you,pw-two\n").unwrap();
    let request = |mapping: Option<&str>, no_header| ImportRequestDto {
        source: "csv".into(),
        file: file.display().to_string(),
        mapping: mapping.map(str::to_owned),
        no_header,
        ..Default::default()
    };
    let asked = node
        .import_preview_dto(request(None, None), "V".into())
        .await
        .unwrap();
    assert!(asked.needs_mapping);
    assert_eq!(asked.columns, ["Forum", "me", "pw-one"]);
    let mapping = Some("title=#1,username=#2,password=#3");
    let preview = node
        .import_preview_dto(request(mapping, Some(true)), "V".into())
        .await
        .unwrap();
    assert_eq!(preview.total, 2);
    let titles: Vec<&str> = preview.first.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(titles, ["Forum", "Shop"]);
    node.import_dto(request(mapping, Some(true)), "V".into(), String::new())
        .await
        .unwrap();
    let mut listed = node.list_secrets("V".into(), None).await.unwrap();
    listed.sort();
    assert_eq!(listed, ["Forum", "Shop"]);
}

/// An import right after its preview takes the export the preview read
/// (a KeePass database or a protected Bitwarden export paid its key
/// derivation twice, a large file was read twice); a file changed since,
/// one read another way, one previewed too long ago, or one whose wizard
/// was closed is read again.
#[tokio::test]
async fn an_import_takes_what_its_preview_read_unless_the_file_changed() {
    use polykey_node::api::ImportRequestDto;
    let root = tempfile::tempdir().unwrap();
    let node = crate::open(&root.path().join("node")).await;
    node.create(crate::PASSWORD.into()).await.unwrap();
    node.create_vault("V".into()).await.unwrap();
    let file = root.path().join("export.csv");
    let request = |mapping: Option<&str>| ImportRequestDto {
        source: "csv".into(),
        file: file.display().to_string(),
        mapping: mapping.map(str::to_owned),
        ..Default::default()
    };
    let row =
        |title: &str| format!("name,url,username,password\n{title},https://a.example,me,pw\n");
    let import = |folder: &str| node.import_dto(request(None), "V".into(), folder.into());
    // Read once for both.
    std::fs::write(&file, row("Alpha")).unwrap();
    node.import_preview_dto(request(None), "V".into())
        .await
        .unwrap();
    import("one").await.unwrap();
    assert_eq!(node.exports_read(), 1);
    // Taken once: the next import reads the file.
    import("two").await.unwrap();
    assert_eq!(node.exports_read(), 2);
    // Changed since the preview: read again.
    node.import_preview_dto(request(None), "V".into())
        .await
        .unwrap();
    std::fs::write(&file, row("Bravo")).unwrap();
    import("three").await.unwrap();
    assert_eq!(node.exports_read(), 4);
    // Read another way (its columns mapped otherwise): read again.
    node.import_preview_dto(request(None), "V".into())
        .await
        .unwrap();
    let mapping = "title=username,url=url,username=username,password=password";
    node.import_dto(request(Some(mapping)), "V".into(), "four".into())
        .await
        .unwrap();
    assert_eq!(node.exports_read(), 6);
    let listed = node.list_secrets("V".into(), None).await.unwrap();
    for expected in ["one/Alpha", "two/Alpha", "three/Bravo", "four/me"] {
        assert!(
            listed.contains(&expected.to_owned()),
            "{expected}: {listed:?}"
        );
    }
    // Previewed, and the wizard closed: let go of at once.
    node.import_preview_dto(request(None), "V".into())
        .await
        .unwrap();
    node.forget_import_preview().await.unwrap();
    import("closed").await.unwrap();
    assert_eq!(node.exports_read(), 8);
    // Previewed and left: let go of after five minutes.
    node.import_preview_dto(request(None), "V".into())
        .await
        .unwrap();
    // (The task letting go of it starts its wait first.)
    let settle = || async {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    };
    settle().await;
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(5 * 60 + 1)).await;
    settle().await;
    tokio::time::resume();
    import("five").await.unwrap();
    assert_eq!(node.exports_read(), 10);
    // Locked, there is nothing to let go of.
    node.lock().await.unwrap();
    node.forget_import_preview().await.unwrap();
}

/// An export that is not a file (a FIFO, as an archive can hold; a
/// folder) is refused at once, saying so. Before, a FIFO was opened and
/// waited on for ever (a preview that never ended, its thread kept).
#[cfg(unix)]
#[test]
fn an_export_that_is_not_a_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = crate::fifo(&dir.path().join("export.csv"));
    for path in [fifo.clone(), dir.path().to_owned()] {
        let (done, outcome) = std::sync::mpsc::channel();
        let reading = path.clone();
        std::thread::spawn(move || {
            let read = import::file::read_bounded(&reading).map(|_| ());
            let _ = done.send(read.map_err(|e| e.to_string()));
        });
        let read = outcome.recv_timeout(std::time::Duration::from_secs(10));
        // (A reader left waiting goes once the FIFO has had a writer.)
        if read.is_err() {
            drop(std::fs::File::options().write(true).open(&fifo));
        }
        let err = read.expect("still waiting").unwrap_err();
        assert!(err.contains("is not a file"), "{err}");
    }
}

//! Imports from stores made by the real tools.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use polykey_node::import;
use polykey_vaults::items::ItemKind;

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
        (gmail.folder.as_slice(), gmail.item.title.as_str()),
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

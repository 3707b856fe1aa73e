//! A `pass` store (password-store): every `.gpg` file decrypted with the
//! user's own `gpg`; its first line the password, `otpauth://` lines the
//! one-time code, `login:`/`user:`/`username:`/`email:` and `url:` lines
//! (browserpass's and passff's conventions) the user name and website, the
//! rest notes. Folders are kept.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use polykey_vaults::items::{Item, ItemKind};
use zeroize::Zeroizing;

use super::{ImportError, ImportedItem, Parsed, Skips, MAX_IMPORT_BYTES, MAX_IMPORT_ITEMS};

/// Largest encrypted file read (1 MiB): a password with notes is a few
/// hundred bytes.
const MAX_ENTRY_BYTES: u64 = 1024 * 1024;
/// Deepest folder followed.
const MAX_DEPTH: usize = 16;

/// The `.gpg` files of the store at `dir`, sorted, with their paths in it
/// (without `.gpg`). Hidden files and folders (`.git`, `.gpg-id`) and
/// symbolic links are left out; a store with more than
/// [`MAX_IMPORT_ITEMS`] entries is refused.
fn entries(dir: &Path) -> Result<Vec<(PathBuf, Vec<String>)>, ImportError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), Vec::<String>::new())];
    while let Some((at, folder)) = stack.pop() {
        let listing = std::fs::read_dir(&at).map_err(|_| {
            ImportError::Unrecognised("the password store's folder cannot be read".into())
        })?;
        for entry in listing.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if name.starts_with('.') || kind.is_symlink() {
                continue;
            }
            if kind.is_dir() {
                if folder.len() < MAX_DEPTH {
                    let mut inner = folder.clone();
                    inner.push(name);
                    stack.push((entry.path(), inner));
                }
            } else if let Some(stem) = name.strip_suffix(".gpg").filter(|_| kind.is_file()) {
                let mut path = folder.clone();
                path.push(stem.to_owned());
                out.push((entry.path(), path));
                if out.len() > MAX_IMPORT_ITEMS {
                    return Err(ImportError::TooMany);
                }
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// Most bytes an entry may decrypt to (a compressed entry can unpack to
/// far more than its file).
const MAX_PLAIN_BYTES: u64 = 1024 * 1024;

/// Entries tried first, spread over the store: if gpg decrypts none of
/// them, the store is given up. One whose key is not here (or not
/// unlocked) fails every entry, and gpg was run for each, twice (the
/// preview, the import): 100,000 of them, an hour.
const SAMPLE: usize = 16;

/// Why gpg did not decrypt an entry it was given.
const NOT_DECRYPTED: &str = "gpg could not decrypt it (is its key here, and unlocked?)";

/// Decrypt one file with the user's `gpg` (its agent may ask for the key's
/// passphrase): the file is read here (a regular file of at most 1 MiB)
/// and fed to gpg, whose output is read to [`MAX_PLAIN_BYTES`] at most.
/// Nothing of gpg's output but the plaintext is kept.
fn decrypt(gpg: &Path, file: &Path) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    use std::io::{Read, Write};
    let meta = std::fs::symlink_metadata(file).map_err(|_| "it cannot be read")?;
    if !meta.is_file() {
        return Err("it is not a regular file");
    }
    if meta.len() > MAX_ENTRY_BYTES {
        return Err("it is larger than 1 MiB");
    }
    let mut sealed = Vec::new();
    polykey_os::fs::open_regular(file)
        .and_then(|f| f.take(MAX_ENTRY_BYTES).read_to_end(&mut sealed))
        .map_err(|_| "it cannot be read")?;
    let mut child = Command::new(gpg)
        .args(["--quiet", "--yes", "--decrypt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|_| "gpg could not be run")?;
    let mut stdin = child.stdin.take().ok_or("gpg could not be run")?;
    // Written from another thread, so a full output pipe cannot stall both.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&sealed);
    });
    let mut plain = Zeroizing::new(Vec::new());
    let read = child
        .stdout
        .take()
        .ok_or("gpg could not be run")?
        .take(MAX_PLAIN_BYTES + 1)
        .read_to_end(&mut plain);
    if read.is_err() || plain.len() as u64 > MAX_PLAIN_BYTES {
        let _ = child.kill();
        let _ = child.wait();
        let _ = feeder.join();
        return Err("it decrypts to more than 1 MiB");
    }
    let _ = feeder.join();
    let status = child.wait().map_err(|_| "gpg could not be run")?;
    if !status.success() {
        return Err(NOT_DECRYPTED);
    }
    Ok(plain)
}

/// Read the `pass` store at `dir`, decrypting with `gpg` (the program,
/// usually `gpg` on the PATH). An entry gpg cannot decrypt is skipped and
/// said so; a store with none is refused.
pub fn read(dir: &Path, gpg: &Path) -> Result<Parsed, ImportError> {
    if !dir.join(".gpg-id").is_file() {
        return Err(ImportError::Unrecognised(
            "this is not a password store (it has no .gpg-id); pick the store's folder, \
             usually ~/.password-store"
                .into(),
        ));
    }
    let files = entries(dir)?;
    let mut items = Vec::with_capacity(files.len());
    let mut skipped = Skips::default();
    // What the entries decrypt to in all, held to what one export may be:
    // each is held to 1 MiB, but a store of 100,000 links to one small
    // file that unpacks to 1 MiB held 100 GB.
    let mut plain_total = 0usize;
    // A sample spread over a larger store first (a folder of old entries
    // under another key may come first, and is no reason to stop).
    let mut tried = std::collections::HashMap::new();
    if files.len() > SAMPLE {
        for i in 0..SAMPLE {
            let n = i * files.len() / SAMPLE;
            tried.insert(n, decrypt(gpg, &files[n].0));
        }
        if tried
            .values()
            .all(|r| matches!(r, Err(why) if *why == NOT_DECRYPTED))
        {
            return Err(ImportError::Unrecognised(format!(
                "gpg could not decrypt any of {SAMPLE} entries from all over the store (is its \
                 key here, and unlocked?)"
            )));
        }
    }
    for (n, (file, mut path)) in files.into_iter().enumerate() {
        let plain = match tried.remove(&n).unwrap_or_else(|| decrypt(gpg, &file)) {
            Ok(plain) => plain,
            Err(reason) => {
                skipped.push(n + 1, reason);
                continue;
            }
        };
        plain_total += plain.len();
        if plain_total > MAX_IMPORT_BYTES {
            return Err(ImportError::Unrecognised(
                "the store's entries decrypt to more than 64 MiB in all; import one of its \
                 folders at a time"
                    .into(),
            ));
        }
        let Ok(text) = std::str::from_utf8(&plain) else {
            skipped.push(
                n + 1,
                "it is not text (a file kept in pass): add it as a file",
            );
            continue;
        };
        let title = path.pop().unwrap_or_default();
        items.push(ImportedItem {
            folder: path.into(),
            item: item_of(title, text),
            files: Vec::new(),
        });
    }
    if items.is_empty() && !skipped.is_empty() {
        return Err(ImportError::Unrecognised(
            "gpg could not decrypt any entry of the store (is its key here, and unlocked?)".into(),
        ));
    }
    Ok(Parsed::new("pass", items, skipped))
}

/// An entry's lines as a login: the first the password, the rest sorted
/// into user name, website, one-time code and notes.
fn item_of(title: String, text: &str) -> Item {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let (mut username, mut urls, mut totp) = (String::new(), Vec::new(), None);
    // `pass otp insert` makes entries whose first line is the code's URI.
    let password = if first.trim().starts_with("otpauth://") {
        totp = Some(first.trim().to_owned());
        String::new()
    } else {
        first.to_owned()
    };
    let mut notes: Vec<&str> = Vec::new();
    for line in lines {
        let trimmed = line.trim();
        if trimmed.starts_with("otpauth://") && totp.is_none() {
            totp = Some(trimmed.to_owned());
            continue;
        }
        if let Some((key, value)) = trimmed.split_once(':') {
            let value = value.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "login" | "user" | "username" | "email" if username.is_empty() => {
                    username = value.to_owned();
                    continue;
                }
                "url" | "website" | "site" if !value.is_empty() => {
                    urls.push(value.to_owned());
                    continue;
                }
                _ => {}
            }
        }
        notes.push(line);
    }
    Item::new(
        title,
        ItemKind::Login {
            username,
            password,
            urls,
            totp,
            notes: notes.join("\n").trim().to_owned(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_sorted_into_fields() {
        let item = item_of(
            "gmail".into(),
            " pass word \nlogin: me@example.com\nurl: https://mail.google.com\notpauth://totp/G:me?secret=JBSWY3DPEHPK3PXP\nrecovery: 1234\nsecond line",
        );
        match &item.kind {
            ItemKind::Login {
                username,
                password,
                urls,
                totp,
                notes,
            } => {
                assert_eq!(password, " pass word ");
                assert_eq!(username, "me@example.com");
                assert_eq!(urls, &["https://mail.google.com"]);
                assert_eq!(
                    totp.as_deref(),
                    Some("otpauth://totp/G:me?secret=JBSWY3DPEHPK3PXP")
                );
                assert_eq!(notes, "recovery: 1234\nsecond line");
            }
            _ => panic!("not a login"),
        }
    }

    #[test]
    fn an_entry_of_pass_otp_is_its_one_time_code() {
        let item = item_of(
            "bank".into(),
            "otpauth://totp/Bank?secret=JBSWY3DPEHPK3PXP\n",
        );
        assert!(
            matches!(&item.kind, ItemKind::Login { password, totp: Some(t), .. }
            if password.is_empty() && t.starts_with("otpauth://"))
        );
    }
}

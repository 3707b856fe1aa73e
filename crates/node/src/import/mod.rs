//! Moving in: the exports of other password managers read into typed
//! items, ready to be written into a vault in one commit.
//!
//! Everything here reads a file the user picked, which may be damaged,
//! huge, or made to hurt: its size is bounded before it is read
//! ([`MAX_IMPORT_BYTES`]), its items are counted ([`MAX_IMPORT_ITEMS`]),
//! and no error names a value from it (only rows and columns).

use std::collections::BTreeSet;

use polykey_vaults::items::Item;
use zeroize::Zeroizing;

pub mod bitwarden;
pub mod csv;

/// Largest export read (64 MiB): an export of tens of thousands of logins
/// is a few MiB.
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;
/// Most items one import takes.
pub const MAX_IMPORT_ITEMS: usize = 100_000;
/// Longest name (in bytes) an item gets in the vault; longer titles are cut.
const MAX_NAME_BYTES: usize = 200;

/// Why a file could not be imported. Nothing of it was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Larger than [`MAX_IMPORT_BYTES`].
    #[error("the file is larger than 64 MiB; export fewer items at a time")]
    TooLarge,
    /// More than [`MAX_IMPORT_ITEMS`] items.
    #[error("the file holds more than 100,000 items; export fewer at a time")]
    TooMany,
    /// Not a format this reads, or a mapping that does not fit it.
    #[error("{0}")]
    Unrecognised(String),
    /// Damaged where it says (a row or a column, never a value).
    #[error("the file is damaged: {0}")]
    Malformed(String),
}

/// One item read from an export, with the folders it was in there.
#[derive(Debug)]
pub struct ImportedItem {
    /// Folders, outermost first (empty for none).
    pub folder: Vec<String>,
    /// The item.
    pub item: Item,
}

/// A row or entry left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Its row (1 is the first after the header) or entry number.
    pub row: usize,
    /// Why.
    pub reason: &'static str,
}

/// What an export holds.
#[derive(Debug)]
pub struct Parsed {
    /// The program it came from, as recognised (e.g. "Chrome").
    pub source: &'static str,
    /// The items, in the export's order.
    pub items: Vec<ImportedItem>,
    /// What was left out.
    pub skipped: Vec<Skipped>,
}

impl Parsed {
    /// How many items of each kind it holds (`login`, `note`, `card`,
    /// `SSH key`), kinds it has none of left out.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        use polykey_vaults::items::ItemKind;
        let mut counts = [("login", 0), ("note", 0), ("card", 0), ("SSH key", 0)];
        for imported in &self.items {
            let at = match imported.item.kind {
                ItemKind::Login { .. } => 0,
                ItemKind::SecureNote { .. } => 1,
                ItemKind::Card { .. } => 2,
                ItemKind::SshKey { .. } => 3,
            };
            counts[at].1 += 1;
        }
        counts.into_iter().filter(|(_, n)| *n > 0).collect()
    }
}

/// The text of an export: UTF-8 (a byte-order mark dropped), UTF-16 with a
/// byte-order mark, and otherwise Windows-1252 (what older exports on
/// Windows are written in; every byte decodes, so nothing is lost).
pub fn decode_text(bytes: &[u8]) -> Zeroizing<String> {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom..]);
        return Zeroizing::new(text.into_owned());
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Zeroizing::new(text.to_owned()),
        Err(_) => {
            let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
            Zeroizing::new(text.into_owned())
        }
    }
}

/// One segment of a path in the vault made from a title or folder name:
/// separators and control characters replaced, names the vault refuses
/// (`.`, `..`, `.git`) changed, cut to [`MAX_NAME_BYTES`] on a character
/// boundary; empty if nothing is left.
pub fn safe_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' => '-',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if out.len() > MAX_NAME_BYTES {
        let mut end = MAX_NAME_BYTES;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out = out.trim_end().to_owned();
    }
    if out == "." || out == ".." || out.eq_ignore_ascii_case(".git") {
        out = format!("_{out}");
    }
    out
}

/// The secrets to write for `items` under directory `under` of a vault
/// whose secrets are `existing`: each at `under/folders/title`, a title
/// taken already (in the vault, or by an earlier item) getting " (2)",
/// " (3)"…, so nothing already there is overwritten.
pub fn secrets_for(
    items: &[ImportedItem],
    under: &str,
    existing: &BTreeSet<String>,
) -> Vec<(String, Zeroizing<Vec<u8>>)> {
    let mut taken: BTreeSet<String> = existing.clone();
    let under: Vec<String> = under
        .split('/')
        .map(safe_name)
        .filter(|s| !s.is_empty())
        .collect();
    let mut out = Vec::with_capacity(items.len());
    for imported in items {
        let mut segments = under.clone();
        segments.extend(
            imported
                .folder
                .iter()
                .map(|f| safe_name(f))
                .filter(|s| !s.is_empty()),
        );
        let title = match safe_name(&imported.item.title) {
            t if t.is_empty() => "Untitled".to_owned(),
            t => t,
        };
        let dir = segments.join("/");
        let at = |name: &str| {
            if dir.is_empty() {
                name.to_owned()
            } else {
                format!("{dir}/{name}")
            }
        };
        let mut path = at(&title);
        let mut n = 2;
        while taken.contains(&path) {
            path = at(&format!("{title} ({n})"));
            n += 1;
        }
        taken.insert(path.clone());
        out.push((path, imported.item.to_bytes()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use polykey_vaults::items::ItemKind;

    fn note(title: &str, folder: &[&str]) -> ImportedItem {
        ImportedItem {
            folder: folder.iter().map(|s| s.to_string()).collect(),
            item: Item::new(title, ItemKind::SecureNote { text: "t".into() }),
        }
    }

    #[test]
    fn names_the_vault_refuses_are_changed_not_refused() {
        assert_eq!(safe_name("a/b\\c"), "a-b-c");
        assert_eq!(safe_name(".."), "_..");
        assert_eq!(safe_name(".GIT"), "_.GIT");
        assert_eq!(safe_name("  tab\there\n "), "tab here");
        let long = "é".repeat(150);
        let cut = safe_name(&long);
        assert!(cut.len() <= MAX_NAME_BYTES && cut.chars().all(|c| c == 'é'));
        for name in ["a/b", "..", ".git", "x\0y", &long] {
            let path = polykey_vaults::SecretPath::parse(&safe_name(name));
            assert!(path.is_ok(), "{name:?}");
        }
    }

    #[test]
    fn a_taken_title_gets_a_number_and_nothing_is_overwritten() {
        let existing = BTreeSet::from(["Imported/Mail/Gmail".to_owned()]);
        let items = [
            note("Gmail", &["Mail"]),
            note("Gmail", &["Mail"]),
            note("", &[]),
            note("x", &["", ".."]),
        ];
        let paths: Vec<String> = secrets_for(&items, "Imported", &existing)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(
            paths,
            [
                "Imported/Mail/Gmail (2)",
                "Imported/Mail/Gmail (3)",
                "Imported/Untitled",
                "Imported/_../x"
            ]
        );
    }

    #[test]
    fn text_in_other_encodings_is_read() {
        assert_eq!(*decode_text(b"\xEF\xBB\xBFname"), "name");
        assert_eq!(*decode_text(b"caf\xE9"), "café");
        assert_eq!(*decode_text(b"\xFF\xFEh\0i\0"), "hi");
        assert_eq!(*decode_text("naïve".as_bytes()), "naïve");
    }
}

//! Moving in: the exports of other password managers read into typed
//! items, ready to be written into a vault in one commit.
//!
//! Everything here reads a file the user picked, which may be damaged,
//! huge, or made to hurt: its size is bounded before it is read
//! ([`MAX_IMPORT_BYTES`]), its items are counted ([`MAX_IMPORT_ITEMS`]),
//! and no error names a value from it (only rows and columns).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use polykey_vaults::items::Item;
use zeroize::Zeroizing;

pub mod bitwarden;
pub mod csv;
/// An export read from its file; the desktop wizard's preview and import.
pub mod file;
/// KeePass databases (KDBX 3.1 and 4).
pub mod keepass;
/// What a file's key derivation may take of this device's memory.
mod memory;
pub mod onepassword;
pub mod pass;

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
    /// The export is protected with a password, and none was given.
    #[error(
        "the export is protected with a password; give it (the password it was exported with)"
    )]
    NeedsPassword,
    /// The password does not open the export (or it was changed since).
    #[error("the password does not open this export (or the file was changed)")]
    WrongPassword,
}

/// One item read from an export, with the folders it was in there.
#[derive(Debug)]
pub struct ImportedItem {
    /// Folders, outermost first (empty for none), shared by the items of
    /// one folder: each holding its own copy let a deep folder of 100,000
    /// items take 370 MB from an export of 2.6 MB.
    pub folder: Arc<[String]>,
    /// The item.
    pub item: Item,
    /// Files attached to it (a name and the bytes), written beside it.
    pub files: Vec<(String, Zeroizing<Vec<u8>>)>,
}

/// A row or entry left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Its line in a CSV file (where the row starts), or its entry
    /// number (from 1) in a JSON export.
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
    /// What was left out: the first 100 rows or entries, one by one.
    pub skipped: Vec<Skipped>,
    /// How many were left out in all.
    pub skipped_total: usize,
}

/// Rows or entries left out as they are read: the first
/// [`MAX_SKIPPED_LISTED`] one by one, all of them counted (a list of each
/// grew with the export: 24 bytes for every one of millions of rows).
#[derive(Debug, Default)]
pub(crate) struct Skips {
    listed: Vec<Skipped>,
    total: usize,
}

/// Skipped rows or entries listed one by one; the rest are counted.
pub(crate) const MAX_SKIPPED_LISTED: usize = 100;

impl Skips {
    pub(crate) fn push(&mut self, row: usize, reason: &'static str) {
        self.total += 1;
        if self.listed.len() < MAX_SKIPPED_LISTED {
            self.listed.push(Skipped { row, reason });
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.total == 0
    }
}

impl Parsed {
    /// What was read from an export of `source`.
    pub(crate) fn new(source: &'static str, items: Vec<ImportedItem>, skips: Skips) -> Self {
        Parsed {
            source,
            items,
            skipped: skips.listed,
            skipped_total: skips.total,
        }
    }

    /// How many items of each kind it holds (`login`, `note`, `card`,
    /// `SSH key`, `identity`), kinds it has none of left out.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        use polykey_vaults::items::ItemKind;
        let mut counts = [
            ("login", 0),
            ("note", 0),
            ("card", 0),
            ("SSH key", 0),
            ("identity", 0),
        ];
        for imported in &self.items {
            let at = match imported.item.kind {
                ItemKind::Login { .. } => 0,
                ItemKind::SecureNote { .. } => 1,
                ItemKind::Card { .. } => 2,
                ItemKind::SshKey { .. } => 3,
                ItemKind::Identity { .. } => 4,
            };
            counts[at].1 += 1;
        }
        counts.into_iter().filter(|(_, n)| *n > 0).collect()
    }
}

/// Most JSON objects and arrays an export may hold: about ten per item of
/// the largest import. Counted before parsing, so a file of empty objects
/// (each a whole item in memory) cannot take gigabytes.
const MAX_JSON_NODES: usize = 10 * MAX_IMPORT_ITEMS;
/// Most values (object members and array elements, counted by the commas
/// between them) an export may hold: about a hundred per item of the
/// largest import. A field kept as it is (1Password's tags, its document
/// attributes) holds each of its elements in memory at ten times its two
/// bytes of text; unbounded, 64 MiB of `0,` would take over a gigabyte.
const MAX_JSON_VALUES: usize = 100 * MAX_IMPORT_ITEMS;

/// JSON of an export, as `T`: its size checked first
/// ([`check_json_size`]), and an error that names `what` it is not and the
/// line and column, never a value (serde's own message can quote one).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, ImportError> {
    check_json_size(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| {
        ImportError::Malformed(format!("{what} (line {}, column {})", e.line(), e.column()))
    })
}

/// Most websites one imported login keeps (the rest are left out): a
/// Bitwarden CSV cell of a million commas was a million addresses, and
/// every listing of the vault holds each login's addresses.
pub(crate) const MAX_URLS: usize = 100;

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Append `line` to the free text `text`, on a line of its own.
pub(crate) fn add_line(text: &mut String, line: &str) {
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(line);
}

/// What makes an imported login the same as one already in the vault:
/// the host of its first website (without `www.`) and its user name,
/// case folded. `None` for a login without a website.
pub fn login_key(username: &str, urls: &[String]) -> Option<(String, String)> {
    let host = urls
        .first()
        .and_then(|url| csv::host_of(url.trim()))?
        .to_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host).to_owned();
    Some((host, username.trim().to_lowercase()))
}

/// A folder path as an export writes it (`a/b`), as its folder names:
/// each as the vault will name it ([`safe_name`]), empty ones left out, at
/// most [`MAX_FOLDER_DEPTH`] (an item keeps no more than it will show).
pub(crate) fn folder_names(path: &str) -> Vec<String> {
    folder_names_of(path.split('/'))
}

/// [`folder_names`] of a path already split, taken one by one: no more
/// of it is looked at than the depth kept needs.
pub(crate) fn folder_names_of<'a>(segments: impl Iterator<Item = &'a str>) -> Vec<String> {
    segments
        .map(safe_name)
        .filter(|s| !s.is_empty())
        .take(MAX_FOLDER_DEPTH)
        .collect()
}

/// Refuse JSON with more than [`MAX_JSON_NODES`] objects and arrays or
/// [`MAX_JSON_VALUES`] values, counted in one pass over the text
/// (brackets and commas inside strings skipped).
pub(crate) fn check_json_size(bytes: &[u8]) -> Result<(), ImportError> {
    let (mut nodes, mut values, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                nodes += 1;
                if nodes > MAX_JSON_NODES {
                    return Err(ImportError::TooMany);
                }
            }
            b',' => {
                values += 1;
                if values > MAX_JSON_VALUES {
                    return Err(ImportError::TooMany);
                }
            }
            _ => {}
        }
    }
    Ok(())
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
/// invisible characters dropped, separators and control characters
/// replaced, names the vault refuses (`.`, `..`, `.git`) changed, cut to
/// [`MAX_NAME_BYTES`] on a character boundary; empty if nothing is left.
/// Built as it is read, and no further than the cut: a hostile name of 64
/// MiB in one-letter words took eight times that before it was cut (a
/// copy, a list of its words, their join).
pub fn safe_name(name: &str) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in name.chars() {
        // Invisible characters dropped: a name must read as what it is
        // ("scan", U+202E, "fdp.exe" is not a PDF).
        if polykey_keys::text::is_invisible(c) {
            continue;
        }
        let c = match c {
            '/' | '\\' => '-',
            c if c.is_control() => ' ',
            c => c,
        };
        // Each run of spaces one space, none first or last.
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if std::mem::take(&mut space) {
            out.push(' ');
        }
        out.push(c);
        if out.len() >= MAX_NAME_BYTES {
            break;
        }
    }
    if out.len() > MAX_NAME_BYTES {
        out = cut(&out, MAX_NAME_BYTES).trim_end().to_owned();
    }
    // `.gitkeep` is what holds an empty folder: never listed as a secret.
    if out == "."
        || out == ".."
        || out.eq_ignore_ascii_case(".git")
        || out.eq_ignore_ascii_case(".gitkeep")
    {
        out = format!("_{out}");
    }
    out
}

/// Most folder levels an imported item is put under (the chosen folder
/// and the export's own, outermost first; deeper ones are dropped), so a
/// path stays within the vault's depth and length bounds: 16 levels of
/// [`MAX_NAME_BYTES`] and a title are under 4,096 bytes.
pub(crate) const MAX_FOLDER_DEPTH: usize = 16;

/// The secrets an import writes: each path and its bytes.
pub type Placed = Vec<(String, Zeroizing<Vec<u8>>)>;

/// The most the items of one import may take as stored (their attached
/// files apart, bounded as they are read).
const MAX_IMPORT_STORED: usize = 512 * 1024 * 1024;

/// Refuse `items` larger in all, as stored, than one import stores,
/// counted without making them: a field of control characters takes six
/// times its size, and a KeePass database of 250 KB unpacked to 256 MiB of
/// them made 1.5 GB before the write refused it.
pub(crate) fn check_stored_size(items: &[ImportedItem]) -> Result<(), ImportError> {
    let mut stored = 0usize;
    for imported in items {
        stored = stored.saturating_add(imported.item.encoded_len());
        if stored > MAX_IMPORT_STORED {
            return Err(ImportError::Unrecognised(
                "the items are larger in all than one import stores (512 MiB); import fewer at \
                 a time"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// `item` as stored at `path`, refused before it is made if it is larger
/// than a secret may be (the write would refuse it).
pub(crate) fn stored_item(item: &Item, path: &str) -> Result<Zeroizing<Vec<u8>>, ImportError> {
    item.to_bytes_within(polykey_vaults::MAX_SECRET_SIZE)
        .ok_or_else(|| {
            ImportError::Unrecognised(format!(
                "the item {path} is larger than a secret may be (16 MiB)"
            ))
        })
}

/// The secrets to write for `items` under directory `under` of a vault
/// whose secrets are `existing`: each at `under/folders/title`, its files
/// in `under/folders/title files/`. A title
/// taken already (by a secret or a folder, in the vault or by an earlier
/// item) gets " (2)", " (3)"…, and so does a folder whose name a secret
/// holds: nothing already there is overwritten or turned into a folder.
/// Refused when the paths are longer in all than a vault's version holds
/// ([`polykey_vaults::MAX_VERSION_PATH_BYTES`]), or larger as stored than
/// an import stores ([`check_stored_size`]).
pub fn secrets_for(
    items: &[ImportedItem],
    under: &str,
    existing: &BTreeSet<String>,
) -> Result<Placed, ImportError> {
    check_stored_size(items)?;
    secrets_for_counted(items, under, existing)
}

/// [`secrets_for`] of `items` already counted by [`check_stored_size`].
pub(crate) fn secrets_for_counted(
    items: &[ImportedItem],
    under: &str,
    existing: &BTreeSet<String>,
) -> Result<Placed, ImportError> {
    let mut names = Names::new(existing);
    let under = folder_names(under);
    let mut out = Vec::with_capacity(items.len());
    // The paths' bytes in all, refused past what one version of a vault
    // holds as the write would refuse them, but before they are all made
    // (100,000 items in 16 folders of 200 bytes made about a gigabyte of
    // paths, and copies of them, from an export of a few MiB).
    let mut path_bytes = 0u64;
    let mut count = |path: &str| {
        path_bytes += path.len() as u64;
        if path_bytes > polykey_vaults::MAX_VERSION_PATH_BYTES {
            return Err(ImportError::Unrecognised(
                "the items' paths are longer in all than a vault holds (64 MiB); import fewer \
                 at a time, or under fewer folders"
                    .into(),
            ));
        }
        Ok(())
    };
    for imported in items {
        let mut segments = under.clone();
        segments.extend(
            imported
                .folder
                .iter()
                .map(|f| safe_name(f))
                .filter(|s| !s.is_empty()),
        );
        segments.truncate(MAX_FOLDER_DEPTH);
        let mut dir = String::new();
        for segment in segments {
            dir = names.free(&dir, &segment, true);
        }
        let title = match safe_name(&imported.item.title) {
            t if t.is_empty() => "Untitled".to_owned(),
            t => t,
        };
        let path = names.free(&dir, &title, false);
        if !imported.files.is_empty() {
            // Beside the item, in a folder named after it.
            let name = path.rsplit('/').next().unwrap_or(&title).to_owned();
            let files = names.free(&dir, &format!("{name} files"), true);
            for (file, bytes) in &imported.files {
                let file = match safe_name(file) {
                    f if f.is_empty() => "attachment".to_owned(),
                    f => f,
                };
                let at = names.free(&files, &file, false);
                count(&at)?;
                out.push((at, bytes.clone()));
            }
        }
        count(&path)?;
        let bytes = stored_item(&imported.item, &path)?;
        out.push((path, bytes));
    }
    Ok(out)
}

/// The paths of a vault being filled: its secrets and folders, and the
/// next number to try for each name taken.
struct Names {
    files: HashSet<String>,
    dirs: HashSet<String>,
    next: HashMap<String, usize>,
    /// The folder each export folder went to (itself, or numbered).
    moved: HashMap<String, String>,
}

impl Names {
    fn new(existing: &BTreeSet<String>) -> Self {
        let mut names = Self {
            files: HashSet::new(),
            dirs: HashSet::new(),
            next: HashMap::new(),
            moved: HashMap::new(),
        };
        for path in existing {
            names.add_file(path);
        }
        // Kept for attached files: neither a secret nor a folder of its own.
        names.add_file(polykey_vaults::items::ATTACHMENTS_DIR);
        names
    }

    fn add_file(&mut self, path: &str) {
        let mut at = 0;
        while let Some(slash) = path[at..].find('/') {
            self.dirs.insert(path[..at + slash].to_owned());
            at += slash + 1;
        }
        self.files.insert(path.to_owned());
    }

    /// `name` in folder `dir` as a folder (`folder`) or a new secret: the
    /// name itself when free for that use, else the first free numbered
    /// one. A folder may be shared with earlier items; a secret never is.
    fn free(&mut self, dir: &str, name: &str, folder: bool) -> String {
        let at = |name: &str| {
            if dir.is_empty() {
                name.to_owned()
            } else {
                format!("{dir}/{name}")
            }
        };
        let usable = |names: &Self, path: &str| {
            !names.files.contains(path) && (folder || !names.dirs.contains(path))
        };
        let base = at(name);
        if let Some(moved) = self.moved.get(&base).filter(|_| folder) {
            return moved.clone();
        }
        let mut path = base.clone();
        if !usable(self, &path) {
            let mut n = self.next.get(&base).copied().unwrap_or(2);
            loop {
                path = at(&format!("{name} ({n})"));
                n += 1;
                if usable(self, &path) {
                    break;
                }
            }
            self.next.insert(base.clone(), n);
        }
        if folder {
            self.dirs.insert(path.clone());
            self.moved.insert(base, path.clone());
        } else {
            self.add_file(&path);
        }
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polykey_vaults::items::ItemKind;

    fn note(title: &str, folder: &[&str]) -> ImportedItem {
        ImportedItem {
            folder: folder.iter().map(|s| s.to_string()).collect(),
            item: Item::new(title, ItemKind::SecureNote { text: "t".into() }),
            files: Vec::new(),
        }
    }

    #[test]
    fn names_the_vault_refuses_are_changed_not_refused() {
        assert_eq!(safe_name("a/b\\c"), "a-b-c");
        assert_eq!(safe_name(".."), "_..");
        assert_eq!(safe_name(".GIT"), "_.GIT");
        assert_eq!(safe_name("  tab\there\n "), "tab here");
        assert_eq!(safe_name("scan\u{202e}fdp.exe"), "scanfdp.exe");
        assert_eq!(safe_name("a\u{200b}\u{200b}b"), "ab");
        let long = "é".repeat(150);
        let cut = safe_name(&long);
        assert!(cut.len() <= MAX_NAME_BYTES && cut.chars().all(|c| c == 'é'));
        for name in ["a/b", "..", ".git", "x\0y", &long] {
            let path = polykey_vaults::SecretPath::parse(&safe_name(name));
            assert!(path.is_ok(), "{name:?}");
        }
    }

    /// Names come out as they did when the whole name was copied, split
    /// into words and joined before the cut (that form is kept here to
    /// compare with), now that they are built only up to the cut.
    #[test]
    fn a_name_built_up_to_its_cut_is_the_name_cut_after() {
        fn whole_then_cut(name: &str) -> String {
            let out = name
                .chars()
                .filter(|&c| !polykey_keys::text::is_invisible(c))
                .map(|c| match c {
                    '/' | '\\' => '-',
                    c if c.is_control() => ' ',
                    c => c,
                })
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            cut(&out, MAX_NAME_BYTES).trim_end().to_owned()
        }
        let pieces = [
            "a", " ", "  ", "\t", "\n", "/", "é", "😀", "\u{200b}", "\u{202e}", "\0", "xyz",
        ];
        let mut seed = 7u64;
        let mut names: Vec<String> = vec![String::new(), " ".repeat(300), "a ".repeat(300)];
        for _ in 0..2_000 {
            let mut name = String::new();
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = (seed >> 33) % 260;
            for _ in 0..len {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                name.push_str(pieces[((seed >> 33) % pieces.len() as u64) as usize]);
            }
            names.push(name);
        }
        for name in &names {
            let reference = whole_then_cut(name);
            // (The names the vault refuses are changed after the cut.)
            if [".", "..", ".git", ".gitkeep"].contains(&reference.to_lowercase().as_str()) {
                continue;
            }
            assert_eq!(safe_name(name), reference, "{name:?}");
        }
    }

    /// An item larger as stored than a secret may be, or items larger in
    /// all than an import stores, are refused before they are made: a
    /// field of control characters takes six times its size as stored.
    /// Before, every item was made (1.5 GB for 256 MiB of them) and the
    /// write refused it after.
    #[test]
    fn items_too_large_as_stored_are_refused_before_they_are_made() {
        let controls = |title: &str, bytes: usize| ImportedItem {
            folder: Arc::new([]),
            item: Item::new(
                title,
                ItemKind::SecureNote {
                    text: "\u{1}".repeat(bytes),
                },
            ),
            files: Vec::new(),
        };
        let large = controls("large", 3 << 20);
        let stored = large.item.to_bytes();
        // (Made in a buffer of its size: none grown, none left behind.)
        assert_eq!(large.item.encoded_len(), stored.len());
        assert_eq!(stored.capacity(), stored.len());
        assert!(stored.len() > polykey_vaults::MAX_SECRET_SIZE);
        match secrets_for(&[large], "", &BTreeSet::new()) {
            Err(e) => assert!(e.to_string().contains("larger than a secret"), "{e}"),
            Ok(placed) => panic!("{} bytes made", placed[0].1.len()),
        }
        let items: Vec<ImportedItem> = (0..40)
            .map(|i| controls(&format!("n{i}"), 2_600_000))
            .collect();
        assert!(items[0].item.encoded_len() < polykey_vaults::MAX_SECRET_SIZE);
        match secrets_for(&items, "", &BTreeSet::new()) {
            Err(e) => assert!(e.to_string().contains("512 MiB"), "{e}"),
            Ok(placed) => panic!("{} items made", placed.len()),
        }
        assert_eq!(
            secrets_for(&items[..4], "", &BTreeSet::new())
                .unwrap()
                .len(),
            4
        );
    }

    /// Paths longer in all than a vault's version holds are refused as they
    /// are made, not all made first (and then refused by the write).
    #[test]
    fn paths_longer_in_all_than_a_vault_holds_are_refused() {
        let (a, b, c) = ("a".repeat(200), "b".repeat(200), "c".repeat(200));
        let items: Vec<ImportedItem> = (0..100_000)
            .map(|i| note(&format!("{i:0>190}"), &[&a, &b, &c]))
            .collect();
        match secrets_for(&items, "", &BTreeSet::new()) {
            Err(ImportError::Unrecognised(why)) => assert!(why.contains("64 MiB"), "{why}"),
            Err(e) => panic!("{e}"),
            Ok(placed) => panic!("{} placed", placed.len()),
        }
        assert_eq!(
            secrets_for(&items[..1_000], "", &BTreeSet::new())
                .unwrap()
                .len(),
            1_000
        );
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
            .unwrap()
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

    fn paths(items: &[ImportedItem], under: &str, existing: &[&str]) -> Vec<String> {
        let existing: BTreeSet<String> = existing.iter().map(|s| s.to_string()).collect();
        secrets_for(items, under, &existing)
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    }

    #[test]
    fn a_title_never_replaces_a_folder_and_a_folder_never_a_secret() {
        // A title named like a folder of the vault, or of an earlier item.
        assert_eq!(
            paths(
                &[note("Mail", &[]), note("x", &["Work"]), note("Work", &[])],
                "",
                &["Mail/Gmail"]
            ),
            ["Mail (2)", "Work/x", "Work (2)"]
        );
        // A folder named like a secret: numbered, and kept for the items
        // of that folder after it.
        assert_eq!(
            paths(&[note("a", &["Mail"]), note("b", &["Mail"])], "", &["Mail"]),
            ["Mail (2)/a", "Mail (2)/b"]
        );
        // A secret named like a folder made earlier in the same import.
        assert_eq!(
            paths(&[note("Work", &[]), note("x", &["Work"])], "", &[]),
            ["Work", "Work (2)/x"]
        );
    }

    #[test]
    fn every_path_made_is_one_the_vault_takes() {
        let deep: Vec<String> = (0..70).map(|i| format!("{i}{}", "d".repeat(199))).collect();
        let deep: Vec<&str> = deep.iter().map(String::as_str).collect();
        let long = "t".repeat(5000);
        let items = [note(&long, &deep), note(".gitkeep", &[".git", "a\\b"])];
        for path in paths(&items, "../x/./y", &[]) {
            assert!(polykey_vaults::SecretPath::parse(&path).is_ok(), "{path}");
            assert!(!path.ends_with("/.gitkeep"), "{path}");
        }
        assert_eq!(
            paths(
                &[note(".attachments", &[]), note("a", &[".attachments"])],
                "",
                &[]
            ),
            [".attachments (2)", ".attachments (3)/a"]
        );
    }

    #[test]
    fn many_items_of_one_title_are_numbered_in_linear_time() {
        let items: Vec<ImportedItem> = (0..20_000).map(|_| note("Same", &[])).collect();
        let started = std::time::Instant::now();
        let made = paths(&items, "", &[]);
        let distinct: BTreeSet<&String> = made.iter().collect();
        assert_eq!(distinct.len(), 20_000);
        assert_eq!(made[19_999], "Same (20000)");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn json_of_too_many_objects_is_refused_before_it_is_parsed() {
        let empty = format!("{{\"items\": [{}{{}}]}}", "{},".repeat(MAX_JSON_NODES));
        assert!(matches!(
            check_json_size(empty.as_bytes()),
            Err(ImportError::TooMany)
        ));
        // Brackets in strings are text, not objects.
        let text = format!("{{\"notes\": \"{}\\\" [\"}}", "{[".repeat(MAX_JSON_NODES));
        assert!(check_json_size(text.as_bytes()).is_ok());
        assert!(matches!(
            bitwarden::read(empty.as_bytes(), None),
            Err(ImportError::TooMany)
        ));
    }

    /// A field kept whole (1Password's tags) of millions of tiny values:
    /// each two bytes of text, tens in memory. Refused before parsing;
    /// commas inside strings are text.
    #[test]
    fn json_of_too_many_values_is_refused_before_it_is_parsed() {
        let tags = format!(
            r#"{{"tags": [{}""]}}"#,
            r#""","#.repeat(MAX_JSON_VALUES + 1)
        );
        assert!(matches!(
            check_json_size(tags.as_bytes()),
            Err(ImportError::TooMany)
        ));
        let text = format!(r#"{{"notes": "{}"}}"#, ",".repeat(MAX_JSON_VALUES + 1));
        assert!(check_json_size(text.as_bytes()).is_ok());
    }
}

//! CSV exports: Chrome and Edge, Firefox, Safari, Bitwarden, LastPass and
//! KeePassXC, recognised by their header rows, and any other CSV through a
//! [`Mapping`] of its columns.

use polykey_vaults::items::{Item, ItemKind};
use zeroize::Zeroizing;

use super::{decode_text, ImportError, ImportedItem, Parsed, Skips};
use super::{MAX_IMPORT_BYTES, MAX_IMPORT_ITEMS};

/// What a column of a CSV holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The item's title.
    Title,
    /// The user name or email.
    Username,
    /// The password.
    Password,
    /// A website (or several, comma-separated, for Bitwarden).
    Url,
    /// Free text.
    Notes,
    /// An `otpauth://` URI or base32 secret.
    Totp,
    /// The folder, `/`-separated.
    Folder,
}

impl Field {
    /// The field a mapping names (`title`, `username`, `password`, `url`,
    /// `notes`, `totp`, `folder`).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "title" | "name" => Self::Title,
            "username" | "user" | "login" | "email" => Self::Username,
            "password" => Self::Password,
            "url" | "website" | "uri" => Self::Url,
            "notes" | "note" => Self::Notes,
            "totp" | "otp" => Self::Totp,
            "folder" | "group" => Self::Folder,
            _ => return None,
        })
    }
}

/// Which column holds each field: by its place, `#1` for the first (what a
/// file without a header row, or with two columns of one name, is mapped
/// by), or by the column's name in the header row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    /// Field and column name pairs.
    pub columns: Vec<(Field, String)>,
    /// The file has no header row: its first row is an entry like the
    /// others, and columns are named by place only.
    pub no_header: bool,
}

impl Mapping {
    /// A mapping written `field=column,field=column` (as `polykey import
    /// --map` takes it).
    pub fn parse(text: &str) -> Result<Self, ImportError> {
        let mut columns = Vec::new();
        for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (field, column) = pair.split_once('=').ok_or_else(|| {
                ImportError::Unrecognised(format!(
                    "a mapping is field=column pairs, separated by commas; `{pair}` is not one"
                ))
            })?;
            let field = Field::parse(field).ok_or_else(|| {
                ImportError::Unrecognised(format!(
                    "`{}` is not a field: use title, username, password, url, notes, totp or folder",
                    field.trim()
                ))
            })?;
            columns.push((field, column.trim().to_owned()));
        }
        Ok(Self {
            columns,
            no_header: false,
        })
    }
}

/// A known export: its name, the columns that recognise it, and its
/// mapping.
struct Known {
    source: &'static str,
    needs: &'static [&'static str],
    columns: &'static [(Field, &'static str)],
}

/// Most specific first: Bitwarden's and KeePassXC's headers hold Chrome's
/// column names too.
const KNOWN: &[Known] = &[
    Known {
        source: "Bitwarden",
        needs: &[
            "type",
            "name",
            "login_uri",
            "login_username",
            "login_password",
        ],
        columns: &[
            (Field::Folder, "folder"),
            (Field::Title, "name"),
            (Field::Notes, "notes"),
            (Field::Url, "login_uri"),
            (Field::Username, "login_username"),
            (Field::Password, "login_password"),
            (Field::Totp, "login_totp"),
        ],
    },
    Known {
        source: "KeePassXC",
        needs: &["group", "title", "username", "password", "url", "notes"],
        columns: &[
            (Field::Folder, "group"),
            (Field::Title, "title"),
            (Field::Username, "username"),
            (Field::Password, "password"),
            (Field::Url, "url"),
            (Field::Notes, "notes"),
            (Field::Totp, "totp"),
        ],
    },
    Known {
        source: "LastPass",
        needs: &["url", "username", "password", "extra", "name", "grouping"],
        columns: &[
            (Field::Url, "url"),
            (Field::Username, "username"),
            (Field::Password, "password"),
            (Field::Totp, "totp"),
            (Field::Notes, "extra"),
            (Field::Title, "name"),
            (Field::Folder, "grouping"),
        ],
    },
    Known {
        source: "Firefox",
        needs: &["url", "username", "password", "guid"],
        columns: &[
            (Field::Url, "url"),
            (Field::Username, "username"),
            (Field::Password, "password"),
        ],
    },
    Known {
        source: "Safari",
        needs: &["title", "url", "username", "password"],
        columns: &[
            (Field::Title, "title"),
            (Field::Url, "url"),
            (Field::Username, "username"),
            (Field::Password, "password"),
            (Field::Notes, "notes"),
            (Field::Totp, "otpauth"),
        ],
    },
    Known {
        source: "Chrome",
        needs: &["name", "url", "username", "password"],
        columns: &[
            (Field::Title, "name"),
            (Field::Url, "url"),
            (Field::Username, "username"),
            (Field::Password, "password"),
            (Field::Notes, "note"),
        ],
    },
];

/// The column each field is in: by its place (`#1` the first: what the
/// desktop's mapping always sends, so a header itself named `#2` does not
/// move it), else found by name in `header` (lowercased; none for a file
/// without a header row).
fn positions(
    header: Option<&[String]>,
    width: usize,
    columns: impl Iterator<Item = (Field, String)>,
) -> Result<Vec<(Field, usize)>, ImportError> {
    let mut out = Vec::new();
    for (field, name) in columns {
        let name = name.to_lowercase();
        let named = header.and_then(|header| header.iter().position(|h| *h == name));
        let placed = name
            .strip_prefix('#')
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=width).contains(n))
            .map(|n| n - 1);
        match placed.or(named) {
            Some(at) => out.push((field, at)),
            None if header.is_none() => {
                return Err(ImportError::Unrecognised(format!(
                    "without a header row, columns are named by place, #1 to #{width}; \
                     `{name}` is not one"
                )))
            }
            None => {
                return Err(ImportError::Unrecognised(format!(
                    "the file has no column named `{name}`"
                )))
            }
        }
    }
    if !out.iter().any(|(f, _)| *f == Field::Password)
        && !out.iter().any(|(f, _)| *f == Field::Notes)
    {
        return Err(ImportError::Unrecognised(
            "a mapping needs a password or a notes column".into(),
        ));
    }
    Ok(out)
}

/// The column names of a CSV's header row, as written there (trimmed),
/// for a mapping to name; empty names after them up to its widest row (a
/// row with more columns than the first can be mapped by place too).
pub fn headers(bytes: &[u8]) -> Result<Vec<String>, ImportError> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge);
    }
    let text = decode_text(bytes);
    let (mut reader, widest) = reader_of(&text)?;
    let mut names = header_row(&mut reader, &mut ::csv::StringRecord::new())?;
    names.resize(names.len().max(widest), String::new());
    Ok(names)
}

/// A reader of `text`, and how many columns its widest row has.
fn reader_of(text: &str) -> Result<(::csv::Reader<&[u8]>, usize), ImportError> {
    let widest = check_columns(text.as_bytes())?;
    let reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    Ok((reader, widest))
}

/// Refuse a row of more than [`MAX_COLUMNS`] fields before any is read:
/// the reader holds 8 bytes for each field of a row before its count can
/// be checked, so a row of 64 MiB of commas took half a gigabyte. Fields
/// are split as the reader splits them (a quote opens a quoted field only
/// at the field's start; `""` inside one is a quote; CR, LF or both end a
/// row outside quotes). Returns the most fields a row has.
fn check_columns(text: &[u8]) -> Result<usize, ImportError> {
    // The reader drops a byte-order mark at the start (one more than
    // `decode_text` does); counted as a field's start, it set this count
    // a quote out of step with the reader's.
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    #[derive(Clone, Copy)]
    enum At {
        Start,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let (mut at, mut fields, mut widest) = (At::Start, 1usize, 1usize);
    for &b in text {
        at = match (at, b) {
            (At::Start, b'"') => At::Quoted,
            (At::Quoted, b'"') => At::QuoteInQuoted,
            (At::Quoted, _) => At::Quoted,
            (At::QuoteInQuoted, b'"') => At::Quoted,
            (_, b',') => {
                fields += 1;
                if fields > MAX_COLUMNS {
                    return Err(ImportError::Unrecognised(
                        "a row has more than 1,000 columns".into(),
                    ));
                }
                widest = widest.max(fields);
                At::Start
            }
            (_, b'\n' | b'\r') => {
                fields = 1;
                At::Start
            }
            _ => At::Unquoted,
        };
    }
    Ok(widest)
}

/// The first row's names, trimmed.
fn header_row(
    reader: &mut ::csv::Reader<&[u8]>,
    record: &mut ::csv::StringRecord,
) -> Result<Vec<String>, ImportError> {
    match reader.read_record(record) {
        Ok(true) if record.len() <= MAX_COLUMNS => {
            Ok(record.iter().map(|h| h.trim().to_owned()).collect())
        }
        Ok(true) => Err(ImportError::Unrecognised(
            "the header row has more than 1,000 columns".into(),
        )),
        Ok(false) => Err(ImportError::Unrecognised("the file is empty".into())),
        Err(_) => Err(ImportError::Malformed("its header row".into())),
    }
}

/// Read a CSV export: recognised by its header, or read with `mapping`
/// when one is given. Rows with nothing in them are skipped and said so;
/// a row that cannot be read stops the import (nothing is written).
pub fn read(bytes: &[u8], mapping: Option<&Mapping>) -> Result<Parsed, ImportError> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge);
    }
    let text = decode_text(bytes);
    let (mut reader, widest) = reader_of(&text)?;
    // One record, read into again and again (fewer copies of values).
    let mut record = ::csv::StringRecord::new();
    let first: Vec<String> = header_row(&mut reader, &mut record)?;
    // Places up to the widest row (a short row's missing cells are empty).
    let width = first.len().max(widest);
    // Without a header row, the first row is an entry, taken first below.
    let mut first_is_entry = mapping.is_some_and(|m| m.no_header);
    let header: Vec<String> = if first_is_entry {
        Vec::new()
    } else {
        first.iter().map(|h| h.to_lowercase()).collect()
    };
    drop(first);
    let (source, columns) = match mapping {
        Some(mapping) => (
            "CSV",
            positions(
                (!mapping.no_header).then_some(&header[..]),
                width,
                mapping.columns.iter().cloned(),
            )?,
        ),
        None => {
            let known = KNOWN
                .iter()
                .find(|k| k.needs.iter().all(|n| header.iter().any(|h| h == n)))
                .ok_or_else(|| {
                    ImportError::Unrecognised(
                        "the columns are not those of an export this knows (Chrome, Edge, \
                         Firefox, Safari, Bitwarden, LastPass, KeePassXC); say which column \
                         holds what with a mapping"
                            .into(),
                    )
                })?;
            let present = known
                .columns
                .iter()
                .filter(|(_, name)| header.iter().any(|h| h == name))
                .map(|(f, name)| (*f, (*name).to_owned()));
            (known.source, positions(Some(&header), width, present)?)
        }
    };
    let column = |name: &str| header.iter().position(|h| h == name);
    let extra = Extra {
        fields: column("fields").filter(|_| source == "Bitwarden"),
        kind: column("type").filter(|_| source == "Bitwarden"),
    };
    let mut items = Vec::new();
    let mut skipped = Skips::default();
    let mut rows = 0usize;
    loop {
        let more = std::mem::take(&mut first_is_entry)
            || reader.read_record(&mut record).map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                ImportError::Malformed(format!("line {line} cannot be read"))
            })?;
        if !more {
            break;
        }
        rows += 1;
        if rows > MAX_ROWS {
            return Err(ImportError::TooMany);
        }
        let line = record.position().map_or(0, |p| p.line() as usize);
        let cell = |field: Field| -> &str {
            columns
                .iter()
                .find(|(f, _)| *f == field)
                .and_then(|(_, at)| record.get(*at))
                .unwrap_or("")
        };
        let outcome = item_of(source, &cell, &record, &extra);
        match outcome {
            Ok(item) => {
                if items.len() >= MAX_IMPORT_ITEMS {
                    return Err(ImportError::TooMany);
                }
                items.push(item);
            }
            Err(reason) => skipped.push(line, reason),
        }
    }
    Ok(Parsed::new(source, items, skipped))
}

/// Most columns a CSV may have (exports have a dozen).
const MAX_COLUMNS: usize = 1_000;
/// Most rows read, empty ones included.
const MAX_ROWS: usize = 2 * MAX_IMPORT_ITEMS;

/// Columns only one export has, found once.
struct Extra {
    /// Bitwarden's custom fields.
    fields: Option<usize>,
    /// Bitwarden's item type.
    kind: Option<usize>,
}

/// The item a row holds, or why it is skipped. Values are kept exactly
/// (a password may start or end with a space); names, addresses and
/// folders are trimmed.
fn item_of<'r>(
    source: &str,
    cell: &dyn Fn(Field) -> &'r str,
    record: &'r ::csv::StringRecord,
    extra: &Extra,
) -> Result<ImportedItem, &'static str> {
    let (title, username, password, url, notes, totp, folder) = (
        cell(Field::Title).trim(),
        cell(Field::Username).trim(),
        cell(Field::Password),
        cell(Field::Url).trim(),
        cell(Field::Notes),
        cell(Field::Totp).trim(),
        cell(Field::Folder).trim(),
    );
    let mut notes = Zeroizing::new(notes.to_owned());
    if let Some(fields) = extra
        .fields
        .and_then(|at| record.get(at))
        .filter(|f| !f.trim().is_empty())
    {
        // Bitwarden's custom fields, `name: value` lines, kept in the notes.
        let mut joined = Zeroizing::new(String::with_capacity(notes.len() + fields.len() + 1));
        joined.push_str(&notes);
        super::add_line(&mut joined, fields);
        notes = joined;
    }
    let urls: Vec<String> = match source {
        "Bitwarden" => url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .take(super::MAX_URLS)
            .map(str::to_owned)
            .collect(),
        // LastPass writes secure notes with this address.
        "LastPass" if url == "http://sn" => Vec::new(),
        _ if url.is_empty() => Vec::new(),
        _ => vec![url.to_owned()],
    };
    let is_note =
        match source {
            "Bitwarden" => extra
                .kind
                .and_then(|at| record.get(at))
                .is_some_and(|t| t.trim() == "note"),
            "LastPass" => url == "http://sn",
            _ => false,
        } || (username.is_empty() && password.is_empty() && urls.is_empty() && totp.is_empty());
    if title.is_empty()
        && username.is_empty()
        && password.is_empty()
        && notes.trim().is_empty()
        && totp.is_empty()
        && urls.is_empty()
    {
        return Err("nothing in it");
    }
    let title = if !title.is_empty() {
        title.to_owned()
    } else {
        urls.first()
            .and_then(|u| host_of(u))
            .or_else(|| (!username.is_empty()).then(|| username.to_owned()))
            .unwrap_or_default()
    };
    // LastPass may separate nested groups with a backslash.
    let folder = if source == "LastPass" {
        folder.replace('\\', "/")
    } else {
        folder.to_owned()
    };
    let folder = if source == "KeePassXC" {
        // KeePassXC writes each group's path from the root group (named
        // "Root" unless renamed), and deleted entries under the recycle
        // bin, a group below it. The root is left out before the names
        // are cut to the depth an item keeps (after, the depth was one
        // short, and a root named only in invisible characters took the
        // first group with it).
        // (Taken one by one: a cell of 64 MiB of `a/` listed its 32
        // million names before any was cut.)
        let mut below = folder
            .split('/')
            .filter(|s| !s.trim().is_empty())
            .skip(1)
            .peekable();
        if below.peek().is_some_and(|f| f.trim() == "Recycle Bin") {
            return Err("in KeePassXC's recycle bin");
        }
        super::folder_names_of(below)
    } else {
        super::folder_names(&folder)
    };
    let kind = if is_note {
        ItemKind::SecureNote {
            text: notes.to_string(),
        }
    } else {
        ItemKind::Login {
            username: username.to_owned(),
            password: password.to_owned(),
            urls,
            totp: (!totp.is_empty()).then(|| totp.to_owned()),
            notes: notes.to_string(),
        }
    };
    Ok(ImportedItem {
        folder: folder.into(),
        item: Item::new(title, kind),
        files: Vec::new(),
    })
}

/// The host of a web address (`https://mail.example.com/x` →
/// `mail.example.com`), for an item with no title.
pub(crate) fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit('@').next()?;
    let host = host.split(':').next()?;
    (!host.is_empty()).then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::Skipped;
    use super::*;

    fn login(item: &ImportedItem) -> (&str, &str, &[String], Option<&str>, &str) {
        match &item.item.kind {
            ItemKind::Login {
                username,
                password,
                urls,
                totp,
                notes,
            } => (username, password, urls, totp.as_deref(), notes),
            _ => panic!("not a login: {:?}", item.item),
        }
    }

    fn note_text(item: &ImportedItem) -> &str {
        match &item.item.kind {
            ItemKind::SecureNote { text } => text,
            _ => panic!("not a note: {:?}", item.item),
        }
    }

    #[test]
    fn chrome_and_edge_logins_with_a_title_from_the_site() {
        let file = "name,url,username,password,note\n\
                    GitHub,https://github.com/login,octo,s3cr3t,\"two\nlines\"\n\
                    ,https://mail.example.com:443/x,me@example.com,pw,\n\
                    ,,,,\n";
        let parsed = read(file.as_bytes(), None).unwrap();
        assert_eq!(parsed.source, "Chrome");
        assert_eq!(parsed.items.len(), 2);
        let first = &parsed.items[0];
        assert_eq!(first.item.title, "GitHub");
        assert_eq!(
            login(first),
            (
                "octo",
                "s3cr3t",
                &["https://github.com/login".to_owned()][..],
                None,
                "two\nlines"
            )
        );
        assert_eq!(parsed.items[1].item.title, "mail.example.com");
        assert_eq!(
            parsed.skipped,
            // Line 5: the note of line 2 spans two lines.
            [Skipped {
                row: 5,
                reason: "nothing in it"
            }]
        );
    }

    #[test]
    fn firefox_logins_are_titled_by_their_host() {
        let file = "\"url\",\"username\",\"password\",\"httpRealm\",\"formActionOrigin\",\"guid\",\"timeCreated\",\"timeLastUsed\",\"timePasswordChanged\"\n\
                    \"https://accounts.example.org\",\"fox\",\"p,w\",,\"https://accounts.example.org\",\"{1}\",\"1\",\"2\",\"3\"\n";
        let parsed = read(file.as_bytes(), None).unwrap();
        assert_eq!(parsed.source, "Firefox");
        assert_eq!(parsed.items[0].item.title, "accounts.example.org");
        assert_eq!(login(&parsed.items[0]).1, "p,w");
    }

    #[test]
    fn safari_logins_keep_their_one_time_codes() {
        let file = "Title,URL,Username,Password,Notes,OTPAuth\n\
                    Bank,https://bank.example,me,pw,my notes,otpauth://totp/Bank:me?secret=JBSWY3DPEHPK3PXP\n";
        let parsed = read(file.as_bytes(), None).unwrap();
        assert_eq!(parsed.source, "Safari");
        let (_, _, _, totp, notes) = login(&parsed.items[0]);
        assert_eq!(totp, Some("otpauth://totp/Bank:me?secret=JBSWY3DPEHPK3PXP"));
        assert_eq!(notes, "my notes");
    }

    #[test]
    fn bitwarden_folders_notes_fields_and_several_sites() {
        let file = "folder,favorite,type,name,notes,fields,reprompt,login_uri,login_username,login_password,login_totp\n\
                    Work/Mail,1,login,Mail,n,\"pin: 1234\",0,\"https://a.example,https://b.example\",me,pw,JBSWY3DPEHPK3PXP\n\
                    ,,note,Wifi,the code is 42,,0,,,,\n";
        let parsed = read(file.as_bytes(), None).unwrap();
        assert_eq!(parsed.source, "Bitwarden");
        let mail = &parsed.items[0];
        assert_eq!(*mail.folder, ["Work", "Mail"]);
        let (user, pw, urls, totp, notes) = login(mail);
        assert_eq!((user, pw), ("me", "pw"));
        assert_eq!(urls, ["https://a.example", "https://b.example"]);
        assert_eq!(totp, Some("JBSWY3DPEHPK3PXP"));
        assert_eq!(notes, "n\npin: 1234");
        assert_eq!(parsed.items[1].item.title, "Wifi");
        assert_eq!(note_text(&parsed.items[1]), "the code is 42");
    }

    /// A login keeps at most 100 websites: a Bitwarden cell of a million
    /// commas was a million addresses, held by every listing of the vault.
    #[test]
    fn a_bitwarden_login_keeps_a_hundred_websites_at_most() {
        let sites: Vec<String> = (0..10_000)
            .map(|i| format!("https://s{i}.example"))
            .collect();
        let file = format!(
            "folder,favorite,type,name,notes,fields,reprompt,login_uri,login_username,login_password,login_totp\n\
             ,0,login,Many,,,0,\"{}\",me,pw,\n",
            sites.join(",")
        );
        let parsed = read(file.as_bytes(), None).unwrap();
        let (_, _, urls, _, _) = login(&parsed.items[0]);
        assert_eq!(urls.len(), 100);
        assert_eq!(urls[99], "https://s99.example");
    }

    /// A row of more than 1,000 fields is refused before it is read (the
    /// reader held 8 bytes a field first: 64 MiB of commas, half a
    /// gigabyte); quoted commas are not fields, and a header row of a few
    /// columns is read as before.
    #[test]
    fn a_row_of_countless_commas_is_refused_before_it_is_read() {
        let wide = format!(
            "name,url,username,password\nA,https://a.example,me,pw{}\n",
            ",".repeat(1_500)
        );
        match read(wide.as_bytes(), None) {
            Err(ImportError::Unrecognised(why)) => assert!(why.contains("1,000 columns"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(headers(wide.as_bytes()).is_err());
        // A second byte-order mark (the reader drops it) does not set the
        // count out of step: a quote after it opens no field.
        let mut marked = b"\xef\xbb\xbf\xef\xbb\xbf\"x\n\",name,url,username,password\n".to_vec();
        marked.extend_from_slice(
            format!("A,https://a.example,me,pw{}\n", ",".repeat(1_500)).as_bytes(),
        );
        match read(&marked, None) {
            Err(ImportError::Unrecognised(why)) => assert!(why.contains("1,000 columns"), "{why}"),
            other => panic!("{other:?}"),
        }
        let quoted = format!(
            "name,url,username,password\nA,https://a.example,me,\"p{}\"\"w\"\n",
            ",".repeat(1_500)
        );
        let parsed = read(quoted.as_bytes(), None).unwrap();
        let (_, pw, _, _, _) = login(&parsed.items[0]);
        assert_eq!(pw, format!("p{}\"w", ",".repeat(1_500)));
    }

    #[test]
    fn lastpass_secure_notes_and_groups() {
        let file = "url,username,password,totp,extra,name,grouping,fav\n\
                    http://sn,,,,\"NoteType:Generic\nbody\",Door code,Home,0\n\
                    https://shop.example,buyer,pw,,,Shop,Shopping/Online,1\n";
        let parsed = read(file.as_bytes(), None).unwrap();
        assert_eq!(parsed.source, "LastPass");
        assert_eq!(parsed.items[0].item.title, "Door code");
        assert_eq!(note_text(&parsed.items[0]), "NoteType:Generic\nbody");
        assert_eq!(*parsed.items[0].folder, ["Home"]);
        assert_eq!(*parsed.items[1].folder, ["Shopping", "Online"]);
    }

    #[test]
    fn keepassxc_groups_below_root_become_folders() {
        let file = "\"Group\",\"Title\",\"Username\",\"Password\",\"URL\",\"Notes\",\"TOTP\",\"Icon\",\"Last Modified\",\"Created\"\n\
                    \"Root/Email\",\"Gmail\",\"me\",\"pw\",\"https://mail.google.com\",\"\",\"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP\",\"0\",\"2026-01-01T00:00:00Z\",\"2026-01-01T00:00:00Z\"\n\
                    \"Root\",\"Top\",\"u\",\"p\",\"\",\"\",\"\",\"0\",\"\",\"\"\n";
        let parsed = read(file.as_bytes(), None).unwrap();
        assert_eq!(parsed.source, "KeePassXC");
        assert_eq!(*parsed.items[0].folder, ["Email"]);
        assert!(login(&parsed.items[0]).3.is_some());
        assert!(parsed.items[1].folder.is_empty());
        // Sixteen groups below the root are kept, all of them (the root
        // is left out before the depth is cut), whatever the root's name.
        let groups: Vec<String> = (1..=16).map(|i| format!("g{i}")).collect();
        for root in ["Root", "\u{200b}"] {
            let file = format!(
                "Group,Title,Username,Password,URL,Notes\n{root}/{},Deep,u,p,,\n",
                groups.join("/")
            );
            let parsed = read(file.as_bytes(), None).unwrap();
            assert_eq!(*parsed.items[0].folder, groups, "{root:?}");
        }
    }

    #[test]
    fn any_other_csv_through_a_mapping() {
        let file = "Site;Login;Secret\n".replace(';', ",") + "Forum,me,pw\n";
        let refused = read(file.as_bytes(), None).unwrap_err();
        assert!(refused.to_string().contains("mapping"), "{refused}");
        let mapping = Mapping::parse("title=Site, username=Login, password=Secret").unwrap();
        let parsed = read(file.as_bytes(), Some(&mapping)).unwrap();
        assert_eq!(parsed.source, "CSV");
        assert_eq!(parsed.items[0].item.title, "Forum");
        assert_eq!(login(&parsed.items[0]).1, "pw");
        let wrong = Mapping::parse("password=Nope").unwrap();
        assert!(read(file.as_bytes(), Some(&wrong))
            .unwrap_err()
            .to_string()
            .contains("`nope`"));
        assert!(Mapping::parse("colour=Site").is_err());
        assert!(Mapping::parse("title").is_err());
    }

    /// A CSV without a header row: its first row is an entry, not the
    /// columns' names (it was lost, its values offered as names), and
    /// columns are named by place; by place too where two share a name.
    #[test]
    fn a_csv_without_a_header_row_is_mapped_by_place() {
        let file = "Forum,me,pw one\nBank,you,pw two\n";
        let mut mapping = Mapping::parse("title=#1,username=#2,password=#3").unwrap();
        mapping.no_header = true;
        let parsed = read(file.as_bytes(), Some(&mapping)).unwrap();
        let titles: Vec<&str> = parsed.items.iter().map(|i| i.item.title.as_str()).collect();
        assert_eq!(titles, ["Forum", "Bank"]);
        assert_eq!(login(&parsed.items[0]).1, "pw one");
        assert_eq!(parsed.skipped.len(), 0);
        // Only places there are (up to the widest row), and no names.
        let ragged = "Forum,pw\nBank,pw2,a note\n";
        let mut mapping = Mapping::parse("title=#1,password=#2,notes=#3").unwrap();
        mapping.no_header = true;
        let parsed = read(ragged.as_bytes(), Some(&mapping)).unwrap();
        assert_eq!(parsed.items.len(), 2);
        assert_eq!(login(&parsed.items[1]).4, "a note");
        assert_eq!(headers(ragged.as_bytes()).unwrap(), ["Forum", "pw", ""]);
        for wrong in ["password=#4", "password=#0", "password=pw one"] {
            let mut wrong = Mapping::parse(wrong).unwrap();
            wrong.no_header = true;
            let why = read(file.as_bytes(), Some(&wrong)).unwrap_err().to_string();
            assert!(why.contains("#1 to #3"), "{why}");
        }
        // With a header row, by place or by name: two columns named
        // alike are told apart by place, and a place is a place even
        // where a column is named like one.
        let twice = "Site,Value,Value\nForum,me,pw\n";
        let mapping = Mapping::parse("title=Site,username=#2,password=#3").unwrap();
        let parsed = read(twice.as_bytes(), Some(&mapping)).unwrap();
        assert_eq!(parsed.items.len(), 1);
        assert_eq!(login(&parsed.items[0]).0, "me");
        assert_eq!(login(&parsed.items[0]).1, "pw");
        let hashed = "#2,Site,Pass\nme,Forum,pw\n";
        let mapping = Mapping::parse("title=#2,username=#1,password=Pass").unwrap();
        let parsed = read(hashed.as_bytes(), Some(&mapping)).unwrap();
        assert_eq!(parsed.items[0].item.title, "Forum");
        assert_eq!(login(&parsed.items[0]).0, "me");
    }

    #[test]
    fn latin1_and_bom_files_read_and_bad_ones_name_no_value() {
        let mut latin1 = b"name,url,username,password\nCaf\xE9,,me,".to_vec();
        latin1.extend_from_slice(b"p\xE4ss\n");
        let parsed = read(&latin1, None).unwrap();
        assert_eq!(parsed.items[0].item.title, "Café");
        assert_eq!(login(&parsed.items[0]).1, "päss");
        let bom = "\u{feff}name,url,username,password\nA,,u,p\n";
        assert_eq!(read(bom.as_bytes(), None).unwrap().items.len(), 1);
        assert!(matches!(read(b"", None), Err(ImportError::Unrecognised(_))));
        let huge = vec![b'a'; MAX_IMPORT_BYTES + 1];
        assert!(matches!(read(&huge, None), Err(ImportError::TooLarge)));
        // An unterminated quote swallows the rest: one row, no panic.
        let open = "name,url,username,password\nA,,u,\"hunter2\n";
        if let Err(e) = read(open.as_bytes(), None) {
            assert!(!e.to_string().contains("hunter2"));
        }
    }

    #[test]
    fn values_keep_their_spaces_and_only_names_are_trimmed() {
        let file = "name,url,username,password,note\n  Bank  , https://b.example , me , pw with spaces  ,  indented\n";
        let parsed = read(file.as_bytes(), None).unwrap();
        assert_eq!(parsed.items[0].item.title, "Bank");
        let (user, pw, urls, _, notes) = login(&parsed.items[0]);
        assert_eq!((user, pw, notes), ("me", " pw with spaces  ", "  indented"));
        assert_eq!(urls, ["https://b.example"]);
    }

    #[test]
    fn keepassxc_recycle_bin_and_lastpass_backslash_groups() {
        let file = "Group,Title,Username,Password,URL,Notes\n\
                    My Passwords/Recycle Bin,Old,u,p,,\n\
                    My Passwords/Mail,New,u,p,,\n";
        let parsed = read(file.as_bytes(), None).unwrap();
        assert_eq!(parsed.items.len(), 1);
        assert_eq!(*parsed.items[0].folder, ["Mail"]);
        assert_eq!(parsed.skipped[0].reason, "in KeePassXC's recycle bin");
        let file = "url,username,password,totp,extra,name,grouping,fav\n\
                    https://x.example,u,p,,,X,Shopping\\Online,0\n";
        let parsed = read(file.as_bytes(), None).unwrap();
        assert_eq!(*parsed.items[0].folder, ["Shopping", "Online"]);
    }

    #[test]
    fn a_hostile_shape_is_bounded_not_followed() {
        // Many empty rows: counted, a hundred listed.
        let file = format!("name,url,username,password\n{}", ",,,\n".repeat(50_000));
        let parsed = read(file.as_bytes(), None).unwrap();
        assert_eq!(parsed.skipped_total, 50_000);
        assert_eq!(parsed.skipped.len(), 100);
        // A header a million columns wide is refused before any row.
        let wide = format!(
            "name,url,username,password{}\nA,,u,p\n",
            ",x".repeat(1_000_000)
        );
        assert!(matches!(
            read(wide.as_bytes(), None),
            Err(ImportError::Unrecognised(_))
        ));
        // More rows than an import takes.
        let many = format!(
            "name,url,username,password\n{}",
            "A,,u,p\n".repeat(MAX_IMPORT_ITEMS + 1)
        );
        assert!(matches!(
            read(many.as_bytes(), None),
            Err(ImportError::TooMany)
        ));
    }
}

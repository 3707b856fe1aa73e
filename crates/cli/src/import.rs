//! `polykey import`: another password manager's export read into a vault,
//! in one commit.

use std::collections::BTreeSet;
use std::path::PathBuf;

use polykey_node::import::file::{read_source, Source};
use polykey_node::import::{self, csv::Mapping, ImportError};

use crate::output::{io_failure, text, Failure, Output, EX_DATAERR};
use crate::session::backend;
use crate::Cli;

/// `polykey import FORMAT FILE --vault NAME`.
#[derive(clap::Args)]
pub(crate) struct ImportCommand {
    /// What made the file.
    #[arg(value_enum, value_name = "FORMAT")]
    source: Format,
    /// The exported file (for `pass`, the store's folder).
    file: PathBuf,
    /// The vault to import into.
    #[arg(long)]
    vault: String,
    /// A folder of the vault to put everything in (default: the top).
    #[arg(long, default_value = "")]
    folder: String,
    /// Which column holds what, for a CSV not recognised:
    /// `title=Name,username=Login,password=Pass` (fields: title,
    /// username, password, url, notes, totp, folder); a column by its
    /// place instead of its name: `password=#3`.
    #[arg(long)]
    map: Option<String>,
    /// The CSV has no header row: its first row is an entry too, and
    /// --map names columns by place (`title=#1,password=#3`).
    #[arg(long, requires = "map")]
    no_header: bool,
    /// Show what would be imported, and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// The password of a password-protected export, in this file (first
    /// line); asked for at the terminal otherwise.
    #[arg(long)]
    export_password_file: Option<PathBuf>,
    /// A KeePass database's key file.
    #[arg(long)]
    key_file: Option<PathBuf>,
}

/// The exports `polykey import` reads.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// A CSV export: Chrome, Edge, Firefox, Safari, Bitwarden, LastPass
    /// or KeePassXC, recognised by its columns; any other with --map.
    Csv,
    /// Bitwarden's JSON export, unencrypted or protected with a password.
    Bitwarden,
    /// 1Password's 1PUX export.
    #[value(name = "1pux")]
    OnePux,
    /// A `pass` store (FILE is its folder, e.g. ~/.password-store),
    /// decrypted with your own gpg.
    Pass,
    /// A KeePass or KeePassXC database (.kdbx, format 3.1 or 4): its
    /// password asked for (or --export-password-file), --key-file if it
    /// has one.
    Keepass,
}

fn refused(error: ImportError) -> Failure {
    Failure {
        code: EX_DATAERR,
        kind: "import_refused".into(),
        message: format!("Nothing was imported: {error}."),
    }
}

/// `polykey import …`.
pub(crate) async fn run(cli: &Cli, command: &ImportCommand) -> Result<Output, Failure> {
    let ImportCommand {
        source: format,
        file,
        vault,
        folder,
        map,
        no_header,
        dry_run,
        export_password_file,
        key_file,
    } = command;
    let mapping = map
        .as_deref()
        .map(|map| {
            Mapping::parse(map).map(|mapping| Mapping {
                no_header: *no_header,
                ..mapping
            })
        })
        .transpose()
        .map_err(refused)?;
    let source = match format {
        Format::Csv => Source::Csv,
        Format::Bitwarden => Source::Bitwarden,
        Format::OnePux => Source::OnePux,
        Format::Pass => Source::Pass,
        Format::Keepass => Source::KeePass,
    };
    // A store is a folder, read entry by entry with the user's gpg.
    let gpg = std::path::Path::new("gpg");
    let key_file = key_file.as_deref();
    let given = export_password_file
        .as_deref()
        .map(|f| export_password(Some(f)))
        .transpose()?;
    let parsed = match read_source(
        source,
        file,
        mapping.as_ref(),
        given.as_deref().map(String::as_str),
        key_file,
        gpg,
    ) {
        Err(ImportError::NeedsPassword) if given.is_none() => {
            let password = export_password(None)?;
            read_source(
                source,
                file,
                mapping.as_ref(),
                Some(&password),
                key_file,
                gpg,
            )
        }
        other => other,
    }
    .map_err(refused)?;
    let mut node = backend(cli).await?;
    // Every path, empty folders' markers among them: an empty folder is
    // no free name.
    let existing: BTreeSet<String> = node.list_paths(vault.clone()).await?.into_iter().collect();
    let secrets = import::secrets_for(&parsed.items, folder, &existing).map_err(refused)?;
    let paths: Vec<String> = secrets.iter().map(|(p, _)| p.clone()).collect();
    let counts = parsed.counts();
    let kinds: Vec<String> = counts
        .iter()
        .map(|(kind, n)| format!("{n} {kind}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    let version = if *dry_run || secrets.is_empty() {
        None
    } else {
        Some(node.write_secrets(vault.clone(), secrets).await?)
    };
    let mut human = if paths.is_empty() {
        format!("Found nothing to import in the {} export", parsed.source)
    } else {
        format!(
            "{} {} item(s) from a {} export into {vault}: {}",
            if version.is_some() {
                "Imported"
            } else {
                "Would import"
            },
            paths.len(),
            parsed.source,
            kinds.join(", "),
        )
    };
    if version.is_some() {
        human.push_str(" (one commit: undo it from the vault's history)");
    }
    let place = if *format == Format::Csv {
        "line"
    } else {
        "entry"
    };
    for skipped in &parsed.skipped {
        human.push_str(&format!(
            "\nSkipped {place} {}: {}",
            skipped.row, skipped.reason
        ));
    }
    if parsed.skipped_total > parsed.skipped.len() {
        human.push_str(&format!(
            "\n…and {} more skipped",
            parsed.skipped_total - parsed.skipped.len()
        ));
    }
    let json = serde_json::json!({
        "source": parsed.source,
        "imported": if version.is_some() { paths.len() } else { 0 },
        "kinds": counts.iter().map(|(k, n)| (k.to_string(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
        "paths": paths,
        "skipped": parsed
            .skipped
            .iter()
            .map(|s| serde_json::json!({ "row": s.row, "reason": s.reason }))
            .collect::<Vec<_>>(),
        "skipped_total": parsed.skipped_total,
        "version": version,
    });
    Ok(text(human, json))
}

/// The password of a protected export: the first line of `file`, or typed
/// at the terminal (never an argument).
fn export_password(file: Option<&std::path::Path>) -> Result<zeroize::Zeroizing<String>, Failure> {
    use std::io::IsTerminal;
    let text = match file {
        Some(file) => zeroize::Zeroizing::new(
            std::fs::read_to_string(file)
                .map_err(|e| io_failure("read the export password file", e))?,
        ),
        None if std::io::stdin().is_terminal() => zeroize::Zeroizing::new(
            rpassword::prompt_password("Password of the export: ")
                .map_err(|e| io_failure("read the export password", e))?,
        ),
        None => return Err(refused(ImportError::NeedsPassword)),
    };
    Ok(zeroize::Zeroizing::new(
        text.lines().next().unwrap_or("").to_owned(),
    ))
}

/// `polykey export FORMAT VAULT FILE`.
#[derive(clap::Args)]
pub(crate) struct ExportCommand {
    /// The file's form.
    #[arg(value_enum, value_name = "FORMAT")]
    form: ExportFormat,
    /// The vault to export.
    vault: String,
    /// The file to write (it must not exist; it is made readable by you
    /// only).
    file: PathBuf,
}

/// The plain exports `polykey export` writes.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// Bitwarden's JSON (unencrypted): every kind of item.
    Json,
    /// Bitwarden's CSV: logins, and everything else as notes; cells a
    /// spreadsheet would run as formulas start with `'`.
    Csv,
}

/// `polykey export …`: every secret of a vault that is text, in a
/// plain-text file other password managers import.
pub(crate) async fn export(cli: &Cli, command: &ExportCommand) -> Result<Output, Failure> {
    let ExportCommand { form, vault, file } = command;
    let mut node = backend(cli).await?;
    let mut secrets = Vec::new();
    for path in node.list_secrets(vault.clone(), None).await? {
        let value = node.get_secret(vault.clone(), path.clone()).await?;
        secrets.push((path, value));
    }
    let (text_out, left_out, escaped) = match form {
        ExportFormat::Json => {
            let (text, left_out) = polykey_node::export::bitwarden_json(&secrets);
            (text, left_out, 0)
        }
        ExportFormat::Csv => polykey_node::export::bitwarden_csv(&secrets),
    };
    crate::session::write_private(file, text_out.as_bytes())?;
    let mut human = format!(
        "Exported {} secret(s) of {vault} to {}. The file is NOT encrypted: import it where \
         you are going, then delete it.",
        secrets.len() - left_out,
        file.display()
    );
    if escaped > 0 {
        human.push_str(&format!(
            "\n{escaped} cell(s) began with =, +, -, @, a tab or a return and now begin with ' \
             (so a spreadsheet does not run them): remove it where you import them, or \
             export json, which keeps every value exactly."
        ));
    }
    if left_out > 0 {
        human.push_str(&format!(
            "\nLeft out {left_out} secret(s) that are files, not text (`polykey vaults export` \
             keeps everything)."
        ));
    }
    Ok(text(
        human,
        serde_json::json!({
            "exported": secrets.len() - left_out,
            "left_out": left_out,
            "escaped_cells": escaped,
            "file": file,
        }),
    ))
}

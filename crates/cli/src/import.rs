//! `polykey import`: another password manager's export read into a vault,
//! in one commit.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;

use polykey_node::import::{self, csv::Mapping, ImportError, MAX_IMPORT_BYTES};

use crate::output::{io_failure, text, Failure, Output, EX_DATAERR};
use crate::session::backend;
use crate::Cli;

/// `polykey import FORMAT FILE --vault NAME`.
#[derive(clap::Args)]
pub(crate) struct ImportCommand {
    /// What made the file.
    #[arg(value_enum, value_name = "FORMAT")]
    source: Format,
    /// The exported file.
    file: PathBuf,
    /// The vault to import into.
    #[arg(long)]
    vault: String,
    /// A folder of the vault to put everything in (default: the top).
    #[arg(long, default_value = "")]
    folder: String,
    /// Which column holds what, for a CSV not recognised:
    /// `title=Name,username=Login,password=Pass` (fields: title,
    /// username, password, url, notes, totp, folder).
    #[arg(long)]
    map: Option<String>,
    /// Show what would be imported, and write nothing.
    #[arg(long)]
    dry_run: bool,
}

/// The exports `polykey import` reads.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// A CSV export: Chrome, Edge, Firefox, Safari, Bitwarden, LastPass
    /// or KeePassXC, recognised by its columns; any other with --map.
    Csv,
    /// Bitwarden's JSON export (not encrypted).
    Bitwarden,
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
        dry_run,
    } = command;
    if map.is_some() && *format != Format::Csv {
        return Err(refused(ImportError::Unrecognised(
            "--map is for CSV files only".into(),
        )));
    }
    let mapping = map
        .as_deref()
        .map(Mapping::parse)
        .transpose()
        .map_err(refused)?;
    let opened = std::fs::File::open(file).map_err(|e| io_failure("open the file", e))?;
    // Read one byte past the limit, so a larger file is refused, not cut.
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    opened
        .take(MAX_IMPORT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_failure("read the file", e))?;
    let parsed = match format {
        Format::Csv => import::csv::read(&bytes, mapping.as_ref()),
        Format::Bitwarden => import::bitwarden::read(&bytes),
    }
    .map_err(refused)?;
    drop(bytes);
    let mut node = backend(cli).await?;
    let existing: BTreeSet<String> = node
        .list_secrets(vault.clone(), None)
        .await?
        .into_iter()
        .collect();
    let secrets = import::secrets_for(&parsed.items, folder, &existing);
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
    let mut human = format!(
        "{} {} item(s) from a {} export into {vault}: {}",
        if version.is_some() {
            "Imported"
        } else {
            "Would import"
        },
        paths.len(),
        parsed.source,
        if kinds.is_empty() {
            "nothing".to_owned()
        } else {
            kinds.join(", ")
        },
    );
    if version.is_some() {
        human.push_str(" (one commit: undo it from the vault's history)");
    }
    for skipped in &parsed.skipped {
        human.push_str(&format!(
            "\nSkipped row {}: {}",
            skipped.row, skipped.reason
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
        "version": version,
    });
    Ok(text(human, json))
}

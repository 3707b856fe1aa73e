//! `secrets edit` on Windows. Windows has no memory-backed file system, so
//! the file is on disk, which a user must accept with
//! `--allow-disk-tempfile`:
//!
//! - It sits in `%TEMP%\polykey-edit\edit-<pid>-<random>\`, the base made
//!   private (an ACL granting only the current user, set at creation and
//!   again before each use, inherited inside).
//! - The file is always named `secret` (a secret's own name could be a
//!   drive-relative path such as `C:leak`, a device such as `CON`, or an
//!   alternate data stream on Windows).
//! - The editor runs as this process's own child (no `cmd` between, so
//!   ending it ends the editor); vi, vim and neovim get the flags that keep
//!   no swap, viminfo/shada, backup or undo copy.
//! - Ctrl-C, Ctrl-Break, closing the console, logoff and shutdown while the
//!   editor runs end it and remove the file before the command ends.
//! - What a crash leaves behind is removed by a later `secrets edit` once it
//!   is a day old (a younger one may belong to an edit still running).

use std::path::Path;
use std::time::Duration;

use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_logoff, ctrl_shutdown};
use zeroize::Zeroizing;

use crate::editor::wait_for_editor;
use crate::output::{io_failure, Failure, EX_USAGE};
use crate::session::write_private;

/// Name of the private directory in `%TEMP%`.
pub const EDIT_DIR_NAME: &str = "polykey-edit";
/// Prefix of one run's directory inside it: `edit-<pid>-<random>`.
pub const RUN_DIR_PREFIX: &str = "edit-";
/// A run directory older than this is a crash's leftover.
const LEFTOVER_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Let the user edit `value` in their editor (`%VISUAL%`, `%EDITOR%`, else
/// Notepad); see the module documentation for where the file lives.
pub async fn edit_in_editor(
    value: &[u8],
    path: &str,
    allow_disk: bool,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    if !allow_disk {
        return Err(Failure {
            code: EX_USAGE,
            kind: "no_memory_tempdir".into(),
            message: "Windows has no memory-backed directory for the temporary file; add \
                      --allow-disk-tempfile to edit in a private file on disk (removed when \
                      the editor closes), or use `secrets write`"
                .into(),
        });
    }
    let base = std::env::temp_dir().join(EDIT_DIR_NAME);
    polykey_os::fs::create_private_dir_all(&base)
        .and_then(|()| polykey_os::fs::restrict(&base))
        .map_err(|e| io_failure("make a private directory", e))?;
    remove_leftovers(&base);
    let signal_failure = |e| io_failure("watch for Ctrl-C", e);
    let mut interrupt = ctrl_c().map_err(signal_failure)?;
    let mut brk = ctrl_break().map_err(signal_failure)?;
    let mut close = ctrl_close().map_err(signal_failure)?;
    let mut logoff = ctrl_logoff().map_err(signal_failure)?;
    let mut shutdown = ctrl_shutdown().map_err(signal_failure)?;

    let dir = tempfile::Builder::new()
        .prefix(&format!("{RUN_DIR_PREFIX}{}-", std::process::id()))
        .tempdir_in(&base)
        .map_err(|e| io_failure("make a private directory", e))?;
    let _ = path;
    let file = dir.path().join(FILE_NAME);
    write_private(&file, value)?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "notepad".into());
    let words = editor_words(&editor);
    let Some((program, args)) = words.split_first() else {
        return Err(Failure {
            code: EX_USAGE,
            kind: "no_editor".into(),
            message: "EDITOR is empty".into(),
        });
    };
    let child = std::process::Command::new(program)
        .args(args)
        .arg(&file)
        .spawn()
        .map_err(|e| io_failure("run the editor", e))?;
    let interrupted = async {
        tokio::select! {
            _ = interrupt.recv() => ("Ctrl-C", 130),
            _ = brk.recv() => ("Ctrl-Break", 130),
            _ = close.recv() => ("closing the console", 130),
            _ = logoff.recv() => ("logging off", 130),
            _ = shutdown.recv() => ("shutting down", 130),
        }
    };
    wait_for_editor(child, dir, &file, interrupted).await
}

/// The file's name in the run directory: fixed, never the secret's own.
const FILE_NAME: &str = "secret";

/// Editors of the vi family (program names, `.exe` or not) and the flags
/// that keep them from writing the text anywhere but the file.
const VIM_FAMILY: &[&str] = &["vi", "vim", "gvim", "nvim", "nvim-qt", "view"];
/// See [`VIM_FAMILY`].
const VIM_FLAGS: &[&str] = &[
    "-n",
    "-i",
    "NONE",
    "--cmd",
    "set nobackup nowritebackup noundofile nomodeline",
    "--cmd",
    "augroup polykey_no_modeline | autocmd BufReadPre * setlocal nomodeline | augroup END",
];

/// `%EDITOR%` as a program and its arguments (double quotes group, as in
/// `"C:\Program Files\Vim\vim91\vim.exe" -u NONE`); a vi-family program
/// gets [`VIM_FLAGS`] right after its name.
fn editor_words(editor: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut started) = (false, false);
    for c in editor.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    let vim = words.first().is_some_and(|program| {
        let name = program.rsplit(['\\', '/']).next().unwrap_or(program);
        let name = name.to_ascii_lowercase();
        let name = name.strip_suffix(".exe").unwrap_or(&name);
        VIM_FAMILY.contains(&name)
    });
    if vim {
        let flags = VIM_FLAGS.iter().map(|f| (*f).to_owned());
        words.splice(1..1, flags);
    }
    words
}

/// Remove run directories a crash left behind, once they are old enough
/// that no edit can still be running in them.
fn remove_leftovers(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > LEFTOVER_AGE);
        if old && name.to_string_lossy().starts_with(RUN_DIR_PREFIX) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_words_split_quoted_paths_and_flag_vim() {
        assert_eq!(editor_words("notepad"), ["notepad"]);
        assert_eq!(
            editor_words(r#""C:\Program Files\Vim\vim91\vim.exe" -u NONE"#),
            [
                r"C:\Program Files\Vim\vim91\vim.exe",
                "-n",
                "-i",
                "NONE",
                "--cmd",
                "set nobackup nowritebackup noundofile nomodeline",
                "--cmd",
                "augroup polykey_no_modeline | autocmd BufReadPre * setlocal nomodeline | augroup END",
                "-u",
                "NONE"
            ]
        );
        assert_eq!(editor_words("code --wait"), ["code", "--wait"]);
        assert!(editor_words("  ").is_empty());
    }
}

//! What `secrets edit` does the same on every OS once the editor runs: wait
//! for it, end it and remove the file if the person interrupts, and read
//! the edited bytes back before the file goes. Where the file lives and
//! what counts as an interruption differ (`edit.rs` on Unix,
//! `edit_windows.rs` on Windows).

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::output::{io_failure, Failure, EX_SOFTWARE};

/// How often the editor is checked for having exited.
const EDITOR_POLL: Duration = Duration::from_millis(50);

/// Wait for `child`, the editor of `file` in the run directory `dir`. If
/// `interrupted` finishes first (with how, and the exit code to return),
/// the editor is ended and `dir` removed, and nothing is saved. Otherwise
/// the edited bytes, with `dir` removed.
pub async fn wait_for_editor(
    mut child: std::process::Child,
    dir: tempfile::TempDir,
    file: &Path,
    interrupted: impl Future<Output = (&'static str, u8)>,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    tokio::pin!(interrupted);
    let status = loop {
        let signalled = tokio::select! {
            signalled = &mut interrupted => Some(signalled),
            () = tokio::time::sleep(EDITOR_POLL) => None,
        };
        if let Some((how, code)) = signalled {
            // On Unix the file goes first, then the editor, which could
            // write it again; Windows cannot remove a file the editor still
            // has open, so the editor goes first there.
            #[cfg(unix)]
            let _ = std::fs::remove_dir_all(dir.path());
            let _ = child.kill();
            let _ = child.wait();
            #[cfg(windows)]
            let _ = std::fs::remove_dir_all(dir.path());
            return Err(Failure {
                code,
                kind: "interrupted".into(),
                message: format!(
                    "interrupted by {how}; the temporary file was removed and nothing was saved"
                ),
            });
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                return Err(io_failure("wait for the editor", e));
            }
        }
    };
    if !status.success() {
        return Err(Failure {
            code: EX_SOFTWARE,
            kind: "editor_failed".into(),
            message: "the editor failed; nothing was saved".into(),
        });
    }
    let edited = std::fs::read(file).map_err(|e| io_failure("read the edited file", e))?;
    dir.close()
        .map_err(|e| io_failure("remove the temporary file", e))?;
    Ok(Zeroizing::new(edited))
}

//! Files and directories that only the current user can open.
//!
//! On Unix that is the mode (0600 for files, 0700 for directories), on
//! Windows a protected DACL with one allow entry for the current user's SID.
//! Both are set when the file or directory is created, so there is no moment
//! in which someone else could open it. Errors keep the kind of the OS error
//! (`AlreadyExists`, `NotFound`, `PermissionDenied`, ...) and name the path.

use std::io;
use std::path::Path;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

/// Create a new file at `path` that only the current user can open (0600 on
/// Unix; on Windows a protected DACL granting only the current user's SID,
/// set at creation through SECURITY_ATTRIBUTES, never after). Opened
/// read+write. Fails with AlreadyExists if anything exists there, and never
/// follows a symlink (create_new semantics).
pub fn create_new_private(path: &Path) -> io::Result<std::fs::File> {
    imp::create_new_private(path).map_err(|e| {
        with_context(
            e,
            format_args!("creating the private file {}", path.display()),
        )
    })
}

/// Create one directory only the current user can enter (0700 / owner-only
/// protected DACL, inherited by what is created inside), at creation.
/// AlreadyExists if it exists.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    imp::create_private_dir(path).map_err(|e| dir_context(e, path))
}

/// Like `create_dir_all`, with every directory it creates private as above
/// (existing ones are left as they are).
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    // The algorithm of std's `create_dir_all`: try the directory itself
    // first (the common case: only the last one is missing), and only on
    // NotFound create the parents. Another process creating the same
    // directory meanwhile is not an error.
    if path.as_os_str().is_empty() || path.is_dir() {
        return Ok(());
    }
    match imp::create_private_dir(path) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(_) if path.is_dir() => return Ok(()),
        Err(e) => return Err(dir_context(e, path)),
    }
    match path.parent() {
        Some(parent) => create_private_dir_all(parent)?,
        None => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "creating the private directory {}: it has no parent",
                    path.display()
                ),
            ))
        }
    }
    match imp::create_private_dir(path) {
        Ok(()) => Ok(()),
        Err(_) if path.is_dir() => Ok(()),
        Err(e) => Err(dir_context(e, path)),
    }
}

/// Make an existing file (0600) or directory (0700) private; on Windows
/// replace its DACL with a protected owner-only one
/// (SetNamedSecurityInfoW). A failure is an error.
///
/// A symlink is followed, as `chmod` does: the file or directory it points
/// to is made private.
pub fn restrict(path: &Path) -> io::Result<()> {
    imp::restrict(path)
        .map_err(|e| with_context(e, format_args!("making {} private", path.display())))
}

/// Whether no one but the current user has access: on Unix the current
/// user owns it and `mode & 0o077 == 0`; on Windows the DACL is present,
/// protected, and every allow ACE is for the current user's SID. A symlink
/// is followed.
///
/// Under Wine (a test bed only) it is false for everything, since Wine
/// stores no DACL for files (see `polykey_os::wine`): callers that find a
/// file not private should `restrict` it rather than refuse to go on.
pub fn is_private(path: &Path) -> io::Result<bool> {
    imp::is_private(path)
        .map_err(|e| with_context(e, format_args!("reading who may open {}", path.display())))
}

fn dir_context(e: io::Error, path: &Path) -> io::Error {
    with_context(
        e,
        format_args!("creating the private directory {}", path.display()),
    )
}

/// The same error kind, with a message saying what was being done.
pub(crate) fn with_context(e: io::Error, what: std::fmt::Arguments<'_>) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

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

/// Replace the file at `path` with `bytes`, atomically and privately: a
/// new temporary file beside it (a fresh random name, created with
/// [`create_new_private`], so it never follows a symlink, never opens a file
/// someone planted, and is private from its creation) is written, synced
/// and renamed over `path`; on Unix the directory is synced too (on Windows
/// a directory cannot be opened as a file, and NTFS journals the rename).
/// A crash leaves the old file or the new one, never a torn one, and a
/// handle someone opened on the old file never sees the new bytes.
pub fn replace_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let (temporary, mut file) = create_temporary_beside(path)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            std::fs::rename(&temporary, path)
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(with_context(
            e,
            format_args!("replacing {}", path.display()),
        ));
    }
    #[cfg(unix)]
    std::fs::File::open(directory_of(path))?.sync_all()?;
    Ok(())
}

/// This process's effective user id (what owns the files it makes).
#[cfg(unix)]
pub fn own_uid() -> u32 {
    imp::effective_uid()
}

/// The user id of the process at the other end of a Unix socket: a
/// client checks it before it sends a password or a token to whatever
/// listens at a path (another user's process could).
#[cfg(unix)]
pub fn peer_uid(socket: &std::os::unix::net::UnixStream) -> io::Result<u32> {
    use std::os::fd::AsFd;
    imp::peer_uid(socket.as_fd())
}

/// Open the regular file at `path` to read, never waiting to open it: a
/// FIFO (swapped in after a check of the path, or from an archive) or a
/// device such as a terminal is opened without waiting for a writer or
/// for input (O_NONBLOCK on Unix), then refused by what the opened handle
/// is, so no check of the path can be raced. InvalidInput for anything
/// not a regular file.
pub fn open_regular(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file", path.display()),
        ));
    }
    #[cfg(unix)]
    imp::blocking_again(&file)?;
    Ok(file)
}

/// How many random temporary names are tried before giving up.
const TEMPORARY_NAME_ATTEMPTS: usize = 16;

/// The directory `path` is in (`.` for a bare name).
fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A new, empty, private temporary file beside `path`:
/// `.<name>.<random>.tmp`.
fn create_temporary_beside(path: &Path) -> io::Result<(std::path::PathBuf, std::fs::File)> {
    use std::hash::{BuildHasher, Hasher};
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let mut last = None;
    for _ in 0..TEMPORARY_NAME_ATTEMPTS {
        // RandomState is seeded from the OS's random source.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let temporary =
            directory_of(path).join(format!(".{}.{random:016x}.tmp", name.to_string_lossy()));
        match create_new_private(&temporary) {
            Ok(file) => return Ok((temporary, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temporary name is free")))
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

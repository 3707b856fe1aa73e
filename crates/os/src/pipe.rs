//! The local client API's named pipe (`\\.\pipe\...`), which only the
//! current user can open.
//!
//! The server end carries a security descriptor owned by the current user
//! whose DACL grants only that user; remote clients are rejected. The
//! client end checks, before anything is written, that the pipe it opened
//! belongs to the current user: anyone can create a pipe of any free name,
//! and a pipe squatted by another user must never receive a password.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::time::{Duration, Instant};

use tokio::net::windows::named_pipe::{NamedPipeServer, PipeMode, ServerOptions};
use windows_sys::Win32::Foundation::{ERROR_ACCESS_DENIED, ERROR_PIPE_BUSY};
use windows_sys::Win32::Security::Authorization::SE_KERNEL_OBJECT;
use windows_sys::Win32::Storage::FileSystem::SECURITY_ANONYMOUS;

use crate::security::{self, Inheritance, OwnerOnly, Security};

/// Every local pipe name starts with this.
pub const PIPE_PREFIX: &str = r"\\.\pipe\";
/// How long `connect_client` keeps retrying while every instance of the
/// pipe is busy serving another client.
pub const PIPE_BUSY_TIMEOUT: Duration = Duration::from_secs(2);
/// The pause between two attempts while the pipe is busy.
const PIPE_BUSY_RETRY: Duration = Duration::from_millis(20);
/// The longest name Windows accepts for a pipe, prefix included.
pub const MAX_PIPE_NAME_LEN: usize = 256;

/// Create the server end of a named pipe (`\\.\pipe\...`) that only the
/// current user can open: a security descriptor owned by the current user
/// whose DACL grants only the current user's SID, remote clients rejected,
/// byte mode. `first` = first_pipe_instance(true): it fails with
/// AlreadyExists if any instance of that name exists (someone else
/// squatting the name, or another server already running).
///
/// Must be called within a Tokio runtime with IO enabled.
pub fn create_server(name: &str, first: bool) -> io::Result<NamedPipeServer> {
    check_name(name)?;
    // Tokio would panic registering the pipe outside a runtime.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other(format!(
            "creating the pipe {name}: not called within a Tokio runtime"
        )));
    }
    let mut descriptor = OwnerOnly::current_user(Inheritance::None)?;
    let mut attributes = descriptor.attributes();
    let mut options = ServerOptions::new();
    options
        .first_pipe_instance(first)
        .reject_remote_clients(true)
        .pipe_mode(PipeMode::Byte)
        .access_inbound(true)
        .access_outbound(true);
    // SAFETY: `attributes` is a valid SECURITY_ATTRIBUTES whose descriptor
    // (owned by `descriptor`) lives until after the call, which copies it
    // into the pipe.
    let created =
        unsafe { options.create_with_security_attributes_raw(name, attributes.as_ptr().cast()) };
    created.map_err(|e| {
        // FILE_FLAG_FIRST_PIPE_INSTANCE fails with ERROR_ACCESS_DENIED when
        // the name is taken.
        if first && e.raw_os_error() == Some(ERROR_ACCESS_DENIED as i32) {
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("the pipe {name} already exists: another program, or another instance of this one, serves it"),
            )
        } else {
            io::Error::new(e.kind(), format!("creating the pipe {name}: {e}"))
        }
    })
}

/// Open the client end synchronously (read+write; retried while every
/// instance is busy, up to [`PIPE_BUSY_TIMEOUT`]), then refuse it with
/// PermissionDenied unless the pipe's owner is the current user. The client
/// connects anonymously: a server that is not ours (squatting the name)
/// learns nothing of who connected before the owner check refuses it.
pub fn connect_client(name: &str) -> io::Result<File> {
    connect_client_owned_by(name, &security::current_user()?)
}

/// [`connect_client`], accepting only a pipe `owner` owns.
fn connect_client_owned_by(name: &str, owner: &security::Sid) -> io::Result<File> {
    check_name(name)?;
    let deadline = Instant::now() + PIPE_BUSY_TIMEOUT;
    let pipe = loop {
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .security_qos_flags(SECURITY_ANONYMOUS)
            .open(name);
        match opened {
            Ok(pipe) => break pipe,
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) => {
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the pipe {name} stayed busy for {} s; try again",
                            PIPE_BUSY_TIMEOUT.as_secs()
                        ),
                    ));
                }
                std::thread::sleep(PIPE_BUSY_RETRY);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("nothing serves the pipe {name}: is the agent or the app running?"),
                ))
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("opening the pipe {name}: {e}"),
                ))
            }
        }
    };
    ensure_owned_by(&pipe, owner, name)?;
    Ok(pipe)
}

/// The current user's SID in string form ("S-1-5-21-...").
pub fn current_user_sid() -> io::Result<String> {
    security::current_user()?.to_sddl()
}

/// Refuse `pipe` unless `user` owns it.
fn ensure_owned_by(pipe: &File, user: &security::Sid, name: &str) -> io::Result<()> {
    let security = Security::of_handle(pipe.as_raw_handle(), SE_KERNEL_OBJECT)
        .map_err(|e| io::Error::new(e.kind(), format!("reading who owns the pipe {name}: {e}")))?;
    match security.owner {
        Some(owner) if owner == *user => Ok(()),
        owner => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the pipe {name} belongs to another user ({}), not to you: refusing to use it",
                match owner {
                    Some(owner) => owner.to_sddl().unwrap_or_else(|_| "unknown".to_owned()),
                    None => "no owner".to_owned(),
                }
            ),
        )),
    }
}

fn check_name(name: &str) -> io::Result<()> {
    let valid = name.len() > PIPE_PREFIX.len()
        && name.len() <= MAX_PIPE_NAME_LEN
        && name
            .get(..PIPE_PREFIX.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(PIPE_PREFIX))
        && !name[PIPE_PREFIX.len()..].contains(['\\', '\0']);
    if valid {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a local pipe name (\\\\.\\pipe\\ and at most {MAX_PIPE_NAME_LEN} characters, no further backslash)"),
        ))
    }
}

#[cfg(test)]
mod tests;

//! What differs between operating systems, behind one portable API: files
//! and directories only the current user can open (0600/0700 on Unix, an
//! owner-only ACL on Windows, set when created), and on Windows the access
//! control of the local client API's named pipe.
//!
//! This is the only crate with `unsafe` code (the Windows security calls),
//! each block small and justified; it knows nothing about Polykey's data.
#![deny(unsafe_code)]
#![deny(missing_docs)]

/// Private files and directories: created private, made private, checked.
pub mod fs;

/// Memory the allocator holds free: given back, arenas bounded.
pub mod memory;

/// The process itself: kept out of core dumps.
pub mod process;

/// This computer's name, as the system calls it.
pub fn host_name() -> Option<String> {
    let name = gethostname::gethostname().into_string().ok()?;
    // A name like "laptop.example.lan": its first label is what people call it.
    let name = name.split('.').next().unwrap_or_default().trim().to_owned();
    (!name.is_empty() && name != "localhost").then_some(name)
}

/// The local client API's named pipe, admitting only the current user.
#[cfg(windows)]
pub mod pipe;

/// Secrets in the Credential Manager kept on this machine only (never
/// roaming with the profile).
#[cfg(windows)]
pub mod credential;

/// Whether this runs under Wine, and what Wine does not implement.
#[cfg(windows)]
pub mod wine;

#[cfg(windows)]
mod security;

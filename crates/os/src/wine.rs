//! Whether this Windows process runs under Wine, and what Wine (8.0, as in
//! Debian 12) does not do that the rest of this crate relies on.
//!
//! Wine is only a test bed here; nothing in this crate relaxes a check
//! because it runs under Wine. What Wine lacks, measured with this crate's
//! tests under Wine 8.0:
//!
//! - **Stored file security descriptors.** Wine keeps no DACL for a file or
//!   directory: `CreateFileW`/`CreateDirectoryW`/`SetNamedSecurityInfoW`
//!   turn the DACL into Unix mode bits, and `GetNamedSecurityInfoW`
//!   answers with a DACL made up from the mode: never protected, always
//!   granting LocalSystem, Everyone for the "other" bits, no inheritance
//!   flags. So [`crate::fs::is_private`] is `false` for everything under
//!   Wine, although what Wine enforces (the Unix mode) is owner-only.
//!   Wine's mapping also gives the owner's group what the owner's entry
//!   grants (0750 at creation, after the umask).
//! - **`PROTECTED_DACL_SECURITY_INFORMATION`.** `SetNamedSecurityInfoW`
//!   adds the parent directory's inheritable entries even to a DACL it is
//!   told is protected, so [`crate::fs::restrict`] of a file in a 0755
//!   directory leaves it 0775 on the Unix side (in a private directory,
//!   0770).
//! - **`FILE_FLAG_FIRST_PIPE_INSTANCE`.** `CreateNamedPipeW` always opens
//!   the name if it exists (`FILE_OPEN_IF`), so
//!   `pipe::create_server(name, true)` does not notice another server.
//! - **Symbolic links.** `CreateSymbolicLinkW` returns success and creates
//!   nothing.
//! - **`bcryptprimitives.dll`** (before Wine 9.0): Rust's std imports
//!   `ProcessPrng` from it, so no Rust program starts until a stand-in is
//!   installed (`crates/os/tests/wine/bcryptprimitives.c` says how).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::c_char;

use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

/// Wine's version ("8.0") when running under Wine, None on Windows.
pub fn version() -> Option<String> {
    let ntdll: Vec<u16> = "ntdll.dll".encode_utf16().chain([0]).collect();
    // SAFETY: the name is NUL-terminated; ntdll is loaded in every process
    // and the handle needs no release.
    let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
    if module.is_null() {
        return None;
    }
    // Only Wine's ntdll exports this.
    // SAFETY: `module` is a loaded module; the name is NUL-terminated.
    let function = unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }?;
    // SAFETY: Wine declares it `const char *CDECL wine_get_version(void)`;
    // for a function without arguments the C and system conventions agree.
    let function: unsafe extern "C" fn() -> *const c_char =
        unsafe { std::mem::transmute::<unsafe extern "system" fn() -> isize, _>(function) };
    // SAFETY: it takes no arguments and returns a static string or null.
    let version = unsafe { function() };
    if version.is_null() {
        return Some(String::new());
    }
    // SAFETY: a non-null answer is a NUL-terminated static string.
    Some(
        unsafe { CStr::from_ptr(version) }
            .to_string_lossy()
            .into_owned(),
    )
}

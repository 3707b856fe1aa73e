//! Windows: a protected DACL with one entry for the current user, passed to
//! CreateFileW/CreateDirectoryW so the file never exists without it.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::windows::io::FromRawHandle;
use std::path::Path;
use std::ptr;

use windows_sys::Win32::Foundation::{GENERIC_READ, GENERIC_WRITE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{
    CreateDirectoryW, CreateFileW, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_DELETE,
    FILE_SHARE_READ, FILE_SHARE_WRITE,
};

use crate::security::{
    current_user, last_error, set_file_owner, wide, Inheritance, OwnerOnly, Security,
};

pub(super) fn create_new_private(path: &Path) -> io::Result<File> {
    let name = wide(path.as_os_str())?;
    let mut descriptor = OwnerOnly::current_user(Inheritance::None)?;
    let mut attributes = descriptor.attributes();
    // CREATE_NEW fails if anything has the name, a symlink included (it is
    // not followed). The share mode is std's default.
    // SAFETY: `name` is NUL-terminated; `attributes` points at a descriptor
    // that outlives the call; no template handle.
    let handle = unsafe {
        CreateFileW(
            name.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            attributes.as_ptr(),
            CREATE_NEW,
            FILE_ATTRIBUTE_NORMAL,
            ptr::null_mut(),
        )
    };
    if handle == INVALID_HANDLE_VALUE {
        return Err(last_error("CreateFileW"));
    }
    // SAFETY: CreateFileW succeeded, so `handle` is an open file handle that
    // nothing else owns; the File closes it once.
    Ok(unsafe { File::from_raw_handle(handle) })
}

pub(super) fn create_private_dir(path: &Path) -> io::Result<()> {
    let name = wide(path.as_os_str())?;
    let mut descriptor = OwnerOnly::current_user(Inheritance::ToChildren)?;
    let mut attributes = descriptor.attributes();
    // SAFETY: `name` is NUL-terminated; `attributes` points at a descriptor
    // that outlives the call.
    if unsafe { CreateDirectoryW(name.as_ptr(), attributes.as_ptr()) } == 0 {
        return Err(last_error("CreateDirectoryW"));
    }
    Ok(())
}

pub(super) fn restrict(path: &Path) -> io::Result<()> {
    let inheritance = if std::fs::metadata(path)?.is_dir() {
        Inheritance::ToChildren
    } else {
        Inheritance::None
    };
    let name = wide(path.as_os_str())?;
    let user = current_user()?;
    // Someone else's file or directory (planted where the user pointed the
    // node) stays theirs to open up again unless the user takes it over.
    if Security::of_file(&name)?.owner.as_ref() != Some(&user) {
        set_file_owner(&name, &user)?;
    }
    OwnerOnly::current_user(inheritance)?.apply_to_file(&name)?;
    if Security::of_file(&name)?.owner.as_ref() != Some(&user) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "it belongs to another user, who keeps control of it",
        ));
    }
    Ok(())
}

pub(super) fn is_private(path: &Path) -> io::Result<bool> {
    let security = Security::of_file(&wide(path.as_os_str())?)?;
    Ok(security.is_private_to(&current_user()?))
}

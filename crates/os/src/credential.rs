//! Secrets in the Windows Credential Manager kept on this machine only.
//!
//! The `keyring` crate writes its credentials with `CRED_PERSIST_ENTERPRISE`,
//! which copies them into a roaming profile: to the profile server and every
//! machine the user logs on to. The key-encryption key Polykey keeps there
//! unlocks the root key without the password, so it stays on this machine
//! (`CRED_PERSIST_LOCAL_MACHINE`), still protected by the user's logon
//! (DPAPI).
#![allow(unsafe_code)]

use std::io;
use std::ptr;

use windows_sys::Win32::Foundation::ERROR_NOT_FOUND;
use windows_sys::Win32::Security::Credentials::{
    CredDeleteW, CredFree, CredReadW, CredWriteW, CREDENTIALW, CRED_PERSIST,
    CRED_PERSIST_LOCAL_MACHINE, CRED_TYPE_GENERIC,
};

use crate::security::{last_error, wide};

/// The most a credential may hold (CRED_MAX_CREDENTIAL_BLOB_SIZE).
pub const MAX_SECRET_BYTES: usize = 5 * 512;

/// Store `secret` under `target`, on this machine only (replacing what was
/// there).
pub fn write(target: &str, secret: &[u8]) -> io::Result<()> {
    if secret.len() > MAX_SECRET_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the secret is larger than a credential holds",
        ));
    }
    let mut name = wide(target.as_ref())?;
    let mut blob = secret.to_vec();
    let credential = CREDENTIALW {
        Type: CRED_TYPE_GENERIC,
        TargetName: name.as_mut_ptr(),
        CredentialBlobSize: blob.len() as u32,
        CredentialBlob: blob.as_mut_ptr(),
        Persist: CRED_PERSIST_LOCAL_MACHINE,
        ..CREDENTIALW::default()
    };
    // SAFETY: every pointer in `credential` points into `name` or `blob`,
    // which outlive the call; CredWriteW copies what it keeps.
    let written = unsafe { CredWriteW(&credential, 0) };
    zeroize(&mut blob);
    if written == 0 {
        return Err(last_error("CredWriteW"));
    }
    Ok(())
}

/// The secret stored under `target` and how it persists, or `None`.
pub fn read(target: &str) -> io::Result<Option<(Vec<u8>, CRED_PERSIST)>> {
    let name = wide(target.as_ref())?;
    let mut found: *mut CREDENTIALW = ptr::null_mut();
    // SAFETY: `name` is NUL-terminated; on success `found` points to a
    // credential the system allocated, freed below with CredFree.
    if unsafe { CredReadW(name.as_ptr(), CRED_TYPE_GENERIC, 0, &mut found) } == 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(ERROR_NOT_FOUND as i32) {
            return Ok(None);
        }
        return Err(last_error("CredReadW"));
    }
    // SAFETY: CredReadW succeeded, so `found` is a valid CREDENTIALW whose
    // blob is `CredentialBlobSize` bytes (possibly none); both are read
    // before the single CredFree.
    let (secret, persist) = unsafe {
        let credential = &*found;
        let bytes = if credential.CredentialBlob.is_null() {
            Vec::new()
        } else {
            std::slice::from_raw_parts(
                credential.CredentialBlob,
                credential.CredentialBlobSize as usize,
            )
            .to_vec()
        };
        let persist = credential.Persist;
        if !credential.CredentialBlob.is_null() {
            ptr::write_bytes(
                credential.CredentialBlob,
                0,
                credential.CredentialBlobSize as usize,
            );
        }
        CredFree(found.cast());
        (bytes, persist)
    };
    Ok(Some((secret, persist)))
}

/// Remove the credential under `target`; `false` if there was none.
pub fn delete(target: &str) -> io::Result<bool> {
    let name = wide(target.as_ref())?;
    // SAFETY: `name` is NUL-terminated and outlives the call.
    if unsafe { CredDeleteW(name.as_ptr(), CRED_TYPE_GENERIC, 0) } == 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(ERROR_NOT_FOUND as i32) {
            return Ok(false);
        }
        return Err(last_error("CredDeleteW"));
    }
    Ok(true)
}

fn zeroize(bytes: &mut [u8]) {
    for byte in bytes.iter_mut() {
        // SAFETY: `byte` is a valid, aligned, exclusive reference; the
        // volatile write keeps the compiler from dropping the wipe.
        unsafe { ptr::write_volatile(byte, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_kept_on_this_machine_only_read_back_and_deleted() {
        let target = format!("polykey-os-test-{}", std::process::id());
        assert_eq!(read(&target).expect("read"), None);
        write(&target, b"key-encryption-key").expect("write");
        let (secret, persist) = read(&target).expect("read").expect("stored");
        assert_eq!(secret, b"key-encryption-key");
        assert_eq!(persist, CRED_PERSIST_LOCAL_MACHINE, "it must not roam");
        write(&target, b"replaced").expect("write again");
        assert_eq!(read(&target).expect("read").expect("stored").0, b"replaced");
        assert!(delete(&target).expect("delete"));
        assert!(!delete(&target).expect("delete again"));
        assert_eq!(read(&target).expect("read"), None);
        assert!(write(&target, &vec![0; MAX_SECRET_BYTES + 1]).is_err());
    }
}

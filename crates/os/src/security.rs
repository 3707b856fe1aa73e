//! Windows security primitives shared by `fs` and `pipe`: the current
//! user's SID, an owner-only security descriptor, and reading back who an
//! object's owner is and what its DACL grants.
//!
//! Everything the Windows API hands back in LocalAlloc'd memory is held by
//! a [`LocalBox`] and copied out before it is freed, so the types here own
//! plain Rust buffers.
#![allow(unsafe_code)]

use std::ffi::{c_void, OsStr};
use std::io;
use std::mem::size_of;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr;

use windows_sys::Win32::Foundation::{LocalFree, ERROR_SUCCESS, HANDLE, HLOCAL};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, GetNamedSecurityInfoW, GetSecurityInfo, SetNamedSecurityInfoW,
    SE_FILE_OBJECT, SE_OBJECT_TYPE,
};
use windows_sys::Win32::Security::{
    AclSizeInformation, AddAccessAllowedAceEx, CopySid, EqualSid, GetAce, GetAclInformation,
    GetLengthSid, GetSecurityDescriptorControl, GetTokenInformation, InitializeAcl,
    InitializeSecurityDescriptor, IsValidSid, SetSecurityDescriptorControl,
    SetSecurityDescriptorDacl, SetSecurityDescriptorOwner, TokenUser, ACCESS_ALLOWED_ACE,
    ACE_HEADER, ACL, ACL_REVISION, ACL_SIZE_INFORMATION, CONTAINER_INHERIT_ACE,
    DACL_SECURITY_INFORMATION, OBJECT_INHERIT_ACE, OBJECT_SECURITY_INFORMATION,
    OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
    SECURITY_ATTRIBUTES, SECURITY_DESCRIPTOR, SE_DACL_PROTECTED, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::Storage::FileSystem::FILE_ALL_ACCESS;
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// ACE types (winnt.h); windows-sys keeps them in the large
/// `Win32_System_SystemServices` module, not worth compiling for two numbers.
pub(crate) const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
/// See [`ACCESS_ALLOWED_ACE_TYPE`].
pub(crate) const ACCESS_DENIED_ACE_TYPE: u8 = 1;
/// The only revision of the absolute security descriptor format (winnt.h).
const SECURITY_DESCRIPTOR_REVISION: u32 = 1;
/// What the owner-only entry grants: everything a file, a directory or a
/// pipe has, including creating further instances of a pipe.
pub(crate) const OWNER_ACCESS: u32 = FILE_ALL_ACCESS;

/// `path` as a NUL-terminated UTF-16 string for the `W` functions.
pub(crate) fn wide(path: &OsStr) -> io::Result<Vec<u16>> {
    let mut wide: Vec<u16> = path.encode_wide().collect();
    if wide.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the name contains a NUL character",
        ));
    }
    wide.push(0);
    Ok(wide)
}

/// The error of the call that just failed, saying which call it was.
pub(crate) fn last_error(call: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{call}: {e}"))
}

/// The error a function returning a WIN32_ERROR (not setting the last
/// error) reported.
fn status_error(call: &str, status: u32) -> io::Error {
    // Win32 error codes fit an i32; std maps them to error kinds.
    let e = io::Error::from_raw_os_error(status as i32);
    io::Error::new(e.kind(), format!("{call}: {e}"))
}

/// Memory the Windows API allocated with LocalAlloc for us; freed on drop.
struct LocalBox(HLOCAL);

impl Drop for LocalBox {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from an API documented to allocate it
            // with LocalAlloc for the caller to free, and this guard is its
            // only owner, so it is freed exactly once.
            unsafe { LocalFree(self.0) };
        }
    }
}

/// A security identifier, copied into memory we own.
pub(crate) struct Sid {
    /// u32 words: a SID holds 32-bit sub-authorities and must be aligned
    /// for them.
    words: Vec<u32>,
}

impl Sid {
    /// Copy the SID at `sid`, which must point to a valid SID (one an API
    /// call just returned with success).
    fn copy_from(sid: PSID) -> io::Result<Sid> {
        if sid.is_null() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "no SID"));
        }
        // SAFETY: the caller passes a non-null pointer to a SID an API
        // returned; IsValidSid only reads it.
        if unsafe { IsValidSid(sid) } == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "an invalid SID"));
        }
        // SAFETY: `sid` is a valid SID (checked above).
        let len = unsafe { GetLengthSid(sid) };
        let mut words = vec![0u32; (len as usize).div_ceil(size_of::<u32>())];
        // SAFETY: `words` holds at least `len` bytes, aligned for a SID, and
        // `sid` is valid for `len` bytes.
        if unsafe { CopySid(len, words.as_mut_ptr().cast(), sid) } == 0 {
            return Err(last_error("CopySid"));
        }
        Ok(Sid { words })
    }

    /// Parse the string form ("S-1-5-18").
    #[cfg(test)]
    pub(crate) fn parse(text: &str) -> io::Result<Sid> {
        use windows_sys::Win32::Security::Authorization::ConvertStringSidToSidW;

        let text = wide(OsStr::new(text))?;
        let mut sid: PSID = ptr::null_mut();
        // SAFETY: `text` is NUL-terminated; `sid` is a valid out pointer.
        if unsafe { ConvertStringSidToSidW(text.as_ptr(), &mut sid) } == 0 {
            return Err(last_error("ConvertStringSidToSidW"));
        }
        let guard = LocalBox(sid);
        Sid::copy_from(guard.0)
    }

    /// A pointer for the API calls that read a SID. They never write
    /// through it, although windows-sys types PSID as `*mut`.
    pub(crate) fn as_psid(&self) -> PSID {
        self.words.as_ptr() as PSID
    }

    fn byte_len(&self) -> u32 {
        // SAFETY: `words` holds a valid SID (made by CopySid).
        unsafe { GetLengthSid(self.as_psid()) }
    }

    /// Whether this is the SID at `other`, a valid SID.
    fn equals_raw(&self, other: PSID) -> bool {
        // SAFETY: both point to valid SIDs; EqualSid only reads them.
        unsafe { EqualSid(self.as_psid(), other) != 0 }
    }

    /// The string form, "S-1-5-21-...".
    pub(crate) fn to_sddl(&self) -> io::Result<String> {
        let mut text: *mut u16 = ptr::null_mut();
        // SAFETY: `self` holds a valid SID; `text` is a valid out pointer.
        if unsafe { ConvertSidToStringSidW(self.as_psid(), &mut text) } == 0 {
            return Err(last_error("ConvertSidToStringSidW"));
        }
        let guard = LocalBox(text.cast());
        let mut len = 0;
        // SAFETY: on success `text` is a NUL-terminated string, so every
        // index up to and including the NUL is in bounds.
        while unsafe { *text.add(len) } != 0 {
            len += 1;
        }
        // SAFETY: the `len` units before the NUL are initialised and live
        // until `guard` is dropped, after this copy.
        let units = unsafe { std::slice::from_raw_parts(text, len) };
        let sddl = String::from_utf16(units)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a SID string not UTF-16"));
        drop(guard);
        sddl
    }
}

impl PartialEq for Sid {
    fn eq(&self, other: &Sid) -> bool {
        self.equals_raw(other.as_psid())
    }
}

impl std::fmt::Debug for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_sddl() {
            Ok(sddl) => f.write_str(&sddl),
            Err(_) => f.write_str("<unreadable SID>"),
        }
    }
}

/// The SID of the user this process runs as.
pub(crate) fn current_user() -> io::Result<Sid> {
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no
    // closing; `token` is a valid out pointer.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(last_error("OpenProcessToken"));
    }
    // SAFETY: OpenProcessToken succeeded, so `token` is an open handle that
    // nothing else owns; OwnedHandle closes it once.
    let token = unsafe { OwnedHandle::from_raw_handle(token as RawHandle) };
    let mut len = 0u32;
    // SAFETY: a null buffer of length 0 only asks for the size needed; the
    // call "fails" with ERROR_INSUFFICIENT_BUFFER and sets `len`.
    unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            TokenUser,
            ptr::null_mut(),
            0,
            &mut len,
        )
    };
    if len == 0 {
        return Err(last_error("GetTokenInformation"));
    }
    // u64 words: TOKEN_USER starts with a pointer.
    let mut buffer = vec![0u64; (len as usize).div_ceil(size_of::<u64>())];
    // SAFETY: `buffer` holds at least `len` bytes, aligned for TOKEN_USER.
    let ok = unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            TokenUser,
            buffer.as_mut_ptr().cast(),
            len,
            &mut len,
        )
    };
    if ok == 0 {
        return Err(last_error("GetTokenInformation"));
    }
    // SAFETY: on success the buffer starts with a TOKEN_USER whose SID
    // points into the same buffer, which lives until the copy is made.
    let user = unsafe { &*buffer.as_ptr().cast::<TOKEN_USER>() };
    Sid::copy_from(user.User.Sid)
}

/// Whether an owner-only DACL is inherited by what is created inside.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Inheritance {
    /// A file or a pipe: nothing inside.
    None,
    /// A directory: files and directories created inside inherit the entry.
    ToChildren,
}

/// An absolute security descriptor owned by one user, whose protected DACL
/// has one entry: full access for that user. It owns the buffers its
/// pointers refer to (on the heap, so moving it keeps them valid).
pub(crate) struct OwnerOnly {
    descriptor: Box<SECURITY_DESCRIPTOR>,
    /// The ACL, in u32 words because an ACL must be DWORD-aligned.
    acl: Vec<u32>,
    _owner: Sid,
}

impl OwnerOnly {
    pub(crate) fn new(owner: Sid, inheritance: Inheritance) -> io::Result<OwnerOnly> {
        // An ACL header, then one ACCESS_ALLOWED_ACE whose last field (a u32)
        // is where the SID starts.
        let acl_bytes = size_of::<ACL>() + size_of::<ACCESS_ALLOWED_ACE>() - size_of::<u32>()
            + owner.byte_len() as usize;
        let mut acl = vec![0u32; acl_bytes.div_ceil(size_of::<u32>())];
        let acl_len = u32::try_from(acl.len() * size_of::<u32>())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "an ACL too large"))?;
        let acl_ptr: *mut ACL = acl.as_mut_ptr().cast();
        // SAFETY: `acl` is `acl_len` writable bytes, DWORD-aligned.
        if unsafe { InitializeAcl(acl_ptr, acl_len, ACL_REVISION) } == 0 {
            return Err(last_error("InitializeAcl"));
        }
        let flags = match inheritance {
            Inheritance::None => 0,
            Inheritance::ToChildren => OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
        };
        // SAFETY: the ACL was initialised with room for exactly this entry;
        // `owner` is a valid SID.
        if unsafe {
            AddAccessAllowedAceEx(acl_ptr, ACL_REVISION, flags, OWNER_ACCESS, owner.as_psid())
        } == 0
        {
            return Err(last_error("AddAccessAllowedAceEx"));
        }
        let mut descriptor = Box::<SECURITY_DESCRIPTOR>::default();
        let sd: PSECURITY_DESCRIPTOR = ptr::from_mut(&mut *descriptor).cast();
        // SAFETY: `sd` points to writable memory the size of an absolute
        // security descriptor.
        if unsafe { InitializeSecurityDescriptor(sd, SECURITY_DESCRIPTOR_REVISION) } == 0 {
            return Err(last_error("InitializeSecurityDescriptor"));
        }
        // The owner is set explicitly: an elevated process's default owner is
        // the Administrators group, and a pipe's client checks the owner.
        // SAFETY: `sd` is initialised; the SID lives in `_owner` as long as
        // the descriptor does.
        if unsafe { SetSecurityDescriptorOwner(sd, owner.as_psid(), 0) } == 0 {
            return Err(last_error("SetSecurityDescriptorOwner"));
        }
        // SAFETY: `sd` is initialised; the ACL lives in `acl` as long as the
        // descriptor does.
        if unsafe { SetSecurityDescriptorDacl(sd, 1, acl_ptr, 0) } == 0 {
            return Err(last_error("SetSecurityDescriptorDacl"));
        }
        // Protected: the parent directory's inheritable entries are not
        // added to ours.
        // SAFETY: `sd` is initialised.
        if unsafe { SetSecurityDescriptorControl(sd, SE_DACL_PROTECTED, SE_DACL_PROTECTED) } == 0 {
            return Err(last_error("SetSecurityDescriptorControl"));
        }
        Ok(OwnerOnly {
            descriptor,
            acl,
            _owner: owner,
        })
    }

    /// For the current user.
    pub(crate) fn current_user(inheritance: Inheritance) -> io::Result<OwnerOnly> {
        OwnerOnly::new(current_user()?, inheritance)
    }

    /// SECURITY_ATTRIBUTES pointing at this descriptor, valid while `self`
    /// is (the borrow says so), for a handle children do not inherit.
    pub(crate) fn attributes(&mut self) -> SecurityAttributes<'_> {
        let attributes = SECURITY_ATTRIBUTES {
            nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: ptr::from_mut(&mut *self.descriptor).cast(),
            bInheritHandle: 0,
        };
        SecurityAttributes {
            attributes,
            _descriptor: std::marker::PhantomData,
        }
    }

    fn acl(&self) -> *const ACL {
        self.acl.as_ptr().cast()
    }

    /// Replace the DACL of the file or directory at `path` (a wide,
    /// NUL-terminated name) with this one, protected.
    pub(crate) fn apply_to_file(&self, path: &[u16]) -> io::Result<()> {
        set_file_security(
            path,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            self.acl(),
        )
    }
}

/// Make `owner` the owner of the file or directory at `path` (a wide,
/// NUL-terminated name). Taking ownership needs WRITE_OWNER on it (granted
/// by a DACL that gives the user full control, as one a squatter opened to
/// everyone does).
pub(crate) fn set_file_owner(path: &[u16], owner: &Sid) -> io::Result<()> {
    set_file_security(
        path,
        OWNER_SECURITY_INFORMATION,
        owner.as_psid(),
        ptr::null(),
    )
}

/// Set what `info` names of the file or directory at `path` (a wide,
/// NUL-terminated name): its owner `owner` and/or its DACL `dacl` (each
/// null when not named).
fn set_file_security(
    path: &[u16],
    info: OBJECT_SECURITY_INFORMATION,
    owner: PSID,
    dacl: *const ACL,
) -> io::Result<()> {
    debug_assert_eq!(path.last(), Some(&0));
    // SAFETY: `path` is NUL-terminated; `owner` and `dacl` are null or
    // point to a valid SID and ACL that outlive the call and are only read.
    let status = unsafe {
        SetNamedSecurityInfoW(
            path.as_ptr(),
            SE_FILE_OBJECT,
            info,
            owner,
            ptr::null_mut(),
            dacl,
            ptr::null(),
        )
    };
    if status != ERROR_SUCCESS {
        return Err(status_error("SetNamedSecurityInfoW", status));
    }
    Ok(())
}

/// SECURITY_ATTRIBUTES borrowed from an [`OwnerOnly`].
pub(crate) struct SecurityAttributes<'a> {
    attributes: SECURITY_ATTRIBUTES,
    _descriptor: std::marker::PhantomData<&'a mut OwnerOnly>,
}

impl SecurityAttributes<'_> {
    pub(crate) fn as_ptr(&mut self) -> *mut SECURITY_ATTRIBUTES {
        &mut self.attributes
    }
}

/// One entry of a DACL.
#[derive(Debug)]
pub(crate) struct Ace {
    /// ACCESS_ALLOWED_ACE_TYPE, ACCESS_DENIED_ACE_TYPE or another type.
    pub(crate) kind: u8,
    /// OBJECT_INHERIT_ACE, CONTAINER_INHERIT_ACE, INHERITED_ACE, ...
    /// (the decision needs only kind and SID; tests and Debug show the rest).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) flags: u8,
    /// The access mask (for an allow or deny entry; 0 for other types).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) mask: u32,
    /// Whom it is for (for an allow or deny entry; None for other types,
    /// whose layout differs).
    pub(crate) sid: Option<Sid>,
}

/// What an object's security descriptor says, copied out of it.
#[derive(Debug)]
pub(crate) struct Security {
    pub(crate) owner: Option<Sid>,
    /// None when the object has no DACL at all (everyone has full access).
    pub(crate) dacl: Option<Vec<Ace>>,
    /// Whether the DACL is protected from inheriting the parent's entries.
    pub(crate) protected: bool,
}

impl Security {
    /// The owner and DACL of the file or directory at `path` (wide,
    /// NUL-terminated).
    pub(crate) fn of_file(path: &[u16]) -> io::Result<Security> {
        debug_assert_eq!(path.last(), Some(&0));
        let mut owner: PSID = ptr::null_mut();
        let mut dacl: *mut ACL = ptr::null_mut();
        let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
        // SAFETY: `path` is NUL-terminated; the out pointers are valid.
        let status = unsafe {
            GetNamedSecurityInfoW(
                path.as_ptr(),
                SE_FILE_OBJECT,
                Self::WANTED,
                &mut owner,
                ptr::null_mut(),
                &mut dacl,
                ptr::null_mut(),
                &mut descriptor,
            )
        };
        let descriptor = LocalBox(descriptor);
        if status != ERROR_SUCCESS {
            return Err(status_error("GetNamedSecurityInfoW", status));
        }
        Self::copy_out(&descriptor, owner, dacl)
    }

    /// The owner and DACL of the object behind `handle` (opened with
    /// READ_CONTROL), of type `kind` (SE_KERNEL_OBJECT for a pipe).
    pub(crate) fn of_handle(handle: RawHandle, kind: SE_OBJECT_TYPE) -> io::Result<Security> {
        let mut owner: PSID = ptr::null_mut();
        let mut dacl: *mut ACL = ptr::null_mut();
        let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
        // SAFETY: the caller's handle is open (it is borrowed from a live
        // object); the out pointers are valid.
        let status = unsafe {
            GetSecurityInfo(
                handle,
                kind,
                Self::WANTED,
                &mut owner,
                ptr::null_mut(),
                &mut dacl,
                ptr::null_mut(),
                &mut descriptor,
            )
        };
        let descriptor = LocalBox(descriptor);
        if status != ERROR_SUCCESS {
            return Err(status_error("GetSecurityInfo", status));
        }
        Self::copy_out(&descriptor, owner, dacl)
    }

    const WANTED: OBJECT_SECURITY_INFORMATION =
        OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION;

    /// Copy what `owner` and `dacl` (pointers into `descriptor`) say.
    fn copy_out(descriptor: &LocalBox, owner: PSID, dacl: *mut ACL) -> io::Result<Security> {
        if descriptor.0.is_null() {
            return Err(io::Error::other("no security descriptor returned"));
        }
        let mut control = 0u16;
        let mut revision = 0u32;
        // SAFETY: `descriptor` is the valid descriptor the API returned.
        if unsafe { GetSecurityDescriptorControl(descriptor.0, &mut control, &mut revision) } == 0 {
            return Err(last_error("GetSecurityDescriptorControl"));
        }
        let owner = if owner.is_null() {
            None
        } else {
            Some(Sid::copy_from(owner)?)
        };
        let dacl = if dacl.is_null() {
            None
        } else {
            Some(read_aces(dacl)?)
        };
        Ok(Security {
            owner,
            dacl,
            protected: control & SE_DACL_PROTECTED != 0,
        })
    }

    /// Whether no one but `user` is granted anything: `user` owns it (an
    /// owner may always rewrite the DACL), a DACL is present and protected,
    /// and every allow entry is for `user`. Entries of other types (object
    /// or callback entries) count as granting someone else.
    pub(crate) fn is_private_to(&self, user: &Sid) -> bool {
        let Some(aces) = &self.dacl else {
            return false;
        };
        self.owner.as_ref() == Some(user)
            && self.protected
            && aces.iter().all(|ace| match ace.kind {
                ACCESS_ALLOWED_ACE_TYPE => ace.sid.as_ref() == Some(user),
                ACCESS_DENIED_ACE_TYPE => true,
                _ => false,
            })
    }
}

/// The entries of `dacl`, a valid ACL inside a live security descriptor.
fn read_aces(dacl: *mut ACL) -> io::Result<Vec<Ace>> {
    let mut size = ACL_SIZE_INFORMATION::default();
    // SAFETY: `dacl` is a valid ACL; `size` is writable and its size is
    // passed.
    let ok = unsafe {
        GetAclInformation(
            dacl,
            ptr::from_mut(&mut size).cast::<c_void>(),
            size_of::<ACL_SIZE_INFORMATION>() as u32,
            AclSizeInformation,
        )
    };
    if ok == 0 {
        return Err(last_error("GetAclInformation"));
    }
    let mut aces = Vec::new();
    for index in 0..size.AceCount {
        let mut ace: *mut c_void = ptr::null_mut();
        // SAFETY: `index` is below the ACL's entry count; `ace` is a valid
        // out pointer.
        if unsafe { GetAce(dacl, index, &mut ace) } == 0 {
            return Err(last_error("GetAce"));
        }
        // SAFETY: GetAce returned a pointer to an entry inside the ACL,
        // which every type starts with an ACE_HEADER.
        let header = unsafe { ace.cast::<ACE_HEADER>().read_unaligned() };
        let (mask, sid) = match header.AceType {
            ACCESS_ALLOWED_ACE_TYPE | ACCESS_DENIED_ACE_TYPE => {
                let entry = ace.cast::<ACCESS_ALLOWED_ACE>();
                // SAFETY: allow and deny entries share ACCESS_ALLOWED_ACE's
                // layout: the header, the mask, then the SID in place of
                // `SidStart`, all inside the ACL.
                let mask = unsafe { ptr::addr_of!((*entry).Mask).read_unaligned() };
                // SAFETY: as above; this only computes the SID's address.
                let sid = unsafe { ptr::addr_of!((*entry).SidStart) };
                (mask, Some(Sid::copy_from(sid.cast_mut().cast())?))
            }
            _ => (0, None),
        };
        aces.push(Ace {
            kind: header.AceType,
            flags: header.AceFlags,
            mask,
            sid,
        });
    }
    Ok(aces)
}

#[cfg(test)]
mod tests;

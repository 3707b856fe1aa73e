//! Unix: the permission bits, set by `open(2)`/`mkdir(2)` themselves.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Read and write for the owner only.
const PRIVATE_FILE_MODE: u32 = 0o600;
/// Read, write and enter for the owner only.
const PRIVATE_DIR_MODE: u32 = 0o700;
/// Any permission for the group or for others.
const GROUP_AND_OTHER_BITS: u32 = 0o077;

pub(super) fn create_new_private(path: &Path) -> io::Result<File> {
    // `create_new` is O_CREAT|O_EXCL, which fails on an existing symlink
    // (even a dangling one) instead of following it.
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
}

pub(super) fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(PRIVATE_DIR_MODE).create(path)
}

pub(super) fn restrict(path: &Path) -> io::Result<()> {
    let mode = if std::fs::metadata(path)?.is_dir() {
        PRIVATE_DIR_MODE
    } else {
        PRIVATE_FILE_MODE
    };
    std::fs::set_permissions(path, Permissions::from_mode(mode))
}

pub(super) fn is_private(path: &Path) -> io::Result<bool> {
    let metadata = std::fs::metadata(path)?;
    // 0600 on a file someone else owns keeps it private to them, not to us.
    Ok(metadata.uid() == effective_uid() && metadata.mode() & GROUP_AND_OTHER_BITS == 0)
}

/// Take `O_NONBLOCK` off `file` again (it was opened with it so that a
/// FIFO or a device would not keep the open waiting): a read of a file on
/// a FUSE or network file system could otherwise fail as "would block".
pub(super) fn blocking_again(file: &File) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let fd = file.as_raw_fd();
    #[allow(unsafe_code)]
    // SAFETY: fcntl with F_GETFL/F_SETFL on a descriptor this `File` owns
    // and keeps open for the call; no memory is passed.
    let set = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            -1
        } else {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK)
        }
    };
    if set < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub(super) fn effective_uid() -> u32 {
    #[allow(unsafe_code)]
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory.
    unsafe {
        libc::geteuid()
    }
}

/// The user id of the process at the other end of a Unix socket (as it
/// was when that end connected or listened).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn peer_uid(socket: std::os::fd::BorrowedFd<'_>) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut credentials = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::ucred>())
        .map_err(|_| io::Error::other("ucred does not fit socklen_t"))?;
    #[allow(unsafe_code)]
    // SAFETY: `credentials` and `len` are live, writable and of the sizes
    // given; the descriptor is borrowed for the call.
    let got = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::addr_of_mut!(credentials).cast(),
            &mut len,
        )
    };
    if got != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(credentials.uid)
}

/// See above (macOS and the BSDs).
#[cfg(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
))]
pub(super) fn peer_uid(socket: std::os::fd::BorrowedFd<'_>) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    let (mut uid, mut gid) = (libc::uid_t::MAX, libc::gid_t::MAX);
    #[allow(unsafe_code)]
    // SAFETY: `uid` and `gid` are live and writable; the descriptor is
    // borrowed for the call.
    let got = unsafe { libc::getpeereid(socket.as_raw_fd(), &mut uid, &mut gid) };
    if got != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(uid)
}

/// See above: elsewhere the other end is not known, so not this user's.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
)))]
pub(super) fn peer_uid(_socket: std::os::fd::BorrowedFd<'_>) -> io::Result<u32> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mode 0600 or 0700 on something another user owns keeps it private to
    /// them, not to us.
    #[test]
    fn what_someone_else_owns_is_not_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("theirs");
        create_new_private(&path).expect("create");
        assert!(is_private(&path).expect("is_private"));
        if effective_uid() == 0 {
            // As root, give it away (to "nobody").
            std::os::unix::fs::chown(&path, Some(65534), None).expect("chown");
            assert!(!is_private(&path).expect("is_private"));
        } else {
            // Otherwise, root's home: 0700 on every common system, not ours.
            let root_home = Path::new("/root");
            let metadata = std::fs::metadata(root_home).expect("/root");
            assert_eq!(
                metadata.mode() & GROUP_AND_OTHER_BITS,
                0,
                "/root is not 0700 here"
            );
            assert!(!is_private(root_home).expect("is_private"));
        }
    }

    #[test]
    fn the_peer_of_a_socket_made_here_is_this_user() {
        use std::os::fd::AsFd;
        let (one, _other) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(peer_uid(one.as_fd()).unwrap(), effective_uid());
    }
}

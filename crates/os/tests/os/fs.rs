//! Private files and directories, on every OS.

use std::io::{self, Read, Seek, Write};
use std::path::Path;

use polykey_os::fs::{
    create_new_private, create_private_dir, create_private_dir_all, is_private, restrict,
};

/// A file anyone may read: the usual mode on Unix; on Windows, whatever
/// a plain std file inherits from the temporary directory.
fn plain_file(path: &Path) {
    std::fs::write(path, b"plain").expect("write plain file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// A symlink at `link` to `target`, or None (with a line saying why) where
/// none can be made: Windows without Developer Mode refuses this user, and
/// Wine 8's CreateSymbolicLinkW reports success but creates nothing.
fn symlink(target: &Path, link: &Path) -> Option<()> {
    #[cfg(unix)]
    let made = std::os::unix::fs::symlink(target, link);
    #[cfg(windows)]
    let made = std::os::windows::fs::symlink_file(target, link);
    match made {
        Ok(()) if std::fs::symlink_metadata(link).is_ok() => Some(()),
        Ok(()) => {
            eprintln!("skipped: the OS reported a symlink made but there is none (Wine)");
            None
        }
        // ERROR_PRIVILEGE_NOT_HELD: this user may not create symlinks, so no
        // one can plant one for us to follow either.
        #[cfg(windows)]
        Err(e) if e.raw_os_error() == Some(1314) => {
            eprintln!("skipped: this user may not create symlinks ({e})");
            None
        }
        Err(e) => panic!("symlink: {e}"),
    }
}

/// Assert that `path` is private, except under Wine, which stores no DACL
/// for files and answers with one made up from the Unix mode (never
/// protected, always granting LocalSystem): there the call must still
/// answer, and the unit tests check the made-up DACL instead.
fn assert_private(path: &Path) {
    let private = is_private(path).expect("is_private");
    #[cfg(windows)]
    if let Some(wine) = polykey_os::wine::version() {
        eprintln!(
            "not checked under Wine {wine}: is_private({}) = {private}",
            path.display()
        );
        return;
    }
    assert!(private, "{} is not private", path.display());
}

#[test]
fn create_new_private_makes_a_private_read_write_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secret");
    let mut file = create_new_private(&path).expect("create");
    file.write_all(b"hunter2").expect("write");
    file.rewind().expect("rewind");
    let mut read = String::new();
    file.read_to_string(&mut read).expect("read");
    assert_eq!(read, "hunter2");
    assert_private(&path);
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn create_new_private_refuses_an_existing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("existing");
    plain_file(&path);
    let e = create_new_private(&path).expect_err("must refuse");
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains("existing"), "names the path: {e}");
    assert_eq!(std::fs::read(&path).expect("read"), b"plain");
}

#[test]
fn create_new_private_refuses_a_symlink_and_never_follows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A dangling link: following it would create the target.
    let missing = dir.path().join("missing-target");
    let dangling = dir.path().join("dangling");
    if symlink(&missing, &dangling).is_none() {
        return;
    }
    let e = create_new_private(&dangling).expect_err("must refuse a dangling link");
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
    assert!(!missing.exists(), "the link was followed");

    // A link to an existing file: that file is left alone.
    let target = dir.path().join("target");
    plain_file(&target);
    let link = dir.path().join("link");
    symlink(&target, &link).expect("second symlink");
    let e = create_new_private(&link).expect_err("must refuse a link");
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
    assert_eq!(std::fs::read(&target).expect("read"), b"plain");
}

#[test]
fn create_private_dir_is_private_and_refuses_an_existing_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("private");
    create_private_dir(&path).expect("create");
    assert!(path.is_dir());
    assert_private(&path);
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o700);
    let e = create_private_dir(&path).expect_err("must refuse");
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
    // A file made inside can be private too.
    create_new_private(&path.join("inner")).expect("file inside");
}

#[test]
fn create_private_dir_all_makes_what_it_creates_private_and_leaves_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let existing = dir.path().join("existing");
    std::fs::create_dir(&existing).expect("mkdir");
    let existing_was_private = is_private(&existing).expect("is_private");
    let deepest = existing.join("a").join("b").join("c");
    create_private_dir_all(&deepest).expect("create all");
    for created in [
        existing.join("a"),
        existing.join("a").join("b"),
        deepest.clone(),
    ] {
        assert!(created.is_dir(), "{}", created.display());
        assert_private(&created);
    }
    assert_eq!(
        is_private(&existing).expect("is_private"),
        existing_was_private
    );
    // Existing all the way down is fine.
    create_private_dir_all(&deepest).expect("again");
    // A file in the way is not.
    let file = dir.path().join("file");
    plain_file(&file);
    create_private_dir_all(&file.join("below")).expect_err("a file is in the way");
}

#[test]
fn restrict_makes_a_readable_file_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config");
    plain_file(&path);
    assert!(
        !is_private(&path).expect("is_private"),
        "a plain file is not private"
    );
    restrict(&path).expect("restrict");
    assert_private(&path);
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        std::fs::read(&path).expect("still readable by us"),
        b"plain"
    );
}

#[test]
fn restrict_makes_a_directory_private_and_enterable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data");
    std::fs::create_dir(&path).expect("mkdir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(!is_private(&path).expect("is_private"));
    }
    restrict(&path).expect("restrict");
    assert_private(&path);
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o700);
    create_new_private(&path.join("inside")).expect("still usable");
}

#[test]
fn a_missing_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nowhere");
    let e = is_private(&path).expect_err("missing");
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("nowhere"), "{e}");
    let e = restrict(&path).expect_err("missing");
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    let e = create_new_private(&path.join("below")).expect_err("no parent");
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
}

/// A FIFO (with no writer, whose plain open waits for ever) and a folder
/// are refused at once by what is opened; a regular file reads.
#[cfg(unix)]
#[test]
fn only_a_regular_file_is_opened_and_a_fifo_never_waits() {
    use polykey_os::fs::open_regular;
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || {
        let _ = tx.send(open_regular(&path).map(drop).map_err(|e| e.kind()));
    });
    let opened = rx.recv_timeout(std::time::Duration::from_secs(10));
    // (A hung open is ended by a writer, so the thread goes too.)
    if opened.is_err() {
        drop(std::fs::OpenOptions::new().write(true).open(&fifo));
    }
    assert_eq!(opened, Ok(Err(io::ErrorKind::InvalidInput)));
    assert_eq!(
        open_regular(dir.path()).map(drop).map_err(|e| e.kind()),
        Err(io::ErrorKind::InvalidInput)
    );
    let file = dir.path().join("export.csv");
    std::fs::write(&file, b"name,password\n").expect("write");
    let mut read = String::new();
    let mut opened = open_regular(&file).expect("open");
    // Opened without waiting, then reading as any file does (a FUSE or
    // network file system's read could fail as "would block").
    use std::os::unix::io::AsRawFd;
    #[allow(unsafe_code)]
    // SAFETY: F_GETFL on a descriptor `opened` owns; no memory passed.
    let flags = unsafe { libc::fcntl(opened.as_raw_fd(), libc::F_GETFL) };
    assert_eq!(flags & libc::O_NONBLOCK, 0);
    opened.read_to_string(&mut read).expect("read");
    assert_eq!(read, "name,password\n");
}

//! `secrets edit`: the secret goes to the user's editor through a file that
//! lives only in memory and never outlives the command.
//!
//! - The file is made in a memory-backed directory (`$XDG_RUNTIME_DIR` when
//!   it is a tmpfs, else `/dev/shm`); a disk directory only with
//!   `--allow-disk-tempfile`, since a file on disk can outlive its removal.
//! - It sits in `<base>/polykey-edit-<uid>/edit-<pid>-<random>/`, every
//!   directory 0700 and the file 0600 from creation.
//! - SIGHUP (a closed terminal), SIGTERM and SIGINT while the editor runs
//!   remove it before the command ends; the handlers are in place before the
//!   file exists.
//! - What a crash (SIGKILL, power loss of a disk directory) leaves behind is
//!   removed by the next `secrets edit`: every `edit-<pid>-…` whose process
//!   is gone.
//! - The editor keeps no copy of its own: vi, vim and neovim are started
//!   with no swap file, no viminfo/shada (which would keep deleted text in
//!   `~/.viminfo` on disk), no backup and no undo file ([`VIM_FLAGS`]).

use std::path::{Path, PathBuf};

use tokio::signal::unix::{signal, SignalKind};
use zeroize::Zeroizing;

use crate::editor::wait_for_editor;
use crate::output::{io_failure, Failure, EX_SOFTWARE, EX_USAGE};
use crate::session::write_private;

/// Name of the private directory (per user) in the memory-backed base.
pub const EDIT_DIR_PREFIX: &str = "polykey-edit-";
/// Prefix of one run's directory inside it: `edit-<pid>-<random>`.
pub const RUN_DIR_PREFIX: &str = "edit-";
/// Where memory-backed temporary files go when `$XDG_RUNTIME_DIR` does not
/// qualify.
const SHM_DIR: &str = "/dev/shm";
/// Editors of the vi family, by program name (before any `.`: Debian's
/// `vim.basic`, `vim.gtk3`, `vim.nox`), and the flags that keep them from
/// writing the text anywhere but the file: `-n` no swap file, `-i NONE`
/// no viminfo (vim) or shada (neovim), no backup or undo file, and no
/// modelines (a writer of a shared vault chose the text: vim has run
/// code from a modeline before, CVE-2019-12735), turned off again as the
/// file is read, after the user's vimrc (which may turn them on, as
/// `set nocompatible` does; a vimrc clearing every group's autocommands
/// with a bare `autocmd!` turns them on again).
const VIM_FAMILY: &[&str] = &[
    "vi", "vim", "nvim", "gvim", "view", "vimx", "mvim", "rvim", "rview", "gview", "evim",
];
/// See [`VIM_FAMILY`].
const VIM_FLAGS: &str = "-n -i NONE --cmd 'set nobackup nowritebackup noundofile nomodeline' \
     --cmd 'augroup polykey_no_modeline | autocmd BufReadPre * setlocal nomodeline | augroup END'";

/// The shell command that runs `editor` on the file given as `$1`: `exec`,
/// so the editor is this process's own child and a signal can end it (not
/// only a shell around it); a vi-family editor gets [`VIM_FLAGS`] right
/// after its program name, before any arguments of the user's own.
fn editor_command(editor: &str) -> String {
    let editor = editor.trim();
    let (program, rest) = editor
        .split_once(char::is_whitespace)
        .unwrap_or((editor, ""));
    if vi_family(program) {
        format!("exec {program} {VIM_FLAGS} {rest} \"$1\"")
    } else {
        format!("exec {editor} \"$1\"")
    }
}

/// Whether `program` is a vi-family editor: by its name, or by the name of
/// what it is a link to (`editor`, Debian's alternative, is a link to
/// `vim.basic`: named so, vim ran without the flags and kept what was
/// yanked from the secret in ~/.viminfo).
fn vi_family(program: &str) -> bool {
    let stem = |path: &Path| {
        path.file_name()
            .and_then(|name| name.to_str())
            .map(|name| name.split('.').next().unwrap_or(name).to_owned())
    };
    let known = |path: &Path| stem(path).is_some_and(|name| VIM_FAMILY.contains(&name.as_str()));
    let resolved = resolve(program);
    // A `vi` that is BusyBox's or nvi takes none of vim's flags (it failed).
    if resolved
        .as_deref()
        .and_then(stem)
        .is_some_and(|name| matches!(name.as_str(), "busybox" | "nvi" | "elvis"))
    {
        return false;
    }
    known(Path::new(program)) || resolved.as_deref().is_some_and(known)
}

/// The file `program` runs: found through `PATH` unless it names a path,
/// with every link followed.
fn resolve(program: &str) -> Option<PathBuf> {
    let found = if program.contains('/') {
        Some(PathBuf::from(program))
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .find(|path| path.is_file())
        })
    };
    found.and_then(|path| std::fs::canonicalize(path).ok())
}

/// File systems whose files exist only in memory.
const MEMORY_FILE_SYSTEMS: &[&str] = &["tmpfs", "ramfs"];

/// Let the user edit `value` in their editor; see the module documentation
/// for where the file lives and how it is removed.
pub async fn edit_in_editor(
    value: &[u8],
    path: &str,
    allow_disk: bool,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let base = base_dir(allow_disk)?;
    let private = private_dir(&base)?;
    remove_leftovers(&private);
    // Watch for the signals before the file exists, so no signal finds it
    // unguarded.
    let signal_failure = |e| io_failure("watch for signals", e);
    let mut hangup = signal(SignalKind::hangup()).map_err(signal_failure)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_failure)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_failure)?;

    let mut builder = tempfile::Builder::new();
    let prefix = format!("{RUN_DIR_PREFIX}{}-", std::process::id());
    builder.prefix(&prefix);
    {
        use std::os::unix::fs::PermissionsExt;
        // Created with this mode: there is no moment others could enter.
        builder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    let dir = builder
        .tempdir_in(&private)
        .map_err(|e| io_failure("make a private directory", e))?;
    let name = path.rsplit('/').next().unwrap_or("secret");
    let file = dir
        .path()
        .join(if name.is_empty() { "secret" } else { name });
    write_private(&file, value)?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(editor_command(&editor))
        .arg("polykey-edit")
        .arg(&file)
        .spawn()
        .map_err(|e| io_failure("run the editor", e))?;
    let interrupted = async {
        tokio::select! {
            _ = hangup.recv() => ("SIGHUP", 128 + 1),
            _ = terminate.recv() => ("SIGTERM", 128 + 15),
            _ = interrupt.recv() => ("SIGINT", 128 + 2),
        }
    };
    wait_for_editor(child, dir, &file, interrupted).await
}

/// The memory-backed directory for the file, or a disk one if allowed.
fn base_dir(allow_disk: bool) -> Result<PathBuf, Failure> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    choose_base(
        runtime.into_iter().chain([PathBuf::from(SHM_DIR)]),
        |dir| dir.is_dir() && is_memory_backed(dir),
        allow_disk,
        std::env::temp_dir(),
    )
}

/// The first of `candidates` that is a memory-backed directory, else the
/// disk directory `disk` if allowed, else the error that says how to allow it.
fn choose_base(
    candidates: impl IntoIterator<Item = PathBuf>,
    memory_backed: impl Fn(&Path) -> bool,
    allow_disk: bool,
    disk: PathBuf,
) -> Result<PathBuf, Failure> {
    if let Some(found) = candidates.into_iter().find(|dir| memory_backed(dir)) {
        return Ok(found);
    }
    if allow_disk {
        return Ok(disk);
    }
    Err(Failure {
        code: EX_USAGE,
        kind: "no_memory_tempdir".into(),
        message: format!(
            "no memory-backed directory for the temporary file ($XDG_RUNTIME_DIR on tmpfs or \
             {SHM_DIR}); pass --allow-disk-tempfile to use {} on disk, where the secret may \
             survive its removal",
            disk.display()
        ),
    })
}

/// Whether `path` is on a file system that lives in memory, from the mount
/// table (`/proc/self/mountinfo`; elsewhere: unknown, so no).
fn is_memory_backed(path: &Path) -> bool {
    let Ok(path) = path.canonicalize() else {
        return false;
    };
    std::fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|mounts| memory_backed_in(&mounts, &path))
}

/// Whether the mount table `mountinfo` puts the canonical `path` on a
/// memory file system. The mount whose point is the longest prefix of the
/// path decides; of mounts on the same point the last (on top) does.
fn memory_backed_in(mountinfo: &str, path: &Path) -> bool {
    let mut best: Option<(usize, bool)> = None;
    for line in mountinfo.lines() {
        let Some(point) = line.split(' ').nth(4) else {
            continue;
        };
        let Some(fs_type) = line.split(" - ").nth(1).and_then(|s| s.split(' ').next()) else {
            continue;
        };
        let point = PathBuf::from(unescape_mount_point(point));
        if !path.starts_with(&point) {
            continue;
        }
        let depth = point.components().count();
        if best.is_none_or(|(d, _)| depth >= d) {
            best = Some((depth, MEMORY_FILE_SYSTEMS.contains(&fs_type)));
        }
    }
    best.is_some_and(|(_, memory)| memory)
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_point(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(&[b'\\', a, b, c]) = bytes.get(i..i + 4) {
            if [a, b, c].iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value =
                    u32::from(a - b'0') * 64 + u32::from(b - b'0') * 8 + u32::from(c - b'0');
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `<base>/polykey-edit-<uid>`: made 0700 if missing, and refused unless it
/// is a real directory of ours that nobody else can enter.
fn private_dir(base: &Path) -> Result<PathBuf, Failure> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    // The process's effective user (what owns what it makes; read from
    // `/proc/self` before, so never checked where there is none: macOS).
    let uid = polykey_os::fs::own_uid();
    let private = base.join(format!("{EDIT_DIR_PREFIX}{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&private) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_failure("make a private directory", e)),
    }
    let meta = std::fs::symlink_metadata(&private)
        .map_err(|e| io_failure("check the private directory", e))?;
    let ours = meta.uid() == uid;
    if !meta.is_dir() || !ours || meta.permissions().mode() & 0o077 != 0 {
        return Err(Failure {
            code: EX_SOFTWARE,
            kind: "unsafe_tempdir".into(),
            message: format!(
                "{} is not a private directory of yours; remove it and try again",
                private.display()
            ),
        });
    }
    Ok(private)
}

/// Remove what earlier runs left: every `edit-<pid>-…` whose process is no
/// longer running (or carries this process's id, so is not ours). Without
/// `/proc` nothing can be told apart, so nothing is removed.
fn remove_leftovers(private: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(private) else {
        return;
    };
    let own = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(RUN_DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own || !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn vi_family_editors_get_flags_that_keep_no_copy_and_others_run_as_given() {
        assert_eq!(
            editor_command("vim -c wq"),
            format!("exec vim {VIM_FLAGS} -c wq \"$1\"")
        );
        assert_eq!(
            editor_command("/usr/bin/nvim"),
            format!("exec /usr/bin/nvim {VIM_FLAGS}  \"$1\"")
        );
        assert_eq!(editor_command("nano"), "exec nano \"$1\"");
        assert_eq!(editor_command("code --wait"), "exec code --wait \"$1\"");
        // By the name of what it links to: Debian's `editor`.
        let dir = tempfile::tempdir().unwrap();
        let vim = dir.path().join("vim.gtk3");
        std::fs::write(&vim, "").unwrap();
        let editor = dir.path().join("editor");
        std::os::unix::fs::symlink(&vim, &editor).unwrap();
        let editor = editor.to_str().unwrap();
        assert_eq!(
            editor_command(editor),
            format!("exec {editor} {VIM_FLAGS}  \"$1\"")
        );
        assert!(vi_family("vim.basic") && vi_family("/usr/bin/vim.nox"));
        // BusyBox's vi takes none of vim's flags.
        let busybox = dir.path().join("busybox");
        std::fs::write(&busybox, "").unwrap();
        let vi = dir.path().join("vi");
        std::os::unix::fs::symlink(&busybox, &vi).unwrap();
        assert!(!vi_family(vi.to_str().unwrap()));
        assert!(!vi_family("nano") && !vi_family("vimeo-uploader"));
    }

    use super::*;

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount_point(r"/a\040b"), "/a b");
        assert_eq!(unescape_mount_point(r"/a\\"), r"/a\\");
        assert_eq!(unescape_mount_point("/plain"), "/plain");
    }

    const MOUNTS: &str = "\
22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw
24 22 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw
30 22 0:30 / /run/user/1000 rw,nosuid,nodev - tmpfs tmpfs rw,mode=700
31 22 8:1 / /home rw,relatime - ext4 /dev/sda1 rw
32 31 0:31 / /home/me/ram\\040disk rw - ramfs ramfs rw
33 30 8:2 / /run/user/1000/disk rw - ext4 /dev/sda2 rw
";

    #[test]
    fn a_disk_directory_is_used_only_when_allowed() {
        let runtime = PathBuf::from("/run/user/1000");
        let shm = PathBuf::from(SHM_DIR);
        let disk = PathBuf::from("/tmp");
        let candidates = || [runtime.clone(), shm.clone()];
        let only = |memory: &'static str| move |dir: &Path| dir == Path::new(memory);
        let chosen = choose_base(candidates(), only("/run/user/1000"), false, disk.clone());
        assert_eq!(chosen.ok(), Some(runtime.clone()));
        let chosen = choose_base(candidates(), only(SHM_DIR), false, disk.clone());
        assert_eq!(chosen.ok(), Some(shm.clone()));
        let refused = choose_base(candidates(), |_| false, false, disk.clone()).err();
        let refused = refused.map(|f| (f.code, f.kind, f.message));
        assert!(
            matches!(&refused, Some((EX_USAGE, kind, message))
                if kind == "no_memory_tempdir" && message.contains("--allow-disk-tempfile")),
            "{refused:?}"
        );
        let allowed = choose_base(candidates(), |_| false, true, disk.clone());
        assert_eq!(allowed.ok(), Some(disk));
    }

    #[test]
    fn memory_file_systems_are_told_from_disks() {
        let memory = |p: &str| memory_backed_in(MOUNTS, Path::new(p));
        assert!(memory("/dev/shm"));
        assert!(memory("/dev/shm/x/y"));
        assert!(memory("/run/user/1000"));
        assert!(memory("/home/me/ram disk/f"));
        assert!(!memory("/dev"));
        assert!(!memory("/tmp"));
        assert!(!memory("/home/me"));
        assert!(!memory("/run/user/1000/disk/f"));
        assert!(!memory("/dev/shmem"));
        assert!(!memory_backed_in("", Path::new("/dev/shm")));
    }
}

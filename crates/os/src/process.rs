//! The process itself: kept out of core dumps.
#![allow(unsafe_code)]

/// Keep this process's memory out of core dumps and away from other
/// processes of the same user that would read it as a debugger does. An
/// unlocked node holds its root key, the store's key and secrets in
/// memory; a crash (a library's, not only ours) would otherwise let
/// systemd-coredump or apport write all of it to disk, where it outlives
/// the lock and the process. On Linux: not dumpable (`PR_SET_DUMPABLE`,
/// which also refuses `ptrace` and `/proc/<pid>/mem` to the same user)
/// and a core size limit of 0, which the processes it starts inherit; on
/// macOS and other Unix systems the limit. Windows has no such limit (a
/// crash report asks the user first). Call first thing in `main`; returns
/// what could not be done, which the caller may ignore (the process works
/// as before).
pub fn keep_out_of_core_dumps() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit reads the struct passed by reference, which
        // lives across the call; RLIMIT_CORE is a documented resource.
        if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: prctl with PR_SET_DUMPABLE takes one integer argument
        // (the others are ignored) and touches no memory of ours.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_process_kept_out_of_core_dumps_writes_none() {
        keep_out_of_core_dumps().unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: getrlimit writes the struct passed by mutable reference.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) }, 0);
        assert_eq!((limit.rlim_cur, limit.rlim_max), (0, 0));
        // SAFETY: PR_GET_DUMPABLE takes no argument and returns a flag.
        #[cfg(target_os = "linux")]
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }, 0);
    }
}

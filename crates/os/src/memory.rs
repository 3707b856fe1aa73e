//! Memory the allocator holds but does not use.
#![allow(unsafe_code)]

/// Hand the memory the allocator keeps free back to the system. glibc's
/// malloc keeps what a program frees in its arenas for reuse, so a burst
/// (a list of 10,000 entries serialized for the window, then freed) stays
/// resident long after; this returns it. On other systems, and other C
/// libraries, nothing is done.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and only walks the allocator's
    // own free lists under its locks; it is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Keep glibc's malloc to at most `arenas` arenas (it makes up to eight
/// per core, one per thread under contention, each holding its own free
/// memory). Call first thing in `main`. Elsewhere nothing.
pub fn limit_arenas(arenas: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two integers and changes a tunable of the
    // allocator under its lock; M_ARENA_MAX is a documented parameter.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

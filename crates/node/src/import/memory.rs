//! What a key derivation a file asks for (KeePass's or Bitwarden's
//! Argon2) may take of this device's memory. Argon2 takes all its memory
//! at once: past what the device has free it is not refused by the
//! allocator (Linux promises memory it lacks) but killed while it fills
//! it, and the app with it.

use std::sync::{Mutex, MutexGuard};

use super::ImportError;

/// One key derivation at a time in this process: each may take half the
/// memory free, so two at once (the desktop's preview and import) could
/// take all of it. Another process (the CLI beside the desktop) is not
/// held back; it measures what is free when it starts.
pub(super) fn one_at_a_time() -> MutexGuard<'static, ()> {
    static DERIVING: Mutex<()> = Mutex::new(());
    DERIVING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Refuse a derivation of `memory` bytes past half of what is available,
/// saying how much each is and what to `lower` in the program it came
/// from; where nothing says what is free, it is tried.
pub(super) fn check(memory: u64, what: &str, lower: &str) -> Result<(), ImportError> {
    fits(memory, available(), what, lower)
}

fn fits(memory: u64, available: Option<u64>, what: &str, lower: &str) -> Result<(), ImportError> {
    match available {
        Some(free) if memory > free / 2 => Err(ImportError::Unrecognised(format!(
            "{what}'s key derivation needs {} MiB of memory and this device has {} MiB free; \
             close other programs and try again, or {lower}",
            memory / (1024 * 1024),
            free / (1024 * 1024)
        ))),
        _ => Ok(()),
    }
}

/// What this device can give a derivation now: Linux's estimate of memory
/// available without swapping (`MemAvailable`), or less if this process's
/// control group (a container, a systemd unit) has less room left under
/// its limit, where they say.
fn available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let free = mem_available(&meminfo)?;
    let groups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let room = cgroup_files(&groups, |p| std::path::Path::new(p).exists()).and_then(|files| {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        cgroup_room(
            &read(&files.limit)?,
            &read(&files.usage)?,
            &read(&files.stat).unwrap_or_default(),
            files.reclaimable,
        )
    });
    Some(room.map_or(free, |room| room.min(free)))
}

fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Where a control group keeps its memory limit, usage and statistics,
/// and the statistic naming the page cache it can give back.
#[derive(Debug, PartialEq, Eq)]
struct CgroupFiles {
    limit: String,
    usage: String,
    stat: String,
    reclaimable: &'static str,
}

/// This process's control group's memory files, from `/proc/self/cgroup`:
/// v1's memory controller, or v2's `memory.max`. In a container without a
/// cgroup namespace the path named is the host's, and the group's own
/// files are at the mount's root (`exists` says which).
fn cgroup_files(groups: &str, exists: impl Fn(&str) -> bool) -> Option<CgroupFiles> {
    let v2 = exists("/sys/fs/cgroup/cgroup.controllers");
    for line in groups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if path.contains("..") {
            return None;
        }
        let path = path.trim_end_matches('/');
        let (root, limit, usage, reclaimable) = if controllers.split(',').any(|c| c == "memory") {
            (
                "/sys/fs/cgroup/memory",
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
                "total_inactive_file",
            )
        } else if controllers.is_empty() && v2 {
            (
                "/sys/fs/cgroup",
                "memory.max",
                "memory.current",
                "inactive_file",
            )
        } else {
            continue;
        };
        let mut dir = format!("{root}{path}");
        if !exists(&format!("{dir}/{limit}")) {
            dir = root.to_owned();
        }
        return Some(CgroupFiles {
            limit: format!("{dir}/{limit}"),
            usage: format!("{dir}/{usage}"),
            stat: format!("{dir}/memory.stat"),
            reclaimable,
        });
    }
    None
}

/// Room left under a control group's memory `limit` at its `usage`, less
/// the page cache it would give back (`reclaimable` in `stat`), all as
/// their files hold them; `None` for no limit (`max`, or v1's near-2⁶³).
fn cgroup_room(limit: &str, usage: &str, stat: &str, reclaimable: &str) -> Option<u64> {
    let limit: u64 = limit.trim().parse().ok()?;
    let usage: u64 = usage.trim().parse().ok()?;
    let cache: u64 = stat
        .lines()
        .find_map(|l| {
            l.strip_prefix(reclaimable)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    (limit < 1 << 60).then(|| limit.saturating_sub(usage.saturating_sub(cache)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1024 * 1024 * 1024;

    /// A derivation that would take more than half the memory this
    /// device has free is refused, saying how much each is, rather than
    /// started and killed (with the app) as it fills memory it was
    /// promised but never had.
    #[test]
    fn a_key_derivation_past_the_memory_free_is_refused_saying_so() {
        let meminfo = "MemTotal:       24000000 kB\nMemFree:          100000 kB\n\
                       MemAvailable:    1048576 kB\nBuffers:           1000 kB\n";
        let free = mem_available(meminfo);
        assert_eq!(free, Some(GIB));
        let refused = fits(GIB, free, "the database", "lower it")
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("the database's key derivation needs 1024 MiB of memory")
                && refused.contains("1024 MiB free")
                && refused.ends_with("or lower it"),
            "{refused}"
        );
        assert!(fits(GIB / 2, free, "", "").is_ok());
        assert!(fits(GIB, None, "", "").is_ok(), "where nothing says, tried");
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
        assert!(available().is_some_and(|m| m > 0), "read on Linux");
    }

    /// A container's or a unit's memory limit counts as well: there the
    /// process is killed at its control group's limit, whatever the
    /// machine has free. Its page cache is room (the kernel gives it back),
    /// and a container's own files are found without a cgroup namespace.
    #[test]
    fn a_control_groups_limit_less_its_page_cache_counts_as_memory_free() {
        let (two, one) = ((2 * GIB).to_string(), GIB.to_string());
        assert_eq!(cgroup_room(&two, &one, "", "inactive_file"), Some(GIB));
        let stat = format!("active_file 5\ninactive_file {}\n", GIB / 2);
        assert_eq!(
            cgroup_room(&two, &one, &stat, "inactive_file"),
            Some(GIB + GIB / 2)
        );
        assert_eq!(cgroup_room("max\n", "12345\n", "", "inactive_file"), None);
        assert_eq!(
            cgroup_room("9223372036854771712\n", "1\n", "", "total_inactive_file"),
            None
        );
        assert_eq!(cgroup_room(&one, &two, "", "inactive_file"), Some(0));
        let v1 = "12:pids:/\n4:memory:/docker/abc\n0::/\n";
        let files = cgroup_files(v1, |_| true).unwrap();
        assert_eq!(
            files.limit,
            "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes"
        );
        assert_eq!(files.reclaimable, "total_inactive_file");
        // The host's path does not exist in the container: its root does.
        let files = cgroup_files(v1, |p| !p.contains("docker")).unwrap();
        assert_eq!(files.usage, "/sys/fs/cgroup/memory/memory.usage_in_bytes");
        let files = cgroup_files("0::/user.slice/app\n", |_| true).unwrap();
        assert_eq!(files.limit, "/sys/fs/cgroup/user.slice/app/memory.max");
        assert_eq!(files.stat, "/sys/fs/cgroup/user.slice/app/memory.stat");
        assert_eq!(cgroup_files("4:memory:/../etc\n", |_| true), None);
        assert_eq!(cgroup_files("0::/\n", |_| false), None, "v1 without memory");
    }
}

//! How many threads a process may start on this machine, and which limit says so. Chapter 13's
//! C10K measurement asks the same before it starts a thread per connection.
//!
//! Every thread is a task of the kernel: it takes a process id, counts against the user's
//! `ulimit -u` and a control group's `pids.max`, and needs memory maps for its stack. Which
//! of these runs out first depends on the machine, so each is read and the smallest wins.

use anyhow::Result;
#[cfg(target_os = "linux")]
use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
#[cfg(target_os = "linux")]
use nix::unistd::getuid;

/// About how many more threads this process may start, and why no more.
pub struct ThreadLimit {
    pub threads: u64,
    /// The limit that decides it, as a reader would look it up.
    pub reason: String,
    /// Whether the limit is this process's own (its memory maps). The others are shared with
    /// every program of this user, control group or machine: a program that ran into one of
    /// them would leave the others no thread to start, so they keep `RESERVE` free.
    pub own: bool,
}

/// Threads a program here leaves free of a shared limit, for everything else.
pub const RESERVE: u64 = 1000;

// ANCHOR: limit
/// The tightest of the limits on starting threads, read now (Linux).
#[cfg(target_os = "linux")]
pub fn thread_limit() -> Result<ThreadLimit> {
    use std::fs;

    // Each thread maps its stack and a guard page below it, and std gives it a small
    // second stack, also guarded, for handling a stack overflow: four maps.
    let maps = sysctl("vm.max_map_count")?;
    let mapped = fs::read_to_string("/proc/self/maps")?.lines().count() as u64;
    let mut limit = ThreadLimit {
        threads: maps.saturating_sub(mapped) / 4,
        reason: format!(
            "vm.max_map_count {}, four maps a thread",
            grouped(maps)
        ),
        own: true,
    };
    // Its stack is 2 MiB of address space, which `ulimit -v` limits: the
    // process's own limit too.
    if let Some(free) = address_space_left()? {
        let threads = free / THREAD_SPACE;
        if threads < limit.threads {
            let reason = "ulimit -v, 2 MiB of stack a thread".to_string();
            limit = ThreadLimit {
                threads,
                reason,
                own: true,
            };
        }
    }
    let mut shared = |free: u64, reason: String| {
        let threads = free.saturating_sub(RESERVE);
        if threads < limit.threads {
            limit = ThreadLimit {
                threads,
                reason,
                own: false,
            };
        }
    };
    // Every thread on the machine, from the fourth field of /proc/loadavg ("2/345").
    let loadavg = fs::read_to_string("/proc/loadavg")?;
    let tasks: u64 = loadavg
        .split_whitespace()
        .nth(3)
        .and_then(|field| field.split_once('/')?.1.parse().ok())
        .unwrap_or(0);
    for name in ["kernel.threads-max", "kernel.pid_max"] {
        let most = sysctl(name)?;
        shared(
            most.saturating_sub(tasks),
            format!("{name} {}", grouped(most)),
        );
    }
    if let Some(most) = user_process_limit()? {
        let used = user_tasks();
        let reason =
            format!("ulimit -u {}, {} in use", grouped(most), grouped(used));
        shared(most.saturating_sub(used), reason);
    }
    if let Some((most, used)) = cgroup_pids()? {
        let reason = format!("the control group's pids.max {}", grouped(most));
        shared(most.saturating_sub(used), reason);
    }
    // Memory: where the kernel promises no more than it has, each stack is
    // committed; and a control group's memory.max holds each thread's
    // kernel stack and the pages its own stack touches.
    if let Some(free) = commit_left()? {
        let reason = "vm.overcommit_memory 2".to_string();
        shared(free / THREAD_SPACE, reason);
    }
    if let Some((most, used)) = cgroup_memory()? {
        let reason =
            format!("the control group's memory.max {} MiB", most >> 20);
        shared(most.saturating_sub(used) / THREAD_MEMORY, reason);
    }
    Ok(limit)
}
// ANCHOR_END: limit

/// The address space a thread takes: its 2 MiB stack, the guard page
/// below it, and the small signal stack with its own guard.
#[cfg(target_os = "linux")]
const THREAD_SPACE: u64 = (2 << 20) + (64 << 10);

/// The memory a thread holds, at least: its kernel stack (16 KiB), the
/// kernel's records of it, and the pages of its own stack it touches (about
/// 10 KiB, chapter 4 measured), with room to spare.
#[cfg(target_os = "linux")]
const THREAD_MEMORY: u64 = 64 << 10;

/// What `ulimit -v` (RLIMIT_AS) leaves of this process's address space, if
/// it is set.
#[cfg(target_os = "linux")]
fn address_space_left() -> Result<Option<u64>> {
    let (soft, _hard) = getrlimit(Resource::RLIMIT_AS)?;
    if soft == RLIM_INFINITY {
        return Ok(None);
    }
    let used = status_kib("VmSize:")? << 10;
    Ok(Some(soft.saturating_sub(used)))
}

/// What the kernel will still commit, where it commits no more than it has
/// (vm.overcommit_memory 2): CommitLimit less Committed_AS, in bytes.
#[cfg(target_os = "linux")]
fn commit_left() -> Result<Option<u64>> {
    if sysctl("vm.overcommit_memory")? != 2 {
        return Ok(None);
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let kib = |field: &str| -> Option<u64> {
        let line = meminfo.lines().find_map(|l| l.strip_prefix(field))?;
        line.trim().trim_end_matches(" kB").parse().ok()
    };
    let left = kib("CommitLimit:")
        .zip(kib("Committed_AS:"))
        .map(|(most, used)| most.saturating_sub(used) << 10);
    Ok(left)
}

/// A field of /proc/self/status, in KiB.
#[cfg(target_os = "linux")]
fn status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let value = status.lines().find_map(|line| line.strip_prefix(field));
    let kib = value.and_then(|v| v.trim().trim_end_matches(" kB").parse().ok());
    kib.ok_or_else(|| anyhow::anyhow!("no {field} in /proc/self/status"))
}

#[cfg(not(target_os = "linux"))]
pub fn thread_limit() -> Result<ThreadLimit> {
    anyhow::bail!(
        "this program needs Linux: it reads the limits on threads from /proc"
    )
}

#[cfg(target_os = "linux")]
fn sysctl(name: &str) -> Result<u64> {
    use anyhow::Context;
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    let text = std::fs::read_to_string(&path).with_context(|| path.clone())?;
    text.trim()
        .parse()
        .with_context(|| format!("{path}: {text:?}"))
}

/// The soft `ulimit -u` (RLIMIT_NPROC), where it applies. The kernel does
/// not apply it to root, nor to a process with CAP_SYS_RESOURCE or
/// CAP_SYS_ADMIN, as seen from the machine's first user namespace: root in
/// a rootless container is a user like any other.
#[cfg(target_os = "linux")]
fn user_process_limit() -> Result<Option<u64>> {
    let (soft, _hard) = getrlimit(Resource::RLIMIT_NPROC)?;
    if soft == RLIM_INFINITY {
        return Ok(None);
    }
    // The first user namespace maps every uid to itself.
    let uid_map =
        std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let first_namespace = uid_map.split_whitespace().collect::<Vec<_>>()
        == ["0", "0", "4294967295"];
    let status = std::fs::read_to_string("/proc/self/status")?;
    let capabilities = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_SYS_RESOURCE: u32 = 24;
    let capable =
        capabilities & (1 << CAP_SYS_ADMIN | 1 << CAP_SYS_RESOURCE) != 0;
    let exempt = first_namespace && (getuid().is_root() || capable);
    Ok((!exempt).then_some(soft))
}

/// Threads of every process of this user (its real uid), which `ulimit -u` counts.
#[cfg(target_os = "linux")]
fn user_tasks() -> u64 {
    let me = getuid().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| {
            std::fs::read_to_string(entry.path().join("status")).ok()
        })
        .filter(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next())
                == Some(me.as_str())
        })
        .filter_map(|status| {
            let threads =
                status.lines().find_map(|l| l.strip_prefix("Threads:"))?;
            threads.trim().parse::<u64>().ok()
        })
        .sum()
}

/// The tightest `pids.max` of this process's control group and its
/// ancestors, with the tasks that group holds now: a container's or a
/// service's limit.
#[cfg(target_os = "linux")]
fn cgroup_pids() -> Result<Option<(u64, u64)>> {
    cgroup_limit("pids", ["pids.max", "pids.current"])
}

/// The same for memory, in bytes: `memory.max` and `memory.current`.
#[cfg(target_os = "linux")]
fn cgroup_memory() -> Result<Option<(u64, u64)>> {
    let v2 = cgroup_limit("memory", ["memory.max", "memory.current"])?;
    match v2 {
        Some(found) => Ok(Some(found)),
        None => cgroup_limit(
            "memory",
            ["memory.limit_in_bytes", "memory.usage_in_bytes"],
        ),
    }
}

/// The tightest limit `files[0]` (with its use, `files[1]`) of this process's
/// control group and its ancestors, in cgroup v2 or in v1's `controller`;
/// `None` where none is set ("max").
#[cfg(target_os = "linux")]
fn cgroup_limit(
    controller: &str,
    files: [&str; 2],
) -> Result<Option<(u64, u64)>> {
    use std::path::Path;
    let cgroup =
        std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let v1 = format!(":{controller}:");
    let mut tightest: Option<(u64, u64)> = None;
    for line in cgroup.lines() {
        let (base, path) = match line.strip_prefix("0::") {
            Some(path) => ("/sys/fs/cgroup".to_string(), path),
            None => match line.split_once(&v1) {
                Some((_, path)) => {
                    (format!("/sys/fs/cgroup/{controller}"), path)
                }
                None => continue,
            },
        };
        let base = Path::new(&base);
        let mut dir = base.join(path.trim_start_matches('/'));
        loop {
            let read =
                |file: &str| std::fs::read_to_string(dir.join(file)).ok();
            if let (Some(most), Some(used)) = (read(files[0]), read(files[1]))
                && let (Ok(most), Ok(used)) =
                    (most.trim().parse::<u64>(), used.trim().parse::<u64>())
                && tightest.is_none_or(|(m, u)| {
                    most.saturating_sub(used) < m.saturating_sub(u)
                })
            {
                tightest = Some((most, used));
            }
            if !dir.pop() || !dir.starts_with(base) {
                break;
            }
        }
    }
    Ok(tightest)
}

/// 100000 as 100,000.
pub fn grouped(n: impl Into<u64>) -> String {
    let digits = n.into().to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

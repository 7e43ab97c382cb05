//! How many threads a process may start on this machine, and which limit says so. Chapter 12's
//! C10K measurement asks the same before it starts a thread per connection.
//!
//! Every thread is a task of the kernel: it takes a process id, counts against the user's
//! `ulimit -u` and a control group's `pids.max`, and needs memory maps for its stack. Which
//! of these runs out first depends on the machine, so each is read and the smallest wins.

use anyhow::Result;

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
    Ok(limit)
}
// ANCHOR_END: limit

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

/// The soft `ulimit -u` (RLIMIT_NPROC), where it applies: not when unlimited, and not for
/// a process with CAP_SYS_RESOURCE or CAP_SYS_ADMIN (root, usually), which the kernel
/// exempts.
#[cfg(target_os = "linux")]
fn user_process_limit() -> Result<Option<u64>> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        return Ok(None);
    }
    let status = std::fs::read_to_string("/proc/self/status")?;
    let capabilities = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_SYS_RESOURCE: u32 = 24;
    let exempt =
        capabilities & (1 << CAP_SYS_ADMIN | 1 << CAP_SYS_RESOURCE) != 0;
    Ok((!exempt).then_some(limit.rlim_cur))
}

/// Threads of every process of this user (its real uid), which `ulimit -u` counts.
#[cfg(target_os = "linux")]
fn user_tasks() -> u64 {
    // SAFETY: getuid cannot fail and touches no memory.
    let me = unsafe { libc::getuid() }.to_string();
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

/// The tightest `pids.max` of this process's control group and its ancestors, with the
/// tasks that group holds now: a container's or a service's limit (cgroup v2, or v1's pids
/// controller).
#[cfg(target_os = "linux")]
fn cgroup_pids() -> Result<Option<(u64, u64)>> {
    use std::path::Path;
    let cgroup =
        std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let found = cgroup.lines().find_map(|line| {
        let (base, path) = match line.strip_prefix("0::") {
            Some(path) => ("/sys/fs/cgroup", path),
            None => ("/sys/fs/cgroup/pids", line.split_once(":pids:")?.1),
        };
        Some((Path::new(base), path.trim_start_matches('/')))
    });
    let Some((base, path)) = found else {
        return Ok(None);
    };
    let mut dir = base.join(path);
    let mut tightest: Option<(u64, u64)> = None;
    loop {
        let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
        if let (Some(most), Some(used)) =
            (read("pids.max"), read("pids.current"))
            && let (Ok(most), Ok(used)) =
                (most.trim().parse::<u64>(), used.trim().parse())
            && tightest.is_none_or(|(m, u)| {
                most.saturating_sub(used) < m.saturating_sub(u)
            })
        {
            tightest = Some((most, used));
        }
        if !dir.pop() || !dir.starts_with(base) {
            return Ok(tightest);
        }
    }
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

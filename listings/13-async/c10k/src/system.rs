//! What C10K needs from the system (Linux): descriptors and ports (threads are
//! chapter 8's `io_bound::thread_limit`); and
//! what a process costs, read from `/proc`.

use std::fs;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::unistd::{SysconfVar, sysconf};

// ANCHOR: limit
/// Raises this process's soft limit on open files to the hard limit (its
/// children inherit it), or says why `need` cannot be had.
pub fn raise_file_limit(need: u64) -> Result<u64> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit")?;
    // Linux caps the hard limit at fs.nr_open, so it is never infinite here.
    #[allow(clippy::useless_conversion, reason = "rlim_t is i64 on FreeBSD")]
    let hard = u64::try_from(hard).unwrap_or(u64::MAX);
    if hard < need {
        bail!(
            "{need} open files are needed, and this machine's hard limit is \
             {hard}: only root raises it (ulimit -Hn, LimitNOFILE= for a \
             systemd service, docker run --ulimit nofile=...); or ask for \
             fewer connections"
        );
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard as _, hard as _)
        .context("setrlimit")?;
    Ok(hard)
}
// ANCHOR_END: limit

/// Every client connection needs a local port from the ephemeral range.
pub fn local_ports() -> Result<u64> {
    let path = "/proc/sys/net/ipv4/ip_local_port_range";
    let range = fs::read_to_string(path).context(path)?;
    let ends: Vec<u64> = range
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    match ends[..] {
        [low, high] => Ok(high + 1 - low),
        _ => bail!("{path}: {range:?}"),
    }
}

/// A figure of `/proc/<pid>/status`: `VmRSS` and `VmHWM` in KiB, `Threads`
/// as a count. `pid` may be `self`.
pub fn status(pid: &str, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| path.clone())?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}

/// User and system time of all a process's threads so far.
pub fn cpu_time(pid: &str) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| path.clone())?;
    // utime and stime are fields 14 and 15; count them after the command
    // name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = match stat.rsplit_once(')') {
        Some((_, rest)) => rest.split_whitespace().collect(),
        None => Vec::new(),
    };
    let tick = |i: usize| fields.get(i).and_then(|t| t.parse::<u64>().ok());
    let ticks = tick(11)
        .zip(tick(12))
        .map(|(user, system)| user + system)
        .with_context(|| format!("no utime and stime in {path}"))?;
    let per_second = sysconf(SysconfVar::CLK_TCK)
        .context("sysconf")?
        .context("no clock tick rate")?;
    Ok(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

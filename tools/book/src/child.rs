//! The programs the long commands start (Chromium printing, Cargo locking a crate, tar
//! packing), and the signals that stop them.
//!
//! A program that simply dies on Ctrl-C leaves behind what it started in a process group of
//! its own (Chromium's renderers) and the scratch folders it would have removed on its way
//! out. So the commands catch the signals, poll for them while they wait, and stop the way
//! they stop on an error: children killed and reaped, scratch folders removed.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Set once Ctrl-C (SIGINT), SIGTERM or SIGHUP has arrived.
#[derive(Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// From here on those signals no longer end the program at once: they set the flag
    /// this returns, for the long steps to poll.
    pub fn catch() -> io::Result<Interrupt> {
        let interrupt = Interrupt::default();
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            signal_hook::flag::register(signal, Arc::clone(&interrupt.0))?;
        }
        Ok(interrupt)
    }

    /// A flag no signal sets: for callers (the tests) that keep the signals' default.
    pub fn none() -> Interrupt {
        Interrupt::default()
    }

    pub fn is_set(&self) -> bool {
        // Only this flag is read through it: nothing else is published with it.
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs `command` in a process group of its own until it ends. If `limit` passes or
/// `interrupt` is set first, it kills the whole group (the program and whatever it started),
/// reaps the program, and fails. `what` names the program in the errors.
pub fn run(
    command: &mut Command,
    what: &str,
    limit: Duration,
    interrupt: &Interrupt,
) -> Result<ExitStatus> {
    let mut child = command
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    let started = Instant::now();
    // Short programs (Cargo locking one crate) end within milliseconds: poll often at first.
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        let timed_out = started.elapsed() > limit;
        if timed_out || interrupt.is_set() {
            // The group's id is the child's pid, not reused while the child is unwaited.
            // SAFETY: kill only sends a signal; a negative pid names a process group.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
            if timed_out {
                bail!("{what} did not finish within {} s", limit.as_secs());
            }
            bail!("interrupted");
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

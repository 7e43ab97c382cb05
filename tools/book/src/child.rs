//! The programs the long commands start (Chromium printing, Cargo locking a crate, tar
//! packing), and the signals that stop them.
//!
//! A program that simply dies on Ctrl-C leaves behind what it started in a process group of
//! its own (Chromium's renderers) and the scratch folders it would have removed on its way
//! out. So the commands catch the signals, poll for them while they wait, and stop the way
//! they stop on an error: children killed and reaped, scratch folders removed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use std::{env, fmt, fs, io};

use anyhow::{Context, Result, bail};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Set once Ctrl-C (SIGINT), SIGTERM or SIGHUP has arrived: which one, for the exit status.
#[derive(Clone, Default)]
pub struct Interrupt {
    caught: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
    /// Whether signals are caught at all ([`Interrupt::catch`]), or keep their default.
    catching: bool,
}

impl Interrupt {
    /// From here on those signals no longer end the program at once: the first sets the
    /// flag this returns, for the long steps to poll. A second one ends the program at once,
    /// as a reader who presses Ctrl-C again expects (a render cannot stop half-way).
    pub fn catch() -> io::Result<Interrupt> {
        let interrupt = Interrupt {
            catching: true,
            ..Interrupt::default()
        };
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            // Registered first, so it runs before the flag is set: the first signal finds
            // it unset and only sets it.
            signal_hook::flag::register_conditional_shutdown(
                signal,
                128 + signal,
                Arc::clone(&interrupt.caught),
            )?;
            signal_hook::flag::register(signal, Arc::clone(&interrupt.caught))?;
            signal_hook::flag::register_usize(
                signal,
                Arc::clone(&interrupt.signal),
                signal as usize,
            )?;
        }
        Ok(interrupt)
    }

    /// A flag no signal sets: for callers (the tests) that keep the signals' default.
    pub fn none() -> Interrupt {
        Interrupt::default()
    }

    pub fn is_set(&self) -> bool {
        // Only this flag is read through it: nothing else is published with it.
        self.caught.load(Ordering::Relaxed)
    }

    /// Fails with [`Interrupted`] once a signal has arrived.
    pub fn check(&self) -> Result<()> {
        if self.is_set() {
            return Err(Interrupted(self.signal.load(Ordering::Relaxed) as i32).into());
        }
        Ok(())
    }
}

/// The error a command stops with when a signal interrupted it: the program then exits with
/// 128 + the signal's number, as a shell reports a program the signal ended.
#[derive(Debug)]
pub struct Interrupted(pub i32);

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Runs `command` until it ends. If `limit` passes or `interrupt` is set first, it kills the
/// program and reaps it, and fails. `what` names the program in the errors.
///
/// Where `interrupt` catches the signals, the program gets a process group of its own, and
/// the kill ends the whole group (Chromium's renderers with it): Ctrl-C at the terminal
/// reaches only this program's group, which then stops the rest. Where the signals keep
/// their default (the tests), the program stays in its caller's group, so that Ctrl-C
/// reaches it as it reaches its caller.
pub fn run(
    command: &mut Command,
    what: &str,
    limit: Duration,
    interrupt: &Interrupt,
) -> Result<ExitStatus> {
    let own_group = interrupt.catching;
    if own_group {
        command.process_group(0);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    let started = Instant::now();
    // Short programs (Cargo locking one crate) end within milliseconds: poll often at first.
    let mut pause = Duration::from_millis(1);
    loop {
        let waited = child.try_wait();
        if let Ok(Some(status)) = waited {
            return Ok(status);
        }
        let timed_out = started.elapsed() > limit;
        if waited.is_err() || timed_out || interrupt.is_set() {
            if own_group {
                // The group's id is the child's pid, not reused while the child is unwaited.
                // SAFETY: kill only sends a signal; a negative pid names a process group.
                unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            }
            // The program itself too, should it have left its group.
            let _ = child.kill();
            let _ = child.wait();
            waited.with_context(|| format!("cannot wait for {what}"))?;
            interrupt.check()?;
            bail!("{what} did not finish within {} s", limit.as_secs());
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// [`run`], with what the program writes to stdout and stderr kept and returned. The output
/// goes to unnamed temporary files, not pipes: a program that writes more than a pipe holds
/// never stalls while this waits, and no thread has to read for it.
pub fn output(
    command: &mut Command,
    what: &str,
    limit: Duration,
    interrupt: &Interrupt,
) -> Result<Output> {
    let mut stdout = tempfile::tempfile()?;
    let mut stderr = tempfile::tempfile()?;
    command
        .stdin(Stdio::null())
        .stdout(stdout.try_clone()?)
        .stderr(stderr.try_clone()?);
    let status = run(command, what, limit, interrupt)?;
    let read_back = |file: &mut File| -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))?;
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    Ok(Output {
        status,
        stdout: read_back(&mut stdout)?,
        stderr: read_back(&mut stderr)?,
    })
}

/// `name` as a shell finds it: the first executable file of that name in a `PATH` folder.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| is_executable(file))
}

fn is_executable(file: &Path) -> bool {
    fs::metadata(file).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

//! S7.1-S7.6: what every listing of chapter 9 that creates files, sockets, FIFOs or a
//! semaphore does about Ctrl-C, SIGTERM and SIGHUP. Its parent catches all three, turns them
//! into an error at its next wait, so that every guard runs on the way out, and then ends by the
//! signal that stopped it, as it would have uncaught.

use std::fs::Permissions;
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, ChildStdout, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, LazyLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::{flag, low_level};
use tempfile::TempDir;

// ANCHOR: stop
/// The number of the signal that stopped the run, SIGINT (Ctrl-C), SIGTERM
/// or SIGHUP (the terminal closed); 0 until one comes.
static STOPPED_BY: LazyLock<Arc<AtomicUsize>> = LazyLock::new(Arc::default);

/// Left to their default action, SIGINT, SIGTERM and SIGHUP end the process
/// where it stands: no `Drop` runs, so no child is reaped and no file
/// removed. Caught, a signal only stores its number, for `stopped` to find.
pub fn catch_stop_signals() -> Result<()> {
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        flag::register_usize(signal, Arc::clone(&STOPPED_BY), signal as usize)?;
    }
    Ok(())
}

/// Fails once SIGINT, SIGTERM or SIGHUP has come. The parent calls it in each of
/// its waits, so that a stop unwinds like any error, through every guard.
pub fn stopped() -> Result<()> {
    match STOPPED_BY.load(Ordering::SeqCst) {
        0 => Ok(()),
        signal => bail!("stopped by signal {signal}"),
    }
}

/// Called once every guard has run: a run that a signal stopped ends by
/// that signal, as it would have uncaught (a shell sees 128 + its number).
pub fn end_if_stopped() {
    if let signal @ 1.. = STOPPED_BY.load(Ordering::SeqCst) {
        let _ = low_level::emulate_default_handler(signal as i32);
    }
}

/// A directory of this run's own, `PARENT/PROGRAM.XXXXXX`, removed with all
/// it holds when dropped: on a return, an error or a panic, and, once stop
/// signals are errors, on SIGINT, SIGTERM and SIGHUP; never on SIGKILL, another
/// signal left to its default action, or `process::exit`. The six random characters come from `tempfile`,
/// which creates the directory only if the name is free: nobody can guess
/// the name, or make it first and leave a trap in it. Mode 700: only this
/// user may enter it.
pub struct RunDir {
    dir: Option<TempDir>,
    program: &'static str,
}

impl RunDir {
    pub fn create(parent: &Path, program: &'static str) -> Result<RunDir> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{program}."))
            .rand_bytes(6)
            .permissions(Permissions::from_mode(0o700))
            .tempdir_in(parent)
            .with_context(|| {
                format!("cannot create a directory in {}", parent.display())
            })?;
        Ok(RunDir {
            dir: Some(dir),
            program,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until dropped").path()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let dir = self.dir.take().expect("present until dropped");
        let path = dir.path().display().to_string();
        // `close` removes it as dropping would, and says if it could not.
        if let Err(e) = dir.close() {
            eprintln!("{}: cannot remove {path}: {e}", self.program);
        }
    }
}
// ANCHOR_END: stop

/// A child's output, line by line, read on a thread of its own: a wait for
/// a line can then have a limit, and look for a stop signal meanwhile.
pub fn lines(stdout: ChildStdout) -> Receiver<io::Result<String>> {
    let (sender, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// How long a child may say nothing, and how long a wait with nothing to
/// show lasts before it looks for a stop signal.
const PATIENCE: Duration = Duration::from_secs(10);
const GLANCE: Duration = Duration::from_millis(50);

/// Copies a child's output lines to ours until one contains `until`, or to
/// the end; says whether it found one. It fails if the child says nothing
/// for 10 s, and looks for a stop signal every 50 ms meanwhile.
pub fn relay(
    from: &Receiver<io::Result<String>>,
    until: Option<&str>,
) -> Result<bool> {
    let mut silent = Duration::ZERO;
    loop {
        stopped()?;
        match from.recv_timeout(GLANCE) {
            Ok(line) => {
                let line = line.context("cannot read a child's output")?;
                println!("{line}");
                if until.is_some_and(|until| line.contains(until)) {
                    return Ok(true);
                }
                silent = Duration::ZERO;
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(false),
            Err(RecvTimeoutError::Timeout) => {
                silent += GLANCE;
                ensure!(silent < PATIENCE, "a child said nothing for 10 s");
            }
        }
    }
}

/// Waits for a child to exit, and returns how it ended. `wait` alone would
/// block for as long as the child runs, deaf to a stop signal: this polls
/// `try_wait` every 10 ms, looks for a stop signal between two polls, and
/// fails after 10 s (the caller's guard then kills the child and reaps it).
pub fn reap(child: &mut Child) -> Result<ExitStatus> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        stopped()?;
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        ensure!(Instant::now() < deadline, "a child did not exit in 10 s");
        thread::sleep(Duration::from_millis(10));
    }
}

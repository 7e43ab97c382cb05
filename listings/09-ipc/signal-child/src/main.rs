//! S7.7: the notes' message that one process sends through the kernel to
//! another: a signal. The parent sends SIGUSR1, SIGUSR2 and SIGTERM to a
//! child (this program, started again), which counts, reports, and shuts
//! down cleanly.

use std::env;
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::unistd::Pid;
use signal_hook::consts::{SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

/// Send signals to a child process and see what it gets.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// SIGUSR1 signals to send in each round.
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=100))]
    signals: u32,
}

#[derive(Subcommand)]
enum Role {
    /// Handle signals until SIGTERM.
    #[command(hide = true)]
    Child,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.role {
        Some(Role::Child) => child(),
        None => parent(args.signals),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signal-child: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: child
/// SIGUSR1s handled so far. A handler may only do async-signal-safe
/// things: an atomic add is one; a lock, an allocation or a println is not.
static USR1_HANDLED: AtomicUsize = AtomicUsize::new(0);

fn child() -> Result<()> {
    // SAFETY: the action only adds to an atomic: no lock, no allocation,
    // nothing that could be half-done in the code the signal interrupted.
    // It cannot panic (fetch_add wraps on overflow), and AtomicUsize is
    // lock-free, so the add itself takes no lock.
    unsafe {
        signal_hook::low_level::register(SIGUSR1, || {
            USR1_HANDLED.fetch_add(1, Ordering::SeqCst);
        })?;
    }
    // SIGUSR2 and SIGTERM are only noted by their handler; this thread
    // sees them here, in ordinary code, where it may do anything.
    let mut signals = Signals::new([SIGUSR2, SIGTERM])?;
    // Held back until the first SIGUSR2: SIGUSR1s sent meanwhile wait.
    let usr1 = SigSet::from(Signal::SIGUSR1);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&usr1), None)?;
    println!("child: ready, SIGUSR1 blocked");
    for signal in signals.forever() {
        if signal == SIGTERM {
            let total = USR1_HANDLED.load(Ordering::SeqCst);
            println!("child: SIGTERM: {total} SIGUSR1 handled; exiting");
            return Ok(());
        }
        // SIGUSR2: "report". Unblocking delivers what is pending at once.
        sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&usr1), None)?;
        let total = USR1_HANDLED.load(Ordering::SeqCst);
        println!("child: SIGUSR2: {total} SIGUSR1 handled so far");
    }
    bail!("the signal iterator closed")
}
// ANCHOR_END: child

/// The child, killed and waited for if dropped before it exits by itself.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

// ANCHOR: parent
fn parent(rounds: u32) -> Result<()> {
    let me = env::current_exe().context("cannot find this program")?;
    let mut child = Reaped(
        Command::new(me)
            .arg("child")
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the child")?,
    );
    let stdout = child.0.stdout.take().context("no stdout")?;
    let lines = relay(stdout);
    let pid = Pid::from_raw(child.0.id().try_into()?);
    let send = |signal| kill(pid, signal).context("cannot send a signal");
    // Never sleep and hope: the child says when its handlers are in place.
    expect(&lines, "child: ready")?;

    println!("parent: {rounds} SIGUSR1 while the child blocks them");
    for _ in 0..rounds {
        send(Signal::SIGUSR1)?;
    }
    send(Signal::SIGUSR2)?;
    expect(&lines, "child: SIGUSR2")?;

    println!("parent: {rounds} SIGUSR1, each followed by SIGUSR2");
    for _ in 0..rounds {
        send(Signal::SIGUSR1)?;
        send(Signal::SIGUSR2)?;
        expect(&lines, "child: SIGUSR2")?;
    }

    println!("parent: SIGTERM");
    send(Signal::SIGTERM)?;
    expect(&lines, "child: SIGTERM")?;
    let status = child.0.wait().context("cannot wait for the child")?;
    println!("parent: the child exited: {status}");
    ensure!(status.success(), "the child failed");
    Ok(())
}
// ANCHOR_END: parent

/// The child's output, line by line, read on a thread of its own so that
/// the parent can wait for a line with a timeout.
fn relay(stdout: ChildStdout) -> Receiver<std::io::Result<String>> {
    let (sender, lines) = mpsc::channel();
    thread::spawn(move || {
        let lines: Lines<_> = BufReader::new(stdout).lines();
        for line in lines {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Waits for the child's next line, prints it, and checks how it starts.
fn expect(
    lines: &Receiver<std::io::Result<String>>,
    start: &str,
) -> Result<()> {
    let line = match lines.recv_timeout(Duration::from_secs(10)) {
        Ok(line) => line.context("cannot read the child's output")?,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            bail!("the child said nothing for 10 s (expected {start:?})")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            bail!("the child ended (expected {start:?})")
        }
    };
    println!("{line}");
    ensure!(line.starts_with(start), "expected {start:?}, got {line:?}");
    Ok(())
}

//! S7.5: a named pipe (FIFO) between unrelated processes. The parent makes
//! a FIFO in a temporary directory of its own, shows that a non-blocking
//! open for writing fails while nobody reads, then starts a writer and a
//! reader as two separate children that know only the FIFO's path.

use std::env;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{self, Child, Command, ExitCode, Stdio};
use std::sync::mpsc::Receiver;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use ctrl_c_cleanup::{
    RunDir, catch_stop_signals, end_if_stopped, lines, reap, relay,
};
use nix::sys::stat::Mode;
use nix::unistd::mkfifo;

/// A FIFO between two processes that did not start each other.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// Where to make this run's own temporary directory.
    #[arg(long, default_value_os_t = env::temp_dir())]
    dir: PathBuf,
    /// Messages the writer sends.
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=100))]
    messages: u32,
}

#[derive(Subcommand)]
enum Role {
    /// Open the FIFO at PATH for writing and send messages.
    FifoWriter {
        path: PathBuf,
        #[arg(long, default_value_t = 3)]
        #[arg(value_parser = clap::value_parser!(u32).range(1..=100))]
        messages: u32,
    },
    /// Open the FIFO at PATH for reading and print what comes.
    FifoReader { path: PathBuf },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.role {
        Some(Role::FifoWriter { path, messages }) => writer(path, *messages),
        Some(Role::FifoReader { path }) => reader(path),
        None => catch_stop_signals().and_then(|()| run(&args)),
    };
    end_if_stopped();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("named-pipe: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: roles
fn writer(path: &Path, messages: u32) -> Result<()> {
    check_fifo(path)?;
    println!(
        "writer: pid {}, opening the FIFO; waits for a reader",
        process::id()
    );
    io::stdout().flush()?;
    let mut fifo = OpenOptions::new()
        .write(true)
        .open(path) // blocks until some process opens it for reading
        .with_context(|| format!("cannot open {}", path.display()))?;
    println!("writer: opened, so a reader has it open too");
    for n in 1..=messages {
        writeln!(fifo, "message {n} of {messages}")?;
    }
    println!("writer: sent {messages} messages; closing");
    Ok(()) // `fifo` is dropped: the reader sees end of file
}

fn reader(path: &Path) -> Result<()> {
    check_fifo(path)?;
    // Blocks until some process opens it for writing (here, one already is).
    let fifo = File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    println!("reader: pid {}, opened the FIFO", process::id());
    for line in BufReader::new(fifo).lines() {
        println!("reader: got {:?}", line?);
    }
    println!("reader: end of file: every writer has closed the FIFO");
    Ok(())
}
// ANCHOR_END: roles

/// A path that is missing, or not a FIFO, is refused before anything waits.
fn check_fifo(path: &Path) -> Result<()> {
    let meta = fs::metadata(path)
        .with_context(|| format!("cannot use {}", path.display()))?;
    if !meta.file_type().is_fifo() {
        bail!("{} is not a FIFO", path.display());
    }
    Ok(())
}

/// A child process that is killed (if still running) and waited for when
/// dropped, so that an error anywhere leaves no process behind.
struct Reaped(Child);

impl Reaped {
    fn start(me: &Path, args: &[&str]) -> Result<Reaped> {
        let child = Command::new(me)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start a child process")?;
        Ok(Reaped(child))
    }

    /// The child's output, line by line, read on a thread of its own: the
    /// parent's wait for a line can then have a limit, and look for a stop
    /// signal meanwhile.
    fn lines(&mut self) -> Receiver<io::Result<String>> {
        lines(self.0.stdout.take().expect("stdout is piped"))
    }

    /// Reaps the child (within 10 s) and checks how it ended.
    fn finish(mut self, role: &str) -> Result<()> {
        let status = reap(&mut self.0)?;
        if !status.success() {
            bail!("the {role} failed ({status})");
        }
        Ok(())
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

// ANCHOR: run
fn run(args: &Args) -> Result<()> {
    let me = env::current_exe().context("cannot find this program")?;
    let dir = RunDir::create(&args.dir, "named-pipe")?; // dropped last: after the children
    let path = dir.path().join("fifo");
    mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR)
        .with_context(|| format!("cannot make a FIFO at {}", path.display()))?;
    println!("made the FIFO {}", path.display());

    // Nobody has it open for reading: a non-blocking open for writing fails
    // at once with ENXIO, where a blocking one would wait.
    let nonblocking = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path);
    match nonblocking {
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            println!("open for writing, O_NONBLOCK, no reader: ENXIO ({e})");
        }
        other => bail!("expected ENXIO, got {other:?}"),
    }

    // Two children of this process, neither started by the other: all they
    // share is the FIFO's path.
    let fifo = path.to_str().context("the FIFO's path is not UTF-8")?;
    let messages = args.messages.to_string();
    let writer_args = ["fifo-writer", fifo, "--messages", &messages];
    let mut writer = Reaped::start(&me, &writer_args)?;
    let from_writer = writer.lines();
    if !relay(&from_writer, Some("waits for a reader"))? {
        bail!("the writer ended before it opened the FIFO");
    }
    let mut reader = Reaped::start(&me, &["fifo-reader", fifo])?;
    let from_reader = reader.lines();
    // Each relay waits for a line that the other side's progress implies:
    // the reader's open returns only once the writer's open does too.
    relay(&from_reader, Some("opened"))?;
    relay(&from_writer, None)?;
    writer.finish("writer")?;
    relay(&from_reader, None)?;
    reader.finish("reader")?;

    let shown = dir.path().display().to_string();
    drop(dir);
    println!("removed {shown}");
    Ok(())
}
// ANCHOR_END: run

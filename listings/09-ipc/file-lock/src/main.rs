//! S7.3: two processes passing data through one file. A writer process
//! appends records, each in two `write` calls; a reader process reads the
//! file while the last record is half-written. Without a lock it sees a torn
//! record; with an exclusive lock for the writer and a shared one for the
//! reader, the read waits until the record is whole.

use std::env;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{self, Child, Command, ExitCode, Stdio};
use std::sync::mpsc::Receiver;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use ctrl_c_cleanup::{
    RunDir, catch_stop_signals, end_if_stopped, lines, reap, relay,
};

/// A writer and a reader process on one file, with or without a lock.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// Who takes the advisory lock.
    #[arg(long, value_enum, default_value_t = Locking::None)]
    lock: Locking,
    /// Records the writer appends; the last one is read half-written.
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=100))]
    records: u32,
    /// Where to make this run's own temporary directory.
    #[arg(long, default_value_os_t = env::temp_dir())]
    dir: PathBuf,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Locking {
    /// Nobody locks.
    None,
    /// Only the writer locks: advisory locks do not stop the reader.
    Writer,
    /// The writer locks exclusively, the reader shared.
    Both,
}

#[derive(Subcommand)]
enum Role {
    /// Append records to the file (started by the parent).
    #[command(hide = true)]
    Writer {
        records: u32,
        path: PathBuf,
        #[arg(long)]
        lock: bool,
    },
    /// Read the file and say what it holds (started by the parent).
    #[command(hide = true)]
    Reader {
        path: PathBuf,
        #[arg(long)]
        lock: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.role {
        Some(Role::Writer {
            path,
            records,
            lock,
        }) => writer(path, *records, *lock),
        Some(Role::Reader { path, lock }) => reader(path, *lock),
        None => catch_stop_signals().and_then(|()| run(&args)),
    };
    end_if_stopped();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("file-lock: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: writer
/// Appends `records` lines, each in two writes. Halfway through the last
/// one it tells the parent (a line on stdout) and waits for a line on stdin.
fn writer(path: &Path, records: u32, lock: bool) -> Result<()> {
    let mut file = OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let how = if lock {
        "each under an exclusive lock"
    } else {
        "no lock"
    };
    println!(
        "writer: pid {}, {records} records in two writes, {how}",
        process::id()
    );
    for n in 1..=records {
        let record = format!("record {n} of {records}: complete\n");
        let (head, tail) = record.as_bytes().split_at(record.len() / 2);
        if lock {
            file.lock()?; // blocks while any other process holds a lock
        }
        file.write_all(head)?;
        if n == records {
            println!("writer: record {n} half-written; pausing");
            io::stdout().flush()?;
            let mut go = String::new();
            if io::stdin().read_line(&mut go)? == 0 {
                bail!("the parent went away");
            }
        }
        file.write_all(tail)?;
        if lock {
            file.unlock()?; // closing the file would release it too
        }
    }
    println!("writer: record {records} complete");
    Ok(())
}
// ANCHOR_END: writer

// ANCHOR: reader
/// Reads the whole file, under a shared lock if `lock`, and prints each
/// line, marking one that has no newline yet as torn.
fn reader(path: &Path, lock: bool) -> Result<()> {
    let mut file = File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let pid = process::id();
    if lock {
        // try_lock_shared first, only to show that the file is locked now.
        match file.try_lock_shared() {
            Ok(()) => println!("reader: pid {pid}, got a shared lock at once"),
            Err(TryLockError::WouldBlock) => {
                println!("reader: pid {pid}, the file is locked; waiting");
                io::stdout().flush()?;
                file.lock_shared()?; // blocks until the writer unlocks
                println!("reader: got a shared lock");
            }
            Err(TryLockError::Error(e)) => return Err(e.into()),
        }
    } else {
        println!("reader: pid {pid}, reading without a lock");
    }
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    for line in text.split_inclusive('\n') {
        let state = if line.ends_with('\n') {
            "whole"
        } else {
            "TORN "
        };
        println!("reader: {state} {line:?}");
    }
    Ok(())
}
// ANCHOR_END: reader

/// A child process that is killed (if still running) and waited for when
/// dropped, so that an error anywhere leaves no process behind.
struct Reaped(Child);

impl Reaped {
    fn start(me: &Path, args: &[&str], path: &Path) -> Result<Reaped> {
        let child = Command::new(me)
            .args(args)
            .arg(path)
            .stdin(Stdio::piped())
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
    let dir = RunDir::create(&args.dir, "file-lock")?; // dropped last: after the children
    let path = dir.path().join("records.txt");
    File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    println!("file: {}", path.display());

    let records = args.records.to_string();
    let mut writer_args = vec!["writer", &records];
    if args.lock != Locking::None {
        writer_args.push("--lock");
    }
    let mut writer = Reaped::start(&me, &writer_args, &path)?;
    let from_writer = writer.lines();
    if !relay(&from_writer, Some("half-written"))? {
        bail!("the writer ended before its last record");
    }
    // Only now does the reader start: it reads while a record is half done.
    let mut reader_args = vec!["reader"];
    if args.lock == Locking::Both {
        reader_args.push("--lock");
    }
    let mut reader = Reaped::start(&me, &reader_args, &path)?;
    let from_reader = reader.lines();
    // Until the reader has read, or waits for the lock, the writer waits.
    relay(&from_reader, Some("waiting"))?;
    let go = writer.0.stdin.as_mut().expect("stdin is piped");
    writeln!(go, "go").context("cannot tell the writer to go on")?;
    relay(&from_writer, None)?;
    writer.finish("writer")?;
    relay(&from_reader, None)?;
    reader.finish("reader")?;

    let text = fs::read_to_string(&path)?;
    let whole = text.split_inclusive('\n').filter(|l| l.ends_with('\n'));
    println!("the file at the end: {} whole records", whole.count());
    let shown = dir.path().display().to_string();
    drop(dir);
    println!("removed {shown}");
    Ok(())
}
// ANCHOR_END: run

//! S7.5: an anonymous pipe, parent to child and back. The parent starts
//! this program again as a child that upper-cases the lines on its stdin;
//! a thread writes the lines into the child while the main thread reads
//! the answers, and dropping the write end tells the child that input ended.

use std::env;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

/// Send lines through a child process and read them back.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// Lines to send: far more than a pipe holds, by default.
    #[arg(long, default_value_t = 100_000)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    lines: u32,
}

#[derive(Subcommand)]
enum Role {
    /// Upper-case stdin to stdout (started by the parent).
    #[command(hide = true)]
    Upper,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.role {
        Some(Role::Upper) => upper(),
        None => run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipe-child: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: upper
/// The child: a filter, like `tr a-z A-Z`. It ends at the end of its input.
fn upper() -> Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    for line in io::stdin().lock().lines() {
        writeln!(out, "{}", line?.to_uppercase())?;
    }
    out.flush()?;
    Ok(())
}
// ANCHOR_END: upper

/// A child process that is killed (if still running) and waited for when
/// dropped, so that an error anywhere leaves no process behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Bytes as KiB or MiB.
fn size(bytes: u64) -> String {
    let kib = bytes as f64 / 1024.0;
    if kib < 1024.0 {
        format!("{kib:.1} KiB")
    } else {
        format!("{:.1} MiB", kib / 1024.0)
    }
}

// ANCHOR: run
fn run(args: &Args) -> Result<()> {
    let me = env::current_exe().context("cannot find this program")?;
    let mut child = Reaped(
        Command::new(&me)
            .arg("upper")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the child")?,
    );
    println!("child: pid {}, upper-cases what it reads", child.0.id());
    let to_child = child.0.stdin.take().expect("stdin is piped");
    let from_child = child.0.stdout.take().expect("stdout is piped");

    // Writing everything first and reading after would hang: the child
    // blocks writing to a full pipe back, so it stops reading, and then
    // the parent blocks writing to a full pipe in. A thread writes instead.
    let lines = args.lines;
    let feeder = thread::spawn(move || -> io::Result<u64> {
        let mut sent = 0;
        let mut out = BufWriter::new(to_child);
        for n in 1..=lines {
            let line = format!("line {n} of {lines}\n");
            out.write_all(line.as_bytes())?;
            sent += line.len() as u64;
        }
        out.flush()?;
        Ok(sent)
        // `out` is dropped here: the pipe's write end closes, and the
        // child's next read returns end of file.
    });

    let (mut count, mut received) = (0, 0);
    let (mut first, mut last) = (String::new(), String::new());
    for line in BufReader::new(from_child).lines() {
        let line = line.context("cannot read from the child")?;
        count += 1;
        received += line.len() as u64 + 1;
        if count == 1 {
            first.clone_from(&line);
        }
        last = line;
    }
    let sent = match feeder.join() {
        Ok(sent) => sent.context("cannot write to the child")?,
        Err(_) => bail!("the writing thread panicked"),
    };
    let status = child.0.wait()?;
    if !status.success() {
        bail!("the child failed ({status})");
    }
    println!("sent {lines} lines, {}", size(sent));
    println!("got back {count} lines, {}", size(received));
    println!("first: {first:?}");
    println!("last: {last:?}");
    Ok(())
}
// ANCHOR_END: run

//! S3.5, S3.6: the notes' multiprocessing demo: 10 child processes, each this
//! same program started again with an argument, waited for in turn. Each
//! child changes a global variable; the parent's stays as it was.

use std::env;
use std::process::{self, Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

/// Start 10 child processes, each changing its own copy of a global.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
}

#[derive(Subcommand)]
enum Role {
    /// Be child number N (the parent starts this program so).
    #[command(hide = true)]
    Child { number: u32 },
}

/// The notes' global variable. Every process has its own copy.
static VISITS: AtomicU32 = AtomicU32::new(0);

fn main() -> ExitCode {
    let result = match Args::parse().role {
        None => parent(),
        Some(Role::Child { number }) => child(number),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("process-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: child
/// What the notes' `target` function does, in a process of its own.
fn child(number: u32) -> Result<()> {
    let visits = VISITS.fetch_add(1, Ordering::Relaxed) + 1;
    println!("child {number}: pid {}, VISITS = {visits}", process::id());
    Ok(())
}
// ANCHOR_END: child

// ANCHOR: parent
fn parent() -> Result<()> {
    // Python's multiprocessing forks; Rust starts a fresh copy of the
    // program instead, and tells it by an argument what to do.
    let me = env::current_exe().context("cannot find this program")?;
    let mut children: Vec<Child> = Vec::new();
    for number in 0..10 {
        let started = Command::new(&me)
            .args(["child", &number.to_string()])
            .stdout(Stdio::piped())
            .spawn();
        match started {
            Ok(child) => children.push(child),
            Err(e) => {
                // The ones already running are still waited for.
                for mut child in children {
                    let _ = child.wait();
                }
                return Err(e).context("cannot start a child process");
            }
        }
    }
    // Each child's output is read in the order they were started, so the
    // lines come out in that order whichever child ran first.
    // Every child is waited for, even after an error with another.
    let mut failed = 0;
    for child in children {
        match child.wait_with_output() {
            Ok(output) => {
                print!("{}", String::from_utf8_lossy(&output.stdout));
                failed += u32::from(!output.status.success());
            }
            Err(e) => {
                eprintln!("process-demo: cannot wait for a child: {e}");
                failed += 1;
            }
        }
    }
    let visits = VISITS.load(Ordering::Relaxed);
    println!("parent: pid {}, VISITS = {visits}", process::id());
    if failed > 0 {
        bail!("{failed} children failed");
    }
    Ok(())
}
// ANCHOR_END: parent

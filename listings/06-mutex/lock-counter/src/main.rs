//! S5.1: the notes' lock counter. Two threads each add 1 to one shared
//! counter 10,000,000 times, taking a Mutex for every addition; each reports
//! the value its last addition left, and the last one leaves the total.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{Result, anyhow};
use clap::Parser;

/// Two threads add to one counter under a Mutex.
#[derive(Parser)]
struct Args {
    /// How many times each thread adds 1.
    #[arg(long, default_value_t = 10_000_000)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    count: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lock-counter: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: task
/// The notes' `task1` and `task2` in one function: the name is an argument,
/// so neither can report itself under the other's name.
fn task(
    name: &'static str,
    count: u64,
    counter: &Mutex<u64>,
) -> (&'static str, u64) {
    let mut seen = 0;
    for _ in 0..count {
        // lock() is the note's acquire(); the guard's drop, at the end of
        // this block, is its release(). There is no release to forget.
        let mut value = counter.lock().expect("no task panics holding it");
        *value += 1;
        // Read under the same lock as the addition: no two tasks ever see
        // the same value, so the one that saw less finished first.
        seen = *value;
    }
    (name, seen)
}
// ANCHOR_END: task

// ANCHOR: run
fn run(args: Args) -> Result<()> {
    let counter = Arc::new(Mutex::new(0_u64));
    println!(
        "task1 and task2 each add 1 to one counter {} times, under a Mutex",
        args.count
    );
    let tasks = ["task1", "task2"].map(|name| {
        let counter = Arc::clone(&counter);
        thread::spawn(move || task(name, args.count, &counter))
    });
    let [a, b] = tasks
        .map(|handle| handle.join().map_err(|_| anyhow!("a task panicked")));
    let mut reports = [a?, b?];
    // The task whose last addition left the smaller value finished first:
    // print them in the order they finished.
    reports.sort_by_key(|&(_, seen)| seen);
    let [(first, seen_first), (last, seen_last)] = reports;
    println!("{first} finished first; the counter read {seen_first}");
    println!("{last} finished last; the counter read {seen_last}");

    // Both tasks have been joined, so nothing waits for this lock; the
    // guard is a temporary, dropped at the end of the statement.
    let total = *counter
        .lock()
        .map_err(|_| anyhow!("a task panicked holding the lock"))?;
    println!("total: {total} (2 x {})", args.count);
    Ok(())
}
// ANCHOR_END: run

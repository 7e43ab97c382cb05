//! S5.1: the notes' lock counter, measured. The same 2 x 10,000,000
//! increments three ways: under a Mutex, as atomic fetch_add, and counted
//! per thread and merged at the end; and, if python3 is there, the notes'
//! Python program (corrected) in the same run. Ratios against the fastest.

use std::hint::black_box;
use std::io::ErrorKind;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;

/// Time two threads adding to one counter, several ways.
#[derive(Parser)]
struct Args {
    /// How many times each thread adds 1.
    #[arg(long, default_value_t = 10_000_000)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    count: u64,
    /// The Python interpreter that runs the notes' program.
    #[arg(long, default_value = "python3")]
    python: String,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("counter-speed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: ways
/// Runs `add` on two threads that start together; returns what it took.
fn two_threads(add: impl Fn() + Sync) -> Duration {
    let start = Barrier::new(3);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                start.wait();
                add();
            });
        }
        start.wait();
        let started = Instant::now();
        // Leaving the scope joins both threads.
        started
    })
    .elapsed()
}

fn with_mutex(count: u64) -> (u64, Duration) {
    let counter = Mutex::new(0_u64);
    let took = two_threads(|| {
        for _ in 0..count {
            *counter.lock().expect("no thread panics holding it") += 1;
        }
    });
    (counter.into_inner().expect("no thread panicked"), took)
}

fn with_fetch_add(count: u64) -> (u64, Duration) {
    let counter = AtomicU64::new(0);
    let took = two_threads(|| {
        for _ in 0..count {
            counter.fetch_add(1, Relaxed);
        }
    });
    (counter.into_inner(), took)
}

/// Each thread counts in a local of its own and adds it to the total once.
fn per_thread(count: u64) -> (u64, Duration) {
    let total = AtomicU64::new(0);
    let took = two_threads(|| {
        let mut local = 0_u64;
        for _ in 0..count {
            // Opaque to the optimiser: without it, the loop folds into
            // `local = count`, and the figure would measure nothing.
            local = black_box(local) + 1;
        }
        total.fetch_add(local, Relaxed);
    });
    (total.into_inner(), took)
}
// ANCHOR_END: ways

// ANCHOR: python
/// The notes' program, with task1 printing its own name (the notes' copy
/// says "task2" in both), and the count from the command line.
const NOTES_PROGRAM: &str = r#"
import sys, threading

g_num = 0

def task1(num, m):
    global g_num
    for i in range(num):
        m.acquire()
        g_num += 1
        m.release()
    print(f"task1:{g_num}")

def task2(num, m):
    global g_num
    for i in range(num):
        m.acquire()
        g_num += 1
        m.release()
    print(f"task2:{g_num}")

count = int(sys.argv[1])
mutex = threading.Lock()
t1 = threading.Thread(target=task1, args=(count, mutex))
t2 = threading.Thread(target=task2, args=(count, mutex))
t1.start()
t2.start()
"#;

/// Runs the notes' program; its total is the larger number it prints (the
/// task that finishes last saw every increment). None: no interpreter.
fn with_python(python: &str, count: u64) -> Result<Option<(u64, Duration)>> {
    let started = Instant::now();
    let output = match Command::new(python)
        .args(["-c", NOTES_PROGRAM, &count.to_string()])
        .output()
    {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        result => result.with_context(|| format!("cannot run {python}"))?,
    };
    let took = started.elapsed();
    if !output.status.success() {
        bail!(
            "{python} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let printed = String::from_utf8_lossy(&output.stdout);
    let total = printed
        .lines()
        .filter_map(|line| line.split_once(':')?.1.trim().parse::<u64>().ok())
        .max()
        .ok_or_else(|| anyhow!("{python} printed no count: {printed:?}"))?;
    Ok(Some((total, took)))
}
// ANCHOR_END: python

// ANCHOR: run
fn run(args: Args) -> Result<()> {
    let count = args.count;
    // Best of three: a shared machine can stall any one run. Every run
    // must count the same, or its time would not be comparable.
    let best = |way: fn(u64) -> (u64, Duration)| {
        let runs = [way(count), way(count), way(count)];
        let total = runs[0].0;
        if runs.iter().any(|&(other, _)| other != total) {
            bail!("the runs counted different totals: {runs:?}");
        }
        let fastest = runs.iter().map(|&(_, took)| took).min();
        Ok((total, fastest.expect("three runs")))
    };
    let mut results = vec![
        ("per-thread counts, merged", best(per_thread)?),
        ("atomic fetch_add", best(with_fetch_add)?),
        ("Mutex", best(with_mutex)?),
    ];
    let python = with_python(&args.python, count)?;
    if let Some(measured) = python {
        results.push(("Python, the notes' program", measured));
    }
    let fastest = results.iter().map(|(_, (_, took))| *took).min();
    let fastest = fastest.expect("at least one way").as_secs_f64();

    println!(
        "2 threads x {count} increments (Rust: optimized, best of 3 runs)"
    );
    for (way, (total, took)) in &results {
        let ratio = took.as_secs_f64() / fastest;
        println!("  {way:<27} total {total}, {took:.2?}, {ratio:.1}x");
    }
    if python.is_none() {
        println!("  {} not found, skipped", args.python);
    }
    Ok(())
}
// ANCHOR_END: run

//! S5.1: the notes' lock counter, measured. The same 2 x 10,000,000
//! increments three ways: under a Mutex, as atomic fetch_add, and counted
//! per thread and merged at the end; and, if python3 is there, the notes'
//! Python program (corrected) in the same run, on two cores and on one.
//! Ratios of the time per increment, against the fastest.

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
    /// How many times each Python thread adds 1 (Python is far slower).
    #[arg(long, default_value_t = 500_000)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    python_count: u64,
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
/// Runs `add` on two threads that start together; returns the time from
/// the first one's start to the last one's end.
fn two_threads(add: impl Fn() + Sync) -> Duration {
    let start = Barrier::new(2);
    let spans: Vec<(Instant, Instant)> = thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let began = Instant::now();
                    add();
                    (began, Instant::now())
                })
            })
            .collect();
        // Each thread times itself: the main thread may be descheduled at
        // any moment, and a clock read there could miss most of the work.
        threads
            .into_iter()
            .map(|t| t.join().expect("an adding thread panicked"))
            .collect()
    });
    let began = spans.iter().map(|&(began, _)| began).min();
    let ended = spans.iter().map(|&(_, ended)| ended).max();
    ended.expect("two threads") - began.expect("two threads")
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
/// says "task2" in both), the count from the command line, and, when asked,
/// all its threads kept on one core.
const NOTES_PROGRAM: &str = r#"
import os, sys, threading

if sys.argv[2:] == ["one-core"]:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

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
fn with_python(
    python: &str,
    count: u64,
    cores: &str,
) -> Result<Option<(u64, Duration)>> {
    let started = Instant::now();
    let output = match Command::new(python)
        .args(["-c", NOTES_PROGRAM, &count.to_string(), cores])
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
    // Both tasks print at about the same time, and Python writes a line's
    // text and its newline separately: the two lines can come out mixed, as
    // "task1:1998708task2:2000000\n\n". So each count is read after its label.
    let total = printed
        .split("task")
        .filter_map(|part| part.split_once(':'))
        .filter_map(|(_, rest)| {
            let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
            digits.parse::<u64>().ok()
        })
        .max()
        .ok_or_else(|| anyhow!("{python} printed no count: {printed:?}"))?;
    Ok(Some((total, took)))
}
// ANCHOR_END: python

// ANCHOR: run
/// Best of three: a shared machine can stall any one run. Every run must
/// count the same, or its time would not be comparable. None: a run could
/// not start (there is no Python).
fn best_of_three(
    mut run: impl FnMut() -> Result<Option<(u64, Duration)>>,
) -> Result<Option<(u64, Duration)>> {
    let mut best: Option<(u64, Duration)> = None;
    for _ in 0..3 {
        let Some((total, took)) = run()? else {
            return Ok(None);
        };
        if best.is_some_and(|(other, _)| other != total) {
            bail!("the runs counted different totals");
        }
        best = Some((total, best.map_or(took, |(_, b)| b.min(took))));
    }
    Ok(best)
}

fn run(args: Args) -> Result<()> {
    let count = args.count;
    let best = |way: fn(u64) -> (u64, Duration)| {
        best_of_three(|| Ok(Some(way(count))))?
            .context("a Rust way always runs")
    };
    let rust = [
        ("per-thread counts, merged", best(per_thread)?),
        ("atomic fetch_add", best(with_fetch_add)?),
        ("Mutex", best(with_mutex)?),
    ];
    let mut results: Vec<_> = rust.map(|(way, run)| (way, run, count)).into();
    let (python, pythons) = (&args.python, args.python_count);
    // Python's runs are best of three too, each a fresh interpreter.
    let python_best =
        |cores: &str| best_of_three(|| with_python(python, pythons, cores));
    let python_ran = match python_best("two-cores")? {
        Some(two_cores) => {
            let one_core =
                python_best("one-core")?.context("python3 went away")?;
            results.push(("Python, the notes' program", two_cores, pythons));
            results.push(("Python, on one core", one_core, pythons));
            true
        }
        None => false,
    };
    // Python adds fewer times: compare the time of one increment.
    let per_1000 = |took: Duration, count: u64| {
        Duration::from_secs_f64(
            took.as_secs_f64() * 1000.0 / (2 * count) as f64,
        )
    };
    let fastest = results
        .iter()
        .map(|&(_, (_, took), count)| per_1000(took, count))
        .min()
        .expect("at least one way");

    println!(
        "2 threads x {count} increments in Rust (optimized, best of 3 runs)"
    );
    if python_ran {
        println!("2 threads x {pythons} increments in Python (best of 3 runs)");
    }
    for (way, (total, took), count) in results {
        let each = per_1000(took, count);
        let ratio = each.as_secs_f64() / fastest.as_secs_f64();
        println!(
            "  {way:<27} total {total}, {took:.2?}, {each:.2?} per 1,000, {ratio:.1}x"
        );
    }
    if !python_ran {
        println!("  {python} not found, skipped");
    }
    Ok(())
}
// ANCHOR_END: run

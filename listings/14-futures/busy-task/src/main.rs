//! Beyond the notes: a task that computes without awaiting keeps its thread
//! from every other task: a ticker on the same thread misses its ticks
//! until the loop ends, unless the loop calls yield_now. And abort() only
//! marks a task: a task that is spinning stops at its next .await.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use tokio::task::yield_now;
use tokio::time::{sleep_until, timeout};

/// A ticker and a busy task on one thread, with and without yield_now;
/// then abort() on a task that is spinning.
#[derive(Parser)]
struct Args {
    /// How long the busy task computes, in milliseconds.
    #[arg(long, default_value_t = 200)]
    #[arg(value_parser = clap::value_parser!(u64).range(20..=10_000))]
    busy_ms: u64,
    /// The ticker's period, in milliseconds.
    #[arg(long, default_value_t = 10)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=1_000))]
    tick_ms: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("busy-task: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// One worker thread, as asyncio has: the busy task and the ticker share it.
#[tokio::main(flavor = "current_thread")]
async fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.tick_ms < args.busy_ms,
        "--tick-ms ({}) must be shorter than --busy-ms ({}), or no tick falls due while the task is busy",
        args.tick_ms,
        args.busy_ms
    );
    let busy = Duration::from_millis(args.busy_ms);
    let tick = Duration::from_millis(args.tick_ms);
    println!(
        "a ticker every {} ms; a task busy for {} ms on the same thread",
        args.tick_ms, args.busy_ms
    );
    for yielding in [false, true] {
        let how = if yielding {
            "with yield_now"
        } else {
            "without yielding"
        };
        match beside_a_busy_task(busy, tick, yielding).await? {
            Some((ticks, worst)) => println!(
                "{how}: ticks while busy: {ticks}; worst lateness: {worst:.1?}"
            ),
            None => println!("{how}: no tick at all in 10 s"),
        }
    }
    abort_a_spinning_task().await
}

// ANCHOR: busy
/// Computes for `work`, in slices of about a millisecond; between slices,
/// gives the other tasks their turn if `yielding`.
async fn compute(work: Duration, yielding: bool) {
    let began = Instant::now();
    while began.elapsed() < work {
        let slice = Instant::now();
        while slice.elapsed() < Duration::from_millis(1) {
            std::hint::spin_loop();
        }
        if yielding {
            yield_now().await;
        }
    }
}
// ANCHOR_END: busy

/// Runs a ticker beside `compute`; returns how many ticks came while it
/// was busy, and the latest any tick came, or `None` if no tick came at
/// all, not even once the thread was free.
async fn beside_a_busy_task(
    work: Duration,
    tick: Duration,
    yielding: bool,
) -> anyhow::Result<Option<(usize, Duration)>> {
    // Each tick is reported as it happens: when it ran, and how late.
    let (report, mut ticks) = tokio::sync::mpsc::unbounded_channel();
    // The first tick falls due one tick from now, before either task starts:
    // its lateness does not depend on which one the runtime polls first.
    let mut due = Instant::now() + tick;
    let ticker = tokio::spawn(async move {
        loop {
            sleep_until(due.into()).await;
            let now = Instant::now();
            if report.send((now, now - due)).is_err() {
                break;
            }
            due = now + tick;
        }
    });
    let busy = tokio::spawn(async move {
        let began = Instant::now();
        compute(work, yielding).await;
        (began, Instant::now())
    });
    let (began, ended) = busy.await.context("the busy task failed")?;
    let mut came = Vec::new();
    while let Ok(tick) = ticks.try_recv() {
        came.push(tick);
    }
    // This task resumed before the ticker, whose timer fell due long ago:
    // the ticker runs once this task awaits, so wait for its first tick.
    if came.is_empty() {
        let first = timeout(Duration::from_secs(10), ticks.recv()).await;
        if let Ok(Some(tick)) = first {
            came.push(tick);
        }
    }
    // The ticker waits at its .await, where abort takes effect at once.
    ticker.abort();
    let during = came
        .iter()
        .filter(|(at, _)| (began..ended).contains(at))
        .count();
    Ok(came
        .iter()
        .map(|(_, late)| *late)
        .max()
        .map(|worst| (during, worst)))
}

// ANCHOR: abort
async fn abort_a_spinning_task() -> anyhow::Result<()> {
    let (started, wait_for_start) = mpsc::channel();
    let requested = Arc::new(AtomicBool::new(false));
    let spinner = tokio::spawn({
        let requested = Arc::clone(&requested);
        async move {
            let _ = started.send(());
            let limit = Instant::now() + Duration::from_secs(10);
            while !requested.load(Ordering::Acquire) && Instant::now() < limit {
                std::hint::spin_loop();
            }
            if !requested.load(Ordering::Acquire) {
                println!("spinner: no abort came in 10 s");
            }
            let after = Instant::now();
            while after.elapsed() < Duration::from_millis(50) {
                std::hint::spin_loop();
            }
            println!(
                "spinner: abort() has returned; I spun 50 ms more, and now I await"
            );
            yield_now().await;
            println!("spinner: after my .await");
        }
    });
    // This thread is the spinner's: only another one can call abort while
    // it spins.
    let handle = spinner.abort_handle();
    let aborter = std::thread::spawn(move || {
        let began =
            wait_for_start.recv_timeout(Duration::from_secs(10)).is_ok();
        handle.abort();
        requested.store(true, Ordering::Release);
        began
    });
    let result = spinner.await;
    let began = aborter.join().unwrap_or(false);
    anyhow::ensure!(began, "the spinning task never started");
    match result {
        Err(e) if e.is_cancelled() => {
            println!("its handle: cancelled, at the .await")
        }
        Err(e) => anyhow::bail!("the spinning task failed: {e}"),
        Ok(()) => println!("its handle: it ran to its end"),
    }
    Ok(())
}
// ANCHOR_END: abort

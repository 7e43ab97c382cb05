//! S4.1: the notes' FIFO queue shared by several consumer threads, as a
//! Python `queue.Queue` can be: crossbeam-channel's receivers can be cloned
//! (std's cannot). A bounded channel keeps the producer at most `capacity`
//! jobs ahead of the workers; `send_timeout` gives up on a full channel.

use std::process::ExitCode;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use crossbeam_channel::{SendTimeoutError, bounded, unbounded};

/// Share one bounded channel of jobs between several worker threads.
#[derive(Parser)]
struct Args {
    /// How many worker threads receive from the channel.
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: u32,
    /// How many jobs the producer sends.
    #[arg(long, default_value_t = 12)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=10_000))]
    jobs: u32,
    /// How many jobs the channel holds (0: every send waits for a worker).
    #[arg(long, default_value_t = 2)]
    #[arg(value_parser = clap::value_parser!(u32).range(0..=1000))]
    capacity: u32,
    /// How long `send_timeout` waits on a full channel, in milliseconds.
    #[arg(long, default_value_t = 100)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=10_000))]
    wait_ms: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crossbeam-workers: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    share(args.workers, args.jobs, args.capacity)?;
    full(args.capacity, Duration::from_millis(args.wait_ms))
}

// ANCHOR: share
fn share(workers: u32, jobs: u32, capacity: u32) -> Result<()> {
    let (job_tx, job_rx) = bounded(capacity as usize);
    let (done_tx, done_rx) = unbounded();
    // Each worker takes one job, then waits here until every worker has
    // one. A worker waiting here takes no jobs, so the others must receive
    // them: were the channel to feed one worker only, the barrier would
    // never open and the run would never end.
    let first_round = Barrier::new(workers as usize);
    thread::scope(|s| {
        for worker in 0..workers {
            // Every worker receives from the same channel: each job goes to
            // exactly one of them, whichever asks first.
            let (job_rx, done_tx) = (job_rx.clone(), done_tx.clone());
            let first_round = &first_round;
            s.spawn(move || {
                let mut jobs = job_rx.iter();
                // None if the jobs ran out first: this worker still waits
                // with the others, so that none waits for it forever.
                if let Some(job) = jobs.next() {
                    let _ = done_tx.send((worker, job));
                }
                first_round.wait();
                for job in jobs {
                    let _ = done_tx.send((worker, job));
                }
            });
        }
        // Only the workers hold these now: when they have all ended, both
        // channels disconnect.
        drop((job_rx, done_tx));
        for job in 1..=jobs {
            // Blocks while `capacity` jobs wait: the producer cannot run
            // further ahead of the workers than that.
            job_tx.send(job).context("every worker has stopped")?;
        }
        drop(job_tx);
        let (mut busy, mut done): (Vec<u32>, Vec<u32>) = done_rx.iter().unzip();
        busy.sort_unstable();
        busy.dedup();
        done.sort_unstable();
        let once_each = done.iter().copied().eq(1..=jobs);
        let count = done.len();
        println!(
            "worker threads: {workers}, {} of them got jobs; \
             jobs done: {count}, each exactly once: {once_each}",
            busy.len()
        );
        Ok(())
    })
}
// ANCHOR_END: share

// ANCHOR: full
fn full(capacity: u32, wait: Duration) -> Result<()> {
    // `_rx`, not `_`: a named binding lives to the end of the function.
    // With `_` the receiver would be dropped at once, and send_timeout would
    // fail with Disconnected, not wait and time out.
    let (tx, _rx) = bounded(capacity as usize);
    for job in 1..=capacity {
        tx.try_send(job)?;
    }
    let started = Instant::now();
    match tx.send_timeout(capacity + 1, wait) {
        Err(SendTimeoutError::Timeout(job)) => println!(
            "{capacity} jobs in, nobody receiving: send_timeout gave job {job} back after {:?}",
            started.elapsed()
        ),
        other => bail!("a full channel took one more: {other:?}"),
    }
    Ok(())
}
// ANCHOR_END: full

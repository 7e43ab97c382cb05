//! S4.1: the notes' FIFO queue (`queue.Queue`) as std's channels: a producer
//! thread sends jobs and the consumer's loop ends when every sender is
//! dropped; `recv_timeout`; and `sync_channel`, bounded, which blocks its
//! producer while the channel is full.

use std::process::ExitCode;
use std::sync::mpsc::{self, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use clap::Parser;

/// Send jobs through std's channels and receive them in order.
#[derive(Parser)]
struct Args {
    /// How many pages the producer sends.
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=1000))]
    pages: u32,
    /// How long `recv_timeout` waits, in milliseconds.
    #[arg(long, default_value_t = 100)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=10_000))]
    wait_ms: u64,
    /// How many items the bounded channel holds (0: every send waits for a
    /// receiver).
    #[arg(long, default_value_t = 2)]
    #[arg(value_parser = clap::value_parser!(u32).range(0..=1000))]
    capacity: u32,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fifo-channel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    drain(args.pages)?;
    timeout(Duration::from_millis(args.wait_ms));
    backpressure(args.capacity)
}

// ANCHOR: job
/// A channel carries one type. Python's queue takes any object; here, jobs
/// of different kinds are the variants of one enum.
#[derive(Debug)]
enum Job {
    Fetch(String),
    Retry { url: String, attempt: u32 },
}
// ANCHOR_END: job

// ANCHOR: drain
fn drain(pages: u32) -> Result<()> {
    let (tx, rx) = mpsc::channel();
    let producer = thread::spawn(move || {
        for n in 1..=pages {
            // An error means the receiver is gone: nobody is left to work for.
            if tx.send(Job::Fetch(format!("page-{n}.html"))).is_err() {
                return;
            }
        }
        let retry = Job::Retry {
            url: "page-1.html".into(),
            attempt: 2,
        };
        let _ = tx.send(retry);
        // The closure owns `tx`, the only sender: the channel disconnects
        // when this thread ends.
    });
    // No sentinel: the loop ends when the channel is empty and every sender
    // is gone, also if the producer panicked.
    for job in rx {
        match job {
            Job::Fetch(url) => println!("fetch {url}"),
            Job::Retry { url, attempt } => {
                println!("fetch {url} again, attempt {attempt}")
            }
        }
    }
    println!("every sender dropped: the loop ended");
    producer
        .join()
        .map_err(|_| anyhow!("the producer panicked"))
}
// ANCHOR_END: drain

// ANCHOR: timeout
fn timeout(wait: Duration) {
    let (tx, rx) = mpsc::channel::<Job>();
    let started = Instant::now();
    let result = rx.recv_timeout(wait);
    println!(
        "a sender alive, nothing sent: {result:?} after {:?}",
        started.elapsed()
    );
    drop(tx);
    let started = Instant::now();
    let result = rx.recv_timeout(wait);
    println!(
        "every sender dropped: {result:?} after {:?}",
        started.elapsed()
    );
}
// ANCHOR_END: timeout

// ANCHOR: backpressure
fn backpressure(capacity: u32) -> Result<()> {
    let (tx, rx) = mpsc::sync_channel(capacity as usize);
    for n in 1..=capacity {
        tx.try_send(n)?;
    }
    let next = capacity + 1;
    match tx.try_send(next) {
        Err(TrySendError::Full(n)) => {
            println!("{capacity} items in: try_send({n}) is Full")
        }
        other => bail!("a full channel took one more: {other:?}"),
    }
    let producer = thread::spawn(move || {
        let started = Instant::now();
        // Blocks until the consumer makes room: backpressure.
        let sent = tx.send(next);
        (sent, started.elapsed())
    });
    // Only to make the producer's wait long enough to see; recv below is
    // what lets it go on.
    thread::sleep(Duration::from_millis(50));
    println!("main: recv gives {}", rx.recv()?);
    let (sent, blocked) = producer
        .join()
        .map_err(|_| anyhow!("the producer panicked"))?;
    sent?;
    println!("producer: send({next}) returned after {blocked:?}");
    let rest: Vec<u32> = rx.iter().collect();
    println!("main: the rest, in order: {rest:?}");
    Ok(())
}
// ANCHOR_END: backpressure

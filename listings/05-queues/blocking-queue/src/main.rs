//! S4.1-S4.3: the notes' three thread queues, FIFO, LIFO and priority, all
//! one BlockingQueue (src/lib.rs) with a different storage; a consumer that
//! blocks in `get` until a producer puts; and `get_timeout` giving up.

use std::cmp::Reverse;
use std::process::ExitCode;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;
use blocking_queue::{FifoQueue, LifoQueue, PriorityQueue};
use clap::Parser;

/// Put the same items into each kind of queue, and take them out again.
#[derive(Parser)]
struct Args {
    /// How long `get_timeout` waits on an empty queue, in milliseconds.
    #[arg(long, default_value_t = 100)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=10_000))]
    timeout_ms: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blocking-queue: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    fifo_and_lifo();
    priority();
    blocked_get();
    timeout(Duration::from_millis(args.timeout_ms));
    Ok(())
}

// ANCHOR: orders
fn fifo_and_lifo() {
    let fifo = FifoQueue::new();
    let lifo = LifoQueue::new();
    for page in ["a.html", "b.html", "c.html"] {
        fifo.put(page);
        lifo.put(page);
    }
    let fifo: Vec<_> = (0..3).map(|_| fifo.get()).collect();
    let lifo: Vec<_> = (0..3).map(|_| lifo.get()).collect();
    println!("put a, b, c; FIFO gets {fifo:?}");
    println!("put a, b, c; LIFO gets {lifo:?}");
}
// ANCHOR_END: orders

// ANCHOR: priority
fn priority() {
    // Tuples compare field by field, as in Python: the priority first, the
    // name breaks a tie. Put in no particular order.
    let jobs = PriorityQueue::new();
    for job in [(20, "B"), (10, "C"), (10, "A"), (5, "D")] {
        jobs.put(job);
    }
    let order: Vec<_> = (0..4).map(|_| jobs.get()).collect();
    println!("priority, smallest first: {order:?}");

    // For the largest first, reverse the key, as Python code puts
    // (-priority, name).
    let jobs = PriorityQueue::new();
    for (priority, name) in [(20, "B"), (10, "C"), (10, "A"), (5, "D")] {
        jobs.put((Reverse(priority), name));
    }
    let order: Vec<_> = (0..4)
        .map(|_| {
            let (Reverse(priority), name) = jobs.get();
            (priority, name)
        })
        .collect();
    println!("priority, largest first: {order:?}");
}
// ANCHOR_END: priority

// ANCHOR: blocked
/// How long main waits before it puts: the least time that `get` blocks.
const PUT_AFTER: Duration = Duration::from_millis(100);

fn blocked_get() {
    let queue = FifoQueue::new();
    let consumer_ready = Barrier::new(2);
    thread::scope(|s| {
        s.spawn(|| {
            println!("consumer: calling get on an empty queue");
            // Started before the barrier, so before main's sleep: the time
            // shown is at least PUT_AFTER, however the threads are scheduled.
            let started = Instant::now();
            consumer_ready.wait();
            let item = queue.get();
            println!("consumer: got {item:?} after {:?}", started.elapsed());
        });
        consumer_ready.wait();
        // The barrier and the queue decide the order of the lines; this
        // sleep only decides how long `get` blocks.
        thread::sleep(PUT_AFTER);
        println!("main: put \"job-1\"");
        queue.put("job-1");
    });
}
// ANCHOR_END: blocked

// ANCHOR: timeout
fn timeout(timeout: Duration) {
    let queue = FifoQueue::<&str>::new();
    let started = Instant::now();
    let got = queue.get_timeout(timeout);
    println!(
        "empty queue: get_timeout returned {got:?} after {:?}",
        started.elapsed()
    );
}
// ANCHOR_END: timeout

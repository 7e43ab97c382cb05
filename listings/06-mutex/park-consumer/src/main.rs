//! Beyond the notes: waiting for another thread without polling. The notes'
//! consumer (S7.1) asks `q.empty()` and sleeps, and stops at the first empty
//! look. Here, as threads, the consumer parks until the producer unparks it,
//! and stops only when the producer says it is done; it looks again after
//! every wake-up, since park may return with nothing to do.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::Parser;

/// A producer thread puts A, B, C; a consumer thread parks until there is
/// something to get.
#[derive(Parser)]
struct Args {
    /// The producer's pause before each put, in milliseconds.
    #[arg(long, default_value_t = 50)]
    #[arg(value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pause_ms: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("park-consumer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The items and the producer's "done" under one lock, so that one look
/// sees both: an empty queue with `done` set is really the end.
#[derive(Default)]
struct Queue {
    items: VecDeque<&'static str>,
    done: bool,
}

// ANCHOR: consume
fn consume(queue: &Mutex<Queue>) -> Result<()> {
    loop {
        let mut q = queue.lock().map_err(|_| anyhow!("poisoned"))?;
        if let Some(item) = q.items.pop_front() {
            println!("get {item}");
        } else if q.done {
            println!("finish: the producer is done and the queue is empty");
            return Ok(());
        } else {
            // Never park holding the lock: the producer needs it to put.
            drop(q);
            // Returns at an unpark, or spuriously: either way, look again.
            thread::park();
        }
    }
}
// ANCHOR_END: consume

// ANCHOR: produce
fn run(args: Args) -> Result<()> {
    let queue = Mutex::new(Queue::default());
    let pause = Duration::from_millis(args.pause_ms);
    thread::scope(|s| {
        let consumer = s.spawn(|| consume(&queue));
        // A wake-up with nothing to get, as park allows: the loop looks,
        // finds the queue empty and not done, and parks again.
        consumer.thread().unpark();
        for item in ["A", "B", "C"] {
            // The notes' producer has a random sleep here, commented out
            // (`#time.sleep(...)`); --pause-ms puts a fixed one back.
            thread::sleep(pause);
            queue
                .lock()
                .map_err(|_| anyhow!("poisoned"))?
                .items
                .push_back(item);
            // An unpark before the consumer parks is kept (one token), so
            // this wake-up cannot be lost between its look and its park.
            consumer.thread().unpark();
        }
        queue.lock().map_err(|_| anyhow!("poisoned"))?.done = true;
        consumer.thread().unpark();
        consumer
            .join()
            .map_err(|_| anyhow!("the consumer panicked"))?
    })
}
// ANCHOR_END: produce

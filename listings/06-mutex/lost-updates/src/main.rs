//! S4.4, S5.1: threads may share a global, but the scheduler can interleave
//! their updates. Two threads add 1 to a global counter 10,000,000 times
//! each: as a separate load and store (updates are lost), and as one
//! fetch_add (none are). Atomics throughout, so no version is undefined
//! behaviour: the lost updates are the program's logic, not the compiler's.

use std::process::ExitCode;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread;

use clap::Parser;

/// Two threads add to one global counter, racily and atomically.
#[derive(Parser)]
struct Args {
    /// How many times each thread adds 1.
    #[arg(long, default_value_t = 10_000_000)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    count: u64,
}

fn main() -> ExitCode {
    // Nothing here can fail but the arguments, which clap reports itself.
    run(Args::parse());
    ExitCode::SUCCESS
}

// ANCHOR: globals
// Globals, as in the notes. Relaxed ordering is enough: each counter is the
// only data these threads share, and nothing else is published through it.
static RACY: AtomicU64 = AtomicU64::new(0);
static ATOMIC: AtomicU64 = AtomicU64::new(0);

/// `g_num += 1` as Python runs it: read, add, write back. Another thread's
/// write between the load and the store is overwritten: that update is lost.
fn add_racily(count: u64) {
    for _ in 0..count {
        let value = RACY.load(Relaxed);
        RACY.store(value + 1, Relaxed);
    }
}

/// One indivisible read-modify-write: no write can come in between.
fn add_atomically(count: u64) {
    for _ in 0..count {
        ATOMIC.fetch_add(1, Relaxed);
    }
}
// ANCHOR_END: globals

// ANCHOR: run
fn run(args: Args) {
    let expected = 2 * args.count;
    println!(
        "two threads add 1 to a global counter {} times each",
        args.count
    );
    let racy = on_two_threads(add_racily, args.count, &RACY);
    println!(
        "load, then store: {racy} ({} updates lost)",
        expected - racy
    );
    if racy == expected {
        // Possible: no switch happened to fall between a load and its store.
        println!(
            "  (none lost this time: the race is still there; run it again)"
        );
    }
    let atomic = on_two_threads(add_atomically, args.count, &ATOMIC);
    println!(
        "fetch_add:        {atomic} ({} updates lost)",
        expected - atomic
    );
}

/// Runs `add` on two threads at once and returns the counter's final value.
fn on_two_threads(add: fn(u64), count: u64, counter: &AtomicU64) -> u64 {
    // Both threads start adding together, so their loops overlap.
    let start = Barrier::new(2);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                start.wait();
                add(count);
            });
        }
    });
    counter.load(Relaxed)
}
// ANCHOR_END: run

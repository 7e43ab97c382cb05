//! S5.1: what Python's Lock does not have: poisoning. A thread panics while
//! it holds the guard, halfway through an update; every later lock() returns
//! Err(PoisonError), which still hands out the data (into_inner), and
//! clear_poison() declares it repaired.

use std::any::Any;
use std::panic;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{Result, bail};
use clap::Parser;

/// A thread panics holding a lock: what lock() then returns, and recovery.
#[derive(Parser)]
struct Args {}

/// Two tallies that must always be equal: an update changes both.
#[derive(Debug, Default)]
struct Tallies {
    requests: u64,
    replies: u64,
}

fn main() -> ExitCode {
    Args::parse(); // no options; answers --help
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("poisoned-lock: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: panic
fn run() -> Result<()> {
    let tallies = Arc::new(Mutex::new(Tallies::default()));
    // This panic is planned: instead of the default hook's report, the
    // program prints its own account of it, from what join returns.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let worker = {
        let tallies = Arc::clone(&tallies);
        thread::spawn(move || {
            let mut guard = tallies.lock().expect("nobody has panicked yet");
            guard.requests += 1;
            panic!("failed between the two updates");
            // Unwinding drops the guard, which sees the panic and poisons
            // the Mutex: the data behind it may be half updated.
        })
    };
    let joined = worker.join();
    panic::set_hook(default_hook);
    match joined {
        Ok(()) => bail!("the worker was meant to panic"),
        Err(payload) => println!(
            "the worker panicked holding the guard: {}",
            message(&*payload)
        ),
    }
    // ANCHOR_END: panic

    // ANCHOR: recover
    println!("is_poisoned(): {}", tallies.is_poisoned());
    match tallies.lock() {
        Ok(_) => bail!("the Mutex was meant to be poisoned"),
        Err(poisoned) => {
            println!("lock(): Err({poisoned})");
            // The error carries the guard: the data is still reachable, to
            // inspect and repair.
            let mut guard = poisoned.into_inner();
            println!("into_inner(): {:?}", *guard);
            guard.replies = guard.requests;
            println!("repaired:     {:?}", *guard);
        }
    }
    // Still poisoned: only clear_poison says the data is sound again.
    println!("is_poisoned(): {}", tallies.is_poisoned());
    tallies.clear_poison();
    let guard = tallies.lock();
    println!("after clear_poison(), lock() is Ok: {}", guard.is_ok());
    Ok(())
}
// ANCHOR_END: recover

/// A panic's message: panic! with a literal carries a &str, with a format
/// string a String.
fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(not a message)"
    }
}

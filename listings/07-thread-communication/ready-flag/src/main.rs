//! Beyond the notes: the mailbox of src/lib.rs, run for real. In each round
//! a new worker thread publishes a result (the round's number) with a
//! Release store of its ready flag, while the main thread waits for the
//! flag with Acquire loads and then reads the result. Every read must see
//! the worker's result, never the mailbox's initial 0.

use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use ready_flag::Mailbox;

/// Publish a result through a ready flag, round after round, and check
/// that every read after the flag sees it.
#[derive(Parser)]
struct Args {
    /// How many rounds: a new mailbox and a new worker thread each.
    #[arg(long, default_value_t = 10_000)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    rounds: u64,
    /// How long the main thread waits for one worker's flag, in
    /// milliseconds, before it gives up.
    #[arg(long, default_value_t = 10_000)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=60_000))]
    timeout_ms: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ready-flag: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: run
fn run(args: Args) -> Result<()> {
    let timeout = Duration::from_millis(args.timeout_ms);
    println!(
        "each round: a new worker stores result = the round's number, then ready = true (Release)"
    );
    println!(
        "            main loads ready (Acquire) until it is true, then loads result"
    );
    let mut stale = 0;
    for round in 1..=args.rounds {
        let mailbox = Mailbox::new();
        let result = thread::scope(|s| {
            s.spawn(|| mailbox.publish(round));
            // Read while the worker may still be running: the scope's
            // join, which would order everything, comes after.
            wait_for(&mailbox, timeout)
        })?;
        if round == 1 {
            println!("round 1: main read result = {result}");
        }
        if result != round {
            stale += 1;
        }
    }
    let rounds = args.rounds;
    println!(
        "{rounds} rounds: {stale} reads after ready missed the worker's result"
    );
    if stale > 0 {
        bail!("{stale} of {rounds} reads saw a stale result");
    }
    Ok(())
}

/// Checks the flag until it is set, or `timeout` has passed.
fn wait_for(mailbox: &Mailbox, timeout: Duration) -> Result<u64> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(result) = mailbox.try_read() {
            return Ok(result);
        }
        if Instant::now() >= deadline {
            bail!("no result after {timeout:?}");
        }
        // On one core, the worker can only run if this thread lets it.
        thread::yield_now();
    }
}
// ANCHOR_END: run

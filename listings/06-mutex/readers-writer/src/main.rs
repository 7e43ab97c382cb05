//! Beyond the notes: a readers-writer lock. The notes (S7.3) answer read and
//! write conflicts with a mutex, which lets one reader in at a time. An
//! RwLock lets every reader in at once and a writer in alone: here readers
//! all hold the read lock together (each waits at a Barrier for the others
//! while holding it), a writer's try_write is refused meanwhile, and write
//! gets in once they are done.

use std::process::ExitCode;
use std::sync::{Barrier, RwLock, TryLockError, TryLockResult};
use std::thread;

use anyhow::{Result, anyhow};
use clap::Parser;

/// Many readers hold one RwLock at once; a writer waits for them.
#[derive(Parser)]
struct Args {
    /// How many reader threads (two at least: one reader shares with no one).
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u16).range(2..=64))]
    readers: u16,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("readers-writer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A price list: read by every request, changed now and then.
struct Prices {
    version: u32,
    coffee_cents: u32,
}

// ANCHOR: run
fn run(args: Args) -> Result<()> {
    let prices = RwLock::new(Prices {
        version: 1,
        coffee_cents: 250,
    });
    let readers = usize::from(args.readers);
    // The readers and main: main passes the first barrier only once every
    // reader holds the read lock, and lets them go at the second.
    let all_reading = Barrier::new(readers + 1);
    let checked = Barrier::new(readers + 1);
    let seen = thread::scope(|s| {
        let handles: Vec<_> = (0..readers)
            .map(|_| {
                s.spawn(|| {
                    let list =
                        prices.read().map_err(|_| anyhow!("poisoned"))?;
                    // With a Mutex, the second reader would wait in lock()
                    // and never get here: this barrier would wait for ever.
                    all_reading.wait();
                    let seen = (list.version, list.coffee_cents);
                    checked.wait();
                    Ok(seen)
                })
            })
            .collect();
        all_reading.wait();
        println!("{readers} readers hold the read lock at once");
        println!(
            "while they read, try_write() is {}",
            answer(prices.try_write())
        );
        println!(
            "while they read, try_read() is {}",
            answer(prices.try_read())
        );
        checked.wait();
        // Blocks until the last reader has dropped its guard.
        let mut list = prices.write().map_err(|_| anyhow!("poisoned"))?;
        list.version += 1;
        list.coffee_cents = 275;
        drop(list);
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("a reader panicked"))?)
            .collect::<Result<Vec<_>>>()
    })?;
    for (n, (version, cents)) in seen.iter().enumerate() {
        println!("reader {}: version {version}, coffee {cents} cents", n + 1);
    }
    let list = prices.read().map_err(|_| anyhow!("poisoned"))?;
    println!(
        "after write(): version {}, coffee {} cents",
        list.version, list.coffee_cents
    );
    Ok(())
}
// ANCHOR_END: run

/// A try_read or try_write answer, named: a guard it returns is dropped at once.
fn answer<G>(attempt: TryLockResult<G>) -> &'static str {
    match attempt {
        Ok(_guard) => "Ok(guard)",
        Err(TryLockError::WouldBlock) => "Err(WouldBlock)",
        Err(TryLockError::Poisoned(_)) => "Err(Poisoned)",
    }
}

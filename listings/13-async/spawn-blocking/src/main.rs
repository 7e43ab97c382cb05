//! S11.1: the event loop runs one task at a time on its thread, so a
//! blocking call inside a task (a sleep, a file read, a long computation)
//! stops every other task on that thread; spawn_blocking runs the call on a
//! thread of its own, as asyncio.to_thread does.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use tokio::time::sleep;

/// Block a runtime's only thread, then block beside it.
#[derive(Parser)]
struct Args {
    /// How long the blocking call takes, in milliseconds.
    #[arg(long, default_value_t = 300)]
    #[arg(value_parser = clap::value_parser!(u64).range(50..=10_000))]
    block_ms: u64,
}

/// The ticker's period.
const TICK: Duration = Duration::from_millis(10);

fn main() -> ExitCode {
    match on_one_thread(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spawn-blocking: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: main
/// One thread runs every task: asyncio's model. On any `async fn`, as on
/// `main`, the attribute builds the runtime and blocks on the body.
#[tokio::main(flavor = "current_thread")]
async fn on_one_thread(args: Args) -> Result<()> {
    run(args).await
}
// ANCHOR_END: main

// ANCHOR: run
async fn run(args: Args) -> Result<()> {
    let block = Duration::from_millis(args.block_ms);
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = tokio::spawn(tick(Arc::clone(&ticks)));
    let count = || ticks.load(Ordering::SeqCst);
    sleep(3 * TICK).await;

    let before = count();
    // Blocks the thread that runs the ticker too.
    thread::sleep(block);
    println!("thread::sleep in the task: {} ticks", count() - before);

    sleep(3 * TICK).await; // the ticker catches up
    let before = count();
    tokio::task::spawn_blocking(move || thread::sleep(block)).await?;
    println!("spawn_blocking:           {} ticks", count() - before);
    let (block, tick) = (block.as_millis(), TICK.as_millis());
    println!("(each call takes {block} ms; the ticker ticks every {tick} ms)");
    ticker.abort();
    Ok(())
}

/// Counts every TICK, as long as it gets to run.
async fn tick(ticks: Arc<AtomicU64>) {
    loop {
        sleep(TICK).await;
        ticks.fetch_add(1, Ordering::SeqCst);
    }
}
// ANCHOR_END: run

//! Beyond the notes: tokio's bounded mpsc channel, `asyncio.Queue(maxsize=n)`
//! in Rust. A fast producer fills the queue and then waits at `send().await`
//! until the slow consumer takes an item; `try_send` says `Full` instead of
//! waiting; and the consumer's loop ends when the last sender is dropped, with
//! no sentinel.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::sleep;

/// A fast producer and a slow consumer on a bounded tokio channel.
#[derive(Parser)]
struct Args {
    /// How many items the queue holds (tokio has no rendezvous channel: at least 1).
    #[arg(long, default_value_t = 2)]
    #[arg(value_parser = clap::value_parser!(u16).range(1..))]
    capacity: u16,
    /// How many items the producer makes.
    #[arg(long, default_value_t = 5)]
    items: u32,
    /// How long the consumer works on each item, in milliseconds.
    #[arg(long, default_value_t = 10)]
    work_ms: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpsc-backpressure: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    // One thread, as asyncio has: the tasks take turns only at an `.await`, so
    // the trace below is the same on every run, whatever the machine's load.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(queue(args))
}

// ANCHOR: queue
async fn queue(args: Args) -> Result<()> {
    let (tx, mut rx) = mpsc::channel::<u32>(args.capacity.into());
    println!("queue capacity: {}", args.capacity);

    let producer = tokio::spawn(async move {
        for item in 1..=args.items {
            // try_send first only to say when the queue is full; `send` alone
            // would wait there without a word.
            match tx.try_send(item) {
                Ok(()) => println!("producer: put {item}"),
                Err(TrySendError::Full(item)) => {
                    println!("producer: queue full, waiting to put {item}");
                    tx.send(item).await.context("the consumer is gone")?;
                    println!("producer: put {item}");
                }
                Err(TrySendError::Closed(_)) => {
                    anyhow::bail!("the consumer is gone")
                }
            }
        }
        println!("producer: done, dropping its sender");
        anyhow::Ok(())
    });

    // No sentinel: `recv` returns None once every sender is dropped and the
    // queue is empty.
    let mut taken = 0;
    while let Some(item) = rx.recv().await {
        println!("consumer: took {item}");
        taken += 1;
        sleep(Duration::from_millis(args.work_ms)).await; // the slow part
    }
    println!("consumer: queue closed after {taken} items");
    producer.await.context("the producer panicked")?
}
// ANCHOR_END: queue

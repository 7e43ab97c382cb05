//! Beyond the notes: a lock and `.await`. A std Mutex guard is dropped
//! before the task awaits (a block scope); a tokio Mutex is held across
//! the awaits of one exchange on a shared connection, so that no other
//! task's lines come between its request and its reply.

use std::process::ExitCode;
use std::sync::{Arc, PoisonError};

use anyhow::Context;
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::yield_now;

/// Tasks that count visits under a std Mutex, then share one connection
/// under a tokio Mutex.
#[derive(Parser)]
struct Args {
    /// How many tasks.
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=100))]
    tasks: u32,
    /// Lock the connection for each line alone, not for the whole
    /// exchange: the other tasks' lines come in between.
    #[arg(long)]
    lock_each_line: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lock-across-await: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// One thread, so that the tasks take turns in the same order on every run
// and every run prints the same; tokio::spawn demands Send all the same,
// as it cannot know which runtime it will be called on.
#[tokio::main(flavor = "current_thread")]
async fn run(args: &Args) -> anyhow::Result<()> {
    count_visits(args.tasks).await?;
    exchanges(args.tasks, args.lock_each_line).await
}

// ANCHOR: count
async fn count_visits(tasks: u32) -> anyhow::Result<()> {
    let visits = Arc::new(std::sync::Mutex::new(0));
    let mut handles = Vec::new();
    for id in 1..=tasks {
        let visits = Arc::clone(&visits);
        handles.push(tokio::spawn(async move {
            let number = {
                // A counter stays right even if a task panicked holding it.
                let mut count =
                    visits.lock().unwrap_or_else(PoisonError::into_inner);
                *count += 1;
                *count
            }; // the guard is dropped here, before the task awaits
            yield_now().await;
            (id, number)
        }));
    }
    for handle in handles {
        let (id, number) = handle.await.context("a counting task failed")?;
        println!("task {id}: visitor number {number}");
    }
    Ok(())
}
// ANCHOR_END: count

// ANCHOR: exchange
/// One request and its reply, written to the shared connection. The
/// reply takes a while (another task runs meanwhile): with the whole
/// exchange under the lock, nobody else writes in between.
async fn exchange(
    id: u32,
    connection: &tokio::sync::Mutex<DuplexStream>,
    lock_each_line: bool,
) -> std::io::Result<()> {
    let mut line = connection.lock().await;
    line.write_all(format!("task {id}: request\n").as_bytes())
        .await?;
    if lock_each_line {
        drop(line);
        yield_now().await;
        line = connection.lock().await;
    } else {
        yield_now().await;
    }
    line.write_all(format!("task {id}: reply\n").as_bytes())
        .await
}
// ANCHOR_END: exchange

async fn exchanges(tasks: u32, lock_each_line: bool) -> anyhow::Result<()> {
    // The far end is what the peer receives; 64 KiB holds every line, so
    // no write waits for a reader.
    let (near, mut far) = tokio::io::duplex(64 * 1024);
    let connection = Arc::new(tokio::sync::Mutex::new(near));
    let mut handles = Vec::new();
    for id in 1..=tasks {
        let connection = Arc::clone(&connection);
        handles.push(tokio::spawn(async move {
            exchange(id, &connection, lock_each_line).await
        }));
    }
    for handle in handles {
        handle
            .await
            .context("an exchange task failed")?
            .context("cannot write to the connection")?;
    }
    // The last Arc: dropping the near end lets the far end see its end.
    drop(connection);
    let mut received = String::new();
    far.read_to_string(&mut received)
        .await
        .context("cannot read the connection")?;
    print!("the peer received:\n{received}");
    Ok(())
}

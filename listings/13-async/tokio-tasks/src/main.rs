//! S11.1: tokio's runtime, built by hand as `#[tokio::main]` builds it; a
//! future does nothing until it is awaited, a spawned task runs on its own
//! (even with its handle dropped), handles give results in the order they are
//! awaited whatever order the tasks end in, and a task that panics comes back
//! as a JoinError while the program goes on.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinError;
use tokio::time::sleep;

/// Spawn lookups as tokio tasks and collect what they return.
#[derive(Parser)]
struct Args {
    /// Worker threads of the runtime.
    #[arg(long, default_value_t = 2)]
    // At least one: tokio's builder panics on 0.
    #[arg(value_parser = clap::value_parser!(u16).range(1..))]
    workers: u16,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio-tasks: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: main
/// What `#[tokio::main] async fn main()` writes, near enough: build a
/// runtime, then block this thread on one future until it is done.
fn run(args: Args) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.into())
        .enable_all() // the I/O and timer drivers: the runtime's reactor
        .build()
        .context("cannot start the runtime")?;
    let plural = if args.workers == 1 { "" } else { "s" };
    println!("runtime: {} worker thread{plural}", args.workers);
    runtime.block_on(lookups());
    Ok(())
}
// ANCHOR_END: main

// ANCHOR: look_up
/// How many lookups have begun to run.
static STARTED: AtomicUsize = AtomicUsize::new(0);

async fn look_up(id: u64) -> String {
    STARTED.fetch_add(1, Ordering::SeqCst);
    sleep(Duration::from_millis(10)).await;
    if id == 4 {
        panic!("no record with id {id}");
    }
    format!("record {id}")
}
// ANCHOR_END: look_up

// ANCHOR: lookups
async fn lookups() {
    let lookup = look_up(1);
    println!(
        "look_up(1) called: {} started",
        STARTED.load(Ordering::SeqCst)
    );
    let record = lookup.await;
    println!(
        "awaited: {record:?}, {} started",
        STARTED.load(Ordering::SeqCst)
    );

    // Task `id` begins when task `id + 1` has ended, so the tasks end in the
    // order 4, 3, 2: the reverse of the order their handles are awaited in.
    let (turn, _) = watch::channel(5);
    let (report, mut reports) = mpsc::unbounded_channel();
    let handles: Vec<_> = (2..=4)
        .map(|id| {
            let ended = Ended {
                id,
                report: report.clone(),
                turn: turn.clone(),
            };
            let mut last_ended = turn.subscribe();
            // The task starts at once, on any worker, awaited or not.
            tokio::spawn(async move {
                let _ended = ended; // dropped when the task ends, even by a panic
                // An error would mean that `turn` is gone: it outlives us.
                let _ = last_ended.wait_for(|last| *last == id + 1).await;
                look_up(id).await
            })
        })
        .collect();
    for (id, handle) in (2..).zip(handles) {
        match handle.await {
            Ok(record) => println!("task {id}: returned {record:?}"),
            Err(e) => println!("task {id}: {}", failure(e)),
        }
    }
    let mut order = Vec::new();
    while let Ok(id) = reports.try_recv() {
        order.push(id.to_string());
    }
    println!("the tasks ended in the order {}", order.join(", "));

    // Dropping a handle detaches its task; the task goes on.
    let (go, wait) = oneshot::channel::<()>();
    let (reply_to, reply) = oneshot::channel();
    let handle = tokio::spawn(async move {
        if wait.await.is_ok() {
            // An error would mean that nobody waits for the reply: fine.
            let _ = reply_to.send(look_up(5).await);
        }
    });
    drop(handle);
    // Only now does the task begin its lookup.
    let _ = go.send(()); // an error would mean the task is gone: see below
    match reply.await {
        Ok(record) => println!("task 5, its handle dropped: sent {record:?}"),
        Err(_) => println!("task 5, its handle dropped: gone without a reply"),
    }
}

/// Owned by a task and dropped when it ends, by returning or by panicking:
/// reports the task's id, then lets the next task begin.
struct Ended {
    id: u64,
    report: mpsc::UnboundedSender<u64>,
    turn: watch::Sender<u64>,
}

impl Drop for Ended {
    fn drop(&mut self) {
        // The receiver lives until every task has ended: this cannot fail.
        let _ = self.report.send(self.id);
        self.turn.send_replace(self.id);
    }
}

fn failure(error: JoinError) -> String {
    let Ok(payload) = error.try_into_panic() else {
        return "cancelled".into();
    };
    let message = match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&str>() {
            Ok(text) => text.to_string(),
            Err(_) => "a panic with no message".into(),
        },
    };
    format!("panicked: {message}")
}
// ANCHOR_END: lookups

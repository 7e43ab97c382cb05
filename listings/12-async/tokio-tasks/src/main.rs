//! S11.1: tokio's runtime, built by hand as `#[tokio::main]` builds it; a
//! future does nothing until it is awaited, a spawned task runs on its own,
//! handles are awaited in order, and a task that panics comes back as a
//! JoinError while the program goes on.

use std::any::Any;
use std::panic;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tokio::task::JoinError;
use tokio::time::sleep;

/// Spawn lookups as tokio tasks and collect what they return.
#[derive(Parser)]
struct Args {
    /// Worker threads of the runtime.
    #[arg(long, default_value_t = 2)]
    #[arg(value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: u16,
}

// ANCHOR: main
fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio-tasks: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What `#[tokio::main] async fn main()` writes, near enough: build a
/// runtime, then block this thread on one future until it is done.
fn run(args: Args) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.into())
        .enable_all() // the I/O and timer drivers: the runtime's reactor
        .build()
        .context("cannot start the runtime")?;
    println!("runtime: {} worker threads", args.workers);
    runtime.block_on(lookups());
    Ok(())
}
// ANCHOR_END: main

// ANCHOR: look_up
/// How many lookups have begun to run.
static STARTED: AtomicUsize = AtomicUsize::new(0);

async fn look_up(id: u64) -> String {
    STARTED.fetch_add(1, Ordering::SeqCst);
    sleep(Duration::from_millis(10 * id)).await;
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

    // A task that panics is planned here: the program reports it itself.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    // Each task starts at once, on any worker, whether awaited or not.
    let handles: Vec<_> = (2..=4).map(|id| tokio::spawn(look_up(id))).collect();
    for (id, handle) in (2..).zip(handles) {
        match handle.await {
            Ok(record) => println!("task {id}: returned {record:?}"),
            Err(e) => println!("task {id}: {}", failure(e)),
        }
    }
    panic::set_hook(default_hook);
}

fn failure(error: JoinError) -> String {
    if error.is_cancelled() {
        return "cancelled".into();
    }
    let payload: Box<dyn Any + Send> = error.into_panic();
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

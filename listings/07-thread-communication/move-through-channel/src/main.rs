//! S8.1: the notes pass object references between threads. The first way:
//! give the object away. A batch of lines moves through a channel to a
//! worker thread and its result comes back the same way; what moves is the
//! Vec (pointer, length, capacity), not its heap buffer, and the sender cannot touch the
//! batch once it is sent (does-not-compile/use-after-send.rs).

use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;

use anyhow::{Context, Result, anyhow};
use clap::Parser;

/// Move a value to another thread through a channel.
#[derive(Parser)]
struct Args {}

fn main() -> ExitCode {
    Args::parse(); // no options; answers --help
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("move-through-channel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: run
fn run() -> Result<()> {
    let (to_worker, batches) = mpsc::channel::<Vec<String>>();
    let (to_main, results) = mpsc::channel::<(usize, Vec<String>)>();
    let worker = thread::spawn(move || {
        // The worker owns each batch it receives: it may change it freely,
        // with no lock, because no other thread can reach it any more.
        for mut batch in batches {
            let address = batch.as_ptr().addr();
            // In place: to_uppercase() would allocate a new String per line.
            batch
                .iter_mut()
                .for_each(|line| line.make_ascii_uppercase());
            if to_main.send((address, batch)).is_err() {
                break; // main has stopped listening
            }
        }
    });

    let batch: Vec<String> = ["get /", "get /about"].map(String::from).into();
    let sent_from = batch.as_ptr().addr();
    to_worker.send(batch).context("the worker has ended")?;
    // `batch` is gone from this thread: using it here does not compile.
    let (seen_at, back) = results.recv().context("the worker has ended")?;
    println!("the worker changed the batch it owned: {back:?}");
    println!(
        "the Vec's heap buffer all the way, never copied: {}",
        sent_from == seen_at && seen_at == back.as_ptr().addr()
    );

    drop(to_worker); // no more batches: the worker's loop ends
    worker.join().map_err(|_| anyhow!("the worker panicked"))?;
    println!("the worker has ended; main owns the batch it got back");
    Ok(())
}
// ANCHOR_END: run

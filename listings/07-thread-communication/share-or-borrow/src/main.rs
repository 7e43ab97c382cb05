//! S8.1: the notes pass object references between threads. Two more ways:
//! share ownership (Arc, counted by strong_count), and lend with a scope
//! (thread::scope), which lets threads borrow the caller's locals. Rc and a
//! RefCell shared between threads do not compile (does-not-compile/).

use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::thread;

use anyhow::{Result, anyhow};
use clap::Parser;

/// Share a value with Arc, or lend it to scoped threads.
#[derive(Parser)]
struct Args {}

fn main() -> ExitCode {
    Args::parse(); // no options; answers --help
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("share-or-borrow: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    shared()?;
    borrowed()
}

// ANCHOR: shared
/// Three threads own one list of routes together; the list lives until the
/// last owner lets go.
fn shared() -> Result<()> {
    let routes = Arc::new(vec!["/".to_string(), "/about".to_string()]);
    println!("owners before the threads: {}", Arc::strong_count(&routes));
    // The workers wait here after their work, still owning their clones,
    // so the count below is the same on every run.
    let done = Arc::new(Barrier::new(4));
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let (routes, done) = (Arc::clone(&routes), Arc::clone(&done));
            thread::spawn(move || {
                let route = &routes[i % routes.len()];
                done.wait();
                route.len()
            })
        })
        .collect();
    println!("owners while 3 threads run: {}", Arc::strong_count(&routes));
    done.wait();
    let mut lengths = Vec::new();
    for worker in workers {
        lengths.push(worker.join().map_err(|_| anyhow!("a worker panicked"))?);
    }
    println!("the threads read lengths {lengths:?}");
    println!("owners after join: {}", Arc::strong_count(&routes));
    Ok(())
}
// ANCHOR_END: shared

// ANCHOR: borrowed
/// Scoped threads borrow a local: no Arc, no count, no clone. The scope
/// ends only when they all have, so the borrow cannot outlive `sizes`.
fn borrowed() -> Result<()> {
    let mut sizes = vec![512_u64, 2048, 128, 4096];
    let (front, back) = sizes.split_at(2);
    let (a, b) = thread::scope(|s| {
        let a = s.spawn(|| front.iter().sum::<u64>());
        let b = s.spawn(|| back.iter().sum::<u64>());
        (a.join(), b.join())
    });
    let panicked = |_| anyhow!("a scoped thread panicked");
    let (a, b) = (a.map_err(panicked)?, b.map_err(panicked)?);
    println!("scoped threads summed {a} + {b}");
    // Every borrow has ended with the scope: `sizes` may change again.
    sizes.push(1);
    println!("and main changes the vector again: {sizes:?}");
    Ok(())
}
// ANCHOR_END: borrowed

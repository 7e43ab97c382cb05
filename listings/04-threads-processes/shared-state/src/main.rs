//! S3.4: the notes' threads sharing globals, the Rust way: scoped threads
//! borrow the caller's locals, and Arc with Mutex shares a value with threads
//! that may outlive the caller. The version with no synchronisation does not
//! compile: see does-not-compile/unsynchronised.rs.

use std::sync::{Arc, Mutex};
use std::thread;

use clap::Parser;

/// Threads share data: scoped threads borrow, Arc and Mutex share.
#[derive(Parser)]
struct Args {}

fn main() {
    Args::parse(); // no options; answers --help
    scoped();
    shared();
}

// ANCHOR: scoped
/// Each thread borrows one element of a local vector, mutably: no two
/// threads can reach the same element, and the compiler checks that.
fn scoped() {
    let pages = ["index.html", "about.html", "news.html"];
    let mut sizes = vec![0; pages.len()];
    thread::scope(|s| {
        for (page, size) in pages.iter().zip(sizes.iter_mut()) {
            s.spawn(move || *size = page.len());
        }
    }); // every thread has ended here, so `sizes` is ours again
    println!("scoped threads filled in {sizes:?}");
}
// ANCHOR_END: scoped

// ANCHOR: shared
/// Threads from `thread::spawn` may outlive this function, so they cannot
/// borrow its locals: they share ownership of one counter (Arc), and take
/// turns changing it (Mutex).
fn shared() {
    let visits = Arc::new(Mutex::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let visits = Arc::clone(&visits);
            thread::spawn(move || {
                for _ in 0..1000 {
                    *visits.lock().expect("no thread panics holding it") += 1;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("the worker does not panic");
    }
    let total = *visits.lock().expect("no thread panics holding it");
    println!("4 threads x 1000 visits under a Mutex: {total}");
}
// ANCHOR_END: shared

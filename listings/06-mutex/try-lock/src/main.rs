//! S5.1: the notes' "不能重复上锁", a lock cannot be taken twice. try_lock
//! shows it without blocking: it returns WouldBlock while another thread
//! holds the lock, and while this thread does. A second lock() in the
//! thread that holds it would never return, so this program never calls it.

use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::{Mutex, TryLockError};
use std::thread;

use anyhow::{Context, Result, anyhow};
use clap::Parser;

/// try_lock while another thread holds the lock, and locking it twice.
#[derive(Parser)]
struct Args {}

fn main() -> ExitCode {
    Args::parse(); // no options; answers --help
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("try-lock: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: other
fn run() -> Result<()> {
    let lock = Mutex::new(0_u64);
    // The holder says "locked" on one channel; main says "release" on the
    // other, by dropping its sender.
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    // `move` below moves this reference into the thread, not the Mutex:
    // main keeps using `lock`.
    let shared = &lock;
    thread::scope(|s| {
        s.spawn(move || {
            let _guard = shared.lock().expect("nobody panics holding it");
            let _ = locked_tx.send(());
            // Hold the guard until main drops release_tx.
            let _ = release_rx.recv();
        });
        // The holder has the lock now, and keeps it until released.
        locked_rx.recv().context("the holder thread ended early")?;
        println!("another thread holds it: try_lock() is {}", attempt(&lock));
        drop(release_tx);
        // The closure's error type, which the `?` above cannot name alone.
        anyhow::Ok(())
    })?;
    // The scope has joined the holder, so its guard is gone.
    println!("that thread has ended:   try_lock() is {}", attempt(&lock));
    // ANCHOR_END: other

    // ANCHOR: same
    let guard = lock.lock().map_err(|_| anyhow!("poisoned"))?;
    // lock() here would never return ("might panic or deadlock", says std):
    // try_lock() asks the same question without waiting for the answer.
    println!("this thread holds it:    try_lock() is {}", attempt(&lock));
    drop(guard);
    println!("this thread dropped it:  try_lock() is {}", attempt(&lock));
    Ok(())
}

/// try_lock's answer, named: the guard it returns is dropped at once.
fn attempt(lock: &Mutex<u64>) -> &'static str {
    match lock.try_lock() {
        Ok(_guard) => "Ok(guard)",
        Err(TryLockError::WouldBlock) => "Err(WouldBlock)",
        Err(TryLockError::Poisoned(_)) => "Err(Poisoned)",
    }
}
// ANCHOR_END: same

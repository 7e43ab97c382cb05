//! S3.2, S3.4: the notes' thread demo, made to list its live threads: 100
//! named threads, each started with arguments, then joined, each returning
//! its result through its JoinHandle; the live threads listed while all the
//! workers run (a report that each has started, and a gate, make sure they
//! are all alive then) and after. thread-plain is the demo without the list.

use std::io;
use std::process::ExitCode;
use std::sync::{Arc, RwLock, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use clap::Parser;

/// Start 100 threads with arguments, join them, and list the live threads.
#[derive(Parser)]
struct Args {}

fn main() -> ExitCode {
    Args::parse(); // no options; answers --help
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thread-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The notes pass `args=(i,)` and `kwargs={"m": "q"}`; in Rust a thread
/// gets whatever its closure captures, and named fields say what each is.
struct Request {
    number: u32,
    mode: &'static str,
}

/// The work each thread does: here, it only describes its request.
fn request(params: Request) -> String {
    format!("request {} (mode {})", params.number, params.mode)
}

// ANCHOR: run
fn run() -> io::Result<()> {
    // Each worker reports that it has started (and so carries its name),
    // then waits at a gate until main has listed the threads: all of them
    // are alive and named when it does. The gate is a write lock held by
    // main; each worker takes a read lock.
    let (ready, started) = mpsc::channel();
    let gate = Arc::new(RwLock::new(()));
    let closed = gate.write().expect("a new lock is not poisoned");

    let mut workers: Vec<JoinHandle<String>> = Vec::new();
    for i in 0..100 {
        let params = Request {
            number: i,
            mode: "q",
        };
        let (gate, ready) = (Arc::clone(&gate), ready.clone());
        let worker = thread::Builder::new().name(format!("worker-{i}")).spawn(
            move || {
                let _ = ready.send(());
                let _open = gate.read();
                request(params)
            },
        )?;
        workers.push(worker);
    }
    for _ in &workers {
        started.recv().expect("every worker reports once");
    }
    println!("started {} threads", workers.len());
    list_live_threads("while the workers run");
    drop(closed);

    let mut results = Vec::new();
    for worker in workers {
        match worker.join() {
            Ok(result) => results.push(result),
            Err(_) => println!("a worker panicked"),
        }
    }
    println!("joined them: {} results", results.len());
    if let (Some(first), Some(last)) = (results.first(), results.last()) {
        println!("  first: {first}");
        println!("  last:  {last}");
    }
    // join returns once a thread has run its last line; the kernel drops
    // it from its list a moment later.
    wait_until_alone();
    list_live_threads("after join");
    Ok(())
}
// ANCHOR_END: run

/// Waits, at most a second, until the kernel lists this thread alone.
fn wait_until_alone() {
    let deadline = Instant::now() + Duration::from_secs(1);
    let listed =
        || std::fs::read_dir("/proc/self/task").map_or(1, |t| t.count());
    while listed() > 1 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
}

// ANCHOR: list
/// Python's `threading.enumerate()`. Rust's std has no list of threads;
/// on Linux the kernel keeps one, in /proc/self/task, with each name.
fn list_live_threads(when: &str) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        println!("live threads {when}: (needs Linux's /proc)");
        return;
    };
    let mut names: Vec<String> = tasks
        .flatten()
        .filter_map(|task| {
            std::fs::read_to_string(task.path().join("comm")).ok()
        })
        .map(|name| name.trim_end().to_string())
        .collect();
    names.sort_by_key(|name| {
        let number = name.strip_prefix("worker-").and_then(|n| n.parse().ok());
        (number.is_some(), number.unwrap_or(0))
    });
    let shown = match names.as_slice() {
        [first, second, .., last] if names.len() > 4 => {
            format!("{first}, {second}, ..., {last}")
        }
        all => all.join(", "),
    };
    println!("live threads {when}: {} ({shown})", names.len());
}
// ANCHOR_END: list

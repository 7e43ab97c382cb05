//! S3.2, S3.4: the notes' thread demo, as a reader would first write it:
//! 100 threads, each started with its arguments, then joined, each
//! returning its result through its JoinHandle.

use std::process::ExitCode;
use std::thread;

use clap::Parser;

/// Start 100 threads with arguments, join them, and print their results.
#[derive(Parser)]
struct Args {}

// ANCHOR: params
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
// ANCHOR_END: params

// ANCHOR: main
fn main() -> ExitCode {
    Args::parse(); // no options; answers --help
    let mut workers = Vec::new();
    for i in 0..100 {
        let params = Request {
            number: i,
            mode: "q",
        };
        // `move`: the thread owns its params; spawn starts it at once.
        workers.push(thread::spawn(move || request(params)));
    }
    println!("started {} threads", workers.len());

    let mut results = Vec::new();
    for worker in workers {
        // join waits for that thread to end, and hands back what it returned
        // (or Err, if it panicked).
        match worker.join() {
            Ok(result) => results.push(result),
            Err(_) => {
                eprintln!("thread-plain: a worker panicked");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("joined them: {} results", results.len());
    if let (Some(first), Some(last)) = (results.first(), results.last()) {
        println!("  first: {first}");
        println!("  last:  {last}");
    }
    ExitCode::SUCCESS
}
// ANCHOR_END: main

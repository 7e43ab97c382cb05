//! S3.3: the notes' other way to make a thread: a class that derives from
//! Thread and implements `run`. In Rust: a struct that holds what the thread
//! needs, a `run` method, and a `start` that hands it to thread::Builder.

use std::io;
use std::process::ExitCode;
use std::thread::{self, JoinHandle};

use clap::Parser;

/// Downloader threads, each a type of its own with a name.
#[derive(Parser)]
struct Args {}

// ANCHOR: downloader
/// What one thread needs, owned by that thread once it starts.
struct Downloader {
    name: String,
    pages: Vec<&'static str>,
}

impl Downloader {
    /// Starts a named thread that runs `self.run()`; the JoinHandle
    /// carries its result back.
    fn start(self) -> io::Result<JoinHandle<String>> {
        thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || self.run())
    }

    /// The thread's body, as the notes' `run`.
    fn run(self) -> String {
        let me = thread::current();
        let name = me.name().unwrap_or("unnamed");
        format!(
            "{name} fetched {} pages: {}",
            self.pages.len(),
            self.pages.join(", ")
        )
    }
}
// ANCHOR_END: downloader

// ANCHOR: main
fn main() -> ExitCode {
    Args::parse(); // no options; answers --help
    let downloaders = [
        Downloader {
            name: "news".into(),
            pages: vec!["front", "sport"],
        },
        Downloader {
            name: "docs".into(),
            pages: vec!["intro", "api", "faq"],
        },
    ];
    let mut started = Vec::new();
    for downloader in downloaders {
        match downloader.start() {
            Ok(handle) => started.push(handle),
            Err(e) => {
                eprintln!("thread-struct: cannot start a thread: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // Results print in the order the threads were started, whichever
    // finished first.
    for handle in started {
        match handle.join() {
            Ok(report) => println!("{report}"),
            Err(_) => println!("a downloader panicked"),
        }
    }
    ExitCode::SUCCESS
}
// ANCHOR_END: main

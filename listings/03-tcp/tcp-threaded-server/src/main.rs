//! S2.6, grown up: the program around the library's server.

use std::process::ExitCode;

use clap::Parser;
use tcp_threaded_server::{Args, run};

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcp-threaded-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! S11.1: the program around the library's async echo server.

use std::process::ExitCode;

use clap::Parser;
use echo_server::{Args, run};

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

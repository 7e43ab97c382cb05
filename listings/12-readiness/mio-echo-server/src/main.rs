//! Beyond the notes: the program around the library's echo server on mio.

use std::process::ExitCode;

use clap::Parser;
use mio_echo_server::{Args, run};

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mio-echo-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

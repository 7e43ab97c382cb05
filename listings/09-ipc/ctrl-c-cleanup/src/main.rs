//! S7.1-S7.6: the way chapter 9's listings clean up on Ctrl-C, in a program
//! that does nothing else. It makes a directory with a file in it, waits,
//! and removes the directory when it ends: after its wait, on an error, or on
//! Ctrl-C, SIGTERM or SIGHUP, after which it ends by that signal. (Not on
//! SIGKILL, or any other signal left to its default action: nothing runs
//! then.)

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use ctrl_c_cleanup::{RunDir, catch_stop_signals, end_if_stopped, stopped};

/// Makes a directory, waits, and removes it, also on Ctrl-C, SIGTERM or
/// SIGHUP.
#[derive(Parser)]
struct Args {
    /// Where to make the directory.
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
    /// How long to wait, in seconds, for a Ctrl-C that may not come.
    #[arg(long, default_value_t = 60)]
    #[arg(value_parser = clap::value_parser!(u64).range(0..=3600))]
    wait: u64,
}

// ANCHOR: main
fn main() -> ExitCode {
    let args = Args::parse();
    let result = catch_stop_signals().and_then(|()| run(&args));
    // Every guard of `run` has run by now: the directory is gone.
    end_if_stopped();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctrl-c-cleanup: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<()> {
    let dir = RunDir::create(&args.dir, "ctrl-c-cleanup")?;
    fs::write(dir.path().join("data.txt"), "some data\n")
        .context("cannot write in the directory")?;
    println!("made {}", dir.path().display());
    let _dir = Announced(Some(dir));
    println!("waiting {} s: Ctrl-C to stop", args.wait);
    // A stored signal interrupts nothing: wait in glances, and look
    // between two of them.
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    while Instant::now() < deadline {
        stopped()?;
        thread::sleep(Duration::from_millis(50));
    }
    println!("waited");
    Ok(())
}

/// The run's directory, and a word once it is gone.
struct Announced(Option<RunDir>);

impl Drop for Announced {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let path = dir.path().to_path_buf();
            drop(dir);
            if !path.exists() {
                // After SIGHUP the terminal may be gone, and a write to it
                // fail: `println!` would panic, so the failure is ignored.
                let _ = writeln!(io::stdout(), "removed {}", path.display());
            }
        }
    }
}
// ANCHOR_END: main

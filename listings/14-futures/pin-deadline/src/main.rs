//! Beyond the notes: one deadline for a whole loop of reads. The deadline
//! is a tokio Sleep, pinned once with std::pin::pin! so that select! can
//! poll it through `&mut` on every turn of the loop without moving it.

use std::pin::pin;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::time::sleep;

/// Reads lines from a peer that sends a few and then goes quiet, until
/// one deadline for the whole conversation passes.
#[derive(Parser)]
struct Args {
    /// How many lines the peer sends before it goes quiet.
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u32).range(0..=1000))]
    lines: u32,
    /// The deadline for the whole conversation, in milliseconds.
    #[arg(long, default_value_t = 100)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=60_000))]
    deadline_ms: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pin-deadline: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn run(args: &Args) -> anyhow::Result<()> {
    // The peer's end stays open and silent after its lines, as a client
    // that stopped typing: only the deadline ends the wait.
    let (mut peer, near) = tokio::io::duplex(64 * 1024);
    for n in 1..=args.lines {
        peer.write_all(format!("line {n}\n").as_bytes())
            .await
            .context("cannot write to the peer's end")?;
    }
    let deadline = Duration::from_millis(args.deadline_ms);
    let received = read_until(near, deadline).await?;
    println!(
        "the deadline ({} ms) passed; lines received: {received}",
        deadline.as_millis()
    );
    Ok(())
}

// ANCHOR: read_until
async fn read_until(
    near: DuplexStream,
    deadline: Duration,
) -> anyhow::Result<u32> {
    let mut lines = BufReader::new(near).lines();
    // Made once, before the loop: every turn waits for the same instant. A
    // Sleep must not move once polled, so it is pinned here, in place.
    let mut deadline = pin!(sleep(deadline));
    let mut received = 0;
    loop {
        tokio::select! {
            // Lines already waiting come first, whatever the clock says.
            biased;
            line = lines.next_line() => match line.context("cannot read a line")? {
                Some(line) => {
                    received += 1;
                    println!("received: {line}");
                }
                None => anyhow::bail!("the peer closed the connection"),
            },
            () = &mut deadline => return Ok(received),
        }
    }
}
// ANCHOR_END: read_until

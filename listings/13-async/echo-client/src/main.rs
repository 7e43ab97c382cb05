//! S11.1: a client for the echo server. It opens many connections at once and
//! gives each a task that sends lines, checks every echo, then shuts down its
//! writing side and waits for the server to close; every network operation
//! has a timeout.

use std::io::{self, ErrorKind};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Talk to an echo server over many connections at once, checking each echo.
#[derive(Parser)]
struct Args {
    /// The echo server's host:port, a name or an IP address.
    #[arg(long, default_value = "127.0.0.1:7777")]
    server: String,
    /// Connections to open, all at once.
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=1000))]
    connections: u32,
    /// Lines each connection sends.
    #[arg(long, default_value_t = 3)]
    messages: u32,
    /// Seconds to wait for any one network operation.
    #[arg(long, default_value_t = 10)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    wait: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo-client: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(talk(args))
}

// ANCHOR: talk
async fn talk(args: Args) -> Result<()> {
    let wait = Duration::from_secs(args.wait);
    let mut streams = Vec::new();
    for _ in 0..args.connections {
        // A name is resolved on tokio's blocking pool, and each of its
        // addresses tried in turn; the timeout covers both.
        let stream = within(wait, TcpStream::connect(args.server.as_str()))
            .await
            .with_context(|| format!("cannot connect to {}", args.server))?;
        streams.push(stream);
    }
    // All are open: now they talk at once, a task each.
    let tasks: Vec<_> = (1..)
        .zip(streams)
        .map(|(id, stream)| {
            tokio::spawn(converse(stream, id, args.messages, wait))
        })
        .collect();
    // Awaiting in connection order prints in that order, whatever order
    // the tasks finish in.
    let mut failed = 0;
    for (id, task) in (1..).zip(tasks) {
        match task.await? {
            Ok(()) => println!("connection {id}: all echoes match, then EOF"),
            Err(e) => {
                failed += 1;
                println!("connection {id}: {e:#}");
            }
        }
    }
    let (connections, messages) = (args.connections, args.messages);
    if failed > 0 {
        bail!("{failed} of {connections} connections failed");
    }
    println!("{connections} connections, {messages} lines each: all echoed");
    Ok(())
}
// ANCHOR_END: talk

// ANCHOR: converse
async fn converse(
    stream: TcpStream,
    id: u32,
    messages: u32,
    wait: Duration,
) -> Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut echo = Vec::new();
    for n in 1..=messages {
        let line = format!("line {n} from connection {id}\n");
        within(wait, writer.write_all(line.as_bytes()))
            .await
            .context("cannot send")?;
        echo.clear();
        within(wait, reader.read_until(b'\n', &mut echo))
            .await
            .context("no echo")?;
        if echo != line.as_bytes() {
            let echo = String::from_utf8_lossy(&echo);
            bail!("sent {line:?}, got back {echo:?}");
        }
    }
    // Half-close: the server reads the end of our lines, and closes its side.
    within(wait, writer.shutdown())
        .await
        .context("cannot shut down")?;
    let mut rest = Vec::new();
    within(wait, reader.read_to_end(&mut rest))
        .await
        .context("the server did not close")?;
    if !rest.is_empty() {
        bail!("{} bytes more than were sent", rest.len());
    }
    Ok(())
}

/// A network operation, given `wait` at most.
async fn within<T>(
    wait: Duration,
    operation: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    timeout(wait, operation).await.unwrap_or_else(|_| {
        let secs = wait.as_secs();
        Err(io::Error::new(
            ErrorKind::TimedOut,
            format!("no answer in {secs} s"),
        ))
    })
}
// ANCHOR_END: converse

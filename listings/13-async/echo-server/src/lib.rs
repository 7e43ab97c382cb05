//! S11.1: the async counterpart of chapter 3's threaded server. Every
//! connection is a task, not a thread; each line a client sends comes back to
//! it. A client that takes too long over a line or its echo, resets, sends too
//! long a line or shuts down its side ends its own connection, with a line in
//! the log saying how. Ctrl-C or SIGTERM stops the server gracefully: it
//! finishes and echoes every line it has begun to read, then closes; a second
//! signal stops it at once. A library as well as a program, so that chapter 13's C10K
//! measurement runs this very server.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use mio_echo_server::{is_reset, lines, reset};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};
use tokio::time::timeout;

/// Echo every line each client sends, many clients at once, on tokio.
// A few numbers: each connection's task gets its own copy.
#[derive(Parser, Clone, Copy)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7777")]
    bind: SocketAddr,
    /// Connections the kernel may queue before `accept` takes them.
    #[arg(long, default_value_t = 1024)]
    #[arg(value_parser = clap::value_parser!(i32).range(1..))]
    backlog: i32,
    /// Seconds a client has to send each whole line, and to take each echo,
    /// before the server hangs up.
    #[arg(long, default_value_t = 60)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    idle: u64,
    /// The longest line echoed, in bytes, newline included.
    #[arg(long, default_value_t = 1024)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    max_line: u64,
    /// Seconds the connections get to finish after Ctrl-C or SIGTERM; a
    /// second signal ends them at once.
    #[arg(long, default_value_t = 10)]
    grace: u64,
    /// Print only the address, errors and the shutdown summary, not a line
    /// per connection (for load tests).
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: Args) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(args))
}

// ANCHOR: serve
async fn serve(args: Args) -> Result<()> {
    // Before "listening on": from then on, a signal must mean "shut down
    // gracefully", never the default, which kills the process.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let listener = listen(args.bind, args.backlog)
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    println!("listening on {}", listener.local_addr()?);

    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut served = 0;
    let signal = loop {
        tokio::select! {
            _ = interrupt.recv() => break "SIGINT",
            _ = terminate.recv() => break "SIGTERM",
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    served += 1;
                    if !args.quiet {
                        println!("{peer} connected");
                    }
                    let stopped = stopped.clone();
                    connections.spawn(async move {
                        (peer, echo(stream, args, stopped).await)
                    });
                }
                Err(e) => {
                    // Out of descriptors, say: let connections end, not spin.
                    println!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap each connection as it ends, so that the set holds only
            // open ones, and log how it ended.
            Some(ended) = connections.join_next() => log(ended, args.quiet),
        }
    };
    // ANCHOR_END: serve

    // ANCHOR: shutdown
    // Closing the listener refuses new clients, and resets those the kernel
    // has queued but `accept` has not taken yet.
    drop(listener);
    let open = connections.len();
    println!("{signal}: stopped accepting; open connections: {open}");
    stop.send_replace(true);
    // Wait for them all, but no longer than the grace period, and not at
    // all after a second signal: whoever sends it wants the server gone.
    let grace = tokio::time::sleep(Duration::from_secs(args.grace));
    tokio::pin!(grace);
    let cut_short = loop {
        tokio::select! {
            ended = connections.join_next() => match ended {
                Some(ended) => log(ended, args.quiet),
                None => break None, // every connection has finished
            },
            _ = &mut grace => {
                break Some(format!("the {} s grace period is over", args.grace))
            }
            _ = interrupt.recv() => break Some("SIGINT again".to_string()),
            _ = terminate.recv() => break Some("SIGTERM again".to_string()),
        }
    };
    let aborted = connections.len();
    if let Some(why) = cut_short {
        println!("{why}: aborting the {aborted} still open");
    }
    connections.shutdown().await; // aborts them, and waits until they are gone
    println!(
        "shut down: {served} served; open at shutdown: {open}, \
         finished: {}, aborted: {aborted}",
        open - aborted
    );
    Ok(())
}
// ANCHOR_END: shutdown

/// Chapter 12's listener, with the backlog chosen, handed to tokio.
fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    TcpListener::from_std(mio_echo_server::listen(addr, backlog)?)
}

fn log(
    ended: Result<(SocketAddr, io::Result<String>), JoinError>,
    quiet: bool,
) {
    match ended {
        Ok((_, Ok(_))) if quiet => {}
        Ok((peer, Ok(end))) => println!("{peer} {end}"),
        Ok((peer, Err(e))) => println!("{peer}: {e}"),
        Err(e) => println!("a connection's task failed: {e}"),
    }
}

// ANCHOR: echo
/// Echoes one client's lines until it leaves or the server stops; returns how
/// the connection ended.
async fn echo(
    stream: TcpStream,
    args: Args,
    mut stop: watch::Receiver<bool>,
) -> io::Result<String> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let idle = Duration::from_secs(args.idle);
    // One byte more than allowed, to tell "too long" from "just fits".
    let limit = args.max_line + 1;
    let mut line = Vec::new();
    let mut echoed = 0;
    let mut stopping = false;
    loop {
        // The limit counts what `line` already holds: a read that select!
        // dropped may have left the start of a line there. (An async block,
        // so that the `take` adapter lives as long as the read.)
        let room = limit - line.len() as u64;
        let read = async {
            (&mut reader).take(room).read_until(b'\n', &mut line).await
        };
        tokio::select! {
            // A deadline for the whole line, not for each read: a client
            // that sends a byte at a time cannot hold the task for ever.
            read = timeout(idle, read) => match read {
                Err(_) => {
                    let idle = args.idle;
                    let end = format!("sent no whole line in {idle} s");
                    return Ok(end + "; hanging up");
                }
                Ok(Err(e)) if is_reset(&e) => return Ok(reset(echoed)),
                // What `line` now holds tells the rest, not the count read.
                Ok(read) => {
                    read?;
                }
            },
            _ = stop.changed(), if !stopping => {
                stopping = true;
                // Bytes already received are a line in progress: finish it.
                if line.is_empty() && reader.buffer().is_empty() {
                    let echoed = lines(echoed);
                    let end = format!("closed at shutdown after {echoed}");
                    return linger(reader, writer, end).await;
                }
                continue;
            }
        };
        // ANCHOR_END: echo
        // ANCHOR: ends
        if line.ends_with(b"\n") {
            // A client that does not read its echoes gets `idle` too.
            match timeout(idle, writer.write_all(&line)).await {
                Err(_) => {
                    let idle = args.idle;
                    return Ok(format!(
                        "read no echo for {idle} s; hanging up"
                    ));
                }
                // Bytes sent before a reset stay readable: a line may be
                // read whole, and then its echo meets the reset.
                Ok(Err(e)) if is_reset(&e) => {
                    let next = echoed + 1;
                    let end = reset(echoed);
                    return Ok(format!("{end}; line {next} not echoed"));
                }
                Ok(written) => written?,
            }
            echoed += 1;
            line.clear();
            // Stopping: every line already received is finished too.
            if stopping && reader.buffer().is_empty() {
                let echoed = lines(echoed);
                let end = format!("finished at shutdown after {echoed}");
                return linger(reader, writer, end).await;
            }
        } else if line.len() as u64 == limit {
            let max = args.max_line;
            return Ok(format!("sent a line over {max} bytes; hanging up"));
        } else {
            // Short of both the newline and the limit: the end of the stream.
            // The client has shut down its side; every whole line is echoed.
            let mut end = format!("closed its side after {}", lines(echoed));
            if !line.is_empty() {
                end += &format!(", mid-line ({} bytes dropped)", line.len());
            }
            return match writer.shutdown().await {
                Ok(()) => Ok(format!("{end}; closed ours")),
                Err(e) if is_reset(&e) => Ok(format!("{end}; then it reset")),
                Err(e) => Err(e),
            };
        }
        // ANCHOR_END: ends
    }
}

// ANCHOR: linger
/// Closes at shutdown, with every echo sent: shuts down our side, so that the
/// client reads the end of the stream after the last echo, then reads what
/// it still sends until it closes too (or the grace period ends). Closing
/// with unread bytes would send a reset instead, and the client's system may
/// then throw away echoes it has received but not yet read.
async fn linger(
    mut reader: BufReader<OwnedReadHalf>,
    mut writer: OwnedWriteHalf,
    end: String,
) -> io::Result<String> {
    let drained = async {
        writer.shutdown().await?;
        tokio::io::copy(&mut reader, &mut tokio::io::sink()).await
    };
    match drained.await {
        Ok(0) => Ok(end),
        Ok(n) => Ok(format!("{end}; {n} bytes after that discarded")),
        Err(e) if is_reset(&e) => Ok(format!("{end}; then it reset")),
        Err(e) => Err(e),
    }
}
// ANCHOR_END: linger

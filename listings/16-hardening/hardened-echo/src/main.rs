//! Beyond the notes: chapter 13's echo server in its idiomatic, production
//! form. tokio-util's `LinesCodec` frames the lines, with a maximum length; a
//! `Semaphore` caps the connections served at once (the rest wait in the
//! kernel's listen queue); a `CancellationToken` and a `TaskTracker` stop it
//! gracefully on Ctrl-C or SIGTERM; every connection logs through `tracing`,
//! in a span that names it.

use std::io::{ErrorKind, IsTerminal};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use mio_echo_server::{is_reset, lines, reset};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout;
use tokio_util::codec::{Framed, LinesCodec, LinesCodecError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Level, debug, info, info_span, warn};

/// Echo every line each client sends: framed, capped, traced, and stopped
/// gracefully on Ctrl-C or SIGTERM.
// A few numbers: each connection's task gets its own copy.
#[derive(Parser, Clone, Copy)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7777")]
    bind: SocketAddr,
    /// Connections served at once; the next ones wait in the kernel's listen
    /// queue until one ends.
    #[arg(long, default_value_t = 100)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_connections: u32,
    /// The longest line echoed, in bytes, newline not included.
    #[arg(long, default_value_t = 1024)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=1 << 20))]
    max_line: u32,
    /// Seconds a client has to send each whole line, and to take each echo,
    /// before the server hangs up.
    #[arg(long, default_value_t = 60)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle: u64,
    /// Seconds the connections get to finish after Ctrl-C or SIGTERM; a
    /// second signal cuts them off at once.
    #[arg(long, default_value_t = 10)]
    grace: u64,
    /// Log every line echoed too (tracing's DEBUG level).
    #[arg(long)]
    verbose: bool,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hardened-echo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: subscriber
fn run(args: Args) -> Result<()> {
    // No timestamps: a service manager (journald, Docker) stamps each line
    // already. Nor the module path of each event: this program has one.
    tracing_subscriber::fmt()
        .with_max_level(if args.verbose {
            Level::DEBUG
        } else {
            Level::INFO
        })
        .without_time()
        .with_target(false)
        .with_ansi(colours())
        .init();
    let runtime = tokio::runtime::Runtime::new()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(args))
}

/// Colours for a terminal only, not for a file or a pipe, and not when
/// `NO_COLOR` asks for none (the check that `with_ansi` replaces).
fn colours() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    std::io::stdout().is_terminal() && !no_color
}
// ANCHOR_END: subscriber

// ANCHOR: serve
async fn serve(args: Args) -> Result<()> {
    // Before "listening on": from then on, a signal must mean "shut down
    // gracefully", never the default, which kills the process.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let listener = TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    println!("listening on {}", listener.local_addr()?);

    let cap = args.max_connections as usize;
    let permits = Arc::new(Semaphore::new(cap));
    let stop = CancellationToken::new(); // finish what you have begun
    let cut = CancellationToken::new(); // the grace period is over
    let cut_off = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let tracker = TaskTracker::new();
    let mut served: u64 = 0;
    let signal = loop {
        // The permit first: at the cap, the server stops calling accept,
        // and the next clients wait in the kernel's queue, not in ours.
        let next = async {
            let permit = acquire(&permits, cap, served + 1).await;
            (permit, listener.accept().await)
        };
        let (permit, accepted) = tokio::select! {
            _ = interrupt.recv() => break "SIGINT",
            _ = terminate.recv() => break "SIGTERM",
            next = next => next,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, say: let connections end, not spin.
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        served += 1;
        let now_open = open.fetch_add(1, Ordering::Relaxed) + 1;
        // ANCHOR: span
        let span = info_span!("conn", id = served, %peer);
        span.in_scope(|| info!(open = now_open, "connected"));
        let (stop, cut) = (stop.clone(), cut.clone());
        let (open, cut_off) = (open.clone(), cut_off.clone());
        tracker.spawn(
            async move {
                let end = tokio::select! {
                    end = echo(stream, args, stop) => end,
                    () = cut.cancelled() => {
                        cut_off.fetch_add(1, Ordering::Relaxed);
                        Ok("cut off before it finished".into())
                    }
                };
                // Counted out before the line that says so, and the place
                // freed after it: the log's order and counts are exact.
                open.fetch_sub(1, Ordering::Relaxed);
                match end {
                    Ok(end) => info!("{end}"),
                    Err(e) => warn!("{e}"),
                }
                drop(permit);
            }
            .instrument(span),
        );
        // ANCHOR_END: span
    };
    // ANCHOR_END: serve

    // ANCHOR: shutdown
    let turned_away = turn_away(listener, (&tracker, &cut), args, served);
    tracker.close(); // so that `wait` can end: no more tasks to come
    info!("{signal}: stopped accepting; letting the open connections finish");
    stop.cancel();
    let grace = Duration::from_secs(args.grace);
    let cut_short = tokio::select! {
        () = tracker.wait() => None,
        () = tokio::time::sleep(grace) => Some("the grace period is over"),
        _ = interrupt.recv() => Some("SIGINT again"),
        _ = terminate.recv() => Some("SIGTERM again"),
    };
    if let Some(why) = cut_short {
        info!("{why}: cutting off the connections still open");
        cut.cancel();
        tracker.wait().await;
    }
    let cut_off = cut_off.load(Ordering::Relaxed);
    info!(
        "shut down: {served} served, {turned_away} turned away, {cut_off} cut off"
    );
    Ok(())
}
// ANCHOR_END: shutdown

// ANCHOR: turn_away
/// Accepts the clients still waiting in the listen queue, tells each that
/// the server is shutting down, and closes the listener, which refuses new
/// clients from then on. Closed with clients in its queue, it would reset
/// them: they connected, and might have sent a line, but would never know why.
fn turn_away(
    listener: TcpListener,
    (tracker, cut): (&TaskTracker, &CancellationToken),
    args: Args,
    served: u64,
) -> u64 {
    // Out of tokio's hands, the socket is still nonblocking: `accept`
    // returns `WouldBlock` once the queue is empty, and never waits.
    let listener = match listener.into_std() {
        Ok(listener) => listener,
        Err(e) => {
            warn!("cannot take the waiting clients: {e}; they are reset");
            return 0;
        }
    };
    let mut turned_away = 0;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            // One client gone before its turn, or a signal: the next one.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionAborted | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                warn!(
                    "cannot take the waiting clients: {e}; the rest are reset"
                );
                break;
            }
        };
        turned_away += 1;
        let span = info_span!("conn", id = served + turned_away, %peer);
        let tokio = stream.set_nonblocking(true);
        let stream = match tokio.and_then(|()| TcpStream::from_std(stream)) {
            Ok(stream) => stream,
            Err(e) => {
                // Dropped: a reset, if it had sent anything.
                span.in_scope(|| warn!("cannot hand it to tokio: {e}; closed"));
                continue;
            }
        };
        let framed = Framed::new(stream, LinesCodec::new());
        let bye = Some("error: the server is shutting down".to_string());
        let cut = cut.clone();
        let idle = Duration::from_secs(args.idle);
        // Not counted as cut off: that count is of the clients served.
        tracker.spawn(
            async move {
                tokio::select! {
                    () = hang_up(framed, bye, idle) => {
                        info!("waited in the listen queue; told it we are shutting down");
                    }
                    () = cut.cancelled() => {
                        info!("waited in the listen queue; cut off before it closed");
                    }
                }
            }
            .instrument(span),
        );
    }
    turned_away
}
// ANCHOR_END: turn_away

// ANCHOR: acquire
/// A permit to serve connection number `next`; at the cap, says so and waits
/// until a connection ends.
async fn acquire(
    permits: &Arc<Semaphore>,
    cap: usize,
    next: u64,
) -> OwnedSemaphorePermit {
    if let Ok(permit) = permits.clone().try_acquire_owned() {
        return permit;
    }
    info!("{cap} open, the cap: connection {next} waits until one ends");
    // The semaphore is never closed, so the wait ends only with a permit.
    let acquired = permits.clone().acquire_owned().await;
    acquired.unwrap_or_else(|_| unreachable!("the semaphore is never closed"))
}
// ANCHOR_END: acquire

/// A connection read and written a line at a time.
type Lines = Framed<TcpStream, LinesCodec>;

// ANCHOR: echo
/// Echoes one client's lines until it leaves or the server stops; returns how
/// the connection ended.
async fn echo(
    stream: TcpStream,
    args: Args,
    stop: CancellationToken,
) -> Result<String, LinesCodecError> {
    let max = args.max_line as usize;
    let mut framed = Framed::new(stream, LinesCodec::new_with_max_length(max));
    let idle = Duration::from_secs(args.idle);
    let mut echoed = 0;
    let mut stopping = false;
    loop {
        let next = tokio::select! {
            // A deadline for the whole line, however it trickles in. `next`
            // is cancel safe: a partial line stays in the read buffer.
            next = timeout(idle, framed.next()) => next,
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                // Bytes already received are a line in progress: finish it.
                if framed.read_buffer().is_empty() {
                    hang_up(framed, None, idle).await;
                    let echoed = lines(echoed);
                    return Ok(format!("closed at shutdown after {echoed}"));
                }
                continue;
            }
        };
        let line = match next {
            Err(_) => {
                let idle = args.idle;
                return Ok(format!(
                    "sent no whole line in {idle} s; hanging up"
                ));
            }
            Ok(Some(Ok(line))) => line,
            // The end of the stream; a tail without its newline came as a
            // last line. Shut down our side too.
            Ok(None) => {
                let _ = timeout(idle, framed.get_mut().shutdown()).await;
                return Ok(format!("closed its side after {}", lines(echoed)));
            }
            Ok(Some(Err(LinesCodecError::MaxLineLengthExceeded))) => {
                let error = format!("error: a line over {max} bytes");
                hang_up(framed, Some(error), idle).await;
                return Ok(format!(
                    "sent a line over {max} bytes; told it, hung up"
                ));
            }
            Ok(Some(Err(LinesCodecError::Io(e))))
                if e.kind() == ErrorKind::InvalidData =>
            {
                let error = "error: a line that is not UTF-8".to_string();
                hang_up(framed, Some(error), idle).await;
                return Ok(
                    "sent a line that is not UTF-8; told it, hung up".into()
                );
            }
            Ok(Some(Err(LinesCodecError::Io(e)))) if is_reset(&e) => {
                return Ok(reset(echoed));
            }
            Ok(Some(Err(e))) => return Err(e),
        };
        debug!(bytes = line.len(), "echo");
        // A client that does not read its echoes gets `idle` too.
        match timeout(idle, framed.send(line)).await {
            Err(_) => {
                let idle = args.idle;
                return Ok(format!("read no echo for {idle} s; hanging up"));
            }
            // Bytes sent before a reset stay readable: a line may be read
            // whole, and then its echo meets the reset.
            Ok(Err(LinesCodecError::Io(e))) if is_reset(&e) => {
                let next = echoed + 1;
                let end = reset(echoed);
                return Ok(format!("{end}; line {next} not echoed"));
            }
            Ok(sent) => sent?,
        }
        echoed += 1;
        // Stopping: every line already received is finished too.
        if stopping && framed.read_buffer().is_empty() {
            hang_up(framed, None, idle).await;
            return Ok(format!("finished at shutdown after {}", lines(echoed)));
        }
    }
}
// ANCHOR_END: echo

// ANCHOR: hang_up
/// Sends `last`, if any, then closes as chapter 13 did: shuts down our side,
/// so that the client reads the end of the stream after our last line, and
/// discards what it still sends until it closes too. Closing with bytes
/// unread would send a reset, and a reset may destroy our last line before
/// the client reads it.
async fn hang_up(mut framed: Lines, last: Option<String>, idle: Duration) {
    let close = async {
        if let Some(last) = last {
            framed.send(last).await?;
        }
        // `send` has flushed: nothing of ours waits in the write buffer.
        let mut stream = framed.into_inner();
        stream.shutdown().await?;
        tokio::io::copy(&mut stream, &mut tokio::io::sink()).await?;
        Ok::<_, LinesCodecError>(())
    };
    // Whatever happens, the connection is over; the client gets `idle`.
    let _ = timeout(idle, close).await;
}
// ANCHOR_END: hang_up

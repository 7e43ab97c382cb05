//! S2.6, grown up: a thread per connection (up to a cap), so that many
//! clients are served at once; messages are lines of GBK text, each answered
//! with 我收到了; a client that stalls, drips, resets, stops mid-message or
//! sends too much ends its own connection, never the server. A library as well as a program, so
//! that chapter 13's C10K measurement runs this very server.

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use encoding_rs::GBK;
use socket2::{Domain, Protocol, Socket, Type};

/// Serve many TCP clients at once, a line-framed GBK message at a time.
#[derive(Parser)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6666")]
    bind: SocketAddr,
    /// Connections the kernel may queue before `accept` takes them.
    #[arg(long, default_value_t = 128)]
    #[arg(value_parser = clap::value_parser!(i32).range(1..))]
    backlog: i32,
    /// Seconds a client may stay silent before the server hangs up.
    #[arg(long, default_value_t = 60)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    idle: u64,
    /// Seconds a connection may last in all: a client that sends a byte now
    /// and then is never idle, and would otherwise hold its thread for ever.
    #[arg(long, default_value_t = 600)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    deadline: u64,
    /// Clients served at once, each by a thread; more are turned away, so
    /// that a flood of connections cannot exhaust the machine's threads.
    #[arg(long, default_value_t = 1024)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..))]
    max_clients: u32,
    /// The longest message accepted, in bytes.
    #[arg(long, default_value_t = 1024)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    max_line: u64,
    /// Stop accepting after this many clients, and wait for them to finish
    /// (by default, serve for ever).
    #[arg(long)]
    clients: Option<u32>,
    /// Print only the address, not a line per connection and message (for
    /// load tests, where the log would cost more than the serving).
    #[arg(long)]
    quiet: bool,
}

// ANCHOR: run
pub fn run(args: Args) -> Result<()> {
    let listener = listen(args.bind, args.backlog)
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    println!("listening on {}", listener.local_addr()?);
    // The clients being served now, each by a thread.
    let serving = &AtomicU32::new(0);
    let args = &args;
    // Scoped threads may borrow `args`; the scope waits for all of them.
    thread::scope(|scope| {
        let mut accepted = 0;
        while args.clients != Some(accepted) {
            let (stream, peer) = match listener.accept() {
                Ok(connection) => connection,
                Err(e) => {
                    // Out of descriptors, say: give the other connections a
                    // moment to end rather than spin.
                    println!("accept failed: {e}");
                    thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            accepted += 1;
            // Only this loop adds, so the count cannot pass the cap between
            // the check and the increment.
            if serving.load(Ordering::SeqCst) >= args.max_clients {
                println!(
                    "{peer}: already serving --max-clients {}; closing",
                    args.max_clients
                );
                continue;
            }
            let place = Place::take(serving);
            if !args.quiet {
                println!("{peer} connected");
            }
            let spawned =
                thread::Builder::new().spawn_scoped(scope, move || {
                    let end = serve(stream, peer, args);
                    // Give the place back before saying so: a client that
                    // comes after this line must find it free.
                    drop(place);
                    match end {
                        Ok(_) if args.quiet => {}
                        Ok(end) => println!("{peer} {end}"),
                        Err(e) => println!("{peer}: {e}"),
                    }
                });
            // The system may refuse a thread; that costs one connection,
            // and the place comes back with the closure that never ran.
            if let Err(e) = spawned {
                println!("{peer}: no thread for it ({e}); closing");
            }
        }
    });
    Ok(())
}

/// One client's place among the `--max-clients`: given back when dropped,
/// also when its thread panics, so that no place is ever lost.
struct Place<'a>(&'a AtomicU32);

impl<'a> Place<'a> {
    fn take(serving: &'a AtomicU32) -> Self {
        serving.fetch_add(1, Ordering::SeqCst);
        Place(serving)
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
// ANCHOR_END: run

/// As in tcp-server: socket2 sets the backlog that std does not let us set.
fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

// ANCHOR: serve
/// Serves one client until it leaves; returns how it left.
fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    args: &Args,
) -> io::Result<String> {
    // A client that stops reading must not block the server's writes either.
    let idle = Duration::from_secs(args.idle);
    stream.set_write_timeout(Some(idle))?;
    // A deadline too far for the clock to hold is no deadline at all.
    let deadline =
        Instant::now().checked_add(Duration::from_secs(args.deadline));
    let mut reader = BufReader::new(Timed {
        stream: &stream,
        idle,
        deadline,
    });
    let mut writer = &stream;
    let reply = GBK.encode("我收到了\n").0;
    let mut line = Vec::new();
    loop {
        line.clear();
        // One byte more than allowed, to tell "too long" from "just fits".
        let limit = args.max_line + 1;
        let read = (&mut reader).take(limit).read_until(b'\n', &mut line);
        let len = match read {
            Ok(len) => len,
            Err(e) if is_timeout(&e) => {
                return Ok(timed_out(&line, deadline, args));
            }
            Err(e) => return Err(e),
        };
        if len == 0 {
            return Ok("closed the connection".into());
        }
        let Some(message) = line.strip_suffix(b"\n") else {
            let end = if len as u64 == limit {
                format!("sent a line over {} bytes; hanging up", args.max_line)
            } else {
                format!("closed the connection mid-message; {len} bytes lost")
            };
            return Ok(end);
        };
        let message = message.strip_suffix(b"\r").unwrap_or(message);
        if !args.quiet {
            match GBK
                .decode_without_bom_handling_and_without_replacement(message)
            {
                Some(text) => println!("{peer} sent: {text}"),
                None => {
                    println!(
                        "{peer} sent {} bytes that are not GBK",
                        message.len()
                    )
                }
            }
        }
        if let Err(e) = writer.write_all(&reply) {
            // A client that stops reading fills the buffers; the write times out.
            if is_timeout(&e) {
                let end =
                    format!("read no reply for {} s; hanging up", args.idle);
                return Ok(end);
            }
            return Err(e);
        }
    }
}

/// Says why a read timed out, and what the client had sent of its line.
fn timed_out(line: &[u8], deadline: Option<Instant>, args: &Args) -> String {
    let why = if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
        format!("reached the --deadline of {} s", args.deadline)
    } else {
        format!("was silent for {} s", args.idle)
    };
    match line.len() {
        0 => format!("{why}; hanging up"),
        sent => format!("{why} after {sent} bytes of a line; hanging up"),
    }
}
// ANCHOR_END: serve

/// The stream, read with a timeout of `idle`, but never past `deadline`.
struct Timed<'a> {
    stream: &'a TcpStream,
    idle: Duration,
    deadline: Option<Instant>,
}

impl Read for Timed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = match self.deadline {
            Some(deadline) => {
                deadline.saturating_duration_since(Instant::now())
            }
            None => self.idle,
        };
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left.min(self.idle)))?;
        self.stream.read(buf)
    }
}

/// A timed-out read or write is WouldBlock on Unix and TimedOut on Windows.
fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

//! Beyond the notes: the echo server of chapter 13, on one thread and mio,
//! with no runtime. Every socket is non-blocking and registered with one
//! `Poll`; the loop sleeps in `poll` until some are ready, or until the next
//! idle deadline. Each connection keeps what it could not write yet, and asks
//! for write readiness only while it has some. A library as well as a
//! program, so that chapter 13's C10K measurement runs this very server.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use mio::net::{TcpListener, TcpStream, UnixStream};
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};

/// Echo every line each client sends, many clients at once, on one thread.
#[derive(Parser, Clone, Copy)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7777")]
    bind: SocketAddr,
    /// Connections the kernel may queue before `accept` takes them.
    #[arg(long, default_value_t = 1024)]
    #[arg(value_parser = clap::value_parser!(i32).range(1..))]
    backlog: i32,
    /// Seconds a connection may make no progress, neither read nor write,
    /// before the server hangs up.
    #[arg(long, default_value_t = 60)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// The longest line echoed, in bytes, newline included.
    #[arg(long, default_value_t = 1024)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    max_line: u64,
    /// Print only the address, errors and the summary, not a line per
    /// connection (for load tests).
    #[arg(long)]
    quiet: bool,
}

const LISTENER: Token = Token(0);
const SIGINT: Token = Token(1);
const SIGTERM: Token = Token(2);
/// Connections' tokens start here.
const FIRST: usize = 3;
/// Past this much unsent output, a connection stops reading: a client that
/// sends and never reads cannot make the server buffer without end.
const HIGH_WATER: usize = 64 * 1024;

// ANCHOR: connection
/// One client: its socket, the start of a line not yet whole, and the echoes
/// the socket has not taken yet.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    input: Vec<u8>,
    output: Vec<u8>,
    lines: u64,
    /// The client has shut down its side: once `output` is sent, so do we.
    closed: bool,
    /// What the registration asks for now.
    interest: Interest,
    /// Whether the client has ever been slower to read than to send.
    backed_up: bool,
    /// Last progress plus the idle timeout.
    deadline: Instant,
    /// Tokens are reused; this tells this connection's timer entries from a
    /// former holder's.
    generation: u64,
}
// ANCHOR_END: connection

/// What the summary reports.
#[derive(Default)]
struct Counts {
    served: u64,
    partial_writes: u64,
    write_interest: u64,
}

// ANCHOR: run
pub fn run(args: Args) -> Result<()> {
    let mut poll = Poll::new().context("cannot create the poll")?;
    let mut listener = listen(args.bind, args.backlog)
        .map(TcpListener::from_std)
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let registry = poll.registry();
    registry.register(&mut listener, LISTENER, Interest::READABLE)?;
    // A signal only sets a flag or writes to a pipe; the pipe is one more
    // socket to poll, so that a signal wakes the loop like a client does.
    let mut signals = Vec::new();
    for (signal, token) in [
        (signal_hook::consts::SIGINT, SIGINT),
        (signal_hook::consts::SIGTERM, SIGTERM),
    ] {
        let (read, write) = StdUnixStream::pair()?;
        read.set_nonblocking(true)?;
        let mut read = UnixStream::from_std(read);
        registry.register(&mut read, token, Interest::READABLE)?;
        signal_hook::low_level::pipe::register(signal, write)?;
        signals.push(read);
    }
    println!("listening on {}", listener.local_addr()?);

    let idle = Duration::from_secs(args.idle_timeout);
    let mut connections: HashMap<Token, Connection> = HashMap::new();
    let mut free: Vec<Token> = Vec::new();
    let mut timers: BinaryHeap<Reverse<(Instant, Token, u64)>> =
        BinaryHeap::new();
    let mut generation = 0;
    let mut counts = Counts::default();
    let mut events = Events::with_capacity(1024);
    let signal = loop {
        // Sleep until something is ready or the next deadline passes.
        let timeout = timers.peek().map(|Reverse((at, _, _))| {
            at.saturating_duration_since(Instant::now())
        });
        match poll.poll(&mut events, timeout) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            polled => polled.context("poll")?,
        }
        let mut stop = None;
        for event in &events {
            match event.token() {
                LISTENER => loop {
                    let (mut stream, peer) = match listener.accept() {
                        Ok(accepted) => accepted,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => {
                            // Out of descriptors, say: the queue stays full
                            // and the next connection wakes us again.
                            println!("accept failed: {e}");
                            break;
                        }
                    };
                    let token =
                        free.pop().unwrap_or(Token(FIRST + connections.len()));
                    if let Err(e) = poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE,
                    ) {
                        // Out of epoll watches, say: this client is
                        // dropped (closed), the others go on.
                        println!("{peer}: cannot watch it: {e}");
                        free.push(token);
                        continue;
                    }
                    generation += 1;
                    let deadline = Instant::now() + idle;
                    timers.push(Reverse((deadline, token, generation)));
                    counts.served += 1;
                    if !args.quiet {
                        println!("{peer} connected");
                    }
                    connections.insert(
                        token,
                        Connection {
                            stream,
                            peer,
                            input: Vec::new(),
                            output: Vec::new(),
                            lines: 0,
                            closed: false,
                            backed_up: false,
                            interest: Interest::READABLE,
                            deadline,
                            generation,
                        },
                    );
                },
                SIGINT => stop = Some("SIGINT"),
                SIGTERM => stop = Some("SIGTERM"),
                token => {
                    let Some(connection) = connections.get_mut(&token) else {
                        continue; // closed earlier in this batch
                    };
                    // One connection's error ends that connection, never the
                    // server that holds all the others.
                    let end =
                        serve(connection, &args, &mut counts, &poll, token)
                            .unwrap_or_else(|e| Some(format!("failed: {e}")));
                    if let Some(end) = end {
                        close(
                            &mut connections,
                            &mut free,
                            &poll,
                            token,
                            &end,
                            args.quiet,
                        )?;
                    }
                }
            }
        }
        if let Some(signal) = stop {
            break signal;
        }
        expire(&mut timers, &mut connections, &mut free, &poll, &args)?;
    };
    // ANCHOR_END: run
    // No graceful shutdown here (chapter 13's servers have one): what is
    // open is closed.
    println!(
        "{signal}: stopped; open connections: {}, closed",
        connections.len()
    );
    println!(
        "shut down: {} served; {} partial writes; write interest added {} times",
        counts.served, counts.partial_writes, counts.write_interest
    );
    Ok(())
}

// ANCHOR: expire
/// Closes every connection whose deadline has passed. An entry whose
/// connection has gone (or whose token a newer one holds) is stale and
/// skipped; one whose connection has made progress since goes back in at
/// its new deadline.
fn expire(
    timers: &mut BinaryHeap<Reverse<(Instant, Token, u64)>>,
    connections: &mut HashMap<Token, Connection>,
    free: &mut Vec<Token>,
    poll: &Poll,
    args: &Args,
) -> io::Result<()> {
    let now = Instant::now();
    while let Some(&Reverse((at, token, generation))) = timers.peek() {
        if at > now {
            break;
        }
        timers.pop();
        let Some(connection) = connections.get(&token) else {
            continue;
        };
        if connection.generation != generation {
            continue;
        }
        if connection.deadline > now {
            timers.push(Reverse((connection.deadline, token, generation)));
            continue;
        }
        let idle = args.idle_timeout;
        let end = format!("idle for {idle} s; hanging up");
        close(connections, free, poll, token, &end, args.quiet)?;
    }
    Ok(())
}
// ANCHOR_END: expire

fn close(
    connections: &mut HashMap<Token, Connection>,
    free: &mut Vec<Token>,
    poll: &Poll,
    token: Token,
    end: &str,
    quiet: bool,
) -> io::Result<()> {
    if let Some(mut connection) = connections.remove(&token) {
        poll.registry().deregister(&mut connection.stream)?;
        free.push(token);
        if !quiet {
            println!("{} {end}", connection.peer);
        }
    }
    Ok(())
}

// ANCHOR: serve
/// Handles one readiness event: reads all the socket has, writes all it
/// takes, then asks for what the connection now waits for. Returns how the
/// connection ended, if it did.
fn serve(
    connection: &mut Connection,
    args: &Args,
    counts: &mut Counts,
    poll: &Poll,
    token: Token,
) -> io::Result<Option<String>> {
    let (mut progress, mut written) = (false, false);
    loop {
        match read(connection, args) {
            Ok(read) => progress |= read,
            Err(e) if is_reset(&e) => return Ok(Some(reset(connection.lines))),
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                let max = args.max_line;
                return Ok(Some(format!(
                    "sent a line over {max} bytes; hanging up"
                )));
            }
            Err(e) => return Err(e),
        }
        // Full: `read` stopped for room, not because the socket was empty.
        let full = connection.output.len() >= HIGH_WATER;
        match write(connection, counts) {
            Ok(wrote) => written |= wrote,
            Err(e) if is_reset(&e) => return Ok(Some(reset(connection.lines))),
            Err(e) => return Err(e),
        }
        // Writing made room: read on, or the bytes left in the socket would
        // wait for an event that never comes.
        if !(full && connection.output.len() < HIGH_WATER && !connection.closed)
        {
            break;
        }
    }
    if progress || written {
        connection.deadline =
            Instant::now() + Duration::from_secs(args.idle_timeout);
    }
    if connection.closed && connection.output.is_empty() {
        let mut end =
            format!("closed its side after {}", lines(connection.lines));
        if !connection.input.is_empty() {
            let dropped = connection.input.len();
            end += &format!(", mid-line ({dropped} bytes dropped)");
        }
        return Ok(Some(match connection.stream.shutdown(Shutdown::Write) {
            Ok(()) => format!("{end}; closed ours"),
            Err(e) if is_reset(&e) => format!("{end}; then it reset"),
            Err(e) => return Err(e),
        }));
    }
    // Read while there is room for more echoes and the client may send;
    // ask to write only while there is something to write.
    let reading = !connection.closed && connection.output.len() < HIGH_WATER;
    let writing = !connection.output.is_empty();
    let interest = match (reading, writing) {
        (true, true) => Interest::READABLE | Interest::WRITABLE,
        (true, false) => Interest::READABLE,
        _ => Interest::WRITABLE,
    };
    if interest != connection.interest {
        if writing && !connection.interest.is_writable() {
            counts.write_interest += 1;
            if !connection.backed_up && !args.quiet {
                let peer = connection.peer;
                println!("{peer} reads slower than it sends: echoes wait");
            }
            connection.backed_up = true;
        }
        // Re-arms the registration too: a socket that is already ready
        // for what is asked gets an event at once.
        poll.registry()
            .reregister(&mut connection.stream, token, interest)?;
        connection.interest = interest;
    }
    Ok(None)
}
// ANCHOR_END: serve

// ANCHOR: read
/// Reads until the socket has nothing more (`WouldBlock`), the client has
/// shut down its side, or enough echoes wait to be sent. mio's events are
/// edge-triggered: one comes when the socket *becomes* readable, and none
/// again for bytes already there, so stopping early would strand them.
/// Returns whether it read anything.
fn read(connection: &mut Connection, args: &Args) -> io::Result<bool> {
    let mut buf = [0; 4096];
    let mut progress = false;
    while !connection.closed && connection.output.len() < HIGH_WATER {
        let n = match connection.stream.read(&mut buf) {
            Ok(0) => {
                connection.closed = true;
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        progress = true;
        connection.input.extend_from_slice(&buf[..n]);
        // Every whole line is an echo to send; the rest waits for more.
        while let Some(end) = connection.input.iter().position(|&b| b == b'\n')
        {
            if end as u64 + 1 > args.max_line {
                return Err(ErrorKind::InvalidData.into());
            }
            connection.output.extend(connection.input.drain(..=end));
            connection.lines += 1;
        }
        if connection.input.len() as u64 > args.max_line {
            return Err(ErrorKind::InvalidData.into());
        }
    }
    Ok(progress)
}
// ANCHOR_END: read

// ANCHOR: write
/// Writes what the socket takes; what it does not stays in `output` for
/// the next write event. Returns whether it wrote anything.
fn write(connection: &mut Connection, counts: &mut Counts) -> io::Result<bool> {
    let mut progress = false;
    while !connection.output.is_empty() {
        match connection.stream.write(&connection.output) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                if n < connection.output.len() {
                    counts.partial_writes += 1;
                }
                connection.output.drain(..n);
                progress = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(progress)
}
// ANCHOR_END: write

/// A non-blocking listener with the backlog chosen: socket2 sets what std's
/// `bind` does not let us choose. Chapter 13's tokio server takes it too.
pub fn listen(
    addr: SocketAddr,
    backlog: i32,
) -> io::Result<std::net::TcpListener> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// A client's reset shows as one of these, depending on what the server was
/// doing when it came: reading, writing, or shutting down its own side.
pub fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset
            | ErrorKind::BrokenPipe
            | ErrorKind::NotConnected
    )
}

pub fn reset(lines_read: u64) -> String {
    format!("reset the connection after {}", lines(lines_read))
}

/// `1 line`, `2 lines`: how the log counts.
pub fn lines(n: u64) -> String {
    if n == 1 {
        "1 line".into()
    } else {
        format!("{n} lines")
    }
}

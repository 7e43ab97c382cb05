//! S2.6, grown up: a thread per connection, so that many clients are served
//! at once; messages are lines of GBK text, each answered with 我收到了; a
//! client that stalls, resets, stops mid-message or sends too much ends its
//! own connection, never the server. A library as well as a program, so
//! that chapter 12's C10K measurement runs this very server.

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

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
            if !args.quiet {
                println!("{peer} connected");
            }
            let spawned = thread::Builder::new().spawn_scoped(
                scope,
                move || match serve(stream, peer, args) {
                    Ok(_) if args.quiet => {}
                    Ok(end) => println!("{peer} {end}"),
                    Err(e) => println!("{peer}: {}", describe(&e, args.idle)),
                },
            );
            // The system may refuse a thread; that costs one connection.
            if let Err(e) = spawned {
                println!("{peer}: no thread for it ({e}); closing");
            }
        }
    });
    Ok(())
}
// ANCHOR_END: run

/// As in tcp-server: socket2 sets the backlog that std does not let us set.
fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
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
    let idle = Some(Duration::from_secs(args.idle));
    stream.set_read_timeout(idle)?;
    stream.set_write_timeout(idle)?;
    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;
    let reply = GBK.encode("我收到了\n").0;
    let mut line = Vec::new();
    loop {
        line.clear();
        // One byte more than allowed, to tell "too long" from "just fits".
        let limit = args.max_line + 1;
        let len = (&mut reader).take(limit).read_until(b'\n', &mut line)?;
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
            return match e.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                    Ok(format!("read no reply for {} s; hanging up", args.idle))
                }
                _ => Err(e),
            };
        }
    }
}
// ANCHOR_END: serve

fn describe(error: &io::Error, idle: u64) -> String {
    match error.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            format!("was silent for {idle} s; hanging up")
        }
        _ => error.to_string(),
    }
}

//! S2.6: the notes' TCP server: listen with a backlog of 128, accept a
//! client, answer every read with 我收到了 in GBK until the client closes,
//! then accept the next one. One client at a time, as in the notes.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use encoding_rs::GBK;
use socket2::{Domain, Protocol, Socket, Type};

/// Serve TCP clients one after another, answering every message.
#[derive(Parser)]
struct Args {
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
    /// Stop after this many clients (by default, serve for ever).
    #[arg(long)]
    clients: Option<u32>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcp-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let listener = listen(args.bind, args.backlog)
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    println!("listening on {}", listener.local_addr()?);
    let idle = Duration::from_secs(args.idle);
    let mut served = 0;
    while args.clients != Some(served) {
        // ANCHOR: accept
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, say: give the other connections a
                // moment to end rather than spin.
                println!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        served += 1;
        println!("{peer} connected");
        // A client's failure ends its connection, never the server.
        match serve(stream, peer, idle) {
            Ok(()) => println!("{peer} closed the connection"),
            Err(e) => println!("{peer}: {}", describe(&e, idle)),
        }
        // ANCHOR_END: accept
    }
    Ok(())
}

// ANCHOR: listen
/// std's `TcpListener::bind` always asks for a backlog of 128; socket2 lets
/// the program choose, as Python's `listen(128)` does.
fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    // As std does on Unix: a restarted server can bind again at once, while
    // the last run's connections linger in TIME_WAIT. (On Windows the option
    // would let another program take the port over: std leaves it off there.)
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}
// ANCHOR_END: listen

// ANCHOR: serve
fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    idle: Duration,
) -> io::Result<()> {
    // A client that stops reading must not block the server's writes either.
    stream.set_read_timeout(Some(idle))?;
    stream.set_write_timeout(Some(idle))?;
    let reply = GBK.encode("我收到了").0;
    let mut buf = [0; 1024];
    loop {
        let len = stream.read(&mut buf)?;
        if len == 0 {
            return Ok(()); // the client closed its side
        }
        let (text, _) = GBK.decode_without_bom_handling(&buf[..len]);
        println!("{peer} sent: {}", text.trim_end_matches(['\r', '\n']));
        stream.write_all(&reply)?;
    }
}
// ANCHOR_END: serve

fn describe(error: &io::Error, idle: Duration) -> String {
    match error.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            format!("was silent for {} s; hanging up", idle.as_secs())
        }
        _ => error.to_string(),
    }
}

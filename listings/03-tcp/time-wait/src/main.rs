//! Beyond the notes: TIME_WAIT. A server that closes a connection first
//! keeps it in TIME_WAIT, and a new socket cannot bind that port without
//! SO_REUSEADDR; std's `TcpListener::bind` sets it on Unix.

use std::io::{self, ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, ExitCode};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use socket2::{Domain, SockRef, Socket, Type};

/// Close a loopback connection from the server's side, then bind the
/// server's port again, without and with SO_REUSEADDR.
#[derive(Parser)]
struct Args {
    /// Then retry the bind without SO_REUSEADDR every second, and say when
    /// it works (about a minute on Linux).
    #[arg(long)]
    wait_for_rebind: bool,
    /// The Python interpreter that binds the port too, as a Python server
    /// restarted at once would.
    #[arg(long, default_value = "python3")]
    python: String,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("time-wait: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let (addr, peer) = close_from_the_server()?;
    show_time_wait(addr, peer)?;
    rebind(addr)?;
    rebind_in_python(&args.python, addr)?;
    if args.wait_for_rebind {
        wait_for_rebind(addr)?;
    }
    Ok(())
}

// ANCHOR: close
/// A connection that the server closes first; returns the server's and the
/// client's addresses.
fn close_from_the_server() -> Result<(SocketAddr, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding")?;
    let addr = listener.local_addr()?;
    println!("server listening on {addr}");
    let mut client = TcpStream::connect(addr)?;
    let (server, peer) = listener.accept()?;
    println!(
        "std's listener has SO_REUSEADDR: {}",
        SockRef::from(&listener).reuse_address()?
    );

    drop(server); // the server's FIN goes first: its side will wait
    drop(listener);
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let end = client.read(&mut [0; 1]).context("reading the end")?;
    println!(
        "the server closed first; the client read {end} bytes, and closes"
    );
    Ok((addr, peer))
}
// ANCHOR_END: close

// ANCHOR: rebind
/// Binds `addr` with socket2, which sets no option unless asked, as
/// Python's `socket.socket` does not.
fn bind(addr: SocketAddr, reuse: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(reuse)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket)
}

fn rebind(addr: SocketAddr) -> Result<()> {
    match bind(addr, false) {
        Ok(_) => {
            println!("without SO_REUSEADDR: bound (nothing held the port)")
        }
        Err(e) => println!("without SO_REUSEADDR: {:?} ({e})", e.kind()),
    }
    match bind(addr, true) {
        Ok(_) => println!("with SO_REUSEADDR: bound at once"),
        Err(e) => println!("with SO_REUSEADDR: {:?} ({e})", e.kind()),
    }
    let listener = TcpListener::bind(addr).context("std's bind")?;
    println!("std's TcpListener::bind: bound {}", listener.local_addr()?);
    Ok(())
}

/// Python binds the port the same two ways: `socket.socket` sets no option.
const PYTHON_REBIND: &str = r#"
import socket, sys
port = int(sys.argv[1])
for reuse in (False, True):
    s = socket.socket()
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    way = "with SO_REUSEADDR" if reuse else "socket.socket()"
    try:
        s.bind(("127.0.0.1", port))
        print(f"Python, {way}: bound")
    except OSError as e:
        print(f"Python, {way}: OSError: {e}")
    s.close()
"#;
// ANCHOR_END: rebind

fn rebind_in_python(python: &str, addr: SocketAddr) -> Result<()> {
    let output = match Command::new(python)
        .args(["-c", PYTHON_REBIND, &addr.port().to_string()])
        .output()
    {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            println!("{python} not found, skipped");
            return Ok(());
        }
        result => result.with_context(|| format!("cannot run {python}"))?,
    };
    if !output.status.success() {
        bail!(
            "{python} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    print!("{}", String::from_utf8_lossy(&output.stdout));
    Ok(())
}

/// Retries the bind without SO_REUSEADDR until TIME_WAIT is over.
fn wait_for_rebind(addr: SocketAddr) -> Result<()> {
    let start = Instant::now();
    loop {
        match bind(addr, false) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
            Err(e) => return Err(e).context("binding without SO_REUSEADDR"),
        }
        if start.elapsed() > Duration::from_secs(300) {
            anyhow::bail!("the port was still held after 300 s");
        }
        thread::sleep(Duration::from_millis(250));
    }
    println!(
        "without SO_REUSEADDR the bind worked again after {:?}",
        start.elapsed()
    );
    Ok(())
}

// ANCHOR: proc
/// Finds the connection in the kernel's table, in TIME_WAIT (state 06):
/// a line per connection, with local and remote `addr:port` in hex.
#[cfg(target_os = "linux")]
fn show_time_wait(addr: SocketAddr, peer: SocketAddr) -> Result<()> {
    // The FIN/ACK exchange on loopback takes microseconds; allow a second.
    let start = Instant::now();
    let found = loop {
        let found = time_wait_entries(addr.port(), peer.port())?;
        if !found.is_empty() || start.elapsed() > Duration::from_secs(1) {
            break found;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let count = found.len();
    println!("/proc/net/tcp, TIME_WAIT (06), {addr} to {peer}: {count}");
    for line in found {
        println!("  {line}");
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn time_wait_entries(port: u16, peer: u16) -> Result<Vec<String>> {
    let port_of = |field: &str| {
        let hex = field.rsplit(':').next().unwrap_or("");
        u16::from_str_radix(hex, 16).ok()
    };
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // A kernel without IPv6 has no tcp6 table.
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, local, remote, state, ..] = fields[..] else {
                continue;
            };
            if state == "06"
                && port_of(local) == Some(port)
                && port_of(remote) == Some(peer)
            {
                found.push(format!("{local} {remote} {state}"));
            }
        }
    }
    Ok(found)
}
// ANCHOR_END: proc

#[cfg(not(target_os = "linux"))]
fn show_time_wait(_: SocketAddr, _: SocketAddr) -> Result<()> {
    println!("(/proc/net/tcp is Linux's: TIME_WAIT not listed here)");
    Ok(())
}

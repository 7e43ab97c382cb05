//! Beyond the notes: an IPv6 listener on `[::]` with `IPV6_V6ONLY` off (dual
//! stack: IPv4 clients arrive as v4-mapped `::ffff:a.b.c.d`) and on (IPv6
//! only), reached from 127.0.0.1 and from ::1; and what the system's default,
//! which std's `TcpListener::bind` keeps, is.

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use socket2::{Domain, SockRef, Socket, Type};

/// Listen on [::] with IPV6_V6ONLY off and on; connect from 127.0.0.1 and ::1.
#[derive(Parser)]
struct Args {
    /// Seconds to wait for each connection.
    #[arg(long, default_value_t = 10)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    wait: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dual-stack: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    // Without IPv6 there is nothing to show: one line, status 1.
    if let Err(e) = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) {
        bail!("this machine has no IPv6 loopback (cannot bind [::1]: {e})");
    }
    let wait = Duration::from_secs(args.wait);
    system_default()?;
    for v6only in [false, true] {
        let (listener, _held) = listen_on_any(v6only)?;
        let port = listener.local_addr()?.port();
        let state = if v6only { "on" } else { "off" };
        println!("[::]:{port} with IPV6_V6ONLY {state}:");
        for from in [
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
        ] {
            print!("  from {}: ", from.ip());
            match reach(&listener, from, wait) {
                Ok(peer) => println!("{peer}"),
                Err(e) => println!("{e}"),
            }
        }
    }
    Ok(())
}

// ANCHOR: listen
/// One listening socket on every IPv6 address, `[::]`: `v6only` off makes it
/// take IPv4 connections too, which only the wildcard address can do.
fn listen_v6(v6only: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV6, Type::STREAM, None)?;
    socket.set_only_v6(v6only)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)).into())?;
    socket.listen(16)?;
    Ok(socket.into())
}
// ANCHOR_END: listen

// ANCHOR: reach
/// Connects from `to`'s family and says how the listener sees the client.
fn reach(
    listener: &TcpListener,
    to: SocketAddr,
    wait: Duration,
) -> Result<String> {
    let client = TcpStream::connect_timeout(&to, wait)?;
    // The handshake is complete when connect returns: the connection is
    // already queued, so accept need not wait.
    listener.set_nonblocking(true)?;
    let (_server_end, peer) = match listener.accept() {
        Ok(accepted) => accepted,
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            bail!("connected, but not to this listener")
        }
        Err(e) => return Err(e.into()),
    };
    if peer.port() != client.local_addr()?.port() {
        bail!("accepted {peer}, another client");
    }
    let canonical = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    if canonical == peer {
        Ok(format!("accepted, peer {peer}"))
    } else {
        Ok(format!("accepted, peer {peer}, to_canonical {canonical}"))
    }
}
// ANCHOR_END: reach

/// A listener from `listen_v6`. With `v6only` on, the same port on 127.0.0.1
/// is free for any other program, whose listener would answer the IPv4 client
/// instead of refusing it: this holds that port (bound, not listening).
fn listen_on_any(v6only: bool) -> Result<(TcpListener, Option<Socket>)> {
    for _ in 0..20 {
        let listener = listen_v6(v6only).context("cannot listen on [::]")?;
        if !v6only {
            return Ok((listener, None));
        }
        let port = listener.local_addr()?.port();
        let held = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        if held
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into())
            .is_ok()
        {
            return Ok((listener, Some(held)));
        }
    }
    bail!("no port free on both [::] and 127.0.0.1 in 20 tries")
}

// ANCHOR: default
/// Linux's default for a new IPv6 socket, and what std's bind leaves it at.
fn system_default() -> Result<()> {
    let path = "/proc/sys/net/ipv6/bindv6only";
    match std::fs::read_to_string(path) {
        Ok(value) => println!("net.ipv6.bindv6only = {}", value.trim()),
        Err(e) => println!("{path}: {e}"),
    }
    let listener = TcpListener::bind("[::]:0").context("cannot bind [::]:0")?;
    let v6only = SockRef::from(&listener).only_v6()?;
    let state = if v6only { "on" } else { "off" };
    println!("std's TcpListener::bind(\"[::]:0\"): IPV6_V6ONLY {state}");
    Ok(())
}
// ANCHOR_END: default

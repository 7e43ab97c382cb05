//! Beyond the notes: a connected UDP socket. `connect` sends nothing; it fixes
//! the peer, so `send` and `recv` take no address, the kernel drops datagrams
//! from anyone else, and an ICMP "port unreachable" comes back as
//! ConnectionRefused, which an unconnected socket never sees.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand};

/// A connected UDP socket on loopback: whom it hears, and what it is told.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    demo: Demo,
    /// Milliseconds to wait for a datagram or an error that should not come.
    #[arg(long, global = true, default_value_t = 500)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=60_000))]
    quiet_ms: u64,
}

#[derive(Subcommand)]
enum Demo {
    /// Connect to a peer; a stranger, then the peer, send to the socket.
    Filter,
    /// Send to a loopback port where nothing listens, connected or not.
    Refused,
    /// The same calls in Python's socket and asyncio modules.
    Python {
        /// The Python interpreter to run.
        #[arg(long, default_value = "python3")]
        python: String,
    },
}

/// How long to wait for what must come: a datagram or an error on loopback
/// arrives in microseconds, but a loaded machine may be slow.
const EXPECT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args = Args::parse();
    let done = match args.demo {
        Demo::Filter => filter(args.quiet_ms),
        Demo::Refused => refused(args.quiet_ms),
        Demo::Python { python } => in_python(&python, args.quiet_ms),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp-connected: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A socket on a free loopback port whose receives give up after `wait`.
fn bound(wait: Duration) -> Result<UdpSocket> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("cannot bind")?;
    socket.set_read_timeout(Some(wait))?;
    Ok(socket)
}

/// A timed-out read is WouldBlock on Unix and TimedOut on Windows.
fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn text(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

// ANCHOR: filter
fn filter(quiet_ms: u64) -> Result<()> {
    let peer = bound(EXPECT)?;
    let stranger = bound(EXPECT)?;
    let socket = bound(EXPECT)?;
    let (peer_addr, here) = (peer.local_addr()?, socket.local_addr()?);
    println!(
        "the peer is {peer_addr}, the stranger {}",
        stranger.local_addr()?
    );

    // connect() only records the peer in the socket: no packet leaves.
    socket.connect(peer_addr)?;
    if socket.peer_addr()? == peer_addr {
        println!("connected {here}: its peer_addr() is the peer");
    }
    socket.send(b"hello")?;
    let mut buf = [0; 64];
    let (len, from) = peer.recv_from(&mut buf)?;
    let who = if from == here {
        "the connected socket"
    } else {
        "elsewhere"
    };
    println!(
        "the peer's first datagram: {} from {who}",
        text(&buf[..len])
    );

    // The stranger is connected too, so that it hears what the kernel says.
    stranger.connect(here)?;
    stranger.send(b"from a stranger")?;
    peer.send_to(b"from the peer", here)?;
    println!("the stranger sent first, then the peer");
    let len = socket.recv(&mut buf)?;
    println!("recv: {}", text(&buf[..len]));
    match stranger.recv(&mut buf) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            println!("the stranger's recv: {e}")
        }
        other => bail!("the stranger expected a refusal, got {other:?}"),
    }
    socket.set_read_timeout(Some(Duration::from_millis(quiet_ms)))?;
    match socket.recv(&mut buf) {
        Err(e) if timed_out(&e) => {
            println!("recv again: nothing within {quiet_ms} ms")
        }
        Err(e) => println!("recv again: {e}"),
        Ok(len) => println!("recv again: {}", text(&buf[..len])),
    }
    Ok(())
}
// ANCHOR_END: filter

// ANCHOR: port
/// A loopback port where nothing listens: bind port 0, note the port the
/// kernel chose among the free ones, and release it. Another program could
/// bind it before we send (a fixed port, or by chance its own port 0), so `refused` checks that the kernel did refuse, and else tries
/// another port.
fn released_port() -> Result<SocketAddr> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("cannot bind")?;
    // The socket closes at the end of this function: the port is free again.
    Ok(socket.local_addr()?)
}
// ANCHOR_END: port

// ANCHOR: refused
fn refused(quiet_ms: u64) -> Result<()> {
    let mut buf = [0; 64];
    let mut tries = 0;
    let closed = loop {
        tries += 1;
        let closed = released_port()?;
        let socket = bound(EXPECT)?;
        socket.connect(closed)?;
        let sent = socket.send(b"anyone?")?;
        // The kernel answers the datagram with an ICMP port unreachable,
        // which it hands to the connected socket as an error.
        match socket.recv(&mut buf) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                println!("nothing listens on {closed}");
                println!("connected: send: {sent} bytes sent");
                println!("connected: recv: {e}");
                later_send(&socket)?;
                break closed;
            }
            // Someone took the port after all: a datagram came back, or
            // nothing did. Try another port.
            other => {
                let why = match other {
                    Ok(_) => "a datagram came back".to_string(),
                    Err(e) => e.to_string(),
                };
                if tries == 3 {
                    bail!("no port refused in three tries: {why}");
                }
                println!("{closed} is in use after all ({why}); another");
            }
        }
    };

    // The same datagram from a socket that is not connected.
    let socket = bound(Duration::from_millis(quiet_ms))?;
    let sent = socket.send_to(b"anyone?", closed)?;
    println!("unconnected: send_to: {sent} bytes sent");
    match socket.recv_from(&mut buf) {
        Err(e) if timed_out(&e) => {
            println!(
                "unconnected: recv_from: no error, nothing within {quiet_ms} ms"
            )
        }
        Err(e) => println!("unconnected: recv_from: {e}"),
        Ok((len, from)) => {
            println!("unconnected: {} from {from}", text(&buf[..len]))
        }
    }
    Ok(())
}
// ANCHOR_END: refused

// ANCHOR: later
/// The error waits on the socket for its next call, a send as well as a
/// recv. On loopback the ICMP usually arrives before the first send returns,
/// but it may come later on a busy machine, so send until one fails.
fn later_send(socket: &UdpSocket) -> Result<()> {
    let start = Instant::now();
    loop {
        match socket.send(b"anyone?") {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                println!("connected: send, then a later send: {e}");
                return Ok(());
            }
            Err(e) => bail!("a later send failed otherwise: {e}"),
            Ok(_) if start.elapsed() > EXPECT => {
                bail!("no send failed within {EXPECT:?}")
            }
            Ok(_) => std::thread::yield_now(),
        }
    }
}
// ANCHOR_END: later

/// Runs `PYTHON` and prints what it printed; without Python, says so.
fn in_python(python: &str, quiet_ms: u64) -> Result<()> {
    let output = match Command::new(python)
        .arg("-c")
        .arg(PYTHON)
        .arg(quiet_ms.to_string())
        .stdin(Stdio::null())
        .output()
    {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            println!("{python}: not found, the Python comparison is skipped");
            return Ok(());
        }
        other => other.with_context(|| format!("cannot run {python}"))?,
    };
    // Python's stderr (a traceback) is shown only when it failed.
    ensure!(
        output.status.success(),
        "{python} failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    print!("{}", String::from_utf8_lossy(&output.stdout));
    Ok(())
}

/// The same calls in Python, every blocking one with a timeout. Run as
/// `python3 -c PYTHON QUIET_MS`.
const PYTHON: &str = r##"
import asyncio
import socket
import sys
import time

QUIET = int(sys.argv[1]) / 1000  # seconds to wait for what should not come


def udp(timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(timeout)
    return s


def refused_port():
    """A port that refused a connected socket's datagram, and that socket."""
    for _ in range(3):
        probe = udp(None)
        port = probe.getsockname()[1]
        probe.close()
        s = udp(10)
        s.connect(("127.0.0.1", port))
        s.send(b"anyone?")
        try:
            s.recv(64)
        except ConnectionRefusedError as e:
            return port, s, e
        except socket.timeout:
            pass
    sys.exit("no port refused in three tries")


peer, stranger, s = udp(10), udp(10), udp(10)
s.connect(peer.getsockname())
s.send(b"hello")
print("filter: the peer's first datagram:", peer.recvfrom(64)[0])
stranger.sendto(b"from a stranger", s.getsockname())
peer.sendto(b"from the peer", s.getsockname())
print("filter: recv:", s.recv(64))

port, s, e = refused_port()
print("connected: recv:", type(e).__name__, e)
deadline = time.monotonic() + 10
try:
    while time.monotonic() < deadline:
        s.send(b"anyone?")
    sys.exit("no send failed within 10 s")
except ConnectionRefusedError as e:
    print("connected: send, then a later send:", type(e).__name__, e)

u = udp(QUIET)
u.sendto(b"anyone?", ("127.0.0.1", port))
try:
    u.recvfrom(64)
except socket.timeout:
    print("unconnected: recvfrom: no error, timed out")


class Endpoint(asyncio.DatagramProtocol):
    def __init__(self, error):
        self.error = error

    def error_received(self, exc):
        self.error.set_result(exc)


async def endpoint(**where):
    loop = asyncio.get_running_loop()
    error = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(lambda: Endpoint(error), **where)
    transport.sendto(b"anyone?", None if "remote_addr" in where else ("127.0.0.1", port))
    try:
        exc = await asyncio.wait_for(error, 10 if "remote_addr" in where else QUIET)
        return f"error_received({type(exc).__name__}: {exc})"
    except asyncio.TimeoutError:
        return "no error_received, timed out"
    finally:
        transport.close()


print("asyncio, remote_addr:", asyncio.run(endpoint(remote_addr=("127.0.0.1", port))))
print("asyncio, local_addr only:", asyncio.run(endpoint(local_addr=("127.0.0.1", 0))))
"##;

//! S2.1: bind a UDP socket, send one typed line GBK-encoded, print the reply as
//! `ip:port>>>text`.

use std::io::{self, BufRead, ErrorKind, Write};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use encoding_rs::GBK;

/// Send one line to a UDP peer, GBK-encoded, and print the peer's reply.
#[derive(Parser)]
struct Args {
    /// Local address to bind (port 0 lets the system choose one).
    #[arg(long, default_value = "127.0.0.1:6666")]
    bind: SocketAddr,
    /// Where to send the line: host:port, a name or an IP address.
    #[arg(long, default_value = "127.0.0.1:8888")]
    peer: String,
    /// Seconds to wait for the reply.
    #[arg(long, default_value_t = 30)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    wait: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: run
fn run(args: Args) -> Result<()> {
    let peer = first_of_family(&args.peer, args.bind.is_ipv4())?;
    let socket = UdpSocket::bind(args.bind)
        .with_context(|| format!("cannot bind {}", args.bind))?;
    println!("bound to {}", socket.local_addr()?);

    print!("message: ");
    io::stdout().flush()?;
    let mut typed = Vec::new();
    if io::stdin().lock().read_until(b'\n', &mut typed)? == 0 {
        // Ctrl-D at the prompt: the user chose to send nothing.
        println!("\ninput ended: nothing sent");
        return Ok(());
    }
    // A GBK console types GBK bytes, which are not UTF-8 text.
    let Ok(line) = String::from_utf8(typed) else {
        bail!(
            "the message is not UTF-8 text: this program reads UTF-8 and sends it as GBK"
        );
    };
    let line = line.trim_end_matches(['\r', '\n']);

    // Python's str.encode("gbk") raises on a character GBK lacks;
    // encoding_rs writes it as &#NNNN; and reports that it did.
    let (bytes, _, unmappable) = GBK.encode(line);
    if unmappable {
        bail!("{line:?} has characters that GBK cannot encode");
    }
    socket
        .send_to(&bytes, peer)
        .with_context(|| format!("cannot send to {peer}"))?;

    socket.set_read_timeout(Some(Duration::from_secs(args.wait)))?;
    // The note's 1024 bytes, plus one: a datagram that fills the extra byte was
    // longer than 1024, and the kernel has discarded what did not fit.
    const MAX: usize = 1024;
    let mut buf = [0; MAX + 1];
    let (len, from) = match socket.recv_from(&mut buf) {
        Ok(received) => received,
        // A timed-out read is WouldBlock on Unix and TimedOut on Windows.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::WouldBlock | ErrorKind::TimedOut
            ) =>
        {
            bail!("no reply within {} s", args.wait)
        }
        Err(e) => return Err(e).context("cannot receive"),
    };
    let truncated = len > MAX;
    let (text, malformed) =
        GBK.decode_without_bom_handling(&buf[..len.min(MAX)]);
    println!("{from}>>>{text}");
    if malformed {
        println!("(not valid GBK: U+FFFD marks the bytes that were not)");
    }
    if truncated {
        println!(
            "(longer than {MAX} bytes: only the first {MAX} are shown, the rest is lost)"
        );
    }
    Ok(())
}
// ANCHOR_END: run

// ANCHOR: peer
/// The first address of `peer` in the socket's family, as Python's `sendto`
/// picks it: `localhost` may be `::1` first, which an IPv4 socket cannot
/// reach. The lookup blocks, bounded by the resolver's own timeouts.
fn first_of_family(peer: &str, ipv4: bool) -> Result<SocketAddr> {
    let mut addrs = peer
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {peer}"))?;
    let family = if ipv4 { "IPv4" } else { "IPv6" };
    addrs
        .find(|addr| addr.is_ipv4() == ipv4)
        .with_context(|| format!("{peer} has no {family} address"))
}
// ANCHOR_END: peer

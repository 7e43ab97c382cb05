//! S2.2: the notes' UDP chat. A menu loop on one socket: 1 sends a datagram to
//! any peer (an IP address or a host name), 2 receives one, 3 quits. Bad
//! answers are asked again; the end of input quits cleanly.

use std::io::{self, BufRead, ErrorKind, Write};
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use decode_order::decode;
use socket2::{MaybeUninitSlice, SockRef};

/// Chat over UDP: send datagrams to any peer and receive them on one socket.
#[derive(Parser)]
struct Args {
    /// Local address to bind (port 0 lets the system choose one).
    #[arg(long, default_value = "127.0.0.1:6666")]
    bind: SocketAddr,
    /// Bytes read per datagram; the kernel drops the rest of a longer one.
    #[arg(long, default_value_t = 1024)]
    #[arg(value_parser = clap::value_parser!(u16).range(1..))]
    buffer: u16,
    /// Seconds a receive waits before giving up.
    #[arg(long, default_value_t = 10)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    wait: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp-chat: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let socket = UdpSocket::bind(args.bind)
        .with_context(|| format!("cannot bind {}", args.bind))?;
    socket.set_read_timeout(Some(Duration::from_secs(args.wait)))?;
    println!("chat socket bound to {}", socket.local_addr()?);
    match chat(&socket, &mut io::stdin().lock(), &args) {
        // After Ctrl-D the cursor is still on the prompt's line.
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
            println!("\ninput ended, bye")
        }
        ended => ended?,
    }
    Ok(())
}

// ANCHOR: menu
fn chat(
    socket: &UdpSocket,
    input: &mut impl BufRead,
    args: &Args,
) -> io::Result<()> {
    loop {
        match ask(input, "1 send, 2 receive, 3 quit> ", parse_choice)? {
            Choice::Send => {
                // An IPv4 socket reaches only IPv4 peers, and IPv6 only IPv6.
                let ipv4 = socket.local_addr()?.is_ipv4();
                let ip = ask(input, "peer host> ", |answer| {
                    parse_host(answer, ipv4)
                })?;
                let port = ask(input, "peer port> ", parse_port)?;
                let text = ask(input, "message> ", parse_message)?;
                let peer = SocketAddr::new(ip, port);
                // Sending can fail (no route, say); that ends one send, not the
                // chat.
                match socket.send_to(text.as_bytes(), peer) {
                    Ok(sent) => println!("sent {sent} bytes to {peer}"),
                    Err(e) => println!("cannot send to {peer}: {e}"),
                }
            }
            Choice::Receive => receive(socket, args)?,
            Choice::Quit => return Ok(()),
        }
    }
}
// ANCHOR_END: menu

enum Choice {
    Send,
    Receive,
    Quit,
}

// ANCHOR: ask
/// Prompts until `parse` accepts the answer. The end of input is an
/// `UnexpectedEof` error, so that every caller can pass it up with `?` and the
/// menu loop ends in one place.
fn ask<T>(
    input: &mut impl BufRead,
    prompt: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> io::Result<T> {
    loop {
        print!("{prompt}");
        io::stdout().flush()?;
        // Bytes, not a String: read_line would fail on a line that is not
        // UTF-8 (typed on a GBK console, say), and end the chat.
        let mut line = Vec::new();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        let answer = match String::from_utf8(line) {
            Ok(line) => parse(line.trim_end_matches(['\r', '\n'])),
            Err(_) => Err("the line is not UTF-8 text".to_string()),
        };
        match answer {
            Ok(answer) => return Ok(answer),
            Err(why) => println!("input error, please try again: {why}"),
        }
    }
}

fn parse_choice(answer: &str) -> Result<Choice, String> {
    match answer.trim() {
        "1" => Ok(Choice::Send),
        "2" => Ok(Choice::Receive),
        "3" => Ok(Choice::Quit),
        _ => Err(format!("{answer:?} is not 1, 2 or 3")),
    }
}

/// An IP address, or a name resolved as Python's `sendto` resolves it: its
/// first address of the socket's family (`localhost` may be `::1` first). The
/// lookup blocks, bounded by the resolver's own timeouts.
fn parse_host(answer: &str, ipv4: bool) -> Result<IpAddr, String> {
    let host = answer.trim();
    let kind = if ipv4 { "IPv4" } else { "IPv6" };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        if ip.is_ipv4() != ipv4 {
            return Err(format!("{host} is not {kind}, as this socket is"));
        }
        return Ok(ip);
    }
    let mut addrs = (host, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    addrs
        .find(|addr| addr.is_ipv4() == ipv4)
        .map(|addr| addr.ip())
        .ok_or_else(|| format!("{host} has no {kind} address"))
}

fn parse_port(answer: &str) -> Result<u16, String> {
    let Ok(number) = answer.trim().parse::<u64>() else {
        return Err(format!("{answer:?} is not a port number"));
    };
    match u16::try_from(number) {
        Ok(port) if port != 0 => Ok(port),
        _ => Err("a port is a number from 1 to 65535".into()),
    }
}

fn parse_message(answer: &str) -> Result<String, String> {
    if answer.is_empty() {
        return Err("the message is empty".into());
    }
    Ok(answer.to_string())
}
// ANCHOR_END: ask

// ANCHOR: receive
fn receive(socket: &UdpSocket, args: &Args) -> io::Result<()> {
    let mut buf = vec![MaybeUninit::<u8>::uninit(); usize::from(args.buffer)];
    // std's recv_from would cut a long datagram silently; recvmsg (through
    // socket2) also returns the MSG_TRUNC flag, so the chat can say that part
    // of the datagram was lost.
    let received = SockRef::from(socket)
        .recv_from_vectored(&mut [MaybeUninitSlice::new(&mut buf)]);
    let (len, flags, from) = match received {
        Ok(received) => received,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::WouldBlock | ErrorKind::TimedOut
            ) =>
        {
            println!("nothing received within {} s", args.wait);
            return Ok(());
        }
        // A failed receive (on Windows, an ICMP error left by an earlier
        // send, say) ends one receive, not the chat.
        Err(e) => {
            println!("cannot receive: {e}");
            return Ok(());
        }
    };
    // SAFETY: recvmsg initialised the first `len` bytes of `buf`.
    let bytes = unsafe { buf[..len].assume_init_ref() };
    let from = from
        .as_socket()
        .map_or("?".to_string(), |addr| addr.to_string());
    let (text, encoding) = decode(bytes);
    println!("{from}-->{text}   ({encoding}, {len} bytes)");
    if flags.is_truncated() {
        println!(
            "(truncated to {len} bytes: the rest of the datagram is lost)"
        );
    }
    Ok(())
}
// ANCHOR_END: receive

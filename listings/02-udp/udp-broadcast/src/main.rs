//! S2.3: send a datagram to a broadcast address (which needs SO_BROADCAST), and
//! listen for broadcasts with several listeners sharing one port (which needs
//! SO_REUSEADDR, and SO_REUSEPORT on macOS and the BSDs).
//!
//! The defaults stay on this machine: 127.255.255.255 is the broadcast address
//! of the loopback network 127.0.0.0/8.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use decode_order::decode;
use socket2::{Domain, Protocol, Socket, Type};

#[derive(Parser)]
#[command(about = "Broadcast a datagram, or listen for broadcasts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send one message to a broadcast address.
    Send {
        /// The broadcast address and port.
        #[arg(long, default_value = "127.255.255.255:2425")]
        to: SocketAddr,
        /// Local address to send from: it must be on the network of --to
        /// (0.0.0.0:0 lets the system choose).
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
        /// Leave SO_BROADCAST off, to see the kernel refuse the send.
        #[arg(long)]
        without_broadcast_flag: bool,
        message: String,
    },
    /// Print the datagrams that arrive on a port.
    Listen {
        /// Address to listen on: the broadcast address itself receives
        /// broadcasts only.
        #[arg(long, default_value = "127.255.255.255:2425")]
        bind: SocketAddr,
        /// Stop after this many datagrams.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Seconds to wait for each datagram before giving up.
        #[arg(long, default_value_t = 60)]
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        wait: u64,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Send {
            to,
            bind,
            without_broadcast_flag,
            message,
        } => send(bind, to, !without_broadcast_flag, &message),
        Command::Listen { bind, count, wait } => listen(bind, count, wait),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp-broadcast: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: send
fn send(
    bind: SocketAddr,
    to: SocketAddr,
    broadcast: bool,
    message: &str,
) -> Result<()> {
    let socket =
        UdpSocket::bind(bind).with_context(|| format!("cannot bind {bind}"))?;
    // Without this flag the kernel refuses any datagram to a broadcast address
    // (EACCES), so that a program cannot flood a network by accident.
    socket.set_broadcast(broadcast)?;
    let sent = match socket.send_to(message.as_bytes(), to) {
        Ok(sent) => sent,
        // The flag explains this error only: do not blame it for others.
        Err(e) if e.kind() == ErrorKind::PermissionDenied && !broadcast => {
            return Err(e).with_context(|| {
                format!("cannot send to {to} (SO_BROADCAST is off)")
            });
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot send to {to}"));
        }
    };
    println!(
        "sent {sent} bytes to {to} with SO_BROADCAST {}",
        on_off(broadcast)
    );
    Ok(())
}
// ANCHOR_END: send

// ANCHOR: listen
fn listen(bind: SocketAddr, count: u32, wait: u64) -> Result<()> {
    // std's UdpSocket::bind cannot set options before binding; socket2 can.
    // SO_REUSEADDR lets several listeners on this machine share the port, and
    // each receives every broadcast.
    let socket = Socket::new(
        Domain::for_address(bind),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_reuse_address(true)?;
    // On macOS and the BSDs, SO_REUSEPORT is what lets a second socket bind.
    #[cfg(any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ))]
    socket.set_reuse_port(true)?;
    socket
        .bind(&bind.into())
        .with_context(|| format!("cannot bind {bind}"))?;
    let socket = UdpSocket::from(socket);
    socket.set_read_timeout(Some(Duration::from_secs(wait)))?;
    println!("listening on {}", socket.local_addr()?);
    // The largest UDP payload over IPv4: no datagram is cut short.
    let mut buf = vec![0; 65_507];
    for _ in 0..count {
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            // A timed-out read is WouldBlock on Unix and TimedOut on Windows.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut
                ) =>
            {
                bail!("no datagram within {wait} s")
            }
            Err(e) => return Err(e).context("cannot receive"),
        };
        // The same guess as the chat's: UTF-8 first, then GBK.
        let (text, encoding) = decode(&buf[..len]);
        println!("{from}-->{text}   ({encoding}, {len} bytes)");
    }
    Ok(())
}
// ANCHOR_END: listen

fn on_off(flag: bool) -> &'static str {
    if flag { "on" } else { "off" }
}

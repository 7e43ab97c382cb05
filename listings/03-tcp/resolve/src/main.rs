//! Beyond the notes: `host:port` through the system's resolver (getaddrinfo,
//! behind `ToSocketAddrs`): every address it gives, in its order, and with
//! `--connect` a connection tried address by address, as std's `connect` does.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

/// Resolve host:port names, and optionally connect, one address after another.
#[derive(Parser)]
struct Args {
    /// host:port, a name or an IP address, as Python's (host, port).
    #[arg(default_value = "localhost:6666")]
    addresses: Vec<String>,
    /// Resolve with tokio's lookup_host, which runs on tokio's blocking pool.
    #[arg(long)]
    tokio: bool,
    /// Then connect, trying each address in order until one accepts.
    #[arg(long)]
    connect: bool,
    /// Seconds to wait for the resolver, and for each connection attempt.
    #[arg(long, default_value_t = 10)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    wait: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resolve: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let wait = Duration::from_secs(args.wait);
    let mut all = Vec::new();
    for address in &args.addresses {
        let found = if args.tokio {
            resolve_on_tokio(address, wait)
        } else {
            resolve(address, wait)
        };
        let found =
            found.with_context(|| format!("cannot resolve {address}"))?;
        // The resolver's order, not sorted: it is the order connect tries.
        println!("{address} resolves to:");
        for addr in &found {
            println!("  {addr}");
        }
        all.extend(found);
    }
    if args.connect {
        connect(&all, wait)?;
    }
    Ok(())
}

// ANCHOR: resolve
/// `to_socket_addrs` calls getaddrinfo, which blocks for as long as the
/// name servers take, and takes no timeout: it runs on a thread of its own,
/// and the program stops waiting for it after `wait`.
fn resolve(address: &str, wait: Duration) -> Result<Vec<SocketAddr>> {
    let (sender, receiver) = mpsc::channel();
    let address = address.to_string();
    thread::spawn(move || {
        let found = address.to_socket_addrs().map(Iterator::collect);
        // The receiver may have given up already; then nobody wants it.
        let _ = sender.send(found);
    });
    match receiver.recv_timeout(wait) {
        Ok(found) => Ok(found?),
        Err(_) => bail!("no answer within {} s", wait.as_secs()),
    }
}
// ANCHOR_END: resolve

// ANCHOR: tokio
/// tokio's lookup_host runs the same getaddrinfo on its blocking pool, so the
/// runtime's own threads go on; a timeout stops the waiting, not the lookup.
fn resolve_on_tokio(address: &str, wait: Duration) -> Result<Vec<SocketAddr>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let found = runtime.block_on(async {
        tokio::time::timeout(wait, tokio::net::lookup_host(address)).await
    });
    // Dropping the runtime would wait for a lookup still under way.
    runtime.shutdown_background();
    match found {
        Ok(found) => Ok(found?.collect()),
        Err(_) => bail!("no answer within {} s", wait.as_secs()),
    }
}
// ANCHOR_END: tokio

// ANCHOR: connect
/// What `TcpStream::connect` does with several addresses, printed: each in
/// turn, until one accepts; the error is the last one's.
fn connect(addrs: &[SocketAddr], wait: Duration) -> Result<TcpStream> {
    println!("connecting, one address after another:");
    let mut last_error = None;
    for addr in addrs {
        match TcpStream::connect_timeout(addr, wait) {
            Ok(stream) => {
                println!("  {addr}: connected from {}", stream.local_addr()?);
                return Ok(stream);
            }
            Err(e) => {
                println!("  {addr}: {e}");
                last_error = Some(e);
            }
        }
    }
    match last_error {
        Some(e) => Err(e).context("no address accepted the connection"),
        None => bail!("no address to connect to"),
    }
}
// ANCHOR_END: connect

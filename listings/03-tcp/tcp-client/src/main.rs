//! S2.5: the notes' TCP client: connect to the server, send one typed line
//! GBK-encoded (with its newline, which line-framed servers wait for), print
//! the reply, close.

use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use encoding_rs::GBK;

/// Send one line to a TCP server, GBK-encoded, and print its reply.
#[derive(Parser)]
struct Args {
    /// The server's host:port, a name or an IP address (the notes' server
    /// listens on 6667 by mistake).
    #[arg(long, default_value = "127.0.0.1:6666")]
    server: String,
    /// Seconds to wait for the connection and for the reply.
    #[arg(long, default_value_t = 30)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    wait: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcp-client: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: run
fn run(args: Args) -> Result<()> {
    let wait = Duration::from_secs(args.wait);
    let mut stream = connect(&args.server, wait)?;
    println!(
        "connected to {} from {}",
        stream.peer_addr()?,
        stream.local_addr()?
    );

    print!("message: ");
    io::stdout().flush()?;
    let mut typed = Vec::new();
    if io::stdin().lock().read_until(b'\n', &mut typed)? == 0 {
        println!("\ninput ended: nothing sent");
        return Ok(());
    }
    // A GBK console types GBK bytes, which are not UTF-8 text.
    let Ok(line) = String::from_utf8(typed) else {
        bail!(
            "the message is not UTF-8 text: this program reads UTF-8 and sends it as GBK"
        );
    };
    let line = line.trim_end();
    if line.is_empty() {
        // Zero bytes would reach the server as nothing at all.
        bail!("nothing to send: the message is empty");
    }
    let (bytes, _, unmappable) = GBK.encode(line);
    if unmappable {
        bail!("{line:?} has characters that GBK cannot encode");
    }
    // The newline ends the message: a server that reads lines (as this
    // chapter's threaded server does) waits for it. One write, so that a
    // server that reads once (as the note's does) is not handed the
    // newline alone by a second read.
    let mut message = bytes.into_owned();
    message.push(b'\n');
    stream.write_all(&message)?;

    stream.set_read_timeout(Some(wait))?;
    let mut buf = [0; 1024];
    let len = match stream.read(&mut buf) {
        Ok(0) => bail!("the server closed the connection without a reply"),
        Ok(len) => len,
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
    let (reply, _) = GBK.decode_without_bom_handling(&buf[..len]);
    println!("reply: {}", reply.trim_end_matches(['\r', '\n']));
    Ok(())
}
// ANCHOR_END: run

// ANCHOR: connect
/// Each address `server` resolves to, in turn, as `TcpStream::connect` tries
/// them, but with a timeout for each; the error is the last address's.
fn connect(server: &str, wait: Duration) -> Result<TcpStream> {
    // The lookup blocks, bounded by the resolver's own timeouts.
    let addrs = server
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {server}"))?;
    let mut last_error = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, wait) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = Some(e),
        }
    }
    match last_error {
        Some(e) => {
            Err(e).with_context(|| format!("cannot connect to {server}"))
        }
        None => bail!("{server} has no address"),
    }
}
// ANCHOR_END: connect

//! Beyond the notes: a half-close. `shutdown(Shutdown::Write)` sends a FIN,
//! the end of this side's stream, while the socket still reads: the server
//! reads the request to its end and answers. Both ends run here, on loopback.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;

/// Send a request whose end is the end of the stream, with and without a
/// half-close, and show what shutdown(Read) and shutdown(Both) do.
#[derive(Parser)]
struct Args {
    /// How long, in milliseconds, the server waits for the end of a request.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    wait_ms: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("half-close: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let wait = Duration::from_millis(args.wait_ms);
    // Only the run without a half-close is meant to wait.
    with_half_close(Duration::from_secs(10))?;
    without_half_close(wait)?;
    shutdown_read_and_both()?;
    Ok(())
}

/// A connected pair on loopback: (the client's end, the server's end).
fn connected(wait: Duration) -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    // No read below may wait forever; the client waits longer than the
    // server, so that the server is the one that gives up.
    client.set_read_timeout(Some(wait * 5))?;
    server.set_read_timeout(Some(wait))?;
    Ok((client, server))
}

// ANCHOR: server
/// The server's side: the request is everything until the end of the
/// stream, so it reads to the end (a read of `Ok(0)`), then answers.
fn answer(mut server: TcpStream) -> io::Result<usize> {
    let mut request = Vec::new();
    server.read_to_end(&mut request)?;
    write!(server, "got {} bytes", request.len())?;
    Ok(request.len())
}
// ANCHOR_END: server

// ANCHOR: client
fn with_half_close(wait: Duration) -> Result<()> {
    let (mut client, server) = connected(wait)?;
    let server = thread::spawn(move || answer(server));

    client.write_all("你好, server".as_bytes())?;
    // The FIN: "no more from me". The socket can still read.
    client.shutdown(Shutdown::Write)?;
    let mut reply = String::new();
    client
        .read_to_string(&mut reply)
        .context("reading the reply")?;

    let read = server.join().expect("the server does not panic")?;
    println!("with shutdown(Write): the server read {read} bytes to the end");
    println!("  and the client read its reply: {reply}");
    Ok(())
}
// ANCHOR_END: client

// ANCHOR: without
/// The same request without the FIN: the server cannot know it is over.
fn without_half_close(wait: Duration) -> Result<()> {
    let (mut client, server) = connected(wait)?;
    let server = thread::spawn(move || {
        let start = Instant::now();
        (answer(server), start.elapsed())
    });

    client.write_all("你好, server".as_bytes())?;
    // No shutdown: the client waits for a reply that waits for the end.
    let mut reply = String::new();
    let client_got = client.read_to_string(&mut reply);

    let (served, waited) = server.join().expect("the server does not panic");
    match served {
        Err(e) if is_timeout(&e) => println!(
            "without it: the server waited {waited:?} for the end, and gave up"
        ),
        other => println!("without it: the server did not time out: {other:?}"),
    }
    match client_got {
        Ok(0) => {
            println!("  and closed: the client read the end, and no reply")
        }
        other => println!("  and the client got: {other:?} {reply:?}"),
    }
    Ok(())
}
// ANCHOR_END: without

/// A read timeout is `WouldBlock` on Unix, `TimedOut` on Windows.
fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

// ANCHOR: others
fn shutdown_read_and_both() -> Result<()> {
    let (mut client, mut server) = connected(Duration::from_secs(5))?;
    let mut buf = [0; 16];

    client.shutdown(Shutdown::Read)?;
    // Nothing was sent, yet the read does not wait: this side declared its
    // own end of stream. (Linux still delivers what the peer sends later,
    // and tells the peer nothing; other systems differ.)
    println!(
        "after shutdown(Read): read gives {:?}",
        client.read(&mut buf)
    );

    client.shutdown(Shutdown::Both)?;
    let written = client.write(b"more");
    println!("after shutdown(Both): write gives {}", describe(written));
    println!("  and the server reads {:?}", server.read(&mut buf));
    Ok(())
}
// ANCHOR_END: others

fn describe(result: io::Result<usize>) -> String {
    match result {
        Ok(n) => format!("Ok({n})"),
        Err(e) => format!("an error: {:?} ({e})", e.kind()),
    }
}

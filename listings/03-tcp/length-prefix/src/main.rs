//! Beyond the notes: length-prefixed framing. Each message travels as a
//! 4-byte big-endian length, then that many bytes. The server echoes every
//! frame back; with `--connect` the program is the client instead.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

/// Send messages as length-prefixed frames (with --connect), or serve:
/// echo every frame back, and refuse a frame over --max-frame.
#[derive(Parser)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:7878")]
    bind: SocketAddr,
    /// Be the client: connect to this server and send the messages.
    #[arg(long)]
    connect: Option<SocketAddr>,
    /// The messages to send, one frame each (with --connect).
    messages: Vec<String>,
    /// The largest frame, in bytes, either side accepts.
    #[arg(long, default_value_t = 64 * 1024)]
    max_frame: u32,
    /// Serve this many connections, then stop (0: no limit).
    #[arg(long, default_value_t = 0)]
    clients: u64,
    /// Seconds a connection may stay silent, or refuse to take its echoes,
    /// before it is closed (1 to 86400, a day).
    #[arg(long, default_value_t = 30)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("length-prefix: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    match args.connect {
        Some(server) => client(server, &args),
        None => serve(&args),
    }
}

// ANCHOR: write
/// One frame: the length, 4 bytes big-endian, then the bytes. Header and
/// body go out in one write, as one segment where they fit.
fn write_frame(stream: &mut impl Write, body: &[u8], max: u32) -> Result<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&len| len <= max)
        .with_context(|| {
            format!(
                "a frame of {} bytes is over the maximum of {max}",
                body.len()
            )
        })?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    stream.write_all(&frame).context("sending a frame")
}
// ANCHOR_END: write

// ANCHOR: read
/// Reads one frame; `None` when the stream ends cleanly between frames.
fn read_frame(stream: &mut impl Read, max: u32) -> Result<Option<Vec<u8>>> {
    let mut header = [0; 4];
    match fill(stream, &mut header)? {
        0 => return Ok(None),
        4 => {}
        got => bail!("the stream ended {got} bytes into a 4-byte length"),
    }
    let len = u32::from_be_bytes(header);
    // Checked before allocating: a peer that announces 4 GiB gets an
    // error, not 4 GiB of our memory.
    if len > max {
        bail!("announced a frame of {len} bytes, over the maximum of {max}");
    }
    let mut body = vec![0; len as usize];
    stream.read_exact(&mut body).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => anyhow::anyhow!(
            "announced a frame of {len} bytes; the stream ended before all came"
        ),
        _ => anyhow::Error::new(e).context("reading a frame"),
    })?;
    Ok(Some(body))
}

/// Reads until `buf` is full or the stream ends; returns how much came.
/// (`read_exact` cannot tell an end before the first byte from one after.)
fn fill(stream: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
// ANCHOR_END: read

fn client(server: SocketAddr, args: &Args) -> Result<()> {
    let mut stream = TcpStream::connect(server)
        .with_context(|| format!("connecting to {server}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(args.idle)))?;
    for message in &args.messages {
        write_frame(&mut stream, message.as_bytes(), args.max_frame)?;
        let reply = read_frame(&mut stream, args.max_frame)?
            .context("the server closed the connection")?;
        println!("reply: {}", String::from_utf8_lossy(&reply));
    }
    Ok(())
}

fn serve(args: &Args) -> Result<()> {
    let listener = TcpListener::bind(args.bind)
        .with_context(|| format!("binding {}", args.bind))?;
    println!("listening on {}", listener.local_addr()?);
    let mut served = 0;
    while args.clients == 0 || served < args.clients {
        let (mut stream, peer) = listener.accept().context("accepting")?;
        served += 1;
        println!("[{peer}] connected");
        // Any fault ends this connection, never the server.
        match echo(&mut stream, peer, args) {
            Ok(frames) => println!(
                "[{peer}] closed the connection; frames echoed: {frames}"
            ),
            Err(e) => println!("[{peer}] {e:#}; closing"),
        }
    }
    Ok(())
}

/// Echoes frames until the client closes; returns how many it echoed.
fn echo(stream: &mut TcpStream, peer: SocketAddr, args: &Args) -> Result<u64> {
    stream.set_read_timeout(Some(Duration::from_secs(args.idle)))?;
    // A client that sends and never reads would otherwise hold this one-at-a-time
    // server in write_all for ever, once both socket buffers are full.
    stream.set_write_timeout(Some(Duration::from_secs(args.idle)))?;
    let mut frames = 0;
    while let Some(body) = read_frame(stream, args.max_frame)? {
        let text = String::from_utf8_lossy(&body);
        println!("[{peer}] a frame of {} bytes: {text}", body.len());
        write_frame(stream, &body, args.max_frame)?;
        frames += 1;
    }
    Ok(frames)
}

//! Beyond the notes: a TCP chat server on tokio's broadcast channel. Each
//! client's first line is its name, every later line goes to everyone (the
//! sender too); a client that stops reading falls behind the channel's ring,
//! and when it reads again it is told in one line how many messages it missed,
//! then gets the newest ones.

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::oneshot;
use tokio::time::timeout;

/// A chat server: every line a client sends goes to every client.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7878")]
    bind: SocketAddr,
    /// Messages the ring keeps for a client that falls behind (rounded up to a
    /// power of two).
    #[arg(long, default_value_t = 16)]
    #[arg(value_parser = clap::value_parser!(u16).range(1..=4096))]
    capacity: u16,
    /// The kernel's send buffer for each client, in bytes.
    #[arg(long, default_value_t = 65536)]
    #[arg(value_parser = clap::value_parser!(u32).range(4096..=4194304))]
    send_buffer: u32,
    /// Seconds a client may take to accept one whole line before it is dropped,
    /// and to name itself when it joins.
    #[arg(long, default_value_t = 30)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    write_timeout: u64,
}

/// The longest line a client may send, newline included.
const MAX_LINE: usize = 4096;

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("broadcast-chat: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(args: Args) -> Result<()> {
    // Ctrl-C is listened for once, before the address is printed: a
    // `ctrl_c()` made anew on each turn of the loop would miss a signal that
    // came between two turns, or before the first one was polled.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let listener = TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    println!("listening on {}", listener.local_addr()?);
    let (room, _) = broadcast::channel::<String>(args.capacity.into());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => { println!("accept: {e}"); continue; }
                };
                // A client that stops reading can hold only this much in the
                // kernel; Linux would otherwise let its buffer grow to
                // megabytes, and the ring would notice much later.
                let sock = socket2::SockRef::from(&stream);
                if let Err(e) = sock.set_send_buffer_size(args.send_buffer as usize) {
                    println!("{peer}: cannot set its send buffer: {e}");
                    continue;
                }
                let room = room.clone();
                let write_timeout = Duration::from_secs(args.write_timeout);
                tokio::spawn(async move {
                    match client(stream, room, write_timeout).await {
                        Ok(end) => println!("{peer} {end}"),
                        Err(e) => println!("{peer}: {e:#}"),
                    }
                });
            }
            _ = interrupt.recv() => {
                println!("shutting down");
                return Ok(());
            }
        }
    }
}

// ANCHOR: client
/// One client: reads its name, then its lines into the room, while a second
/// task forwards the room to it. Returns how the client left.
async fn client(
    stream: TcpStream,
    room: broadcast::Sender<String>,
    write_timeout: Duration,
) -> Result<String> {
    let peer = stream.peer_addr()?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    // A client that connects and never names itself holds a task and a
    // socket: it has as long as a stalled client has to take a line.
    let name = match timeout(write_timeout, read_line(&mut reader)).await {
        Err(_) => return Ok("named no one in time; closed".to_string()),
        Ok(read) => read,
    };
    let name = match name {
        Ok(Some(name)) if !name.is_empty() => name,
        Ok(Some(_)) => return refuse(&mut writer, "empty name").await,
        // Gone already: there is no one to tell.
        Ok(None) => return Ok("left before naming itself".to_string()),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return refuse(&mut writer, &e.to_string()).await;
        }
        Err(e) => return Err(e).context("cannot read its name"),
    };
    // Subscribe before announcing, so that the client sees its own arrival;
    // announce before the log says so, so that whoever reads the log knows the
    // announcement is in the ring.
    let mut inbox = room.subscribe();
    let _ = room.send(format!("* {name} joined"));
    println!("{peer} joined as {name}");
    let (left, mut told_left) = oneshot::channel::<()>();
    let mut forwarder = tokio::spawn(async move {
        loop {
            let line = tokio::select! {
                biased;
                _ = &mut told_left => return Ok(writer),
                message = inbox.recv() => match message {
                    Ok(message) => message + "\n",
                    Err(RecvError::Lagged(missed)) => {
                        println!("{peer} missed {missed} messages, told it so");
                        format!("server: you missed {missed} messages\n")
                    }
                    Err(RecvError::Closed) => return Ok(writer),
                },
            };
            match timeout(write_timeout, writer.write_all(line.as_bytes()))
                .await
            {
                Ok(written) => written.context("cannot write")?,
                Err(_) => anyhow::bail!(
                    "took no whole line in {write_timeout:?}; dropped"
                ),
            }
        }
    });
    let said = loop {
        tokio::select! {
            biased;
            // The forwarder gave up on the client: stop hearing it too, and
            // return, which closes its connection. A line half read is lost,
            // and nobody is left to want it.
            ended = &mut forwarder => {
                return ended.context("the forwarder panicked")?.map(|_| "left".into());
            }
            read = read_line(&mut reader) => match read {
                Ok(Some(line)) => {
                    // The forwarder may have given up while this line was read.
                    if !forwarder.is_finished() {
                        let _ = room.send(format!("{name}: {line}"));
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            },
        }
    };
    drop(left); // the forwarder stops at its next select!
    let mut writer = forwarder.await.context("the forwarder panicked")??;
    match said {
        Ok(()) => Ok("left".to_string()),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            refuse(&mut writer, &e.to_string()).await
        }
        Err(e) => Err(e).context("cannot read"),
    }
}
// ANCHOR_END: client

/// A protocol error: one line to the client, then its connection ends.
async fn refuse(writer: &mut OwnedWriteHalf, why: &str) -> Result<String> {
    let line = format!("error: {why}\n");
    let _ = timeout(Duration::from_secs(1), writer.write_all(line.as_bytes()))
        .await;
    Ok(format!("refused: {why}"))
}

/// The next line without its newline; None at the end of the stream. A line
/// over MAX_LINE bytes or not in UTF-8 is an error.
async fn read_line(
    reader: &mut BufReader<OwnedReadHalf>,
) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    // One byte more than allowed, to tell "too long" from "just fits".
    let limit = MAX_LINE as u64 + 1;
    if reader.take(limit).read_until(b'\n', &mut line).await? == 0 {
        return Ok(None);
    }
    if line.len() > MAX_LINE {
        let e = format!("line longer than {MAX_LINE} bytes");
        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    String::from_utf8(line).map(Some).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidData, "line not in UTF-8")
    })
}

//! S2.4-S2.6: TCP carries a stream of bytes, not messages. Two writes can
//! arrive in one read, and a read can end inside a character; a streaming
//! decoder and line framing fix both. Both ends run here, on loopback.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;

use clap::Parser;
use encoding_rs::{CoderResult, GBK};

/// Show, on a loopback connection, that TCP carries bytes, not messages:
/// writes merge, reads split characters, and newlines frame messages again.
#[derive(Parser)]
struct Args {}

fn main() -> ExitCode {
    Args::parse();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("byte-stream: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    writes_merge()?;
    reads_split()?;
    lines_frame()?;
    Ok(())
}

/// A connected pair on loopback: (the client's end, the server's end).
fn connected() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    Ok((client, server))
}

fn gbk(text: &str) -> Vec<u8> {
    GBK.encode(text).0.into_owned()
}

/// Writes each message with its own write, but lets the kernel send them
/// together, then closes the client's end.
///
/// Small writes often travel together: Nagle's algorithm holds them back on
/// purpose while earlier data is unacknowledged, and retransmissions and
/// busy receivers merge them too. TCP_CORK makes it happen every time here:
/// the kernel holds the bytes until the cork comes out, then sends them as
/// one segment.
fn send(mut client: TcpStream, messages: &[&str]) -> io::Result<()> {
    cork(&client, true)?;
    for message in messages {
        client.write_all(&gbk(message))?;
    }
    cork(&client, false)
}

// ANCHOR: merge
/// Two messages, two writes, one read.
fn writes_merge() -> io::Result<()> {
    let (client, mut server) = connected()?;
    // The reader starts before anything is written. Whether it is already
    // blocked in `read` when the bytes come does not matter: they arrive
    // together, so one read gets both.
    let reader = thread::spawn(move || {
        let mut buf = [0; 1024];
        let len = server.read(&mut buf)?;
        io::Result::Ok(buf[..len].to_vec())
    });
    send(client, &["你好", "世界"])?;
    let bytes = reader.join().expect("the reader does not panic")?;
    let (text, _) = GBK.decode_without_bom_handling(&bytes);
    println!("two writes of 4 bytes, one read of {}: {text}", bytes.len());
    Ok(())
}
// ANCHOR_END: merge

#[cfg(any(target_os = "linux", target_os = "android"))]
fn cork(stream: &TcpStream, on: bool) -> io::Result<()> {
    socket2::SockRef::from(stream).set_tcp_cork(on)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn cork(_: &TcpStream, _: bool) -> io::Result<()> {
    Ok(()) // no TCP_CORK here: the writes may or may not merge
}

// ANCHOR: split
/// One message read 3 bytes at a time: a GBK character is 2 bytes, so
/// reads end inside characters.
fn reads_split() -> io::Result<()> {
    let (client, server) = connected()?;
    send(client, &["我收到了"])?;

    let mut reader = BufReader::with_capacity(3, server);
    let mut each_alone = String::new();
    let mut streaming = String::new();
    let mut decoder = GBK.new_decoder_without_bom_handling();
    loop {
        let chunk = reader.fill_buf()?;
        let last = chunk.is_empty();
        // Decoding each read on its own turns split characters into U+FFFD.
        each_alone += &GBK.decode_without_bom_handling(chunk).0;
        // A streaming decoder keeps a split character until its end comes.
        let room = decoder.max_utf8_buffer_length(chunk.len());
        streaming.reserve(room.unwrap_or(0));
        // With room for the worst case, the decoder takes the whole chunk; if
        // it ever did not, the text would be cut, so say so.
        let (result, _, _) =
            decoder.decode_to_string(chunk, &mut streaming, last);
        if result == CoderResult::OutputFull {
            return Err(io::Error::other(
                "the decoder had no room for the text",
            ));
        }
        let len = chunk.len();
        reader.consume(len);
        if last {
            break;
        }
    }
    println!("3-byte reads, each decoded alone: {each_alone}");
    println!("3-byte reads, one streaming decoder: {streaming}");
    Ok(())
}
// ANCHOR_END: split

// ANCHOR: frame
/// The two writes of the first part, each ending in a newline: the reader
/// finds the messages again, however the bytes arrive (3 at a time here).
fn lines_frame() -> io::Result<()> {
    let (client, server) = connected()?;
    send(client, &["你好\n", "世界\n"])?;

    // In GBK (and GB 18030) every byte of a multi-byte character is 0x30 or
    // above, so a 0x0A byte is always a newline, never part of a character.
    let mut reader = BufReader::with_capacity(3, server);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line)? > 0 {
        let message = line.strip_suffix(b"\n").unwrap_or(&line);
        let (text, _) = GBK.decode_without_bom_handling(message);
        println!("a message, framed by its newline: {text}");
        line.clear();
    }
    Ok(())
}
// ANCHOR_END: frame

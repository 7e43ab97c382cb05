//! Beyond the notes: Nagle's algorithm meets delayed ACKs. A client writes a
//! 4-byte header, then a 4-byte body, then waits for a 1-byte reply; the
//! second write waits for an ACK the server delays. Timed three ways.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;

/// Time round trips of a 4-byte header and a 4-byte body, answered by one
/// byte: two writes with Nagle on, two writes with TCP_NODELAY, one write.
#[derive(Parser)]
struct Args {
    /// Round trips for each way (Nagle's takes about 40 ms each on Linux).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    rounds: u32,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nagle: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Clone, Copy)]
enum Way {
    TwoWrites { nodelay: bool },
    OneWrite,
}

fn run(args: Args) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding")?;
    let addr = listener.local_addr()?;
    println!("{} round trips each, on {addr}:", args.rounds);
    // The server: 8 bytes in, 1 byte out, for each of the three connections.
    let server = thread::spawn(move || -> std::io::Result<()> {
        for _ in 0..3 {
            let (mut stream, _) = listener.accept()?;
            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
            let mut request = [0; 8];
            while stream.read_exact(&mut request).is_ok() {
                stream.write_all(b"!")?;
            }
        }
        Ok(())
    });

    let ways = [
        (
            "two writes, Nagle on (the default)",
            Way::TwoWrites { nodelay: false },
        ),
        ("two writes, TCP_NODELAY", Way::TwoWrites { nodelay: true }),
        ("one write, Nagle on", Way::OneWrite),
    ];
    let mut p50s = Vec::new();
    for (name, way) in ways {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut times = round_trips(&mut stream, way, args.rounds)?;
        drop(stream);
        times.sort();
        let (p50, p99) = (percentile(&times, 50), percentile(&times, 99));
        println!("{name}: p50 {p50:?}, p99 {p99:?}");
        p50s.push(p50);
    }
    server.join().expect("the server does not panic")?;
    let ratio = p50s[0].as_secs_f64() / p50s[1].as_secs_f64().max(1e-9);
    println!("Nagle's p50 over TCP_NODELAY's: {ratio:.1}x");
    Ok(())
}

// ANCHOR: round
/// Times `rounds` requests: a 4-byte header and a 4-byte body, then a
/// 1-byte reply.
fn round_trips(
    stream: &mut TcpStream,
    way: Way,
    rounds: u32,
) -> Result<Vec<Duration>> {
    let header = 4u32.to_be_bytes();
    let body = *b"ping";
    if let Way::TwoWrites { nodelay } = way {
        stream.set_nodelay(nodelay)?;
    }
    let mut times = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        match way {
            Way::TwoWrites { .. } => {
                stream.write_all(&header)?;
                // With Nagle on, the kernel holds these bytes (the write
                // returns at once) until the header is acknowledged, and the
                // server delays its ACK: the wait shows up in read_exact.
                stream.write_all(&body)?;
            }
            Way::OneWrite => {
                let mut request = [0; 8];
                request[..4].copy_from_slice(&header);
                request[4..].copy_from_slice(&body);
                stream.write_all(&request)?;
            }
        }
        stream
            .read_exact(&mut [0; 1])
            .context("reading the reply")?;
        times.push(start.elapsed());
    }
    Ok(times)
}
// ANCHOR_END: round

/// The `p`th percentile of sorted `times` (nearest rank).
fn percentile(times: &[Duration], p: usize) -> Duration {
    let rank = (times.len() * p).div_ceil(100).max(1);
    times[rank - 1]
}

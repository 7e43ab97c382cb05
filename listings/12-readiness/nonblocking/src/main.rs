//! Beyond the notes: what a non-blocking std socket does. `accept` and `read`
//! return `WouldBlock` at once instead of waiting; a loop that retries them
//! until data comes keeps a core busy the whole time, where a blocking read
//! of the same wait costs next to nothing; and a write to a peer that reads
//! nothing is accepted only in part, then refused with `WouldBlock`.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeValLike;

/// Put a listener and a connection in non-blocking mode and see what changes.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Milliseconds the peer waits before it sends each line.
    #[arg(long, default_value_t = 200)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=10_000))]
    delay: u64,
}

/// Generous: no wait here is meant to last this long.
const PATIENCE: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nonblocking: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<()> {
    // ANCHOR: accept
    let listener = TcpListener::bind(args.bind)
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}, non-blocking");
    // Nobody has connected: a blocking accept would wait here for ever.
    let started = Instant::now();
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            println!("accept, no client yet: {e} after {:?}", started.elapsed())
        }
        other => bail!("accept with no client: {other:?}"),
    }
    // ANCHOR_END: accept

    let mut peer = TcpStream::connect(addr).context("cannot connect")?;
    peer.set_write_timeout(Some(PATIENCE))?;
    let mut stream = spin(|| listener.accept())?.0;
    // On Linux the accepted socket does not inherit the listener's mode.
    stream.set_nonblocking(true)?;

    // ANCHOR: read
    let mut buf = [0; 1024];
    let started = Instant::now();
    match stream.read(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            println!("read, nothing sent: {e} after {:?}", started.elapsed())
        }
        other => bail!("read with nothing sent: {other:?}"),
    }
    // ANCHOR_END: read

    // The peer sends a line after `delay`; we wait for it twice: retrying
    // a non-blocking read, then with one blocking read.
    // The second line waits for `go`, so that each wait is a whole `delay`.
    let delay = Duration::from_millis(args.delay);
    let (go, ready) = mpsc::channel();
    let sender = thread::spawn(move || -> io::Result<TcpStream> {
        for line in [b"first\n", b"again\n"] {
            thread::sleep(delay);
            peer.write_all(line)?;
            if ready.recv().is_err() {
                break; // the reader has given up
            }
        }
        Ok(peer)
    });
    // ANCHOR: spin
    let (cpu, started) = (cpu_time()?, Instant::now());
    let mut retries = 0u64;
    let n = spin(|| {
        let read = stream.read(&mut buf);
        retries += 1;
        read
    })?;
    let (wall, cpu) = (started.elapsed(), cpu_time()? - cpu);
    println!(
        "spinning read: {n} bytes after {retries} retries in {wall:?}; \
         CPU time {cpu:?}, {:.2}x the wall time",
        cpu.div_duration_f64(wall)
    );
    // ANCHOR_END: spin

    go.send(())?;
    // ANCHOR: blocking
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let (cpu, started) = (cpu_time()?, Instant::now());
    let n = stream.read(&mut buf).context("blocking read")?;
    let (wall, cpu) = (started.elapsed(), cpu_time()? - cpu);
    println!(
        "blocking read: {n} bytes in {wall:?}; CPU time {cpu:?}, {:.2}x \
         the wall time",
        cpu.div_duration_f64(wall)
    );
    // ANCHOR_END: blocking
    go.send(())?;
    let peer = sender.join().expect("the sender panicked")?;

    // ANCHOR: write
    // The peer reads nothing from now on: what we write fills our send
    // buffer and its receive buffer, and then there is nowhere to put more.
    stream.set_nonblocking(true)?;
    let asked = vec![b'x'; 32 << 20];
    let accepted = stream.write(&asked).context("first write")?;
    println!(
        "write of {} bytes to a peer that reads nothing: {} accepted",
        asked.len(),
        mib(accepted)
    );
    match stream.write(&asked[accepted..]) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            println!("write of the rest: {e}")
        }
        other => bail!("second write: {other:?}"),
    }
    // ANCHOR_END: write
    drop(peer);
    Ok(())
}

// ANCHOR: retry
/// The first loop a reader writes: try again until it stops saying
/// `WouldBlock`. (With a deadline, so that it cannot spin for ever.)
fn spin<T>(mut attempt: impl FnMut() -> io::Result<T>) -> Result<T> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match attempt() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    bail!("still WouldBlock after {PATIENCE:?}");
                }
            }
            other => return Ok(other?),
        }
    }
}
// ANCHOR_END: retry

/// User and system CPU time of this process so far (the peer's thread
/// sleeps meanwhile, so what grows is the reading thread's).
fn cpu_time() -> Result<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).context("getrusage")?;
    let micros = usage.user_time().num_microseconds()
        + usage.system_time().num_microseconds();
    Ok(Duration::from_micros(micros.try_into()?))
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

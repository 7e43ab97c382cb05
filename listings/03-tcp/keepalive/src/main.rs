//! Beyond the notes: TCP keepalive. An idle connection sends nothing; with
//! SO_KEEPALIVE the kernel probes it, and a peer that stopped answering ends
//! the connection with ETIMEDOUT. Counted on loopback with Linux's TCP_INFO.

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use socket2::{SockRef, TcpKeepalive};

/// Leave loopback connections idle, with and without keepalive, count the
/// segments each sends (TCP_INFO), and let one peer drop every segment.
#[derive(Parser)]
struct Args {
    /// Seconds to leave the connections idle; keepalive probes every second.
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=60))]
    idle: u64,
}

/// The keepalive this program sets: the first probe after 1 s idle, then
/// one a second, and the connection is dropped after 3 unanswered.
const TIME: Duration = Duration::from_secs(1);
const INTERVAL: Duration = Duration::from_secs(1);
const RETRIES: u32 = 3;

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keepalive: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    ensure!(
        cfg!(target_os = "linux"),
        "this program needs Linux (TCP_INFO, socket filters); it runs on Linux only"
    );
    print_system_defaults()?;
    let listener = TcpListener::bind("127.0.0.1:0").context("binding")?;
    let (probed, probed_peer) = connect(&listener)?;
    show_options(&probed)?;
    let (plain, plain_peer) = connect(&listener)?;

    let (dead, dead_peer) = connect(&listener)?;
    SockRef::from(&dead).set_tcp_keepalive(&keepalive())?;
    drop_every_segment(&dead_peer)?;
    let waiting = thread::spawn(move || read_from_a_dead_peer(dead));

    let idle = Duration::from_secs(args.idle);
    let sockets = [&probed, &probed_peer, &plain, &plain_peer];
    let count = || -> Result<Vec<u32>> {
        let counts = sockets.iter().map(|s| segments_sent(s));
        counts.collect::<io::Result<_>>().context("TCP_INFO")
    };
    let before = count()?;
    thread::sleep(idle);
    let sent: Vec<u32> = count()?
        .iter()
        .zip(&before)
        .map(|(after, before)| after.wrapping_sub(*before))
        .collect();
    println!(
        "idle for {} s on {}, segments sent (TCP_INFO):",
        args.idle,
        listener.local_addr()?
    );
    println!(
        "  with keepalive: {}, and the peer answered {}",
        sent[0], sent[1]
    );
    println!("  without: {}, and the peer {}", sent[2], sent[3]);

    let (outcome, waited) = waiting.join().expect("the reader does not panic");
    match outcome {
        Ok(n) => println!("a peer that drops every segment: read {n} bytes"),
        Err(e) => println!(
            "a peer that drops every segment: read gave {:?} ({e}) after {waited:?}",
            e.kind()
        ),
    }
    Ok(())
}

/// A connection to `listener`: the client's end and the server's.
fn connect(listener: &TcpListener) -> Result<(TcpStream, TcpStream)> {
    let client =
        TcpStream::connect(listener.local_addr()?).context("connecting")?;
    let (server, _) = listener.accept().context("accepting")?;
    Ok((client, server))
}

/// The system's keepalive defaults, which a socket gets with SO_KEEPALIVE
/// alone (on Linux, in /proc/sys).
fn print_system_defaults() -> Result<()> {
    let mut values = Vec::new();
    for name in [
        "tcp_keepalive_time",
        "tcp_keepalive_intvl",
        "tcp_keepalive_probes",
    ] {
        let path = format!("/proc/sys/net/ipv4/{name}");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {path}"))?;
        values.push(format!("{name} {}", text.trim()));
    }
    println!("/proc/sys/net/ipv4: {}", values.join(", "));
    Ok(())
}

// ANCHOR: options
fn keepalive() -> TcpKeepalive {
    TcpKeepalive::new()
        .with_time(TIME) // TCP_KEEPIDLE: idle this long, then probe
        .with_interval(INTERVAL) // TCP_KEEPINTVL: between probes
        .with_retries(RETRIES) // TCP_KEEPCNT: unanswered probes, then reset
}

/// Reads the options back from the kernel (getsockopt), in whole seconds.
fn print_options(stream: &TcpStream, label: &str) -> io::Result<()> {
    let socket = SockRef::from(stream);
    println!(
        "{label}: probes after {} s idle, every {} s, {} of them",
        socket.tcp_keepalive_time()?.as_secs(),
        socket.tcp_keepalive_interval()?.as_secs(),
        socket.tcp_keepalive_retries()?,
    );
    Ok(())
}

fn show_options(stream: &TcpStream) -> io::Result<()> {
    let socket = SockRef::from(stream);
    println!("a new connection: SO_KEEPALIVE {}", socket.keepalive()?);
    socket.set_keepalive(true)?; // what Python's one setsockopt does
    print_options(stream, "SO_KEEPALIVE alone")?;
    socket.set_tcp_keepalive(&keepalive())?; // sets SO_KEEPALIVE too
    print_options(stream, "with TcpKeepalive")
}
// ANCHOR_END: options

// ANCHOR: count
/// How many segments this end has sent, from Linux's TCP_INFO (the
/// counter `tcpi_segs_out` exists since Linux 4.2).
#[cfg(target_os = "linux")]
fn segments_sent(stream: &TcpStream) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`, which has
    // room for them, and sets `len` to how many it wrote.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_segs_out) + 4;
    if (len as usize) < needed {
        return Err(io::Error::other(
            "this kernel's TCP_INFO has no segment counts",
        ));
    }
    // SAFETY: zeroed, then filled by the kernel: every field is an integer.
    Ok(unsafe { info.assume_init() }.tcpi_segs_out)
}
// ANCHOR_END: count

// ANCHOR: dead
/// Makes this end drop every segment that arrives for it, before TCP sees
/// it: a classic BPF socket filter of one instruction, "return 0 bytes".
/// To the other end, the peer has vanished. No privileges needed.
#[cfg(target_os = "linux")]
fn drop_every_segment(stream: &TcpStream) -> io::Result<()> {
    let return_zero =
        socket2::SockFilter::new((libc::BPF_RET | libc::BPF_K) as u16, 0, 0, 0);
    SockRef::from(stream).attach_filter(&[return_zero])
}

/// Blocks in `read` until the kernel gives up on the connection.
fn read_from_a_dead_peer(
    mut stream: TcpStream,
) -> (io::Result<usize>, Duration) {
    // Keepalive should end the read after TIME + INTERVAL * RETRIES;
    // this timeout only stops a kernel that never would.
    let limit = TIME + INTERVAL * RETRIES + Duration::from_secs(30);
    let start = Instant::now();
    let outcome = stream
        .set_read_timeout(Some(limit))
        .and_then(|()| stream.read(&mut [0; 1]));
    (outcome, start.elapsed())
}
// ANCHOR_END: dead

/// Never called elsewhere (`run` stops first): it lets the program
/// compile, and `--help` work, on every Unix.
#[cfg(not(target_os = "linux"))]
fn segments_sent(_: &TcpStream) -> io::Result<u32> {
    Err(io::Error::other("TCP_INFO's segment counts are Linux's"))
}

#[cfg(not(target_os = "linux"))]
fn drop_every_segment(_: &TcpStream) -> io::Result<()> {
    Err(io::Error::other("socket filters here are Linux's"))
}

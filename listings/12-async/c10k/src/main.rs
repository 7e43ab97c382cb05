//! S11.1: C10K, measured. N connections at once on loopback, each doing
//! request/response round trips, against chapter 3's thread-per-connection
//! server, this chapter's tokio echo server and, if python3 is here, an
//! asyncio echo server. Each server runs in a child process of its own, so
//! that its threads and memory are its own.

use std::env;
use std::io::{self, BufRead, BufReader};
use std::iter::once;
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, LazyLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand, ValueEnum};
use encoding_rs::GBK;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;

/// Hold N loopback connections at once against three servers and measure.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// Connections held at once, one round per number.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=100_000))]
    connections: Vec<u32>,
    /// Request/response round trips on each connection.
    #[arg(long, default_value_t = 10)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=1000))]
    round_trips: u32,
    /// Whether to measure Python's asyncio too (auto: if python3 is here).
    #[arg(long, value_enum, default_value_t = Python::Auto)]
    python: Python,
}

#[derive(Subcommand)]
enum Role {
    /// Run one of the Rust servers, as the parent's child.
    #[command(hide = true)]
    Serve { server: Server },
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Server {
    Threads,
    Tokio,
    Asyncio,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Python {
    Auto,
    Never,
}

/// Open files a process needs beside its connections: standard streams,
/// the listener, the runtime's own descriptors.
const SPARE_FILES: u64 = 64;
/// Connects in flight at once: well under the servers' backlog, so that no
/// SYN is dropped and retried a second later.
const CONNECTING_AT_ONCE: usize = 256;
const BACKLOG: &str = "4096";
/// Generous: a stalled operation is an error, never a hang.
const PATIENCE: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.role {
        Some(Role::Serve { server }) => serve(server),
        None => run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("c10k: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: serve
/// The child's side: the very servers of chapter 3 and of this chapter,
/// started through their own command lines, told to log nothing per
/// connection.
fn serve(server: Server) -> Result<()> {
    let options = ["--bind", "127.0.0.1:0", "--backlog", BACKLOG, "--quiet"];
    match server {
        Server::Threads => {
            use tcp_threaded_server::{Args, run};
            run(Args::parse_from(once("tcp-threaded-server").chain(options)))
        }
        Server::Tokio => {
            use echo_server::{Args, run};
            run(Args::parse_from(once("echo-server").chain(options)))
        }
        Server::Asyncio => bail!("asyncio's server is Python's"),
    }
}
// ANCHOR_END: serve

// ANCHOR: asyncio
/// The asyncio counterpart of the tokio echo server, run by `python3 -c`.
const ASYNCIO_SERVER: &str = r#"
import asyncio, signal

async def echo(reader, writer):
    try:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0, backlog=4096)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()

asyncio.run(main())
"#;
// ANCHOR_END: asyncio

// ANCHOR: run
fn run(args: &Args) -> Result<()> {
    let most = *args.connections.iter().max().context("no --connections")?;
    let files = raise_file_limit(u64::from(most) + SPARE_FILES)?;
    let ports = local_ports(most)?;
    let mut servers = vec![Server::Threads, Server::Tokio];
    match args.python {
        Python::Auto if python3_present() => servers.push(Server::Asyncio),
        Python::Auto => println!("python3 is not here: no asyncio rows"),
        Python::Never => {}
    }
    let cores = thread::available_parallelism()?;
    println!("{cores} cores, shared by the servers and this load generator");
    println!(
        "open files allowed: {files} per process; each server inherits it"
    );
    if let Some(ports) = ports {
        println!("local ports for connections: {}", grouped(ports.into()));
    }
    println!(
        "each connection: {} round trips of one line; all connections at once",
        args.round_trips
    );
    // One thread for the load, so that the server has the other core(s).
    let load = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!(
        "{:>7}  {:<8} {:>6} {:>8} {:>6} {:>9} {:>10} {:>7} {:>7} {:>9} \
         {:>9} {:>7} {:>9} {:>9}",
        "conns",
        "server",
        "held",
        "trips",
        "errors",
        "trips/s",
        "vs threads",
        "cpu srv",
        "cpu gen",
        "p50",
        "p99",
        "threads",
        "peak RSS",
        "per conn"
    );
    let mut failed = 0;
    for &n in &args.connections {
        let mut baseline = None;
        for &server in &servers {
            let row = measure(server, n, args.round_trips, &load)?;
            let baseline = *baseline.get_or_insert(row.throughput());
            row.print(baseline);
            failed += usize::from(!row.complete(args.round_trips));
        }
    }
    ensure!(failed == 0, "{failed} rounds had errors; see above");
    Ok(())
}
// ANCHOR_END: run

/// What one round measured: one server, N connections.
struct Row {
    n: u32,
    server: Server,
    held: usize,
    times: Vec<u32>,
    errors: Vec<String>,
    elapsed: Duration,
    server_cores: f64,
    load_cores: f64,
    threads: u64,
    idle_kib: u64,
    peak_kib: u64,
    /// What the server printed besides its address: at most three lines.
    log: Vec<String>,
}

// ANCHOR: measure
fn measure(
    server: Server,
    n: u32,
    round_trips: u32,
    load: &tokio::runtime::Runtime,
) -> Result<Row> {
    let mut child = ServerChild::start(server)?;
    let idle_kib = child.status("VmRSS")?;
    let expected = expected_reply(server);
    let (streams, mut errors) = load.block_on(connect(child.addr, n));
    let held = streams.len();
    let (server_cpu, load_cpu) = (child.cpu_time()?, own_cpu_time()?);
    let started = Instant::now();
    let (streams, mut times, round_errors) =
        load.block_on(converse(streams, round_trips, expected));
    let elapsed = started.elapsed();
    // Cores kept busy while they talked: CPU time over wall time.
    let server_cores =
        (child.cpu_time()? - server_cpu).div_duration_f64(elapsed);
    let load_cores = (own_cpu_time()? - load_cpu).div_duration_f64(elapsed);
    errors.extend(round_errors);
    // Sampled while every connection is still open.
    let threads = child.status("Threads")?;
    let peak_kib = child.status("VmHWM")?;
    drop(streams);
    let (log, error) = child.stop()?;
    errors.extend(error);
    times.sort_unstable();
    Ok(Row {
        n,
        server,
        held,
        times,
        errors,
        elapsed,
        server_cores,
        load_cores,
        threads,
        idle_kib,
        peak_kib,
        log,
    })
}
// ANCHOR_END: measure

// ANCHOR: connect
/// Opens `n` connections, a bounded number in flight at a time; returns
/// those that opened and what went wrong with the others.
async fn connect(addr: SocketAddr, n: u32) -> (Vec<TcpStream>, Vec<String>) {
    let in_flight = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let mut connecting = JoinSet::new();
    for _ in 0..n {
        let permit = Arc::clone(&in_flight).acquire_owned().await;
        connecting.spawn(async move {
            let _permit = permit;
            let stream = timeout(PATIENCE, TcpStream::connect(addr))
                .await
                .map_err(io::Error::from)??;
            stream.set_nodelay(true)?;
            io::Result::Ok(stream)
        });
    }
    let mut streams = Vec::new();
    let mut errors = Vec::new();
    for outcome in connecting.join_all().await {
        match outcome {
            Ok(stream) => streams.push(stream),
            Err(e) => errors.push(format!("connect: {e}")),
        }
    }
    (streams, errors)
}
// ANCHOR_END: connect

// ANCHOR: converse
/// Every connection does its round trips at the same time; returns the
/// streams (still open), every round trip's time in µs, and the errors.
async fn converse(
    streams: Vec<TcpStream>,
    round_trips: u32,
    expected: Expected,
) -> (Vec<TcpStream>, Vec<u32>, Vec<String>) {
    let mut talking = JoinSet::new();
    for (id, mut stream) in streams.into_iter().enumerate() {
        talking.spawn(async move {
            let result =
                round_trips_on(&mut stream, id, round_trips, expected).await;
            (stream, result)
        });
    }
    let mut streams = Vec::new();
    let mut times = Vec::new();
    let mut errors = Vec::new();
    for (stream, result) in talking.join_all().await {
        streams.push(stream);
        match result {
            Ok(mut own) => times.append(&mut own),
            Err(e) => errors.push(format!("round trip: {e}")),
        }
    }
    (streams, times, errors)
}

async fn round_trips_on(
    stream: &mut TcpStream,
    id: usize,
    round_trips: u32,
    expected: Expected,
) -> io::Result<Vec<u32>> {
    let (reader, mut writer) = stream.split();
    let mut reader = AsyncBufReader::new(reader);
    let mut times = Vec::with_capacity(round_trips as usize);
    let mut reply = Vec::new();
    for trip in 0..round_trips {
        let request = format!("ping {id} {trip}\n");
        reply.clear();
        let started = Instant::now();
        let exchange = async {
            writer.write_all(request.as_bytes()).await?;
            reader.read_until(b'\n', &mut reply).await
        };
        timeout(PATIENCE, exchange)
            .await
            .map_err(io::Error::from)??;
        let elapsed = started.elapsed();
        if !expected.matches(request.as_bytes(), &reply) {
            let reply = String::from_utf8_lossy(&reply);
            return Err(io::Error::other(format!(
                "unexpected reply {reply:?}"
            )));
        }
        times.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
    }
    Ok(times)
}
// ANCHOR_END: converse

/// The echo servers send each line back; chapter 3's answers 我收到了 in GBK.
#[derive(Clone, Copy)]
enum Expected {
    Echo,
    Fixed(&'static [u8]),
}

static RECEIVED: LazyLock<Vec<u8>> =
    LazyLock::new(|| GBK.encode("我收到了\n").0.into_owned());

fn expected_reply(server: Server) -> Expected {
    match server {
        Server::Threads => Expected::Fixed(&RECEIVED),
        Server::Tokio | Server::Asyncio => Expected::Echo,
    }
}

impl Expected {
    fn matches(self, request: &[u8], reply: &[u8]) -> bool {
        match self {
            Expected::Echo => reply == request,
            Expected::Fixed(fixed) => reply == fixed,
        }
    }
}

impl Row {
    fn complete(&self, round_trips: u32) -> bool {
        self.errors.is_empty()
            && self.held == self.n as usize
            && self.times.len() == self.held * round_trips as usize
    }

    /// Round trips per second, all connections together.
    fn throughput(&self) -> f64 {
        self.times.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// One line of the table; `baseline` is the threaded server's throughput.
    fn print(&self, baseline: f64) {
        let at = |fraction: f64| {
            let last = self.times.len().saturating_sub(1);
            let i = (last as f64 * fraction).round() as usize;
            Duration::from_micros(
                self.times.get(i).copied().unwrap_or(0).into(),
            )
        };
        let per_connection = self.peak_kib.saturating_sub(self.idle_kib) as f64
            / f64::from(self.n);
        println!(
            "{:>7}  {:<8} {:>6} {:>8} {:>6} {:>9} {:>9.2}x {:>7.2} {:>7.2} \
             {:>9} {:>9} {:>7} {:>9} {:>9}",
            grouped(self.n.into()),
            self.server.name(),
            grouped(self.held as u64),
            grouped(self.times.len() as u64),
            self.errors.len(),
            grouped(self.throughput().round() as u64),
            self.throughput() / baseline,
            self.server_cores,
            self.load_cores,
            format!("{:?}", at(0.5)),
            format!("{:?}", at(0.99)),
            grouped(self.threads),
            kib(self.peak_kib as f64),
            kib(per_connection),
        );
        // The first few, not ten thousand of the same.
        for error in self.errors.iter().take(3) {
            println!("{:>9}error: {error}", "");
        }
        // When a round failed, what the server printed may say why.
        if !self.errors.is_empty() {
            for line in &self.log {
                println!("{:>9}the server said: {line}", "");
            }
        }
    }
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Threads => "threads",
            Server::Tokio => "tokio",
            Server::Asyncio => "asyncio",
        }
    }
}

/// A server in a child process; dropped, it is killed and reaped.
struct ServerChild {
    child: Child,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
}

impl ServerChild {
    fn start(server: Server) -> Result<Self> {
        let mut command = if server == Server::Asyncio {
            let mut python = Command::new("python3");
            python.args(["-c", ASYNCIO_SERVER]);
            python
        } else {
            let mut itself = Command::new(env::current_exe()?);
            itself.args(["serve", server.name()]);
            itself
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!("cannot start the {} server", server.name())
            })?;
        let stdout = child.stdout.take().context("the server's output")?;
        let (lines, log) = mpsc::channel();
        // Read its output as it comes, so that the server never blocks on
        // a full pipe: the first line is its address, any other an error.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut started = ServerChild {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let first = started.log.recv_timeout(PATIENCE).with_context(|| {
            format!("the {} server did not say where it listens", server.name())
        })?;
        started.addr = first
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
            .with_context(|| format!("unexpected first line {first:?}"))?;
        Ok(started)
    }

    /// A figure of `/proc/<pid>/status`: `VmRSS` and `VmHWM` in KiB,
    /// `Threads` as a count.
    fn status(&self, field: &str) -> Result<u64> {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path)?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
            .with_context(|| format!("no {field} in {path}"))
    }

    /// User and system time of all the server's threads so far.
    fn cpu_time(&self) -> Result<Duration> {
        let path = format!("/proc/{}/stat", self.child.id());
        let stat = std::fs::read_to_string(&path)?;
        // Fields 14 and 15 (utime, stime), counted after the command name,
        // which is in parentheses and may hold spaces.
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest);
        let fields: Vec<&str> = after_name.unwrap_or("").split(' ').collect();
        let ticks: u64 = fields
            .get(12..14)
            .and_then(|t| {
                Some(t[0].parse::<u64>().ok()? + t[1].parse::<u64>().ok()?)
            })
            .with_context(|| format!("no utime and stime in {path}"))?;
        // SAFETY: sysconf only reads its argument.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Ok(Duration::from_secs_f64(ticks as f64 / per_second as f64))
    }

    /// Ctrl-C, as a person would stop it; returns what the server logged
    /// besides its address, and an error if it did not end as it should.
    fn stop(&mut self) -> Result<(Vec<String>, Option<String>)> {
        let pid = Pid::from_raw(i32::try_from(self.child.id())?);
        kill(pid, Signal::SIGINT)?;
        let status = self.wait()?;
        // The threaded server has no shutdown of its own: SIGINT ends it.
        let expected = status.success() || status.code().is_none();
        let log = self.log.try_iter().take(3).collect();
        let error =
            (!expected).then(|| format!("the server ended with {status}"));
        Ok((log, error))
    }

    fn wait(&mut self) -> Result<ExitStatus> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("the server did not stop within {PATIENCE:?}");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// User and system time of this process (the load generator) so far.
fn own_cpu_time() -> Result<Duration> {
    // SAFETY: an all-zero rusage is a valid value, which getrusage overwrites.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes the struct we pass, which outlives the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Err(io::Error::last_os_error()).context("getrusage");
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64)
            + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(time(usage.ru_utime) + time(usage.ru_stime))
}

// ANCHOR: limit
/// Raises this process's soft limit on open files to the hard limit (its
/// children inherit it), or says why `need` cannot be had.
fn raise_file_limit(need: u64) -> Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error()).context("getrlimit");
    }
    if limit.rlim_max < need {
        bail!(
            "{need} open files are needed (the connections and {SPARE_FILES} \
             more), and this machine's hard limit is {}: raise it (ulimit \
             -Hn, or /etc/security/limits.conf) or ask for fewer connections",
            limit.rlim_max
        );
    }
    // An infinite hard limit (RLIM_INFINITY) is not a valid soft one.
    limit.rlim_cur = if limit.rlim_max == libc::RLIM_INFINITY {
        need.max(limit.rlim_cur)
    } else {
        limit.rlim_max
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error()).context("setrlimit");
    }
    Ok(limit.rlim_cur)
}
// ANCHOR_END: limit

/// Every client connection needs a port of its own from the ephemeral range:
/// how many it has (where Linux tells), if enough for `connections`.
fn local_ports(connections: u32) -> Result<Option<u32>> {
    let path = "/proc/sys/net/ipv4/ip_local_port_range";
    let Ok(range) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let ends: Vec<u32> = range
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    if let [low, high] = ends[..] {
        let ports = high.saturating_sub(low) + 1;
        ensure!(
            connections <= ports,
            "{connections} connections need as many local ports, and the \
             ephemeral range here ({low}-{high}, {path}) has {ports}"
        );
        return Ok(Some(ports));
    }
    Ok(None)
}

fn python3_present() -> bool {
    Command::new("python3")
        .args(["-c", "import asyncio"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn kib(kib: f64) -> String {
    if kib >= 1024.0 {
        format!("{:.1} MiB", kib / 1024.0)
    } else {
        format!("{kib:.1} KiB")
    }
}

fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

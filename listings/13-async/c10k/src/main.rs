//! S11.1: C10K, measured. N connections at once on loopback, each doing
//! request/response round trips, against chapter 3's thread-per-connection
//! server, this chapter's tokio echo server, chapter 12's mio echo server
//! and, if python3 is here, an asyncio echo server. Linux only: it reads what it reports from /proc; on
//! another system it says so and exits.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::{Parser, Subcommand};
use encoding_rs::GBK;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;

use c10k::server::{self, Server, ServerChild};
use c10k::system;
use io_bound::grouped;

/// Hold N loopback connections at once against four servers and measure.
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
    /// Leave out Python's asyncio (by default it runs if python3 is here).
    #[arg(long)]
    no_python: bool,
}

#[derive(Subcommand)]
enum Role {
    /// Run one of the Rust servers, as the parent's child.
    #[command(hide = true)]
    Serve { server: Server },
}

/// Open files a process needs beside its connections: standard streams,
/// the listener, the runtime's own descriptors.
const SPARE_FILES: u64 = 64;
/// Handshakes in flight at once: well under the servers' backlog as the
/// kernel caps it (net.core.somaxconn, 4,096 since Linux 5.4), so that no
/// SYN is dropped and retried a second later. (Under the old cap of 128,
/// some are: the round is slower, and still complete.)
const CONNECTING_AT_ONCE: usize = 256;
/// Generous: a stalled connection is an error in the table, never a hang.
const PATIENCE: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.role {
        Some(Role::Serve { server }) => server::serve(server),
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

// ANCHOR: run
fn run(args: &Args) -> Result<()> {
    ensure!(
        cfg!(target_os = "linux"),
        "this program needs Linux: it reads what it measures from /proc"
    );
    let most = *args.connections.iter().max().context("no --connections")?;
    let files = system::raise_file_limit(u64::from(most) + SPARE_FILES)?;
    let ports = system::local_ports()?;
    ensure!(
        u64::from(most) <= ports,
        "{most} connections need as many local ports; this machine has {ports}"
    );
    let threads = io_bound::thread_limit()?;
    let mut servers = vec![Server::Threads, Server::Tokio, Server::Mio];
    if !args.no_python {
        if server::python3_present() {
            servers.push(Server::Asyncio);
        } else {
            println!("python3 is not here: no asyncio rows");
        }
    }
    let cores = thread::available_parallelism()?;
    println!("{cores} cores, shared by the servers and this load generator");
    println!("open files allowed: {files} per process, servers included");
    println!("local ports for connections: {}", grouped(ports));
    println!(
        "threads a process may start: about {} ({})",
        grouped(threads.threads),
        threads.reason
    );
    println!(
        "each connection: 1 round trip to warm up, then {} timed, all \
         connections at once",
        args.round_trips
    );
    // One thread for the load, so that the server has the other core(s).
    let load = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    print_line(SERVED, |column| column.to_string());
    for &n in &args.connections {
        for &server in &servers {
            // A thread per connection, and the main thread: not started past
            // the limit, which for a shared one would leave every other
            // program here no thread to start.
            if server == Server::Threads && u64::from(n) + 1 > threads.threads {
                println!(
                    "{:>7}  threads  not started: more threads than this \
                     machine allows",
                    grouped(n)
                );
                continue;
            }
            rows.push(measure(server, n, args.round_trips, &load)?);
            let baseline = rows
                .iter()
                .find(|r| r.n == n && r.server == Server::Threads)
                .map(Row::throughput);
            rows.last().expect("just measured").print_served(baseline);
        }
    }
    println!();
    print_line(COST, |column| column.to_string());
    for row in &rows {
        row.print_cost();
    }
    let failed = rows
        .iter()
        .filter(|r| !r.complete(args.round_trips))
        .count();
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
    server_cpu: Duration,
    load_cpu: Duration,
    threads: u64,
    idle_kib: u64,
    peak_kib: u64,
}

// ANCHOR: measure
fn measure(
    server: Server,
    n: u32,
    round_trips: u32,
    load: &tokio::runtime::Runtime,
) -> Result<Row> {
    let child = ServerChild::start(server)?;
    let name = server.name();
    let status = |field| {
        system::status(child.pid(), field)
            .with_context(|| format!("the {name} server"))
    };
    let cpu_time = || {
        system::cpu_time(child.pid())
            .with_context(|| format!("the {name} server"))
    };
    let idle_kib = status("VmRSS")?;
    let reply = fixed_reply(server);
    let (streams, mut errors) =
        load.block_on(connect(child.addr, n, reply.clone()));
    let held = streams.len();
    let (server_cpu, load_cpu) = (cpu_time()?, system::cpu_time("self")?);
    let started = Instant::now();
    let (streams, mut times, talk_errors) =
        load.block_on(converse(streams, round_trips, reply));
    let elapsed = started.elapsed();
    let server_cpu = cpu_time()? - server_cpu;
    let load_cpu = system::cpu_time("self")? - load_cpu;
    errors.extend(talk_errors);
    // Read while every connection is still open.
    let threads = status("Threads")?;
    let peak_kib = status("VmHWM")?;
    drop(streams);
    if let Err(e) = child.stop() {
        errors.push(format!("{e:#}"));
    }
    times.sort_unstable();
    Ok(Row {
        n,
        server,
        held,
        times,
        errors,
        elapsed,
        server_cpu,
        load_cpu,
        threads,
        idle_kib,
        peak_kib,
    })
}
// ANCHOR_END: measure

/// Echo servers send each line back; chapter 3's answers 我收到了 in GBK.
fn fixed_reply(server: Server) -> Option<Arc<[u8]>> {
    (server == Server::Threads).then(|| GBK.encode("我收到了\n").0.into())
}

// ANCHOR: connect
/// Opens `n` connections, a bounded number of handshakes in flight, and
/// makes one round trip on each: when it is answered, the server has
/// accepted the connection and is serving it. Returns the connections
/// that got that far, and what went wrong with the others.
async fn connect(
    addr: SocketAddr,
    n: u32,
    reply: Option<Arc<[u8]>>,
) -> (Vec<TcpStream>, Vec<String>) {
    let in_flight = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let mut connecting = JoinSet::new();
    for id in 0..n {
        let permit = Arc::clone(&in_flight).acquire_owned().await;
        let reply = reply.clone();
        connecting.spawn(async move {
            let connected = timeout(PATIENCE, TcpStream::connect(addr)).await;
            drop(permit);
            let mut stream = connected.map_err(io::Error::from)??;
            stream.set_nodelay(true)?;
            round_trips(&mut stream, id, 1, reply).await?;
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
    trips: u32,
    reply: Option<Arc<[u8]>>,
) -> (Vec<TcpStream>, Vec<u32>, Vec<String>) {
    let mut talking = JoinSet::new();
    for (id, mut stream) in (0..).zip(streams) {
        let reply = reply.clone();
        talking.spawn(async move {
            let times = round_trips(&mut stream, id, trips, reply).await;
            (stream, times)
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

/// Sends a line and waits for the reply, `trips` times; checks every reply
/// (the line itself, or the fixed reply) and times it.
async fn round_trips(
    stream: &mut TcpStream,
    id: u32,
    trips: u32,
    fixed: Option<Arc<[u8]>>,
) -> io::Result<Vec<u32>> {
    let (reader, mut writer) = stream.split();
    let mut reader = BufReader::new(reader);
    let mut times = Vec::with_capacity(trips as usize);
    let mut reply = Vec::new();
    for trip in 0..trips {
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
        if reply != fixed.as_deref().unwrap_or(request.as_bytes()) {
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

/// The two tables: what was served, and what serving it cost. Widths are
/// negative for a left-aligned column.
const SERVED: [(&str, isize); 9] = [
    ("conns", 7),
    ("server", -8),
    ("held", 6),
    ("trips", 9),
    ("errors", 6),
    ("trips/s", 9),
    ("vs threads", 10),
    ("p50", 10),
    ("p99", 10),
];
const COST: [(&str, isize); 8] = [
    ("conns", 7),
    ("server", -8),
    ("threads", 7),
    ("cpu srv", 7),
    ("cpu gen", 7),
    ("srv cpu/trip", 12),
    ("peak RSS", 10),
    ("per conn", 9),
];

fn print_line<const N: usize>(
    columns: [(&str, isize); N],
    cell: impl Fn(&str) -> String,
) {
    let mut line = String::new();
    for (i, (name, width)) in columns.into_iter().enumerate() {
        let gap = match i {
            0 => "",
            1 => "  ",
            _ => " ",
        };
        let (cell, w) = (cell(name), width.unsigned_abs());
        let _ = if width < 0 {
            write!(line, "{gap}{cell:<w$}")
        } else {
            write!(line, "{gap}{cell:>w$}")
        };
    }
    println!("{}", line.trim_end());
}

impl Row {
    /// Round trips per second, all connections together.
    fn throughput(&self) -> f64 {
        self.times.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn complete(&self, round_trips: u32) -> bool {
        self.errors.is_empty()
            && self.held == self.n as usize
            && self.times.len() == self.held * round_trips as usize
    }

    /// `baseline`: the threaded server's throughput at the same N.
    fn print_served(&self, baseline: Option<f64>) {
        let at = |fraction: f64| {
            let last = self.times.len().saturating_sub(1);
            let i = (last as f64 * fraction).round() as usize;
            let micros = self.times.get(i).copied().unwrap_or(0);
            format!("{:?}", Duration::from_micros(micros.into()))
        };
        print_line(SERVED, |column| match column {
            "conns" => grouped(self.n),
            "server" => self.server.name().into(),
            "held" => grouped(self.held as u64),
            "trips" => grouped(self.times.len() as u64),
            "errors" => self.errors.len().to_string(),
            "trips/s" => grouped(self.throughput().round() as u64),
            "vs threads" => baseline.map_or("-".into(), |b| {
                format!("{:.2}x", self.throughput() / b)
            }),
            "p50" => at(0.5),
            _ => at(0.99),
        });
        // The first few, not ten thousand of the same.
        for error in self.errors.iter().take(3) {
            println!("{:>9}error: {error}", "");
        }
    }

    fn print_cost(&self) {
        let cores = |cpu: Duration| cpu.div_duration_f64(self.elapsed);
        let trips = (self.times.len() as u32).max(1);
        let per_trip = Duration::from_nanos(
            (self.server_cpu / trips).as_nanos().div_ceil(100) as u64 * 100,
        );
        let grown = self.peak_kib.saturating_sub(self.idle_kib) as f64;
        print_line(COST, |column| match column {
            "conns" => grouped(self.n),
            "server" => self.server.name().into(),
            "threads" => grouped(self.threads),
            "cpu srv" => format!("{:.2}", cores(self.server_cpu)),
            "cpu gen" => format!("{:.2}", cores(self.load_cpu)),
            "srv cpu/trip" => format!("{per_trip:?}"),
            "peak RSS" => kib(self.peak_kib as f64),
            _ => kib(grown / f64::from(self.n)),
        });
    }
}

fn kib(kib: f64) -> String {
    if kib >= 1024.0 {
        format!("{:.1} MiB", kib / 1024.0)
    } else {
        format!("{kib:.1} KiB")
    }
}

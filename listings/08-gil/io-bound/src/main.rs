//! S6.1, S6.2: I/O-bound work, measured. Each task waits (a sleep stands for a
//! reply that takes 100 ms to come), and the tasks run one after another,
//! each on a thread of its own, and as tokio tasks: 100, 10,000 and 100,000
//! of them. Each round runs in a fresh child process, so the peak memory it
//! reports is that round's own. Threads are started only as far as this
//! machine's limits allow. Linux only: it reads memory and limits from /proc.

use std::env;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use io_bound::{ThreadLimit, grouped, thread_limit};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Runs tasks that only wait, three ways, and times them.
#[derive(Parser)]
struct Args {
    /// How many tasks in each round, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_values_t = [100, 10_000, 100_000],
        value_parser = clap::value_parser!(u64).range(1..=1_000_000),
    )]
    tasks: Vec<u64>,
    /// How long each task waits, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    wait_ms: u64,
    /// Run the tasks one after another only up to this many: it takes
    /// tasks x wait.
    #[arg(long, default_value_t = 100)]
    one_by_one_up_to: u64,
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().collect();
    // A child started by `round`: `io-bound round WAY TASKS WAIT_MS`.
    let result = if args.get(1).map(String::as_str) == Some("round") {
        round_in_child(&args[2..])
    } else {
        run(Args::parse())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("io-bound: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: ways
fn one_by_one(tasks: u64, wait: Duration) -> Result<()> {
    for _ in 0..tasks {
        thread::sleep(wait);
    }
    Ok(())
}

fn on_threads(tasks: u64, wait: Duration) -> Result<()> {
    // Each thread waits at the gate until all have started, so that all of
    // them wait at once, as threads serving that many connections would. A
    // Barrier would need the count up front, and hang if a spawn is refused.
    let gate = Arc::new(RwLock::new(()));
    let closed = gate.write().map_err(|_| anyhow!("the gate is poisoned"))?;
    let mut handles = Vec::new();
    let mut refused = None;
    for number in 1..=tasks {
        let gate = Arc::clone(&gate);
        let spawned = thread::Builder::new().spawn(move || {
            let _open = gate.read();
            thread::sleep(wait);
        });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                refused = Some((number, e));
                break;
            }
        }
        if number % 1000 == 0 {
            // Progress for the parent, in case this process dies.
            println!("started {number}");
        }
    }
    drop(closed);
    // The threads already started are joined, also when one was refused.
    for handle in handles {
        handle.join().map_err(|_| anyhow!("a thread panicked"))?;
    }
    match refused {
        Some((number, e)) => bail!("refused thread {}: {e}", grouped(number)),
        None => Ok(()),
    }
}

fn on_tokio(tasks: u64, wait: Duration) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let (open, gate) = watch::channel(false);
        let mut set = JoinSet::new();
        for _ in 0..tasks {
            let mut gate = gate.clone();
            set.spawn(async move {
                let _ = gate.wait_for(|&open| open).await;
                tokio::time::sleep(wait).await;
            });
        }
        open.send(true)?;
        while let Some(done) = set.join_next().await {
            done?;
        }
        Ok(())
    })
}
// ANCHOR_END: ways

/// In the child: one round, then its time and the process's peak resident
/// memory, or why it failed, as one line for the parent.
fn round_in_child(args: &[String]) -> Result<()> {
    let [way, tasks, wait_ms] = args else {
        bail!("a round needs WAY TASKS WAIT_MS");
    };
    let tasks: u64 = tasks.parse().context("TASKS")?;
    let wait = Duration::from_millis(wait_ms.parse().context("WAIT_MS")?);
    let way = match way.as_str() {
        "one-by-one" => one_by_one,
        "threads" => on_threads,
        "tokio" => on_tokio,
        other => bail!("no way called {other:?}"),
    };
    no_core_dump();
    let started = Instant::now();
    match way(tasks, wait) {
        Ok(()) => {
            let took = started.elapsed().as_nanos();
            println!("done {took} {}", peak_kib()?);
        }
        Err(e) => println!("failed {e:#}"),
    }
    Ok(())
}

/// A round that runs out of memory maps may abort, and a process that
/// aborts may leave a core file in the working directory: for a process
/// with thousands of threads, a large one that nobody wants.
fn no_core_dump() {
    // It changes a limit of this process alone. If it fails, the round
    // runs all the same, with the system's own limit.
    let _ = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_CORE,
        0,
        0,
    );
}

// ANCHOR: round
/// One round, running in a fresh process of this program.
struct Round {
    way: &'static str,
    tasks: u64,
    child: Child,
}

impl Round {
    fn start(way: &'static str, tasks: u64, wait: Duration) -> Result<Round> {
        let me = env::current_exe().context("cannot find this program")?;
        let child = Command::new(me)
            .args(["round", way, &tasks.to_string()])
            .arg(wait.as_millis().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start a round")?;
        Ok(Round { way, tasks, child })
    }

    /// Waits for the round to end, and returns its line of the table (two
    /// if it failed).
    fn report(self, wait: Duration) -> Result<String> {
        let Round { way, tasks, child } = self;
        let output = child.wait_with_output().context("a round's output")?;
        let report = String::from_utf8_lossy(&output.stdout);
        let last = report.lines().last().unwrap_or_default();
        let tasks = grouped(tasks);
        if let Some(figures) = last.strip_prefix("done ") {
            let (nanos, kib) =
                figures.split_once(' ').context("a round's figures")?;
            let took =
                Duration::from_nanos(nanos.parse().context("a round's time")?);
            let mib =
                kib.parse::<f64>().context("a round's peak memory")? / 1024.0;
            let floor = took.as_secs_f64() / wait.as_secs_f64();
            let took = format!("{took:.1?}");
            return Ok(format!(
                "{tasks:>9}  {way:<11}{took:>9} {floor:>7.2}x {mib:>7.1} MiB"
            ));
        }
        // The round failed: say how far it got, and why.
        let started = report
            .lines()
            .filter_map(|l| l.strip_prefix("started "))
            .next_back();
        let started = match started {
            Some(n) => {
                format!(
                    "more than {}",
                    grouped(n.parse::<u64>().context("a count")?)
                )
            }
            None => "none".to_string(),
        };
        let why = match last.strip_prefix("failed ") {
            Some(why) => why.to_string(),
            None => {
                crash(&output.status, &String::from_utf8_lossy(&output.stderr))
            }
        };
        Ok(format!(
            "{tasks:>9}  {way:<11}failed: {started} had started\n{:11}how: {why}",
            ""
        ))
    }
}
/// What killed a child: its signal, and the message it printed as it died.
fn crash(status: &ExitStatus, stderr: &str) -> String {
    // A panic prints `thread '...' panicked at <file>:` and then its message.
    // Threads that fail at the same moment can mix their lines, so the
    // message std prints for a signal stack it cannot map is looked for first.
    let mut lines = stderr.lines();
    let message = stderr
        .lines()
        .find(|l| l.contains("alternative stack"))
        .or_else(|| {
            lines
                .find(|l| l.contains(" panicked at "))
                .and(lines.next())
        });
    let how = match status.signal() {
        Some(libc::SIGABRT) => "the process aborted".to_string(),
        Some(signal) => format!("killed by signal {signal}"),
        None => format!("the process ended with {status}"),
    };
    match message {
        Some(message) => format!("{how}: {message}"),
        None => how,
    }
}
// ANCHOR_END: round

// ANCHOR: run
fn run(a: Args) -> Result<()> {
    let wait = Duration::from_millis(a.wait_ms);
    let limit = thread_limit()?;
    println!(
        "each task waits {} ms: that is the floor, however many wait at once",
        a.wait_ms
    );
    println!(
        "threads this process may start here: about {} ({})",
        grouped(limit.threads),
        limit.reason
    );
    // The one-by-one rounds only sleep, for tasks x wait: each runs beside
    // the others, in a process of its own, instead of before them.
    let mut one_by_one = Vec::new();
    for &tasks in a.tasks.iter().filter(|&&n| n <= a.one_by_one_up_to) {
        one_by_one.push(Round::start("one-by-one", tasks, wait)?);
    }
    let mut rows = Vec::new();
    for &tasks in &a.tasks {
        rows.push((tasks, threads_round(tasks, wait, &limit)?));
        rows.push((tasks, Round::start("tokio", tasks, wait)?.report(wait)?));
    }
    for round in one_by_one {
        rows.insert(0, (round.tasks, round.report(wait)?));
    }
    // One table, by the number of tasks: one by one, threads, tokio.
    rows.sort_by_key(|&(tasks, _)| tasks);
    println!("    tasks  way             time   floor   peak memory");
    for (_, row) in rows {
        println!("{row}");
    }
    Ok(())
}

/// Threads up to the limit. Past a limit of this process's own, the round
/// runs into it (the lesson); past a shared one, it is not started, since
/// it would take the last threads of every other program here.
fn threads_round(
    tasks: u64,
    wait: Duration,
    limit: &ThreadLimit,
) -> Result<String> {
    if tasks > limit.threads && !limit.own {
        return Ok(format!(
            "{:>9}  threads    not started: more than this machine allows",
            grouped(tasks)
        ));
    }
    Round::start("threads", tasks, wait)?.report(wait)
}
// ANCHOR_END: run

/// The peak resident memory of this process (VmHWM), in KiB.
fn peak_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    let kib = line.trim().trim_end_matches(" kB").trim();
    kib.parse().context("VmHWM in /proc/self/status")
}

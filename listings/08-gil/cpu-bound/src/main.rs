//! S6.1-S6.3: CPU-bound work, measured. The same computation runs in one
//! thread, on N threads, in N processes and with rayon; each speedup is set
//! against what this machine can really run in parallel, measured first.
//! With python3 present, the notes' way (threads, then processes, under the
//! GIL) runs in the same run on the same kind of work.

use std::env;
use std::io::ErrorKind;
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use rayon::ThreadPoolBuilder;
use rayon::prelude::*;

/// Times one CPU-bound computation done four ways, against this machine's
/// measured parallel ceiling.
#[derive(Parser)]
struct Args {
    /// Pieces of work; each goes whole to one worker.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    chunks: u64,
    /// Steps of computation in one chunk.
    #[arg(long, default_value_t = 4_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    steps: u64,
    /// Threads or processes to share the chunks [default: the cores
    /// available, and at least 2].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    workers: Option<u64>,
    /// Each way runs this many times; the fastest run counts.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    rounds: u64,
    /// The Python to time the notes' way with.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Steps in one chunk for Python, which is far slower per step.
    #[arg(long, default_value_t = 120_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    python_steps: u64,
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().collect();
    // A child started by `processes`: `cpu-bound share WORKER WORKERS CHUNKS STEPS`.
    let result = if args.get(1).map(String::as_str) == Some("share") {
        share_in_child(&args[2..])
    } else {
        run(Args::parse())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cpu-bound: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: work
/// One chunk of pure computation: a xorshift random-number generator
/// stepped `steps` times. Each step needs the one before, so neither the
/// compiler nor the processor can skip steps or run them side by side.
fn chunk(seed: u64, steps: u64) -> u64 {
    // 0 is xorshift's fixed point: the offset keeps small seeds far from it.
    let mut x = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    for _ in 0..steps {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// Worker `worker` of `workers` takes chunks worker, worker + workers, ...
fn share(worker: u64, workers: u64, chunks: u64, steps: u64) -> u64 {
    (worker..chunks)
        .step_by(workers as usize)
        .map(|seed| chunk(seed, steps))
        .fold(0, u64::wrapping_add)
}
// ANCHOR_END: work

// ANCHOR: ways
fn sequential(chunks: u64, steps: u64, _workers: u64) -> Result<u64> {
    Ok(share(0, 1, chunks, steps))
}

fn threads(chunks: u64, steps: u64, workers: u64) -> Result<u64> {
    thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| s.spawn(move || share(w, workers, chunks, steps)))
            .collect();
        let mut total = 0u64;
        for handle in handles {
            let part = handle
                .join()
                .map_err(|_| anyhow::anyhow!("a worker panicked"))?;
            total = total.wrapping_add(part);
        }
        Ok(total)
    })
}

fn processes(chunks: u64, steps: u64, workers: u64) -> Result<u64> {
    let me = env::current_exe().context("cannot find this program")?;
    let mut children: Vec<Child> = Vec::new();
    let collected = (|| {
        for w in 0..workers {
            let args = [w, workers, chunks, steps].map(|n| n.to_string());
            children.push(
                Command::new(&me)
                    .arg("share")
                    .args(args)
                    .stdout(Stdio::piped())
                    .spawn()
                    .context("cannot start a worker process")?,
            );
        }
        let mut total = 0u64;
        for child in &mut children {
            let mut line = String::new();
            std::io::Read::read_to_string(
                child.stdout.as_mut().context("a piped stdout")?,
                &mut line,
            )?;
            let part: u64 = line.trim().parse().context("a worker's answer")?;
            total = total.wrapping_add(part);
        }
        anyhow::Ok(total)
    })();
    // Every child is waited for, also when one failed or could not be read.
    let statuses: Vec<_> = children.iter_mut().map(Child::wait).collect();
    for status in statuses {
        let status = status.context("cannot wait for a worker process")?;
        ensure!(status.success(), "a worker process failed: {status}");
    }
    collected
}

fn with_rayon(chunks: u64, steps: u64, workers: u64) -> Result<u64> {
    // rayon's global pool has one thread per core; this one has `workers`,
    // like the other ways. rayon splits the range among them itself.
    let pool = ThreadPoolBuilder::new()
        .num_threads(workers as usize)
        .build()?;
    Ok(pool.install(|| {
        (0..chunks)
            .into_par_iter()
            .map(|seed| chunk(seed, steps))
            .reduce(|| 0, u64::wrapping_add)
    }))
}
// ANCHOR_END: ways

fn share_in_child(args: &[String]) -> Result<()> {
    let numbers: Vec<u64> = args
        .iter()
        .map(|a| a.parse().context("a worker's arguments"))
        .collect::<Result<_>>()?;
    let [worker, workers, chunks, steps] = numbers[..] else {
        bail!("a worker needs WORKER WORKERS CHUNKS STEPS");
    };
    println!("{}", share(worker, workers, chunks, steps));
    Ok(())
}

type Way = fn(u64, u64, u64) -> Result<u64>;

/// The fastest of `rounds` runs, and the checksum every run must agree on.
fn best_of(
    rounds: u64,
    way: Way,
    a: &Args,
    workers: u64,
) -> Result<(Duration, u64)> {
    let (best, sums) = fastest(rounds, || way(a.chunks, a.steps, workers))?;
    ensure!(sums.windows(2).all(|w| w[0] == w[1]), "two runs disagree");
    Ok((best, sums.first().copied().unwrap_or_default()))
}

// ANCHOR: ceiling
/// How much more work `workers` busy threads get done at once than one:
/// `workers` on an idle machine with that many cores, less on a busy one.
fn ceiling(workers: u64, steps: u64, rounds: u64) -> Result<f64> {
    let (one, _) =
        fastest(rounds, || Ok(std::hint::black_box(chunk(0, steps))))?;
    let (many, _) = fastest(rounds, || {
        thread::scope(|s| {
            for w in 0..workers {
                s.spawn(move || std::hint::black_box(chunk(w, steps)));
            }
        });
        Ok(())
    })?;
    ensure!(!many.is_zero(), "too little work to time");
    Ok(workers as f64 * one.as_secs_f64() / many.as_secs_f64())
}
// ANCHOR_END: ceiling

/// One line of the table: the time, the speedup over one thread, and how
/// much of the parallel ceiling that speedup reached.
fn row(name: &str, took: Duration, one_thread: Duration, ceiling: f64) {
    let speedup = one_thread.as_secs_f64() / took.as_secs_f64();
    let took = format!("{took:.1?}");
    if name == "one thread" {
        println!("  {name:<11} {took:>10} {speedup:>6.2}x");
    } else {
        let reached = speedup / ceiling;
        println!(
            "  {name:<11} {took:>10} {speedup:>6.2}x, {reached:.2}x the ceiling"
        );
    }
}

/// The time of 1,000 steps: one step is too short for `Duration`'s
/// nanoseconds to show.
fn per_1000_steps(took: Duration, steps: u64) -> Duration {
    Duration::from_secs_f64(took.as_secs_f64() * 1000.0 / steps as f64)
}

/// The fastest of `rounds` runs of `work`, and what each run returned.
fn fastest<T>(
    rounds: u64,
    mut work: impl FnMut() -> Result<T>,
) -> Result<(Duration, Vec<T>)> {
    let mut best = Duration::MAX;
    let mut results = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let result = work()?;
        best = best.min(started.elapsed());
        results.push(result);
    }
    Ok((best, results))
}

fn run(a: Args) -> Result<()> {
    let cores = thread::available_parallelism().map_or(1, |n| n.get() as u64);
    // On one core, two workers still show something: that they take turns.
    let workers = a.workers.unwrap_or(cores.max(2));
    let turns = if cpus_allowed() == Some(1) && workers > 1 {
        ", which take turns on the one core"
    } else {
        ""
    };
    println!("cores available: {cores}; workers: {workers}{turns}");
    let runs = match a.rounds {
        1 => "once".to_string(),
        n => format!("{n} times"),
    };
    println!("each way runs {runs}; the fastest run counts");
    println!(
        "the work: {} chunks of {} steps of xorshift",
        a.chunks, a.steps
    );
    // One busy loop per worker, each as long as a worker's share of the work.
    let per_worker = a.steps * a.chunks.div_ceil(workers);
    let ceiling = ceiling(workers, per_worker, a.rounds)?;
    let plural = if workers == 1 { "thread" } else { "threads" };
    println!(
        "ceiling: {workers} busy {plural} at once did {ceiling:.2}x the work of one"
    );

    let ways: [(&str, Way); 4] = [
        ("one thread", sequential),
        ("threads", threads),
        ("processes", processes),
        ("rayon", with_rayon),
    ];
    let mut baseline: Option<Duration> = None;
    let mut checksums = Vec::new();
    for (name, way) in ways {
        let (took, checksum) = best_of(a.rounds, way, &a, workers)?;
        row(name, took, *baseline.get_or_insert(took), ceiling);
        checksums.push(checksum);
    }
    ensure!(
        checksums.iter().all(|&c| c == checksums[0]),
        "the ways disagree: {checksums:x?}"
    );
    println!("all four got checksum {:#018x}", checksums[0]);
    let rust_1000 =
        per_1000_steps(baseline.unwrap_or_default(), a.chunks * a.steps);
    python(&a, workers, per_worker, rust_1000)
}

/// How many CPUs this process may run on: its affinity, which `taskset`
/// sets. A CPU quota (a container's `--cpus 1.5`) lowers
/// `available_parallelism` without taking a CPU away, so only this says
/// that nothing can run in parallel.
#[cfg(target_os = "linux")]
fn cpus_allowed() -> Option<u32> {
    use nix::sched::{CpuSet, sched_getaffinity};
    let set = sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
    let allowed =
        (0..CpuSet::count()).filter(|&cpu| set.is_set(cpu) == Ok(true));
    Some(allowed.count() as u32)
}

#[cfg(not(target_os = "linux"))]
fn cpus_allowed() -> Option<u32> {
    None
}

// ANCHOR: python
/// The notes' way in CPython: the same chunks with fewer steps each.
fn python(
    a: &Args,
    workers: u64,
    per_worker: u64,
    rust_1000: Duration,
) -> Result<()> {
    // The machine may be busier or quieter now than when the ceiling was
    // measured: measure it again for Python's figures.
    let ceiling = ceiling(workers, per_worker, a.rounds)?;
    let numbers =
        [a.chunks, a.python_steps, workers, a.rounds].map(|n| n.to_string());
    let output = match Command::new(&a.python)
        .arg("-c")
        .arg(NOTES_WAY)
        .args(numbers)
        .stdin(Stdio::null())
        .output()
    {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            println!(
                "{}: not found, the Python comparison is skipped",
                a.python
            );
            return Ok(());
        }
        other => other.with_context(|| format!("cannot run {}", a.python))?,
    };
    ensure!(
        output.status.success(),
        "{} failed: {}",
        a.python,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    let first = lines.next().unwrap_or_default();
    let words: Vec<&str> = first.split(' ').collect();
    let ["python", version, gil] = words[..] else {
        bail!("unexpected first line from Python: {first:?}");
    };
    println!(
        "{} (Python {version}, {gil} the GIL), {} chunks of {} steps:",
        a.python, a.chunks, a.python_steps
    );
    println!("  ceiling just before: {ceiling:.2}x");
    let expected = sequential(a.chunks, a.python_steps, 1)?;
    let mut baseline = None;
    let mut python_1000 = Duration::ZERO;
    let mut threads_busy = String::new();
    for line in lines {
        let fields: Vec<&str> = line.split(' ').collect();
        let [name, seconds, checksum, busy] = fields[..] else {
            bail!("unexpected line from Python: {line:?}");
        };
        let seconds = seconds.parse().context("a time from Python")?;
        let took = Duration::from_secs_f64(seconds);
        let base = *baseline.get_or_insert(took);
        if python_1000.is_zero() {
            python_1000 = per_1000_steps(took, a.chunks * a.python_steps);
        }
        let name = if name == "sequential" {
            "one thread"
        } else {
            name
        };
        row(name, took, base, ceiling);
        if name == "threads" {
            threads_busy = busy.to_string();
        }
        ensure!(
            checksum == format!("{expected:#018x}"),
            "Python's checksum {checksum} is not {expected:#018x}"
        );
    }
    println!(
        "Python got checksum {expected:#018x}, as Rust does for {} steps a chunk",
        a.python_steps
    );
    // CPU time over wall time: how many cores its threads kept busy at once.
    println!("Python's threads kept {threads_busy} cores busy on average");
    let ratio = python_1000.as_secs_f64() / rust_1000.as_secs_f64();
    println!(
        "1,000 steps in one thread: Rust {rust_1000:.2?}, Python {python_1000:.2?} ({ratio:.0}x)"
    );
    Ok(())
}
// ANCHOR_END: python

/// The notes' way in Python: the same chunks with the same function, one
/// after another, on threads, and in processes. Run as
/// `python3 -c NOTES_WAY CHUNKS STEPS WORKERS ROUNDS`.
const NOTES_WAY: &str = r##"
# ANCHOR: notes_way
import multiprocessing
import sys
import threading
import time

MASK = (1 << 64) - 1


def chunk(seed, steps):
    x = (seed + 0x9E3779B97F4A7C15) & MASK
    for _ in range(steps):
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
    return x


def share(worker, workers, chunks, steps):
    return sum(chunk(i, steps) for i in range(worker, chunks, workers)) & MASK


def sequential(chunks, steps, workers):
    return share(0, 1, chunks, steps)


def threads(chunks, steps, workers):
    results = [0] * workers

    def run(w):
        results[w] = share(w, workers, chunks, steps)

    started = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for t in started:
        t.start()
    for t in started:
        t.join()
    return sum(results) & MASK


def processes(chunks, steps, workers):
    # fork: the functions above exist in the children without importing a file.
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.starmap(share, [(w, workers, chunks, steps) for w in range(workers)])
    return sum(parts) & MASK


def main():
    chunks, steps, workers, rounds = map(int, sys.argv[1:])
    # A free-threaded build (3.13t and later) may run without the GIL.
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print("python", sys.version.split()[0], "with" if gil else "without")
    for way in (sequential, threads, processes):
        best, checksum, busy = None, None, None
        for _ in range(rounds):
            started, cpu = time.perf_counter(), time.process_time()
            checksum = way(chunks, steps, workers)
            took = time.perf_counter() - started
            if best is None or took < best:
                # CPU time of this process's threads (not of child processes).
                best, busy = took, (time.process_time() - cpu) / took
        print(way.__name__, best, f"{checksum:#018x}", f"{busy:.2f}")


if __name__ == "__main__":
    main()
# ANCHOR_END: notes_way
"##;

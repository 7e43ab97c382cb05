//! S3.7: the notes' `Pool(3)` with 10 tasks, as a reader would first write
//! it in Rust: three worker processes (this program, started again with
//! `worker`), each fed task numbers on its stdin, one line per task, and
//! answering on its stdout with the pid that ran it. One thread of the pool
//! drives each worker; they take task numbers from one shared queue.

use std::env;
use std::io::{self, BufRead, BufReader, Write};
use std::ops::Range;
use std::process::{
    self, Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio,
};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};

/// Run tasks on a pool of worker processes, fed through their stdin.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// Worker processes in the pool.
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: u32,
    /// Tasks to run.
    #[arg(long, default_value_t = 10)]
    #[arg(value_parser = clap::value_parser!(u32).range(0..=1000))]
    tasks: u32,
    /// How long each task sleeps, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=60_000))]
    sleep_ms: u64,
}

#[derive(Subcommand)]
enum Role {
    /// Run the tasks whose numbers come in on stdin.
    #[command(hide = true)]
    Worker { sleep_ms: u64 },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.role {
        Some(Role::Worker { sleep_ms }) => worker(sleep_ms),
        None => pool(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pool-plain: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: worker
/// The notes' `worker(num)`: for each task number on stdin, sleep, then
/// say which process ran it. The end of stdin is the end of the work.
fn worker(sleep_ms: u64) -> Result<()> {
    for line in io::stdin().lock().lines() {
        let number = line?;
        thread::sleep(Duration::from_millis(sleep_ms));
        println!("task {number}: pid {}", process::id());
    }
    Ok(())
}
// ANCHOR_END: worker

// ANCHOR: pool
fn pool(args: &Args) -> Result<()> {
    let me = env::current_exe().context("cannot find this program")?;
    let mut workers: Vec<Child> = Vec::new();
    for _ in 0..args.workers {
        let started = Command::new(&me)
            .args(["worker", &args.sleep_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn();
        match started {
            Ok(child) => workers.push(child),
            Err(e) => {
                // The ones already running get the end of their input
                // (their stdin closes as they drop), and are waited for.
                for mut child in workers {
                    drop(child.stdin.take());
                    let _ = child.wait();
                }
                return Err(e).context("cannot start a worker");
            }
        }
    }
    let pids: Vec<String> =
        workers.iter().map(|w| w.id().to_string()).collect();
    println!(
        "pool of {} worker processes: pid {}",
        pids.len(),
        pids.join(", pid ")
    );

    // The queue: the numbers of the tasks not yet handed out.
    let queue = Mutex::new(0..args.tasks);
    let started = Instant::now();
    let mut done = Vec::new();
    thread::scope(|s| {
        let drivers: Vec<_> = workers
            .iter_mut()
            .map(|child| s.spawn(|| drive(child, &queue)))
            .collect();
        for driver in drivers {
            let replies =
                driver.join().map_err(|_| anyhow!("a driver panicked"))?;
            done.extend(replies?);
        }
        anyhow::Ok(())
    })?;
    // Collected, then printed in task order: the replies came in the order
    // the workers happened to finish.
    done.sort_by_key(|(number, _)| *number);
    for (_, reply) in &done {
        println!("{reply}");
    }
    println!("{} tasks done in {:.1?}", done.len(), started.elapsed());
    Ok(())
}

/// Hands one worker tasks from the queue, one at a time, until the queue is
/// empty; then closes its stdin, so that it ends, and waits for it.
fn drive(
    child: &mut Child,
    queue: &Mutex<Range<u32>>,
) -> Result<Vec<(u32, String)>> {
    let to_worker = child.stdin.take().context("no stdin pipe")?;
    let from_worker = child.stdout.take().context("no stdout pipe")?;
    let replies = feed(to_worker, from_worker, queue);
    // feed has dropped the worker's stdin, however it returned: the worker
    // sees the end of its input, and ends.
    let status = child.wait()?;
    let replies = replies?;
    anyhow::ensure!(status.success(), "a worker failed: {status}");
    Ok(replies)
}

fn feed(
    mut to_worker: ChildStdin,
    from_worker: ChildStdout,
    queue: &Mutex<Range<u32>>,
) -> Result<Vec<(u32, String)>> {
    let mut from_worker = BufReader::new(from_worker).lines();
    let mut replies = Vec::new();
    loop {
        // Take a number and let go of the lock at once. (In a `while let`
        // condition, the guard would live to the end of the body, and hold
        // the other drivers up for the whole task.)
        let next = queue.lock().expect("no driver panics holding it").next();
        let Some(number) = next else { break };
        writeln!(to_worker, "{number}")?;
        let reply = from_worker.next().with_context(|| {
            format!("the worker ended before task {number}")
        })??;
        replies.push((number, reply));
    }
    Ok(replies)
}
// ANCHOR_END: pool

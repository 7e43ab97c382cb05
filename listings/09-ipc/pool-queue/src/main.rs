//! S7.2: the notes' `Manager().Queue()` shared with a `Pool`. A pool of
//! worker processes (this program, started again) all report into one
//! queue: one ipc-channel whose sender each worker holds a clone of. The
//! pool collects until every sender is gone, then checks that each task
//! was reported exactly once, by a worker of the pool.

use std::collections::BTreeMap;
use std::env;
use std::path::{Path, PathBuf};
use std::process::{self, Child, Command, ExitCode, ExitStatus};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use ctrl_c_cleanup::{
    RunDir, catch_stop_signals, end_if_stopped, reap, stopped,
};
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use ipc_channel::{IpcError, TryRecvError};
use serde::{Deserialize, Serialize};

/// A pool of worker processes that report into one queue.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// Worker processes in the pool.
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=16))]
    workers: u32,
    /// Tasks to run.
    #[arg(long, default_value_t = 10)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=1000))]
    tasks: u32,
    /// Make the worker that gets this task fail on it.
    #[arg(long)]
    fail_task: Option<u32>,
    /// Where to make this run's own directory, for ipc-channel's sockets.
    #[arg(long, default_value_os_t = env::temp_dir())]
    dir: PathBuf,
}

#[derive(Subcommand)]
enum Role {
    /// Run tasks for the pool that started this process.
    #[command(hide = true)]
    Worker { server: String },
}

// ANCHOR: messages
/// Pool to a new worker: its own task channel, and a clone of the one
/// sender that every worker reports into.
#[derive(Serialize, Deserialize)]
struct Setup {
    tasks: IpcReceiver<u32>,
    results: IpcSender<Report>,
    fail_task: Option<u32>,
}

/// Worker to pool, on the shared queue: a task's result, and who did it.
#[derive(Serialize, Deserialize)]
struct Report {
    task: u32,
    square: u64,
    pid: u32,
}
// ANCHOR_END: messages

/// How long anything may take before the pool gives up and kills.
const PATIENCE: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.role {
        Some(Role::Worker { server }) => worker(server),
        None => catch_stop_signals().and_then(|()| pool(&args)),
    };
    end_if_stopped();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pool-queue: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: worker
/// A worker: runs its tasks until the pool closes its task channel, and
/// puts each result on the shared queue.
fn worker(server: &str) -> Result<()> {
    let pool = IpcSender::<IpcSender<Setup>>::connect(server.to_string())?;
    let (hand_over, setup) = ipc::channel()?;
    pool.send(hand_over)?;
    let setup: Setup = setup.try_recv_timeout(PATIENCE)?;
    let pid = process::id();
    while let Ok(task) = setup.tasks.recv() {
        if setup.fail_task == Some(task) {
            bail!("task {task} fails on purpose, in pid {pid}");
        }
        let square = u64::from(task) * u64::from(task);
        setup.results.send(Report { task, square, pid })?;
    }
    Ok(())
}
// ANCHOR_END: worker

/// The pool's side of one worker. Dropping it kills the process if it still
/// runs, and waits for it: no path leaves a worker behind.
struct Worker {
    child: Child,
    tasks: Option<IpcSender<u32>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ANCHOR: pool
fn pool(args: &Args) -> Result<()> {
    let me = env::current_exe().context("cannot find this program")?;
    // ipc-channel's one-shot servers go in the run's own directory (see
    // process-queue): dropped last, after the workers.
    let dir = RunDir::create(&args.dir, "pool-queue")?;
    // SAFETY: no other thread runs yet, so none reads the environment while
    // it changes.
    unsafe { env::set_var("TMPDIR", dir.path()) };
    // The shared queue. The pool keeps the receiver, and gives each worker
    // a clone of the sender.
    let (results, queue) = ipc::channel::<Report>()?;
    let mut workers = Vec::new();
    for _ in 0..args.workers {
        workers.push(start_worker(&me, results.clone(), args.fail_task)?);
    }
    // Otherwise the queue would never report that every sender is gone.
    drop(results);
    let pids: Vec<u32> = workers.iter().map(|w| w.child.id()).collect();
    let list: Vec<String> = pids.iter().map(|p| format!("pid {p}")).collect();
    let list = list.join(", ");
    println!("pool of {} worker processes: {list}", pids.len());

    // Task n goes to worker n mod workers, from a thread of its own: a
    // worker's task channel holds only so much, and a worker blocked on a
    // full queue would never read its next task, so the pool must read
    // results while the tasks go out. A dead worker's send fails, and its
    // task is simply never reported.
    let senders: Vec<_> = workers.iter_mut().map(|w| w.tasks.take()).collect();
    let count = args.tasks;
    let feeder = thread::spawn(move || {
        for task in 0..count {
            if let Some(tasks) = &senders[(task as usize) % senders.len()] {
                let _ = tasks.send(task);
            }
        }
        // The senders drop here: no more tasks, each worker ends when done.
    });

    let mut reports = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        stopped()?;
        let left = deadline.saturating_duration_since(Instant::now());
        match queue.try_recv_timeout(left.min(Duration::from_millis(50))) {
            Ok(report) => reports.push(report),
            // Every clone of the sender is gone: every worker has ended.
            Err(TryRecvError::IpcError(IpcError::Disconnected)) => break,
            Err(TryRecvError::Empty) if left.is_zero() => {
                bail!("no report in {PATIENCE:?}")
            }
            Err(TryRecvError::Empty) => {}
            Err(e) => return Err(e).context("cannot read the queue"),
        }
    }
    // Every worker has ended, so every send has returned.
    let _ = feeder.join();
    // Every worker reaped first, then reported: a worker's own last words
    // (its error) come before it exits, so before all of these lines.
    let mut statuses = Vec::new();
    for worker in &mut workers {
        statuses.push((worker.child.id(), reap(&mut worker.child)?));
    }
    let mut failed = Vec::new();
    for (pid, status) in statuses {
        println!("reaped pid {pid}: {}", describe(status));
        if !status.success() {
            failed.push(format!("pid {pid}, {}", describe(status)));
        }
    }
    stopped()?; // workers killed by Ctrl-C are not worth a report
    check(args, &pids, reports, &failed)
}
// ANCHOR_END: pool

// ANCHOR: check
/// Prints the results in task order and checks them: every task reported
/// once, by a worker of the pool.
fn check(
    args: &Args,
    pids: &[u32],
    reports: Vec<Report>,
    failed: &[String],
) -> Result<()> {
    let mut by_task: BTreeMap<u32, Vec<Report>> = BTreeMap::new();
    for report in reports {
        by_task.entry(report.task).or_default().push(report);
    }
    let mut problems = Vec::new();
    let mut reporters = Vec::new();
    for task in 0..args.tasks {
        match by_task.remove(&task).unwrap_or_default().as_slice() {
            [] => {
                println!("task {task}: no result");
                problems.push(task);
            }
            [report] if pids.contains(&report.pid) => {
                println!("task {task}: {}, pid {}", report.square, report.pid);
                reporters.push(report.pid);
            }
            _ => {
                println!("task {task}: reported twice, or from outside");
                problems.push(task);
            }
        }
    }
    reporters.sort();
    reporters.dedup();
    let good = args.tasks as usize - problems.len();
    println!(
        "{good} of {} tasks reported exactly once, by {} of the {} workers",
        args.tasks,
        reporters.len(),
        pids.len()
    );
    if !failed.is_empty() || !problems.is_empty() || !by_task.is_empty() {
        let failed = match failed {
            [] => "none".to_string(),
            _ => failed.join(", "),
        };
        let bad = problems.len() + by_task.len();
        bail!("{bad} tasks without a good result; failed workers: {failed}");
    }
    Ok(())
}
// ANCHOR_END: check

/// Starts this program as a worker and hands it its setup.
fn start_worker(
    me: &Path,
    results: IpcSender<Report>,
    fail_task: Option<u32>,
) -> Result<Worker> {
    let (server, name) = IpcOneShotServer::<IpcSender<Setup>>::new()?;
    let child = Command::new(me)
        .args(["worker", &name])
        .spawn()
        .context("cannot start a worker")?;
    let mut worker = Worker { child, tasks: None };
    // accept blocks until the worker connects, so it waits on a thread of
    // its own while the pool watches the worker: one that dies first cannot
    // hang the pool.
    let (accepted, hello) = mpsc::channel();
    thread::spawn(move || accepted.send(server.accept()));
    let deadline = Instant::now() + PATIENCE;
    let hand_over = loop {
        stopped()?;
        match hello.recv_timeout(Duration::from_millis(50)) {
            Ok(Ok((_, hand_over))) => break hand_over,
            Ok(Err(e)) => bail!("a worker did not connect: {e}"),
            Err(_) if Instant::now() > deadline => {
                bail!("a worker did not connect in {PATIENCE:?}")
            }
            Err(_) => {
                if let Some(status) = worker.child.try_wait()? {
                    bail!("a worker ended first: {}", describe(status));
                }
            }
        }
    };
    let (tasks, tasks_end) = ipc::channel()?;
    let setup = Setup {
        tasks: tasks_end,
        results,
        fail_task,
    };
    hand_over.send(setup).context("cannot set up a worker")?;
    worker.tasks = Some(tasks);
    Ok(worker)
}

/// How a worker ended, in words.
fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status)
    {
        return format!("killed by signal {signal}");
    }
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => "ended".into(),
    }
}

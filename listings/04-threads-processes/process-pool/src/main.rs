//! S3.7: the notes' `Pool(3)` with 10 tasks, each reporting its pid and
//! number and sleeping. Three worker processes (this program, started again)
//! take tasks over ipc-channel as they become free, so the same three do all
//! ten, in waves; each worker reports its pid and its own count of tasks, and
//! the pool prints what they reported, and how each worker ended. A worker
//! that crashes is reported, and the pool goes on. Unlike pool-plain, it
//! sends typed messages and waits for its workers with a deadline.
//! Ctrl-C or SIGTERM stops the pool, its workers and what it made, as
//! chapter 9 explains (`ctrl-c-cleanup`).

use std::collections::{HashMap, VecDeque};
use std::env;
use std::path::{Path, PathBuf};
use std::process::{self, Child, Command, ExitCode};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use ctrl_c_cleanup::{RunDir, catch_stop_signals, end_if_stopped, stopped};
use ipc_channel::ipc::{
    self, IpcOneShotServer, IpcReceiver, IpcReceiverSet, IpcSelectionResult,
    IpcSender,
};
use serde::{Deserialize, Serialize};

/// Run tasks on a pool of worker processes.
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
    /// Kill the worker that runs this task, to see what the pool does.
    #[arg(long)]
    crash_task: Option<u32>,
    /// Where to make this run's own directory, for ipc-channel's sockets.
    #[arg(long, default_value_os_t = env::temp_dir())]
    dir: PathBuf,
}

#[derive(Subcommand)]
enum Role {
    /// Serve tasks for the pool that started this process.
    #[command(hide = true)]
    Worker { server: String },
}

// ANCHOR: messages
/// Pool to worker: one task.
#[derive(Serialize, Deserialize)]
struct Task {
    number: u32,
    sleep_ms: u64,
}

/// Worker to pool: a task is done, by this process, as its `nth` task.
#[derive(Serialize, Deserialize)]
struct Done {
    number: u32,
    pid: u32,
    nth: u32,
}

/// A new worker's first message: where to send it tasks, and where to
/// hear that they are done.
#[derive(Serialize, Deserialize)]
struct Hello {
    tasks: IpcSender<Task>,
    done: IpcReceiver<Done>,
}
// ANCHOR_END: messages

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
            eprintln!("process-pool: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: worker
/// A worker: connects to the pool, then runs tasks until the pool closes
/// its end of the task channel.
fn worker(server: &str) -> Result<()> {
    let hello = IpcSender::<Hello>::connect(server.to_string())?;
    let (tasks, my_tasks) = ipc::channel()?;
    let (done, my_done) = ipc::channel()?;
    hello.send(Hello {
        tasks,
        done: my_done,
    })?;
    // recv fails when the pool has dropped its sender: no more work.
    let mut nth = 0;
    while let Ok(task) = my_tasks.recv() {
        thread::sleep(Duration::from_millis(task.sleep_ms));
        nth += 1;
        let pid = process::id();
        let number = task.number;
        if done.send(Done { number, pid, nth }).is_err() {
            break; // the pool is gone
        }
    }
    Ok(())
}
// ANCHOR_END: worker

/// The pool's side of one worker.
struct Worker {
    child: Child,
    tasks: Option<IpcSender<Task>>,
    /// The task it runs.
    running: Option<u32>,
}

/// Starts this program as a worker and waits (30 s at most) for its Hello.
fn start_worker(me: &Path) -> Result<(Worker, IpcReceiver<Done>)> {
    let (server, name) = IpcOneShotServer::<Hello>::new()?;
    let mut child = Command::new(me)
        .args(["worker", &name])
        .spawn()
        .context("cannot start a worker")?;
    // accept blocks until the worker connects, so it waits on a thread of
    // its own, and the pool watches the worker meanwhile: one that dies
    // before it connects cannot hang the pool.
    let (accepted, hello) = mpsc::channel();
    thread::spawn(move || accepted.send(server.accept()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let problem = loop {
        if let Err(e) = stopped() {
            break format!("{e}");
        }
        match hello.recv_timeout(GLANCE) {
            Ok(Ok((_, Hello { tasks, done }))) => {
                let worker = Worker {
                    child,
                    tasks: Some(tasks),
                    running: None,
                };
                return Ok((worker, done));
            }
            Ok(Err(e)) => break format!("{e:?}"),
            Err(_) if Instant::now() > deadline => {
                break "no Hello in 30 s".into();
            }
            Err(_) => match child.try_wait()? {
                Some(status) => {
                    break format!("it ended: {}", describe(status));
                }
                None => continue,
            },
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    bail!("a worker did not start: {problem}")
}

/// How long a wait lasts before the pool looks for a stop signal again.
const GLANCE: Duration = Duration::from_millis(50);

/// What happened to one task, as its worker reported it.
enum Outcome {
    Done { pid: u32, nth: u32 },
    Crashed { pid: u32, status: String },
}

// ANCHOR: pool
fn pool(args: &Args) -> Result<()> {
    let me = env::current_exe().context("cannot find this program")?;
    // ipc-channel's one-shot server binds its socket in a new directory in
    // TMPDIR, which it removes when `accept` returns: never, if a Ctrl-C
    // comes first. In the run's own directory, it goes with the run.
    let dir = RunDir::create(&args.dir, "process-pool")?;
    // SAFETY: no other thread runs yet, so none reads the environment while
    // it changes.
    unsafe { env::set_var("TMPDIR", dir.path()) };
    let mut workers = Vec::new();
    let mut finished = IpcReceiverSet::new()?;
    let mut by_channel = HashMap::new();
    for index in 0..args.workers as usize {
        match start_worker(&me) {
            Ok((worker, done)) => {
                by_channel.insert(finished.add(done)?, index);
                workers.push(worker);
            }
            Err(e) => {
                stop(&mut workers);
                return Err(e);
            }
        }
    }
    let pids: Vec<String> =
        workers.iter().map(|w| w.child.id().to_string()).collect();
    println!(
        "pool of {} worker processes: pid {}",
        workers.len(),
        pids.join(", pid ")
    );

    let start = Instant::now();
    let mut queue: VecDeque<u32> = (0..args.tasks).collect();
    let mut outcomes = HashMap::new();
    // Whatever goes wrong below, every worker is stopped and waited for.
    let ran = run_tasks(
        args,
        &mut workers,
        &mut finished,
        &by_channel,
        &mut queue,
        &mut outcomes,
    );
    let total = start.elapsed();
    let ended = stop(&mut workers);
    ran?;
    report(args, &outcomes, &queue, total, &ended)
}

fn run_tasks(
    args: &Args,
    workers: &mut [Worker],
    finished: &mut IpcReceiverSet,
    by_channel: &HashMap<u64, usize>,
    queue: &mut VecDeque<u32>,
    outcomes: &mut HashMap<u32, Outcome>,
) -> Result<()> {
    for worker in workers.iter_mut() {
        give_work(args, worker, queue);
    }
    // A task takes `sleep_ms`; a pool that hears nothing for much longer
    // than that has a worker that hangs.
    let patience =
        Duration::from_millis(args.sleep_ms * 2) + Duration::from_secs(30);
    while workers.iter().any(|w| w.running.is_some()) {
        let deadline = Instant::now() + patience;
        // In glances, to see a stop signal (Ctrl-C, SIGTERM) at once; a
        // glance may also end with no events (Ctrl-Z, then fg).
        let events = loop {
            stopped()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("no worker finished a task in {patience:?}");
            }
            if let Ok(events) = finished.try_select_timeout(left.min(GLANCE)) {
                break events;
            }
        };
        for event in events {
            match event {
                IpcSelectionResult::MessageReceived(channel, message) => {
                    let Done { number, pid, nth } = message.to()?;
                    let worker = &mut workers[by_channel[&channel]];
                    worker.running = None;
                    outcomes.insert(number, Outcome::Done { pid, nth });
                    give_work(args, worker, queue);
                }
                IpcSelectionResult::ChannelClosed(channel) => {
                    // The worker's end closed: the process has ended.
                    let worker = &mut workers[by_channel[&channel]];
                    worker.tasks = None;
                    let pid = worker.child.id();
                    let status = describe(worker.child.wait()?);
                    if let Some(number) = worker.running.take() {
                        outcomes
                            .insert(number, Outcome::Crashed { pid, status });
                    }
                    let idle = workers
                        .iter_mut()
                        .find(|w| w.tasks.is_some() && w.running.is_none());
                    if let Some(idle) = idle {
                        give_work(args, idle, queue);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Hands the next task in the queue to an idle worker.
fn give_work(args: &Args, worker: &mut Worker, queue: &mut VecDeque<u32>) {
    let Some(number) = queue.pop_front() else {
        return;
    };
    let task = Task {
        number,
        sleep_ms: args.sleep_ms,
    };
    match worker.tasks.as_ref().map(|tasks| tasks.send(task)) {
        Some(Ok(())) => {
            worker.running = Some(number);
            if args.crash_task == Some(number) {
                // Killed from outside while it works, as the kernel's
                // out-of-memory killer would kill it: SIGKILL cannot be caught.
                let _ = worker.child.kill();
            }
        }
        _ => queue.push_front(number), // a dead worker: another takes it
    }
}
// ANCHOR_END: pool

/// How a worker ended, in words.
fn describe(status: process::ExitStatus) -> String {
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

/// Closes every task channel, so that idle workers end; kills any worker
/// still running a task (after a failure, it may hang); waits for each,
/// and returns how each ended.
fn stop(workers: &mut [Worker]) -> Vec<(u32, String)> {
    for worker in workers.iter_mut() {
        worker.tasks = None;
        if worker.running.is_some() {
            let _ = worker.child.kill();
        }
    }
    let mut ended = Vec::new();
    for worker in workers.iter_mut() {
        let status = match worker.child.wait() {
            Ok(status) => describe(status),
            Err(e) => format!("cannot wait for it: {e}"),
        };
        ended.push((worker.child.id(), status));
    }
    ended
}

// ANCHOR: report
/// One line per task, in task order, with what its worker reported: its
/// pid, and which of that worker's tasks it was. Then the waves those make
/// (every worker's 1st task, then every 2nd, ...), how each worker ended,
/// and the total time.
fn report(
    args: &Args,
    outcomes: &HashMap<u32, Outcome>,
    never_ran: &VecDeque<u32>,
    total: Duration,
    ended: &[(u32, String)],
) -> Result<()> {
    let mut waves: Vec<u32> = Vec::new();
    let mut pids = Vec::new();
    let mut failed = never_ran.len();
    for number in 0..args.tasks {
        match outcomes.get(&number) {
            Some(Outcome::Done { pid, nth }) => {
                let index = *nth as usize - 1;
                if waves.len() <= index {
                    waves.resize(index + 1, 0);
                }
                waves[index] += 1;
                pids.push(*pid);
                println!("task {number}: pid {pid}, its task {nth}");
            }
            Some(Outcome::Crashed { pid, status }) => {
                failed += 1;
                println!("task {number}: its worker, pid {pid}, {status}");
            }
            None => println!("task {number}: never ran"),
        }
    }
    pids.sort();
    pids.dedup();
    let finished = args.tasks as usize - failed;
    println!(
        "{finished} tasks finished; distinct worker pids: {}",
        pids.len()
    );
    let waves: Vec<String> = waves.iter().map(u32::to_string).collect();
    println!("finished in waves of {}", waves.join(", "));
    // By how each ended, then by pid: which worker a crash hits varies.
    let mut ended = ended.to_vec();
    ended.sort_by(|a, b| (&a.1, a.0).cmp(&(&b.1, b.0)));
    for (pid, status) in ended {
        println!("worker pid {pid} reaped: {status}");
    }
    let sleep = Duration::from_millis(args.sleep_ms);
    let ratio = total.as_secs_f64() / sleep.as_secs_f64();
    println!("all done in {total:.1?}: {ratio:.2}x the time one task sleeps");
    if failed > 0 {
        bail!("{failed} of {} tasks failed", args.tasks);
    }
    Ok(())
}
// ANCHOR_END: report

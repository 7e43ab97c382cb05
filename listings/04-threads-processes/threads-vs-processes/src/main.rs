//! S3.8: the notes compare threads and processes in words; this program
//! measures them on the machine it runs on: the cost to start one and wait
//! for it, the memory each needs, and what a crash in each takes down.
//! Linux only: it reads memory figures from /proc; on another system it
//! says so and exits.

use std::env;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::{Arc, RwLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

/// Measure threads against processes: the cost to start, the memory, and
/// what a crash takes down.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
}

/// The parts this program plays when it starts itself as a child.
#[derive(Subcommand)]
#[command(hide = true)]
enum Role {
    /// Do nothing, to time a start.
    #[command(hide = true)]
    Noop,
    /// Say "ready", then wait for the end of input.
    #[command(hide = true)]
    Wait,
    /// Fault in one thread, and see whether main goes on.
    #[command(hide = true)]
    FaultInAThread,
}

fn main() -> ExitCode {
    let result = match Args::parse().role {
        None => compare(),
        Some(Role::Noop) => Ok(()),
        Some(Role::Wait) => wait_for_eof(),
        Some(Role::FaultInAThread) => {
            no_core_dump();
            fault_in_a_thread()
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("threads-vs-processes: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn compare() -> Result<()> {
    anyhow::ensure!(
        cfg!(target_os = "linux"),
        "this program needs Linux: it reads memory figures from /proc"
    );
    let me = env::current_exe().context("cannot find this program")?;
    println!("start one, then join or wait for it, one after another:");
    let thread_cost = per_thread_start(200)?;
    println!("  thread:  {thread_cost:.1?} each (200 in a row)");
    let process_cost = per_process_start(&me, 50)?;
    let ratio = process_cost.as_secs_f64() / thread_cost.as_secs_f64();
    println!(
        "  process: {process_cost:.2?} each (50 in a row), {ratio:.0}x a thread"
    );

    println!("memory, resident in RAM:");
    let thread_kib = per_thread_memory(100)?;
    println!("  thread:  {thread_kib:.1} KiB each (100 waiting threads)");
    let (rss, pss) = per_process_memory(&me, 20)?;
    let ratio = pss / thread_kib;
    println!(
        "  process: {rss:.1} KiB each (RSS), {pss:.1} KiB its share (PSS)"
    );
    println!("           (20 waiting children), {ratio:.0}x a thread");

    println!("a crash:");
    isolation(&me)
}

// ANCHOR: start
/// Average time to start a thread that does nothing and join it.
fn per_thread_start(count: u32) -> Result<Duration> {
    let started = Instant::now();
    for _ in 0..count {
        thread::Builder::new()
            .spawn(|| {})?
            .join()
            .map_err(|_| anyhow::anyhow!("a thread panicked"))?;
    }
    Ok(started.elapsed() / count)
}

/// Average time to start this program doing nothing and wait for it.
fn per_process_start(me: &Path, count: u32) -> Result<Duration> {
    let started = Instant::now();
    for _ in 0..count {
        let status = Command::new(me).arg("noop").status()?;
        if !status.success() {
            bail!("a child failed: {status}");
        }
    }
    Ok(started.elapsed() / count)
}
// ANCHOR_END: start

// ANCHOR: memory
/// How much this process's resident memory grows per thread that has
/// started and waits.
fn per_thread_memory(count: usize) -> Result<f64> {
    let (ready, started) = mpsc::channel();
    let gate = Arc::new(RwLock::new(()));
    let closed = gate.write().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let before = resident_kib("self")?;
    let mut threads = Vec::new();
    for _ in 0..count {
        let (gate, ready) = (Arc::clone(&gate), ready.clone());
        threads.push(thread::Builder::new().spawn(move || {
            let _ = ready.send(());
            let _open = gate.read();
        })?);
    }
    for _ in 0..count {
        started.recv()?;
    }
    let after = resident_kib("self")?;
    drop(closed);
    for thread in threads {
        let _ = thread.join();
    }
    Ok((after - before) / count as f64)
}

/// Resident memory of one waiting child, in all and its own share (PSS:
/// pages shared with other processes count in part).
fn per_process_memory(me: &Path, count: usize) -> Result<(f64, f64)> {
    let mut children: Vec<Child> = Vec::new();
    let measured = (|| {
        let (mut rss, mut pss) = (0.0, 0.0);
        for _ in 0..count {
            let mut child = Command::new(me)
                .arg("wait")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let stdout = child.stdout.take().context("a piped stdout")?;
            children.push(child);
            // The child says when it is up and waiting.
            BufReader::new(stdout).read_line(&mut String::new())?;
        }
        for child in &children {
            let pid = child.id().to_string();
            rss += resident_kib(&pid)?;
            pss += proportional_kib(&pid)?;
        }
        anyhow::Ok((rss / count as f64, pss / count as f64))
    })();
    for mut child in children {
        drop(child.stdin.take()); // end of input: the child exits
        let _ = child.wait();
    }
    measured
}

fn resident_kib(pid: &str) -> Result<f64> {
    field_kib(&format!("/proc/{pid}/status"), "VmRSS:")
}

fn proportional_kib(pid: &str) -> Result<f64> {
    field_kib(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

fn field_kib(path: &str, field: &str) -> Result<f64> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {path} (this needs Linux)"))?;
    let line = text.lines().find(|line| line.starts_with(field));
    let value = line.and_then(|line| line.split_whitespace().nth(1));
    value
        .and_then(|kib| kib.parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}
// ANCHOR_END: memory

/// A child for the memory measurement: says it is ready, waits for EOF.
fn wait_for_eof() -> Result<()> {
    println!("ready");
    std::io::Write::flush(&mut std::io::stdout())?;
    std::io::stdin().read_to_end(&mut Vec::new())?;
    Ok(())
}

// ANCHOR: crash
fn isolation(me: &Path) -> Result<()> {
    // A thread that panics: the panic ends that thread, join reports it,
    // and the rest of the process goes on. (The default panic hook would
    // print the panic; for this planned one, a silent hook.)
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let joined = thread::Builder::new()
        .spawn(|| panic!("on purpose"))?
        .join();
    std::panic::set_hook(default_hook);
    let outcome = if joined.is_err() {
        "join returned Err"
    } else {
        "?"
    };
    println!("  a thread panics: {outcome}; this process goes on");

    // A fault in one thread of a child: whichever thread it hits, a signal
    // whose default action is to terminate ends the whole process.
    let output = Command::new(me).arg("fault-in-a-thread").output()?;
    let printed = String::from_utf8_lossy(&output.stdout);
    let survived = printed.contains("main thread goes on");
    println!(
        "  a fault in one thread of a child: the child was {}; its main \
         thread {}",
        describe(output.status),
        if survived { "went on" } else { "died with it" }
    );
    println!("  and this process, the parent, goes on");
    Ok(())
}

/// The child's part: one thread writes where no memory is, as a thread with
/// a bad pointer does; main would print, if it still ran.
fn fault_in_a_thread() -> Result<()> {
    let crasher = thread::spawn(|| {
        // Address 16 is never mapped: Linux keeps the lowest pages of every
        // process empty (vm.mmap_min_addr), so the CPU faults and the kernel
        // sends SIGSEGV. (Not address 0: Rust's debug checks would catch a
        // null pointer first, and abort.)
        let nowhere = std::ptr::without_provenance_mut::<u8>(16);
        // SAFETY: none; this is the bug the demonstration needs.
        unsafe { std::ptr::write_volatile(nowhere, 1) };
    });
    let _ = crasher.join();
    println!("main thread goes on");
    Ok(())
}

fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status)
    {
        let name = if signal == libc::SIGSEGV {
            " (SIGSEGV)"
        } else {
            ""
        };
        return format!("killed by signal {signal}{name}");
    }
    format!("ended ({status})")
}
// ANCHOR_END: crash

/// The child that faults on purpose leaves no core file in the working
/// directory, on a machine that would otherwise write one.
fn no_core_dump() {
    // It changes a limit of this process alone. If it fails, the child
    // faults all the same, under the system's own limit.
    let _ = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_CORE,
        0,
        0,
    );
}

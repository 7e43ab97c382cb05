//! S7.6: the notes' shared memory (`Value`, `Array`). A counter (the
//! `Value`) and one slot per child (the `Array`) live in a file (in /dev/shm
//! on Linux) that every process maps with memmap2; child processes (this
//! program, started again) add 1 to the counter, first as a separate load and
//! store (updates are lost), then as one fetch_add (none are), and each
//! records in its slot how many times it added. Atomics in the mapping
//! throughout, so no version is undefined behaviour.

use std::env;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::{Parser, Subcommand, ValueEnum};
use ctrl_c_cleanup::{RunDir, catch_stop_signals, end_if_stopped, stopped};
use memmap2::MmapRaw;

/// The most children a run may have: one slot each in the shared `Array`.
const MAX_PROCESSES: usize = 16;

/// Child processes add to one counter in shared memory.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// How many child processes add at once (2 to 16).
    #[arg(long, default_value_t = 4)]
    #[arg(value_parser = clap::value_parser!(u64).range(2..=MAX_PROCESSES as u64))]
    processes: u64,
    /// How many times each child adds 1.
    #[arg(long, default_value_t = 1_000_000)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    count: u64,
}

#[derive(Subcommand)]
enum Role {
    /// Add to the counter in the shared file, for the parent.
    #[command(hide = true)]
    Add {
        file: PathBuf,
        way: Way,
        /// This child's slot in the `Array`: 0 for the first child.
        slot: usize,
        processes: u64,
        count: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Way {
    /// `value += 1` as Python runs it: a load, then a separate store.
    Racy,
    /// One indivisible read-modify-write.
    FetchAdd,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.role {
        Some(Role::Add {
            file,
            way,
            slot,
            processes,
            count,
        }) => add(file, *way, *slot, *processes, *count),
        None => catch_stop_signals().and_then(|()| run(&args)),
    };
    end_if_stopped();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shared-counter: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: region
/// What the shared file holds: the notes' `Value` (the counter) and
/// `Array` (how many times each child added), plus a count of the processes
/// ready to start, so that their loops overlap. `repr(C)`: every process
/// must agree on where each field is.
#[repr(C)]
struct Shared {
    ready: AtomicU64,
    counter: AtomicU64,
    added: [AtomicU64; MAX_PROCESSES],
}

/// Maps the shared file into this process, read and write. `MmapRaw`
/// hands out only a raw pointer, never a `&[u8]` or `&mut [u8]` over bytes
/// that other processes change meanwhile.
fn map(path: &Path) -> Result<MmapRaw> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    MmapRaw::map_raw(&file)
        .with_context(|| format!("cannot map {}", path.display()))
}

// Atomics shared between processes must be lock-free: a lock-based one
// would keep its lock in this process's memory, where the others cannot
// see it.
#[cfg(not(target_has_atomic = "64"))]
compile_error!("this listing needs lock-free 64-bit atomics");

/// The shared counters, seen through the mapping. The reference borrows
/// `map`, so the memory stays mapped for as long as it is used.
fn shared(map: &MmapRaw) -> Result<&Shared> {
    let at = map.as_mut_ptr().cast::<Shared>();
    ensure!(map.len() >= size_of::<Shared>(), "the shared file is short");
    // mmap returns a page-aligned address; checked all the same.
    ensure!(at.is_aligned(), "the mapping is not aligned for AtomicU64");
    // SAFETY:
    // - Alignment and length: `at` is aligned for `Shared` and points to at
    //   least size_of::<Shared>() mapped bytes (both checked above).
    // - Lifetime: the bytes stay mapped while the reference lives, since it
    //   borrows `map`; and no process shrinks the file while it is mapped
    //   (it is this program's own, in a directory it created), so no load
    //   runs past its end into a SIGBUS.
    // - Validity: any 8 bytes are a valid AtomicU64 (u64's size and
    //   representation), so the zeroed file is all counters at 0.
    // - Other processes modify these bytes at any time. That is allowed
    //   because the only reference ever made to them is this `&Shared`,
    //   whose fields are atomics (an UnsafeCell inside), and every process
    //   reads and writes them only through atomic operations, which are
    //   lock-free (`target_has_atomic = "64"`) and so work on the memory
    //   itself, whichever process or address it is mapped at. No process
    //   makes a `&[u8]` or `&mut [u8]` over them, so none races.
    Ok(unsafe { &*at })
}
// ANCHOR_END: region

// ANCHOR: add
/// A child: waits until all the children are ready, then adds `count`
/// times, one of the two ways, and records in its slot of the `Array` how
/// many times it added.
fn add(
    file: &Path,
    way: Way,
    slot: usize,
    processes: u64,
    count: u64,
) -> Result<()> {
    let map = map(file)?;
    let shared = shared(&map)?;
    let added = shared.added.get(slot).context("no such slot")?;
    shared.ready.fetch_add(1, Relaxed);
    // A child that failed to start would keep the others waiting forever.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.ready.load(Relaxed) < processes {
        ensure!(Instant::now() < deadline, "the other children never came");
        thread::yield_now();
    }
    let counter = &shared.counter;
    match way {
        Way::Racy => {
            for _ in 0..count {
                // Another process's store between these two is lost.
                let value = counter.load(Relaxed);
                counter.store(value + 1, Relaxed);
            }
        }
        Way::FetchAdd => {
            for _ in 0..count {
                counter.fetch_add(1, Relaxed);
            }
        }
    }
    added.store(count, Relaxed);
    Ok(())
}
// ANCHOR_END: add

// ANCHOR: run
fn run(args: &Args) -> Result<()> {
    let dir = shm_dir()?;
    println!("shared file: {}", dir.path().join("counter").display());
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    println!("CPUs available: {cpus}");
    println!(
        "{} processes add 1 to a shared counter {} times each",
        args.processes, args.count
    );
    for (way, name) in [
        (Way::Racy, "load, then store"),
        (Way::FetchAdd, "fetch_add"),
    ] {
        let (total, added) = in_children(&dir, way, args)?;
        // The Array says how often the children added; the counter, how
        // many of those additions it kept.
        let sum: u64 = added.iter().sum();
        let lost = sum - total;
        println!(
            "{name}: counter {total}, Array {added:?}: {lost} updates lost"
        );
        if matches!(way, Way::Racy) && lost == 0 {
            println!(
                "  none lost this time: no child stored between another's load and store"
            );
        }
    }
    Ok(())
}

/// Starts the children on a fresh, zeroed file; returns the final count,
/// and the Array's slots, one per child.
fn in_children(dir: &RunDir, way: Way, args: &Args) -> Result<(u64, Vec<u64>)> {
    stopped()?;
    let path = dir.path().join("counter");
    let file = File::create(&path).context("cannot create the file")?;
    // A new file's bytes read as zeros: every counter starts at 0.
    file.set_len(size_of::<Shared>() as u64)?;
    let me = env::current_exe().context("cannot find this program")?;
    let way = way.to_possible_value().expect("no variant is skipped");
    let mut children = Children(Vec::new());
    for slot in 0..args.processes {
        let child = Command::new(&me)
            .arg("add")
            .arg(&path)
            .arg(way.get_name())
            .arg(slot.to_string())
            .arg(args.processes.to_string())
            .arg(args.count.to_string())
            .spawn()
            .context("cannot start a child")?;
        children.0.push(child);
    }
    children.wait_all()?;
    let map = map(&path)?;
    let shared = shared(&map)?;
    let added = shared.added[..args.processes as usize]
        .iter()
        .map(|slot| slot.load(Relaxed))
        .collect();
    Ok((shared.counter.load(Relaxed), added))
}
// ANCHOR_END: run

// ANCHOR: cleanup
/// The chapter's `RunDir` (a random name, mode 700, removed with everything
/// in it when dropped), in /dev/shm where that exists (Linux): a tmpfs, in
/// memory, so the kernel never writes the counter's dirty pages back to a
/// disk. Elsewhere, the temporary directory.
fn shm_dir() -> Result<RunDir> {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        env::temp_dir()
    };
    RunDir::create(&base, "shared-counter")
}

/// Children that are all reaped: waited for by `wait_all`, or, if an error
/// or a stop signal comes first, killed and waited for when dropped.
struct Children(Vec<Child>);

impl Children {
    /// `wait` would block until a child has done its whole count, deaf to
    /// a stop signal meanwhile: this polls with `try_wait` instead, and
    /// looks for one every 10 ms.
    fn wait_all(&mut self) -> Result<()> {
        loop {
            stopped()?;
            let mut running = 0;
            for child in &mut self.0 {
                match child.try_wait()? {
                    None => running += 1,
                    Some(status) => {
                        ensure!(status.success(), "a child failed ({status})")
                    }
                }
            }
            if running == 0 {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // A child already reaped gets no signal: std keeps its status.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
// ANCHOR_END: cleanup

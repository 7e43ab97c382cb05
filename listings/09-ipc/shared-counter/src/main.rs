//! S7.6: the notes' shared memory (`Value`, `Array`). A counter lives in a
//! file (in /dev/shm on Linux) that every process maps with memmap2; child processes (this
//! program, started again) add 1 to it, first as a separate load and store
//! (updates are lost), then as one fetch_add (none are). Atomics in the
//! mapping throughout, so no version is undefined behaviour.

use std::env;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{self, Child, Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use clap::{Parser, Subcommand, ValueEnum};
use ctrl_c_cleanup::{catch_stop_signals, end_if_stopped, stopped};
use memmap2::MmapRaw;

/// Child processes add to one counter in shared memory.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// How many child processes add at once.
    #[arg(long, default_value_t = 4)]
    #[arg(value_parser = clap::value_parser!(u64).range(2..=16))]
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
            processes,
            count,
        }) => add(file, *way, *processes, *count),
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
/// What the shared file holds: the notes' `Value`, plus a count of the
/// processes ready to start, so that their loops overlap. `repr(C)`: every
/// process must agree on where each field is.
#[repr(C)]
struct Shared {
    ready: AtomicU64,
    counter: AtomicU64,
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
    //   representation), so the zeroed file is two counters at 0.
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
/// times, one of the two ways.
fn add(file: &Path, way: Way, processes: u64, count: u64) -> Result<()> {
    let map = map(file)?;
    let shared = shared(&map)?;
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
    Ok(())
}
// ANCHOR_END: add

// ANCHOR: run
fn run(args: &Args) -> Result<()> {
    let dir = TempDir::new()?;
    println!("shared file: {}", dir.0.join("counter").display());
    let expected = args.processes * args.count;
    println!(
        "{} processes add 1 to a shared counter {} times each",
        args.processes, args.count
    );
    let racy = in_children(&dir, Way::Racy, args)?;
    println!(
        "load, then store: {racy} ({} updates lost)",
        expected - racy
    );
    let atomic = in_children(&dir, Way::FetchAdd, args)?;
    println!(
        "fetch_add:        {atomic} ({} updates lost)",
        expected - atomic
    );
    Ok(())
}

/// Starts the children on a fresh, zeroed file; returns the final count.
fn in_children(dir: &TempDir, way: Way, args: &Args) -> Result<u64> {
    stopped()?;
    let path = dir.0.join("counter");
    let file = File::create(&path).context("cannot create the file")?;
    // A new file's bytes read as zeros: both counters start at 0.
    file.set_len(size_of::<Shared>() as u64)?;
    let me = env::current_exe().context("cannot find this program")?;
    let way = way.to_possible_value().expect("no variant is skipped");
    let mut children = Children(Vec::new());
    for _ in 0..args.processes {
        let child = Command::new(&me)
            .arg("add")
            .arg(&path)
            .arg(way.get_name())
            .arg(args.processes.to_string())
            .arg(args.count.to_string())
            .spawn()
            .context("cannot start a child")?;
        children.0.push(child);
    }
    children.wait_all()?;
    let map = map(&path)?;
    Ok(shared(&map)?.counter.load(Relaxed))
}
// ANCHOR_END: run

// ANCHOR: cleanup
/// A directory of this run's own, removed with everything in it when
/// dropped: on success, on error, on a panic. It goes in /dev/shm where
/// that exists (Linux): a tmpfs, in memory, so the kernel never writes the
/// counter's dirty pages back to a disk. Elsewhere, the temporary directory.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let name = format!("shared-counter-{}-{nanos}", process::id());
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            env::temp_dir()
        };
        let path = base.join(name);
        // create_dir fails if the name is taken: the directory is ours alone.
        fs::create_dir(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!(
                "shared-counter: cannot remove {}: {e}",
                self.0.display()
            );
        }
    }
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

//! S7.7: a semaphore (信号量), which the note's "信用量" stands for. A POSIX
//! named semaphore with value 2 lets at most 2 of 5 child processes (this
//! program, started again) into a section at once; the parent watches them
//! enter and leave, and checks the count.

use std::collections::VecDeque;
use std::env;
use std::ffi::CString;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand};
use ctrl_c_cleanup::{catch_stop_signals, end_if_stopped, stopped};

/// Let child processes through a section guarded by a named semaphore.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// The semaphore's value: how many may be inside at once.
    #[arg(long, default_value_t = 2)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=8))]
    value: u32,
    /// Child processes that go through the section.
    #[arg(long, default_value_t = 5)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=32))]
    children: u32,
    /// Kill the second child to enter, inside the section, with SIGKILL.
    #[arg(long)]
    kill_inside: bool,
}

#[derive(Subcommand)]
enum Role {
    /// Enter the section, wait for the parent's word, leave.
    #[command(hide = true)]
    Child { name: String, number: u32 },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.role {
        Some(Role::Child { name, number }) => child(name, *number),
        None => catch_stop_signals().and_then(|()| parent(&args)),
    };
    end_if_stopped();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("semaphore-gate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: semaphore
/// A POSIX named semaphore, open in this process. The one that created it
/// also removes its name when dropped. (CPython's SemLock, under fork,
/// unlinks the name right after sem_open; this one keeps it until the parent drops it,
/// because the children open the semaphore by name, at times the parent
/// does not see. So a parent killed by SIGKILL leaves /dev/shm/sem.* behind.)
struct Semaphore {
    sem: *mut libc::sem_t,
    name: CString,
    owner: bool,
}

impl Semaphore {
    /// Creates a new semaphore; fails if the name exists.
    fn create(name: &str, value: u32) -> Result<Semaphore> {
        let name = CString::new(name)?;
        let flags = libc::O_CREAT | libc::O_EXCL;
        // SAFETY: `name` is a NUL-terminated string that outlives the call;
        // with O_CREAT, sem_open reads two more arguments, a mode and the
        // initial value, passed as the unsigned ints C promotes them to.
        let sem = unsafe {
            libc::sem_open(name.as_ptr(), flags, 0o600 as libc::c_uint, value)
        };
        Semaphore::checked(sem, name, true)
    }

    /// Opens a semaphore that another process created.
    fn open(name: &str) -> Result<Semaphore> {
        let name = CString::new(name)?;
        // SAFETY: as above; without O_CREAT there are no more arguments.
        let sem = unsafe { libc::sem_open(name.as_ptr(), 0) };
        Semaphore::checked(sem, name, false)
    }

    fn checked(
        sem: *mut libc::sem_t,
        name: CString,
        owner: bool,
    ) -> Result<Self> {
        if sem == libc::SEM_FAILED {
            let e = io::Error::last_os_error();
            return Err(e).with_context(|| format!("sem_open {name:?}"));
        }
        Ok(Semaphore { sem, name, owner })
    }

    /// Waits until the value is above 0 and takes one from it; the permit
    /// gives it back when dropped.
    fn wait(&self) -> Result<Permit<'_>> {
        // SAFETY: `self.sem` came from a successful sem_open and stays open
        // until drop, which cannot run while `self` is borrowed.
        while unsafe { libc::sem_wait(self.sem) } != 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e).context("sem_wait");
            }
        }
        Ok(Permit(self))
    }

    /// Takes one from the value if it is above 0, without waiting; `None`
    /// if it is 0. Only a snapshot: another process may post the moment
    /// after. (Linux's sem_getvalue reads the value; macOS has no such call.)
    fn try_wait(&self) -> Result<Option<Permit<'_>>> {
        // SAFETY: `self.sem` is open (see `wait`); sem_trywait never blocks.
        if unsafe { libc::sem_trywait(self.sem) } == 0 {
            return Ok(Some(Permit(self)));
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EAGAIN) {
            return Ok(None);
        }
        Err(e).context("sem_trywait")
    }
}

/// One unit taken from a semaphore, given back on drop. A process that is
/// killed never gives it back: the kernel does not undo it.
struct Permit<'a>(&'a Semaphore);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // SAFETY: `self.0.sem` came from a successful sem_open, and the
        // semaphore stays open while this permit lives: the permit borrows
        // the `Semaphore`, whose drop (sem_close) cannot run meanwhile.
        // sem_post touches only the semaphore, and is async-signal-safe.
        let result = unsafe { libc::sem_post(self.0.sem) };
        // It fails only on an invalid semaphore (ruled out above) or a value
        // past SEM_VALUE_MAX (each post follows a wait). Drop cannot return
        // an error, so an impossible one is at least reported.
        if result != 0 {
            let e = io::Error::last_os_error();
            eprintln!("semaphore-gate: sem_post: {e}");
        }
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        // SAFETY: `self.sem` is open, and nothing uses it after this.
        unsafe { libc::sem_close(self.sem) };
        if self.owner {
            // SAFETY: `self.name` is NUL-terminated. The name goes now; the
            // semaphore itself when the last process has closed it.
            unsafe { libc::sem_unlink(self.name.as_ptr()) };
        }
    }
}
// ANCHOR_END: semaphore

// ANCHOR: child
fn child(name: &str, number: u32) -> Result<()> {
    let semaphore = Semaphore::open(name)?;
    let permit = semaphore.wait()?;
    println!("enter {number}");
    // Inside until the parent says to leave (or is gone: end of input).
    io::stdin().lock().read_line(&mut String::new())?;
    println!("leave {number}");
    drop(permit); // sem_post, after "leave" is written
    Ok(())
}
// ANCHOR_END: child

/// The children, each killed (if still running) and waited for on drop.
struct Children(Vec<(Child, Option<ChildStdin>)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (child, stdin) in &mut self.0 {
            stdin.take();
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// A new semaphore with a random name that nobody can guess and take first:
/// 64 random bits (std's `RandomState` keys come from the OS's random
/// source), tried again if the name is taken (O_EXCL). Short, too: macOS
/// refuses names longer than 31 bytes (PSEMNAMLEN); this one has 26.
fn create_unique(value: u32) -> Result<(String, Semaphore)> {
    for _ in 0..10 {
        let random = RandomState::new().build_hasher().finish();
        let name = format!("/sem-gate-{random:016x}");
        match Semaphore::create(&name, value) {
            Err(e)
                if e.downcast_ref::<io::Error>()
                    .and_then(io::Error::raw_os_error)
                    == Some(libc::EEXIST) => {}
            result => return Ok((name, result?)),
        }
    }
    bail!("ten random semaphore names were all taken")
}

// ANCHOR: parent
fn parent(args: &Args) -> Result<()> {
    let (name, semaphore) = create_unique(args.value)?;
    println!("semaphore {name} created with value {}", args.value);
    // All children write to one pipe: each line is one write, so the pipe
    // holds their lines in the order they happened.
    let (reader, writer) = io::pipe()?;
    let me = env::current_exe().context("cannot find this program")?;
    let mut children = Children(Vec::new());
    for number in 0..args.children {
        let mut child = Command::new(&me)
            .args(["child", &name, &number.to_string()])
            .stdin(Stdio::piped())
            .stdout(writer.try_clone()?)
            .stderr(writer.try_clone()?)
            .spawn()
            .context("cannot start a child")?;
        let stdin = child.stdin.take();
        children.0.push((child, stdin));
    }
    drop(writer);
    let (sender, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            if sender.send(line).is_err() {
                break;
            }
        }
    });

    let mut inside: VecDeque<u32> = VecDeque::new();
    let (mut left, mut most, mut released) = (0, 0, None);
    while left < args.children {
        stopped()?;
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .context("no child entered or left for 10 s")??;
        match line.split_once(' ') {
            Some(("enter", number)) => inside.push_back(number.parse()?),
            Some(("leave", number)) => {
                let number: u32 = number.parse()?;
                inside.retain(|&n| n != number);
                left += 1;
                released = None;
            }
            _ => bail!("a child failed: {line}"),
        }
        let verb = line.split(' ').next().unwrap_or_default();
        println!("a child {verb}s: {} inside", inside.len());
        most = most.max(inside.len());
        if args.kill_inside && inside.len() == 2 {
            return kill_inside(&mut children, &inside, &semaphore);
        }
        // Let one out only when the section is as full as it can get.
        let can_be_inside = args.value.min(args.children - left) as usize;
        if released.is_none()
            && inside.len() >= can_be_inside
            && let Some(&first) = inside.front()
        {
            let stdin = children.0[first as usize].1.as_mut();
            writeln!(stdin.context("no stdin")?)?;
            released = Some(first);
        }
    }
    for (child, stdin) in &mut children.0 {
        stdin.take();
        let status = child.wait()?;
        ensure!(status.success(), "a child failed: {status}");
    }
    println!(
        "{} children went through; at most {most} inside",
        args.children
    );
    drop(semaphore);
    Ok(())
}
// ANCHOR_END: parent

// ANCHOR: kill
/// Kills the child that entered last, inside the section, and shows that
/// its permit is gone with it: SIGKILL leaves no chance to run `Drop`.
fn kill_inside(
    children: &mut Children,
    inside: &VecDeque<u32>,
    semaphore: &Semaphore,
) -> Result<()> {
    let last = *inside.back().context("nobody inside")?;
    let (child, _) = &mut children.0[last as usize];
    child.kill()?;
    let status = child.wait()?;
    println!("parent: SIGKILL to the child that entered last: {status}");
    // A permit taken here would go back at once, when it is dropped.
    if semaphore.try_wait()?.is_some() {
        bail!("a permit was free after the kill");
    }
    println!("sem_trywait: no permit free, with 1 live child inside");
    bail!("a child died holding a permit, which is lost")
}
// ANCHOR_END: kill

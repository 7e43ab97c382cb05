//! S7.1-S7.7: the notes' ways between processes, measured. One child
//! process (this program, started again) per mechanism echoes what the
//! parent sends: a ping-pong of small messages, timed one round trip at a
//! time. Median and 99th percentile, and the median as a ratio of the
//! fastest. Linux only: PR_SET_PDEATHSIG, sigtimedwait and the futex are
//! Linux's.

use std::env;
use std::fs::{File, OpenOptions};
use std::hint;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::Path;
use std::process::{self, Child, Command, ExitCode, Stdio};
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::{Parser, Subcommand, ValueEnum};
use ctrl_c_cleanup::{RunDir, catch_stop_signals, end_if_stopped, stopped};
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use memmap2::MmapRaw;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::stat::Mode;
use nix::unistd::{Pid, getppid, mkfifo};
#[cfg(target_os = "linux")]
use rustix::{io::Errno, thread::futex, thread::futex::Timespec};
use serde::{Deserialize, Serialize};

/// Time a round trip through each way between two processes.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// Round trips timed per mechanism (after a tenth as many to warm up).
    #[arg(long, default_value_t = 10_000)]
    #[arg(value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    rounds: u64,
}

#[derive(Subcommand)]
enum Role {
    /// Echo for the parent over one mechanism.
    #[command(hide = true)]
    Echo {
        mechanism: Mechanism,
        at: String,
        parent: i32,
    },
}

// ANCHOR: mechanisms
#[derive(Clone, Copy, ValueEnum)]
enum Mechanism {
    Pipe,
    Fifo,
    UnixStream,
    UnixDatagram,
    Tcp,
    IpcChannel,
    SharedMemory,
    Futex,
    Signal,
}

impl Mechanism {
    /// The table's columns: the name, what it carries, who can use it.
    fn describe(self) -> [&'static str; 3] {
        match self {
            Self::Pipe => ["anonymous pipes", "a byte stream", "related"],
            Self::Fifo => ["FIFO pair", "a byte stream", "unrelated, by path"],
            Self::UnixStream => {
                ["Unix stream", "a byte stream", "unrelated, by path"]
            }
            Self::UnixDatagram => {
                ["Unix datagram", "messages", "unrelated, by path"]
            }
            Self::Tcp => {
                ["TCP, 127.0.0.1", "a byte stream", "unrelated, by port"]
            }
            Self::IpcChannel => {
                ["ipc-channel", "typed messages", "unrelated, by name"]
            }
            Self::SharedMemory => [
                "shared memory, spinning",
                "any bytes (you synchronize)",
                "unrelated, by path",
            ],
            Self::Futex => [
                "shared memory, futex",
                "any bytes (you synchronize)",
                "unrelated, by path",
            ],
            Self::Signal => ["signals", "a signal", "unrelated, by pid"],
        }
    }
}
// ANCHOR_END: mechanisms

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.role {
        Some(Role::Echo {
            mechanism,
            at,
            parent,
        }) => echo(mechanism, &at, Pid::from_raw(parent)),
        None => catch_stop_signals().and_then(|()| run(args.rounds)),
    };
    end_if_stopped();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipc-latency: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: run
fn run(rounds: u64) -> Result<()> {
    ensure!(
        cfg!(target_os = "linux"),
        "this program needs Linux (PR_SET_PDEATHSIG, sigtimedwait, futex); \
         it runs on Linux only"
    );
    // Before any other thread exists, so that all inherit the mask: a
    // SIGUSR1 must wait for sigwait, never kill the process.
    signals().thread_block()?;
    let folder = RunDir::create(&env::temp_dir(), "ipc-latency")?;
    println!("temporary directory: {}", folder.path().display());
    // ipc-channel's one-shot server binds its socket in a new directory in
    // TMPDIR, removed only when `accept` returns: in the folder, it goes
    // with the folder even if the child never connects.
    // SAFETY: no other thread runs yet, so none reads the environment while
    // it changes.
    unsafe { env::set_var("TMPDIR", folder.path()) };
    let warm_up = rounds / 10;
    println!(
        "{rounds} round trips per mechanism, after {warm_up} to warm up, \
         one child process each"
    );
    let mut results = Vec::new();
    for mechanism in Mechanism::value_variants() {
        let name = mechanism.describe()[0];
        let mut times = measure(*mechanism, folder.path(), warm_up + rounds)
            .with_context(|| format!("{name} failed"))?;
        ensure!(times.len() as u64 == warm_up + rounds, "{name}: rounds");
        let mut times = times.split_off(warm_up as usize);
        times.sort();
        let at = |fraction: f64| {
            times[((times.len() - 1) as f64 * fraction).round() as usize]
        };
        results.push((mechanism.describe(), at(0.5), at(0.99)));
    }
    let fastest = results.iter().map(|r| r.1).min().expect("mechanisms");
    println!(
        "{:<23} {:<27} {:<19} {:>9} {:>9} {:>7}",
        "mechanism", "carries", "who", "median", "p99", "ratio"
    );
    for ([name, carries, who], median, p99) in results {
        let ratio = median.as_secs_f64() / fastest.as_secs_f64();
        println!(
            "{name:<23} {carries:<27} {who:<19} {median:>9.1?} {p99:>9.1?} \
             {ratio:>6.1}x"
        );
    }
    println!("every mechanism: {rounds} round trips, every value echoed");
    Ok(())
}

/// Times `round` (one ping and its echo) `rounds` times; `round(i)` sends
/// a value made from `i` and fails if the echo differs.
fn time_rounds(
    rounds: u64,
    mut round: impl FnMut(u64) -> Result<()>,
) -> Result<Vec<Duration>> {
    (0..rounds)
        .map(|i| {
            stopped()?; // before the clock starts
            let started = Instant::now();
            round(i)?;
            Ok(started.elapsed())
        })
        .collect()
}
// ANCHOR_END: run

// ANCHOR: bytes
/// One byte there and back over any pair of byte streams.
fn ping_bytes(
    to: &mut impl Write,
    from: &mut impl Read,
    rounds: u64,
) -> Result<Vec<Duration>> {
    time_rounds(rounds, |i| {
        let sent = [i as u8];
        to.write_all(&sent)?;
        let mut echo = [0];
        from.read_exact(&mut echo)?;
        ensure!(echo == sent, "sent {sent:?}, got {echo:?} back");
        Ok(())
    })
}

/// The child's side: echo every byte until the parent closes its end.
fn echo_bytes(from: &mut impl Read, to: &mut impl Write) -> Result<()> {
    let mut byte = [0];
    while from.read(&mut byte)? == 1 {
        to.write_all(&byte)?;
        to.flush()?;
    }
    Ok(())
}
// ANCHOR_END: bytes

// ANCHOR: measure
/// The parent's side of one mechanism: set up, start the child, time.
fn measure(
    mechanism: Mechanism,
    dir: &Path,
    rounds: u64,
) -> Result<Vec<Duration>> {
    let path = |name: &str| dir.join(name);
    let at = |name: &str| path(name).display().to_string();
    Ok(match mechanism {
        Mechanism::Pipe => {
            let mut child = Echo::start(mechanism, "-", true)?;
            let mut to = child.0.stdin.take().context("no stdin")?;
            let mut from = child.0.stdout.take().context("no stdout")?;
            let times = ping_bytes(&mut to, &mut from, rounds)?;
            drop(to); // end of input: the child's loop ends
            child.finish()?;
            times
        }
        Mechanism::Fifo => {
            for name in ["down", "up"] {
                mkfifo(&path(name), Mode::S_IRUSR | Mode::S_IWUSR)?;
            }
            let child = Echo::start(mechanism, &at(""), false)?;
            // Opening a FIFO blocks until the other end opens it too.
            let (down, up) = (path("down"), path("up"));
            let (mut to, mut from) = within(move || {
                let to = OpenOptions::new().write(true).open(down)?;
                Ok((to, File::open(up)?))
            })?;
            let times = ping_bytes(&mut to, &mut from, rounds)?;
            drop(to);
            child.finish()?;
            times
        }
        Mechanism::UnixStream => {
            let listener = UnixListener::bind(path("stream.sock"))?;
            let child = Echo::start(mechanism, &at("stream.sock"), false)?;
            let (mut stream, _) = within(move || Ok(listener.accept()?))?;
            let times =
                ping_bytes(&mut stream.try_clone()?, &mut stream, rounds)?;
            drop(stream);
            child.finish()?;
            times
        }
        Mechanism::UnixDatagram => {
            let socket = UnixDatagram::bind(path("parent.sock"))?;
            let child = Echo::start(mechanism, &at(""), false)?;
            // The child's first datagram says it is there.
            let socket = within(move || {
                let mut hello = [0; 8];
                socket.recv(&mut hello)?;
                Ok(socket)
            })?;
            socket.connect(path("child.sock"))?;
            // A child that died sends nothing more: fail, never wait forever.
            socket.set_read_timeout(Some(GLANCE))?;
            let times = time_rounds(rounds, |i| {
                socket.send(&i.to_le_bytes())?;
                let mut echo = [0; 8];
                let len =
                    recv_echo(&socket, &mut echo, Duration::from_secs(10))?;
                ensure!(len == 8 && u64::from_le_bytes(echo) == i, "bad echo");
                Ok(())
            })?;
            socket.send(&[])?; // an empty datagram: stop
            child.finish()?;
            times
        }
        Mechanism::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let address = listener.local_addr()?.to_string();
            let child = Echo::start(mechanism, &address, false)?;
            let (mut stream, _) = within(move || Ok(listener.accept()?))?;
            stream.set_nodelay(true)?;
            let times =
                ping_bytes(&mut stream.try_clone()?, &mut stream, rounds)?;
            drop(stream);
            child.finish()?;
            times
        }
        Mechanism::IpcChannel => {
            let (server, name) = IpcOneShotServer::<Hello>::new()?;
            let child = Echo::start(mechanism, &name, false)?;
            let (_, hello) = within(move || {
                server.accept().map_err(|e| anyhow!("accept: {e:?}"))
            })?;
            let times = time_rounds(rounds, |i| {
                hello.pings.send(i)?;
                let echo = hello.pongs.recv().map_err(|e| anyhow!("{e:?}"))?;
                ensure!(echo == i, "sent {i}, got {echo} back");
                Ok(())
            })?;
            drop(hello); // the child's recv fails: it ends
            child.finish()?;
            times
        }
        Mechanism::SharedMemory => {
            File::create(path("flags"))?.set_len(size_of::<Flags>() as u64)?;
            let map = map(&path("flags"))?;
            let flags = view::<Flags>(&map)?;
            let child = Echo::start(mechanism, &at("flags"), false)?;
            // One deadline for all the rounds, set before the timing starts:
            // a round reads the clock twice, as with every other mechanism
            // (the check reads it again only after 10,000 spins).
            let limit = Duration::from_secs(10) + Duration::from_millis(rounds);
            let deadline = Instant::now() + limit;
            // 0 is the file's initial value; the pings start at 1.
            let times = time_rounds(rounds, |i| {
                flags.ping.store(i + 1, Release);
                let echo = spin_until(
                    &flags.pong,
                    |pong| pong == i + 1,
                    || Instant::now() < deadline && stopped().is_ok(),
                )?;
                ensure!(echo == i + 1, "bad echo");
                Ok(())
            })?;
            flags.ping.store(STOP, Release);
            child.finish()?;
            times
        }
        Mechanism::Futex => {
            File::create(path("words"))?.set_len(size_of::<Words>() as u64)?;
            let map = map(&path("words"))?;
            let words = view::<Words>(&map)?;
            let child = Echo::start(mechanism, &at("words"), false)?;
            // 0 is the file's initial value; the pings start at 1.
            let times = time_rounds(rounds, |i| {
                let ping = i as u32 + 1; // at most 1,100,000 rounds
                words.ping.store(ping, Release);
                wake(&words.ping)?;
                let echo = sleep_until(
                    &words.pong,
                    |pong| pong == ping,
                    || stopped().is_ok(),
                )?;
                ensure!(echo == ping, "bad echo");
                Ok(())
            })?;
            words.ping.store(STOP_WORD, Release);
            wake(&words.ping)?;
            child.finish()?;
            times
        }
        Mechanism::Signal => {
            let mut child = Echo::start(mechanism, "-", true)?;
            // The child says when it has blocked the signal: a SIGUSR1
            // before that would kill it.
            let mut ready = [0];
            let mut stdout = child.0.stdout.take().context("no stdout")?;
            within(move || Ok(stdout.read_exact(&mut ready)?))?;
            let pid = Pid::from_raw(child.0.id() as i32);
            let times = time_rounds(rounds, |_| {
                kill(pid, Signal::SIGUSR1)?;
                let echo = wait_for_signal(Duration::from_secs(10))?;
                ensure!(echo == Signal::SIGUSR1, "got {echo} back");
                Ok(())
            })?;
            kill(pid, Signal::SIGUSR2)?; // stop
            child.finish()?;
            times
        }
    })
}
// ANCHOR_END: measure

// ANCHOR: echo
/// The child: echo over `mechanism` until the parent says stop.
fn echo(mechanism: Mechanism, at: &str, parent: Pid) -> Result<()> {
    // A child blocked in an open, a recv or a wait would never learn that
    // the parent died: have the kernel kill it then. (The signal comes
    // when the thread that started the child ends: the parent's main
    // thread.) If the parent died before this line, the child already
    // has another parent: stop.
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    ensure!(getppid() == parent, "the parent is gone");
    let path = |name: &str| Path::new(at).join(name);
    match mechanism {
        Mechanism::Pipe => {
            echo_bytes(&mut std::io::stdin().lock(), &mut std::io::stdout())
        }
        Mechanism::Fifo => {
            let mut from = File::open(path("down"))?;
            let mut to = OpenOptions::new().write(true).open(path("up"))?;
            echo_bytes(&mut from, &mut to)
        }
        Mechanism::UnixStream => {
            let mut stream = UnixStream::connect(at)?;
            echo_bytes(&mut stream.try_clone()?, &mut stream)
        }
        Mechanism::UnixDatagram => {
            let socket = UnixDatagram::bind(path("child.sock"))?;
            socket.connect(path("parent.sock"))?;
            socket.send(b"hello")?;
            let mut ping = [0; 8];
            while socket.recv(&mut ping)? > 0 {
                socket.send(&ping)?;
            }
            Ok(())
        }
        Mechanism::Tcp => {
            let mut stream = TcpStream::connect(at)?;
            stream.set_nodelay(true)?;
            echo_bytes(&mut stream.try_clone()?, &mut stream)
        }
        Mechanism::IpcChannel => {
            let hello = IpcSender::<Hello>::connect(at.to_string())?;
            let (pings, my_pings) = ipc::channel()?;
            let (my_pongs, pongs) = ipc::channel()?;
            hello.send(Hello { pings, pongs })?;
            while let Ok(ping) = my_pings.recv() {
                my_pongs.send(ping)?;
            }
            Ok(())
        }
        Mechanism::SharedMemory => {
            let map = map(Path::new(at))?;
            let flags = view::<Flags>(&map)?;
            let mut last = 0;
            loop {
                // A parent that died leaves this child to init: stop.
                last = spin_until(
                    &flags.ping,
                    |ping| ping != last,
                    || getppid() == parent,
                )?;
                if last == STOP {
                    return Ok(());
                }
                flags.pong.store(last, Release);
            }
        }
        Mechanism::Futex => {
            let map = map(Path::new(at))?;
            let words = view::<Words>(&map)?;
            let mut last = 0;
            loop {
                // A parent that died leaves this child to init: stop.
                last = sleep_until(
                    &words.ping,
                    |ping| ping != last,
                    || getppid() == parent,
                )?;
                if last == STOP_WORD {
                    return Ok(());
                }
                words.pong.store(last, Release);
                wake(&words.pong)?;
            }
        }
        Mechanism::Signal => {
            signals().thread_block()?;
            let mut stdout = std::io::stdout();
            stdout.write_all(b"!")?;
            stdout.flush()?;
            while signals().wait()? == Signal::SIGUSR1 {
                kill(parent, Signal::SIGUSR1)?;
            }
            Ok(())
        }
    }
}
// ANCHOR_END: echo

/// A new ipc-channel child's first message: where the pings go, and where
/// their echoes come back.
#[derive(Serialize, Deserialize)]
struct Hello {
    pings: IpcSender<u64>,
    pongs: IpcReceiver<u64>,
}

/// The signals the ping-pong uses: SIGUSR1 there and back, SIGUSR2 to stop.
fn signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGUSR1);
    set.add(Signal::SIGUSR2);
    set
}

/// How long a wait with nothing to show lasts before it looks for a stop
/// signal, and then waits on.
const GLANCE: Duration = Duration::from_millis(50);

/// The parent's wait for a datagram's echo, `timeout` at most: a child that
/// died sends nothing more. The socket's read timeout is one glance. It
/// reads no clock: every mechanism's round must cost the same two reads.
fn recv_echo(
    socket: &UnixDatagram,
    echo: &mut [u8],
    timeout: Duration,
) -> Result<usize> {
    for _ in 0..timeout.as_millis() / GLANCE.as_millis() {
        match socket.recv(echo) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => stopped()?,
            Err(e) if e.kind() == ErrorKind::Interrupted => stopped()?,
            result => return Ok(result?),
        }
    }
    bail!("no echo in {timeout:?}")
}

/// The parent's wait for the echo, `timeout` at most: `sigtimedwait`, since
/// a child that died sends no signal and `sigwait` would wait forever.
#[cfg(target_os = "linux")]
fn wait_for_signal(timeout: Duration) -> Result<Signal> {
    let glance = libc::timespec {
        tv_sec: 0,
        tv_nsec: GLANCE.as_nanos() as libc::c_long,
    };
    for _ in 0..timeout.as_millis() / GLANCE.as_millis() {
        // SAFETY: both pointers are to live values of the right types, and
        // a null info pointer is allowed.
        let number = unsafe {
            libc::sigtimedwait(
                signals().as_ref(),
                std::ptr::null_mut(),
                &glance,
            )
        };
        if number >= 0 {
            return Ok(Signal::try_from(number)?);
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            // A glance without an echo, or a stop signal's handler ran.
            Some(libc::EAGAIN | libc::EINTR) => stopped()?,
            _ => bail!("sigtimedwait: {error}"),
        }
    }
    bail!("no echo in {timeout:?}")
}

/// Never called elsewhere (`run` stops first): it lets the program compile,
/// and `--help` work, on every Unix.
#[cfg(not(target_os = "linux"))]
fn wait_for_signal(_: Duration) -> Result<Signal> {
    bail!("sigtimedwait is not on every Unix")
}

// ANCHOR: spin
/// The shared file: the parent's ping and the child's echo of it.
#[repr(C)]
struct Flags {
    ping: AtomicU64,
    pong: AtomicU64,
}

/// The ping that tells the child to stop.
const STOP: u64 = u64::MAX;

/// Busy-waits until `flag` holds a value that `done` accepts. A spinning
/// process keeps a core busy the whole time: after a short spin it yields
/// the core at each check, and fails once `alive` says to give up.
fn spin_until(
    flag: &AtomicU64,
    done: impl Fn(u64) -> bool,
    alive: impl Fn() -> bool,
) -> Result<u64> {
    for spins in 0_u64.. {
        // Acquire pairs with the other side's Release store: anything it
        // wrote before the flag would be visible here too.
        let value = flag.load(Acquire);
        if done(value) {
            return Ok(value);
        }
        if spins < 10_000 {
            hint::spin_loop();
        } else {
            thread::yield_now();
            ensure!(spins % 1024 != 0 || alive(), "the other side is gone");
        }
    }
    unreachable!("a u64 count of spins does not run out")
}

/// Maps the shared file as raw memory: the other process writes these
/// bytes while this one reads them, so no `&[u8]` or `&mut [u8]` over them
/// may ever exist, only references to the atomics in them.
fn map(path: &Path) -> Result<MmapRaw> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    Ok(MmapRaw::map_raw(&file)?)
}

// The atomics are shared with another process: only lock-free ones are
// address-free, and so work through two mappings of the same page.
#[cfg(not(target_has_atomic = "64"))]
compile_error!("shared memory needs lock-free 64-bit atomics");

/// Only these may be viewed in the shared file (`view`).
///
/// # Safety
///
/// An implementor is made only of lock-free atomics: every bit pattern is a
/// valid value, and every access, on both sides, is atomic.
unsafe trait OnlyAtomics {}

// SAFETY: two AtomicU64, lock-free here (checked above).
unsafe impl OnlyAtomics for Flags {}

/// The shared file as a `&T`, after checking that it is long enough and
/// aligned for `T`.
fn view<T: OnlyAtomics>(map: &MmapRaw) -> Result<&T> {
    let at = map.as_mut_ptr().cast::<T>();
    ensure!(map.len() >= size_of::<T>(), "the shared file is short");
    ensure!(
        at.is_aligned(),
        "the mapping is not aligned for its atomics"
    );
    // SAFETY: `at` is aligned for T, and size_of::<T>() bytes from it are
    // mapped (both checked above). They stay mapped as long as the
    // reference lives, since it borrows `map`, and the file is this
    // program's own: nobody truncates it. The other process modifies these
    // bytes, and holds its own `&T` over them, while this process holds this
    // one: that is sound because T is made only of lock-free atomics
    // (`OnlyAtomics`), so every access on both sides is an atomic load or
    // store, no non-atomic reference to the bytes ever exists, and every bit
    // pattern is valid.
    Ok(unsafe { &*at })
}
// ANCHOR_END: spin

// ANCHOR: futex
/// The shared file of the futex round trip: two 32-bit words (a futex is
/// a u32), the parent's ping and the child's echo of it.
#[repr(C)]
struct Words {
    ping: AtomicU32,
    pong: AtomicU32,
}

/// The ping that tells the child to stop.
const STOP_WORD: u32 = u32::MAX;

/// Sleeps in the kernel until `word` holds a value that `done` accepts,
/// woken by the other side's `wake`. The kernel puts this process to sleep
/// only if the word still holds the value just loaded (it checks under its
/// own lock), so a store and a wake that come in between are never missed.
/// Each sleep lasts one glance at most; after 200 glances (10 s) without
/// the value, or when `alive` says to give up, it fails.
#[cfg(target_os = "linux")]
fn sleep_until(
    word: &AtomicU32,
    done: impl Fn(u32) -> bool,
    alive: impl Fn() -> bool,
) -> Result<u32> {
    let glance = Timespec {
        tv_sec: 0,
        tv_nsec: GLANCE.as_nanos() as _,
    };
    let mut glances = 0;
    loop {
        // Acquire pairs with the other side's Release store.
        let value = word.load(Acquire);
        if done(value) {
            return Ok(value);
        }
        // Not PRIVATE: a shared futex is found by the page it is on, in
        // whichever process maps it, not by this process's address.
        match futex::wait(word, futex::Flags::empty(), value, Some(&glance)) {
            // Woken, or the word changed before the kernel looked: load it.
            Ok(()) | Err(Errno::AGAIN | Errno::INTR) => {}
            Err(Errno::TIMEDOUT) => {
                glances += 1;
                ensure!(glances < 200 && alive(), "the other side is gone");
            }
            Err(e) => return Err(e).context("futex wait"),
        }
    }
}

/// Wakes the other side if it sleeps on `word` (one system call, even when
/// nobody sleeps: a real lock keeps a "someone sleeps" flag to skip it).
#[cfg(target_os = "linux")]
fn wake(word: &AtomicU32) -> Result<()> {
    futex::wake(word, futex::Flags::empty(), 1).context("futex wake")?;
    Ok(())
}
// ANCHOR_END: futex

/// Never called elsewhere (`run` stops first): the futex is Linux's.
#[cfg(not(target_os = "linux"))]
fn sleep_until(
    _: &AtomicU32,
    _: impl Fn(u32) -> bool,
    _: impl Fn() -> bool,
) -> Result<u32> {
    bail!("futex is Linux's")
}

#[cfg(not(target_os = "linux"))]
fn wake(_: &AtomicU32) -> Result<()> {
    bail!("futex is Linux's")
}

// SAFETY: two AtomicU32, lock-free wherever AtomicU64 is.
unsafe impl OnlyAtomics for Words {}

// ANCHOR: cleanup
/// One echoing child, reaped on every path: `finish` waits for it to end
/// (10 s at most) and checks that it succeeded; dropped after an error, it
/// is killed and waited for.
struct Echo(Child);

impl Echo {
    fn start(mechanism: Mechanism, at: &str, piped: bool) -> Result<Self> {
        let name = mechanism.to_possible_value().expect("not skipped");
        let mut command = Command::new(env::current_exe()?);
        let parent = process::id().to_string();
        command.args(["echo", name.get_name(), at, &parent]);
        if piped {
            command.stdin(Stdio::piped()).stdout(Stdio::piped());
        }
        Ok(Self(command.spawn().context("cannot start the child")?))
    }

    fn finish(mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            stopped()?;
            if let Some(status) = self.0.try_wait()? {
                break status;
            }
            // Dropping `self` kills and reaps it.
            ensure!(Instant::now() < deadline, "the child did not stop");
            thread::sleep(Duration::from_millis(10));
        };
        ensure!(status.success(), "the child failed ({status})");
        Ok(())
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        // Once reaped, the child's pid may belong to another process: std
        // then sends no signal (kill returns Ok) and wait returns the
        // status it already has.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a call that blocks until the child does its part (opens, connects)
/// on a thread of its own, and gives up after 10 s, or at a stop signal: a
/// child that failed first cannot hang the parent.
fn within<T: Send + 'static>(
    call: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (done, result) = mpsc::channel();
    thread::spawn(move || done.send(call()));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        stopped()?;
        match result.recv_timeout(GLANCE) {
            Ok(result) => return result,
            Err(_) if Instant::now() < deadline => {}
            Err(_) => bail!("the child did not connect within 10 s"),
        }
    }
}

// ANCHOR_END: cleanup

//! S7.4: sockets between two processes on one machine. A parent and a child
//! (this program, started again) talk over Unix domain sockets, a stream one
//! and a datagram one, bound in a directory unique to the run that is always
//! removed, also on error, Ctrl-C or SIGTERM. Linux only: it asks for the
//! peer's credentials with SO_PEERCRED.

use std::env;
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand};
use ctrl_c_cleanup::{
    RunDir, catch_stop_signals, end_if_stopped, reap, stopped,
};
#[cfg(target_os = "linux")]
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::getuid;

/// Talk to a child process over Unix domain sockets.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// The directory in which to create the run's own directory.
    #[arg(long, default_value_os_t = env::temp_dir())]
    dir: PathBuf,
    /// Lines the child sends over the stream.
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=100))]
    lines: u32,
    /// Datagrams the child sends.
    #[arg(long, default_value_t = 1000)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=100_000))]
    datagrams: u32,
}

#[derive(Subcommand)]
enum Role {
    /// Connect to the parent's stream socket and send lines.
    #[command(hide = true)]
    StreamChild { socket: PathBuf, lines: u32 },
    /// Bind a datagram socket and send datagrams to the parent's.
    #[command(hide = true)]
    DatagramChild {
        socket: PathBuf,
        me: PathBuf,
        count: u32,
    },
}

/// How long any one receive may wait for the other process.
const PATIENCE: Duration = Duration::from_secs(10);

/// How long a wait with nothing to show lasts before it looks for a stop
/// signal, and then waits on.
const GLANCE: Duration = Duration::from_millis(50);

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.role {
        Some(Role::StreamChild { socket, lines }) => {
            stream_child(socket, *lines)
        }
        Some(Role::DatagramChild { socket, me, count }) => {
            datagram_child(socket, me, *count)
        }
        None => catch_stop_signals().and_then(|()| parent(&args)),
    };
    end_if_stopped();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unix-sockets: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A child process that is killed and waited for if it is dropped before
/// `finish` waits for it: no path leaves it running, or a zombie.
struct Reaped(Option<Child>);

impl Reaped {
    fn spawn(role: &[&std::ffi::OsStr]) -> Result<Reaped> {
        let me = env::current_exe().context("cannot find this program")?;
        let child = Command::new(me)
            .args(role)
            .spawn()
            .context("cannot start the child")?;
        Ok(Reaped(Some(child)))
    }

    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    fn finish(mut self) -> Result<()> {
        let child = self.0.as_mut().expect("not finished yet");
        // Within 10 s, watching for a stop signal (ctrl-c-cleanup's reap); on
        // an error the child is still in `self`, whose Drop kills and reaps it.
        let status = reap(child)?;
        self.0 = None; // reaped
        ensure!(status.success(), "the child failed: {status}");
        Ok(())
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ANCHOR: run-dir
fn parent(args: &Args) -> Result<()> {
    ensure!(
        cfg!(target_os = "linux"),
        "this program needs Linux (SO_PEERCRED); it runs on Linux only"
    );
    // The chapter's RunDir: a random name, created only if it is free, with
    // mode 700 (tempfile's default for a directory); dropping it removes it
    // with every socket file in it, on success, on error, on a stop signal.
    let dir = RunDir::create(&args.dir, "unix-sockets")?;
    let mode = fs::metadata(dir.path())?.permissions().mode() & 0o777;
    println!(
        "run directory {}, mode {mode:o}: only this user gets in",
        dir.path().display()
    );
    stream(dir.path(), args.lines)?;
    datagrams(dir.path(), args.datagrams)?;
    Ok(())
}
// ANCHOR_END: run-dir

// ANCHOR: stream
fn stream(dir: &Path, lines: u32) -> Result<()> {
    let path = dir.join("stream.sock");
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot bind {}", path.display()))?;
    let file_type = fs::metadata(&path)?.file_type();
    println!(
        "stream.sock bound: a socket file: {}",
        file_type.is_socket()
    );
    let lines = lines.to_string();
    let child = Reaped::spawn(&[
        "stream-child".as_ref(),
        path.as_ref(),
        lines.as_ref(),
    ])?;
    let connection = accept(listener, &child)?;
    connection.set_read_timeout(Some(PATIENCE))?;
    let (pid, uid) = peer_credentials(&connection)?;
    println!(
        "parent: connection from pid {pid}: the child: {}; same user: {}",
        pid == child.id(),
        uid == getuid().as_raw()
    );
    let mut reader = BufReader::new(&connection);
    let mut writer = &connection;
    let mut line = String::new();
    loop {
        stopped()?;
        line.clear();
        if reader.read_line(&mut line).context("cannot read a line")? == 0 {
            break; // the child closed its end
        }
        println!("parent got: {}", line.trim_end());
        writeln!(writer, "{}", line.trim_end().to_uppercase())?;
    }
    println!("parent: the child closed the stream");
    child.finish()
}
// ANCHOR_END: stream

/// Accepts one connection, or fails if time runs out or a stop signal
/// comes first: `accept` has no timeout, so it waits on a thread of its own.
fn accept(listener: UnixListener, child: &Reaped) -> Result<UnixStream> {
    let (sender, accepted) = mpsc::channel();
    thread::spawn(move || sender.send(listener.accept()));
    let deadline = Instant::now() + PATIENCE;
    loop {
        stopped()?;
        match accepted.recv_timeout(GLANCE) {
            Ok(Ok((connection, _))) => return Ok(connection),
            Ok(Err(e)) => return Err(e).context("cannot accept"),
            Err(_) if Instant::now() < deadline => {}
            Err(_) => bail!("child pid {} did not connect", child.id()),
        }
    }
}

// ANCHOR: peer
/// The pid and uid of the process at the other end, from the kernel
/// (SO_PEERCRED, Linux's), through nix's safe wrapper. std's
/// `UnixStream::peer_cred` does this, but is not stable yet.
#[cfg(target_os = "linux")]
fn peer_credentials(connection: &UnixStream) -> Result<(u32, u32)> {
    let credentials =
        getsockopt(connection, PeerCredentials).context("SO_PEERCRED")?;
    Ok((credentials.pid() as u32, credentials.uid()))
}
// ANCHOR_END: peer

/// Never called elsewhere (`parent` stops first): it lets the program
/// compile, and `--help` work, on every Unix.
#[cfg(not(target_os = "linux"))]
fn peer_credentials(_: &UnixStream) -> Result<(u32, u32)> {
    bail!("SO_PEERCRED is Linux's")
}

fn stream_child(socket: &Path, lines: u32) -> Result<()> {
    let connection = UnixStream::connect(socket)
        .with_context(|| format!("cannot connect to {}", socket.display()))?;
    connection.set_read_timeout(Some(PATIENCE))?;
    let mut reader = BufReader::new(&connection);
    let mut writer = &connection;
    let mut reply = String::new();
    for number in 1..=lines {
        writeln!(writer, "line {number}")?;
        reply.clear();
        reader.read_line(&mut reply).context("no reply")?;
        println!("child got:  {}", reply.trim_end());
    }
    Ok(())
}

// ANCHOR: datagrams
/// Datagram `number`: its number, then 0 to 300 bytes, so that lengths vary.
fn datagram(number: u32) -> Vec<u8> {
    let mut bytes = number.to_be_bytes().to_vec();
    bytes.resize(4 + (number as usize % 4) * 100, b'.');
    bytes
}

fn datagrams(dir: &Path, count: u32) -> Result<()> {
    let path = dir.join("parent.dgram");
    let socket = UnixDatagram::bind(&path)
        .with_context(|| format!("cannot bind {}", path.display()))?;
    socket.set_read_timeout(Some(GLANCE))?;
    let child_path = dir.join("child.dgram");
    let count_arg = count.to_string();
    let child = Reaped::spawn(&[
        "datagram-child".as_ref(),
        path.as_ref(),
        child_path.as_ref(),
        count_arg.as_ref(),
    ])?;
    let mut buffer = vec![0; 64 * 1024];
    let mut sender = None;
    for expected in 0..count {
        let (length, from) = receive(&socket, &mut buffer)
            .with_context(|| format!("datagram {expected}"))?;
        let bytes = &buffer[..length];
        ensure!(bytes == datagram(expected), "datagram {expected} differs");
        if expected < 4 {
            println!("parent got datagram {expected}: {length} bytes");
        }
        sender = from.as_pathname().map(Path::to_path_buf);
    }
    println!("parent got all {count}, in order, each as it was sent");
    // The child bound a path of its own: without one, no reply could reach it.
    let sender = sender.context("the child's socket has no path")?;
    let file_name = sender.file_name().unwrap_or_default().display();
    println!("parent replies to {file_name}");
    socket.send_to(format!("got {count}").as_bytes(), &sender)?;
    child.finish()
}

/// Receives one datagram. The socket's read timeout is a glance: between
/// two, it looks for a stop signal, for PATIENCE in all.
fn receive(
    socket: &UnixDatagram,
    buffer: &mut [u8],
) -> Result<(usize, SocketAddr)> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        stopped()?;
        match socket.recv_from(buffer) {
            Ok(received) => return Ok(received),
            Err(e) if e.kind() != ErrorKind::WouldBlock => {
                return Err(e).context("cannot receive");
            }
            Err(_) if Instant::now() < deadline => {}
            Err(_) => bail!("nothing came in {PATIENCE:?}"),
        }
    }
}

fn datagram_child(socket: &Path, me: &Path, count: u32) -> Result<()> {
    let mine = UnixDatagram::bind(me)
        .with_context(|| format!("cannot bind {}", me.display()))?;
    mine.set_read_timeout(Some(PATIENCE))?;
    // As fast as it can: when the parent's queue is full, send waits for
    // room. Nothing is dropped, unlike UDP.
    for number in 0..count {
        mine.send_to(&datagram(number), socket)
            .with_context(|| format!("cannot send to {}", socket.display()))?;
    }
    let mut reply = [0; 64];
    let length = mine.recv(&mut reply).context("no reply")?;
    let reply = String::from_utf8_lossy(&reply[..length]);
    println!("child got the reply: {reply}");
    Ok(())
}
// ANCHOR_END: datagrams

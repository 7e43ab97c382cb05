//! The four servers, each in a child process of its own, so that the
//! threads, CPU time and memory read from `/proc` are the server's alone.

use std::env;
use std::io::{BufRead, BufReader, Read};
use std::iter::once;
use std::net::SocketAddr;
#[cfg(target_os = "linux")]
use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, ValueEnum};
#[cfg(target_os = "linux")]
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum Server {
    Threads,
    Tokio,
    Mio,
    Asyncio,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Threads => "threads",
            Server::Tokio => "tokio",
            Server::Mio => "mio",
            Server::Asyncio => "asyncio",
        }
    }
}

/// Chapter 3's server (and std's) default to a backlog of 128, tokio's to
/// 1024, asyncio's to 100: all are given room for the connects in flight.
const BACKLOG: &str = "4096";

// ANCHOR: serve
/// The child's side: the very servers of chapters 3, 12 and 13,
/// started through their own command lines, told to log nothing per
/// connection.
pub fn serve(server: Server) -> Result<()> {
    let options = ["--bind", "127.0.0.1:0", "--backlog", BACKLOG, "--quiet"];
    match server {
        Server::Threads => {
            use tcp_threaded_server::{Args, run};
            // Its cap on clients (1024 by default) would turn most of them away.
            let uncapped = ["--max-clients", "100000"];
            let args =
                once("tcp-threaded-server").chain(options).chain(uncapped);
            run(Args::parse_from(args))
        }
        Server::Tokio => {
            use echo_server::{Args, run};
            run(Args::parse_from(once("echo-server").chain(options)))
        }
        Server::Mio => {
            use mio_echo_server::{Args, run};
            run(Args::parse_from(once("mio-echo-server").chain(options)))
        }
        Server::Asyncio => bail!("asyncio's server is Python's"),
    }
}
// ANCHOR_END: serve

// ANCHOR: asyncio
/// The asyncio counterpart of the tokio echo server, run by `python3 -c`.
const ASYNCIO_SERVER: &str = r#"
import asyncio, signal

async def echo(reader, writer):
    try:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()

async def main():
    serving = set()

    async def serve(reader, writer):
        # Known, so that shutdown can wait for the connections in service.
        serving.add(asyncio.current_task())
        try:
            await echo(reader, writer)
        finally:
            serving.discard(asyncio.current_task())

    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=4096)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    # As the tokio server does: no new connections, and those in service
    # end on their own. asyncio.run would cancel them instead.
    if serving:
        await asyncio.wait(serving, timeout=10)

asyncio.run(main())
"#;
// ANCHOR_END: asyncio

pub fn python3_present() -> bool {
    Command::new("python3")
        .args(["-c", "import asyncio"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A server in a child process; dropped, it is killed and reaped.
pub struct ServerChild {
    server: Server,
    child: Child,
    pid: String,
    pub addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    reader: Option<JoinHandle<()>>,
    errors: Option<JoinHandle<String>>,
}

/// Generous: a server that does not start or stop in time is an error,
/// never a hang.
const PATIENCE: Duration = Duration::from_secs(30);

impl ServerChild {
    pub fn start(server: Server) -> Result<Self> {
        let mut command = if server == Server::Asyncio {
            let mut python = Command::new("python3");
            python.args(["-c", ASYNCIO_SERVER]);
            python
        } else {
            let mut itself = Command::new(env::current_exe()?);
            itself.args(["serve", server.name()]);
            itself
        };
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        // If this program dies, however it dies, its server dies with it.
        #[cfg(target_os = "linux")]
        unsafe {
            command.pre_exec(|| Ok(set_pdeathsig(Signal::SIGKILL)?));
        }
        let name = server.name();
        // Its stderr is read, not shown: a warning an interpreter prints
        // is not this program's output. It is reported if the server fails.
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start the {name} server"))?;
        let stderr = child.stderr.take().context("the server's errors")?;
        let errors = thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            text
        });
        let stdout = child.stdout.take().context("the server's output")?;
        let (sender, lines) = mpsc::channel();
        // Read its output as it comes, so that the server never blocks on
        // a full pipe: the first line is its address, any other an error.
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let pid = child.id().to_string();
        let mut started = ServerChild {
            server,
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            reader: Some(reader),
            errors: Some(errors),
        };
        let Ok(first) = started.lines.recv_timeout(PATIENCE) else {
            let why = started.exit_message();
            bail!("the {name} server did not say where it listens{why}");
        };
        started.addr = first
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
            .with_context(|| {
                format!("{name}: unexpected first line {first:?}")
            })?;
        Ok(started)
    }

    /// If the server has exited: the last line it wrote to stderr, as the
    /// end of an error message.
    fn exit_message(&mut self) -> String {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            return String::new();
        }
        let errors = self.errors.take().and_then(|e| e.join().ok());
        let errors = errors.unwrap_or_default();
        errors
            .lines()
            .last()
            .map_or(String::new(), |l| format!(": {l}"))
    }

    /// Its process id, as `/proc/<pid>` names it.
    pub fn pid(&self) -> &str {
        &self.pid
    }

    /// SIGTERM, as a service manager stops a server: tokio's, mio's and asyncio's
    /// shut down and exit with 0; chapter 3's has no shutdown, and the
    /// signal ends it. Anything else, and anything it printed after its
    /// address, is an error.
    pub fn stop(mut self) -> Result<()> {
        let name = self.server.name();
        kill(Pid::from_raw(self.child.id().try_into()?), Signal::SIGTERM)?;
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            ensure!(
                Instant::now() < deadline,
                "the {name} server did not stop"
            );
            thread::sleep(Duration::from_millis(10));
        };
        // It has exited: its output is at its end, and the readers with it.
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let errors = self
            .errors
            .take()
            .and_then(|errors| errors.join().ok())
            .unwrap_or_default();
        let expected = match self.server {
            Server::Threads => status.signal() == Some(Signal::SIGTERM as i32),
            Server::Tokio | Server::Mio | Server::Asyncio => status.success(),
        };
        let last = errors
            .lines()
            .last()
            .map_or(String::new(), |l| format!(": {l}"));
        ensure!(expected, "the {name} server ended with {status}{last}");
        // The tokio and mio servers end with a summary of their shutdown.
        let printed: Vec<String> = self.lines.try_iter().collect();
        let unexpected: Vec<&String> = printed
            .iter()
            .filter(|line| {
                !(matches!(self.server, Server::Tokio | Server::Mio)
                    && is_summary(line))
            })
            .collect();
        ensure!(
            unexpected.is_empty(),
            "the {name} server printed: {unexpected:?}"
        );
        Ok(())
    }
}

fn is_summary(line: &str) -> bool {
    line.starts_with("SIGTERM: stopped") || line.starts_with("shut down: ")
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

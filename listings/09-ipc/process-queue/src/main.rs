//! S7.1: the notes' process queue. A producer process puts A, B, C on a
//! queue, an ipc-channel; a consumer process gets them until the producer
//! says End. The parent (this program) starts both, as this program again,
//! and waits for both, also when one fails. `--stop-when-empty` consumes as
//! the note does, and replays its race on purpose: the consumer looks before
//! the producer has started.

use std::env;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use ctrl_c_cleanup::{RunDir, catch_stop_signals, end_if_stopped, stopped};
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use ipc_channel::{IpcError, TryRecvError};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// A producer and a consumer process, and a queue between them.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// Letters the producer puts, from A.
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u8).range(1..=26))]
    items: u8,
    /// Make the producer fail after it has put this many letters.
    #[arg(long)]
    #[arg(value_parser = clap::value_parser!(u8).range(0..=25))]
    fail_after: Option<u8>,
    /// Consume as the note does: finish as soon as the queue looks empty.
    #[arg(long)]
    stop_when_empty: bool,
    /// Where to make this run's own directory, for ipc-channel's sockets.
    #[arg(long, default_value_os_t = env::temp_dir())]
    dir: PathBuf,
}

#[derive(Subcommand)]
enum Role {
    /// Put letters on the queue that the parent hands over.
    #[command(hide = true)]
    Producer {
        server: String,
        #[arg(long)]
        items: u8,
        #[arg(long)]
        fail_after: Option<u8>,
    },
    /// Get letters from the queue that the parent hands over.
    #[command(hide = true)]
    Consumer {
        server: String,
        #[arg(long)]
        stop_when_empty: bool,
    },
}

// ANCHOR: item
/// What travels on the queue: a letter, or the producer's word that it has
/// put them all.
#[derive(Serialize, Deserialize)]
enum Item {
    Letter(char),
    End,
}
// ANCHOR_END: item

/// How long anything may take before the parent gives up and kills.
const PATIENCE: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.role {
        Some(Role::Producer {
            server,
            items,
            fail_after,
        }) => receive_end(server).and_then(|q| produce(&q, items, fail_after)),
        Some(Role::Consumer {
            server,
            stop_when_empty: false,
        }) => receive_end(server).and_then(|queue| consume(&queue)),
        Some(Role::Consumer {
            server,
            stop_when_empty: true,
        }) => receive_end(server).and_then(|queue| consume_until_empty(&queue)),
        None => catch_stop_signals().and_then(|()| parent(&args)),
    };
    end_if_stopped();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("process-queue: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: produce
/// The note's task1: put each letter, then End. Returning drops `queue`,
/// this process's only sender, and exiting would close it anyway.
fn produce(
    queue: &IpcSender<Item>,
    items: u8,
    fail_after: Option<u8>,
) -> Result<()> {
    for (sent, letter) in ('A'..='Z').take(items.into()).enumerate() {
        if fail_after.map(usize::from) == Some(sent) {
            bail!("failing on purpose after {}", letters(sent));
        }
        put(queue, Item::Letter(letter))
            .with_context(|| format!("cannot put {letter}"))?;
        println!("put {letter}");
    }
    put(queue, Item::End).context("cannot put End")?;
    println!("put End");
    Ok(())
}
// ANCHOR_END: produce

/// Sends one item; an I/O error says it all (EPIPE: no receiver is left).
fn put(queue: &IpcSender<Item>, item: Item) -> Result<()> {
    queue.send(item).map_err(|e| match e {
        IpcError::Io(e) => e.into(),
        e => e.into(),
    })
}

/// "1 letter", "3 letters".
fn letters(n: usize) -> String {
    format!("{n} letter{}", if n == 1 { "" } else { "s" })
}

// ANCHOR: consume
/// The consumer, done right: `recv` blocks until an item arrives, so an
/// empty queue only means "not yet". End means the stream is complete;
/// Disconnected means every sender is gone without saying End.
fn consume(queue: &IpcReceiver<Item>) -> Result<()> {
    let mut got = 0;
    loop {
        match queue.recv() {
            Ok(Item::Letter(letter)) => {
                println!("get {letter}");
                got += 1;
            }
            Ok(Item::End) => {
                println!("End after {}: finish", letters(got));
                return Ok(());
            }
            Err(IpcError::Disconnected) => bail!(
                "the queue closed after {} without End: \
                 the producer ended early",
                letters(got)
            ),
            Err(e) => return Err(e).context("cannot get"),
        }
    }
}
// ANCHOR_END: consume

// ANCHOR: consume_until_empty
/// The note's task2: `if not q.empty(): get, else: finish`. Empty now says
/// nothing about later, so this finishes whenever it looks too early.
fn consume_until_empty(queue: &IpcReceiver<Item>) -> Result<()> {
    let mut got = 0;
    loop {
        match queue.try_recv() {
            Ok(Item::Letter(letter)) => {
                println!("get {letter}");
                got += 1;
            }
            Ok(Item::End) | Err(TryRecvError::Empty) => {
                println!("empty: finish, after {}", letters(got));
                return Ok(());
            }
            Err(e) => return Err(e).context("cannot get"),
        }
    }
}
// ANCHOR_END: consume_until_empty

// ANCHOR: parent
fn parent(args: &Args) -> Result<()> {
    let me = env::current_exe().context("cannot find this program")?;
    // ipc-channel's one-shot server binds its socket in a new directory in
    // TMPDIR, which it removes when `accept` returns: never, if the child
    // dies first. In the run's own directory, it goes with the run.
    let dir = RunDir::create(&args.dir, "process-queue")?; // dropped last: after the children
    // SAFETY: no other thread runs yet, so none reads the environment while
    // it changes.
    unsafe { env::set_var("TMPDIR", dir.path()) };
    let deadline = Instant::now() + PATIENCE;
    // The queue: the producer gets the sending end, the consumer the
    // receiving end. Handing an end over moves it: the parent keeps none.
    let (queue, queue_end) = ipc::channel::<Item>()?;
    let mut flags = Vec::new();
    if args.stop_when_empty {
        flags.push("--stop-when-empty".to_string());
    }
    let mut consumer = start("consumer", &me, &flags, queue_end)?;
    let mut failed = Vec::new();
    if args.stop_when_empty {
        // The race, decided on purpose: the consumer looks at the queue and
        // ends before the producer even starts.
        failed.extend(consumer.finish(deadline)?);
    }
    let mut flags = vec!["--items".to_string(), args.items.to_string()];
    if let Some(n) = args.fail_after {
        flags.extend(["--fail-after".to_string(), n.to_string()]);
    }
    let mut producer = start("producer", &me, &flags, queue)?;
    failed.extend(producer.finish(deadline)?);
    if !args.stop_when_empty {
        failed.extend(consumer.finish(deadline)?);
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}
// ANCHOR_END: parent

/// A child process, its output collected on a pipe of its own. Dropping it
/// kills the process if it still runs, and waits for it: no path leaves a
/// child behind.
struct Kid {
    role: &'static str,
    child: Child,
    output: Option<JoinHandle<String>>,
}

/// Starts this program as `role` and hands it `end`, one end of the queue.
fn start<T: Serialize + DeserializeOwned + Send + 'static>(
    role: &'static str,
    me: &Path,
    flags: &[String],
    end: T,
) -> Result<Kid> {
    let (server, name) = IpcOneShotServer::<IpcSender<T>>::new()?;
    let (mut reader, writer) = io::pipe()?;
    let child = Command::new(me)
        .args([role, &name])
        .args(flags)
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .spawn()
        .with_context(|| format!("cannot start the {role}"))?;
    println!("{role} started: pid {}", child.id());
    let output = thread::spawn(move || {
        let mut text = String::new();
        let _ = reader.read_to_string(&mut text);
        text
    });
    let mut kid = Kid {
        role,
        child,
        output: Some(output),
    };
    // accept blocks until the child connects, so it waits on a thread of
    // its own while the parent watches the child: one that dies first
    // cannot hang the parent.
    let (accepted, hello) = mpsc::channel();
    thread::spawn(move || accepted.send(server.accept()));
    let deadline = Instant::now() + PATIENCE;
    let hand_over = loop {
        stopped()?;
        match hello.recv_timeout(Duration::from_millis(50)) {
            Ok(Ok((_, hand_over))) => break hand_over,
            Ok(Err(e)) => bail!("the {role} did not connect: {e}"),
            Err(_) if Instant::now() > deadline => {
                bail!("the {role} did not connect in {PATIENCE:?}")
            }
            Err(_) => {
                if let Some(status) = kid.child.try_wait()? {
                    bail!("the {role} ended first: {}", describe(status));
                }
            }
        }
    };
    IpcSender::send(&hand_over, end)
        .with_context(|| format!("cannot hand the queue to the {role}"))?;
    Ok(kid)
}

/// A child's side of `start`: connects to the parent and receives its end
/// of the queue.
fn receive_end<T: Serialize + DeserializeOwned>(server: String) -> Result<T> {
    let parent = IpcSender::<IpcSender<T>>::connect(server)?;
    let (hand_over, end) = ipc::channel()?;
    parent.send(hand_over)?;
    end.try_recv_timeout(PATIENCE)
        .context("no queue from the parent")
}

impl Kid {
    /// Waits for the child (killing it at `deadline`), then prints its
    /// output; returns what went wrong, if anything did.
    fn finish(&mut self, deadline: Instant) -> Result<Option<String>> {
        let status = loop {
            stopped()?;
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait()?;
            }
            thread::sleep(Duration::from_millis(5));
        };
        let pid = self.child.id();
        let how = describe(status);
        println!("{} (pid {pid}) ended, {how}:", self.role);
        let output = self.output.take().map(|reader| reader.join());
        for line in output.and_then(Result::ok).unwrap_or_default().lines() {
            println!("  | {line}");
        }
        Ok((!status.success())
            .then(|| format!("the {} failed: {how}", self.role)))
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// How a child ended, in words.
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

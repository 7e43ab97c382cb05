//! Beyond the notes: the tiny executor of the previous listing with a real
//! reactor on mio. Its futures try a non-blocking call and, when it would
//! block, leave their waker with the reactor; when no task is ready, the loop
//! asks the kernel (epoll) which sockets are, with a timeout up to the next
//! timer's deadline, and wakes the tasks that wait on them. Two TCP
//! connections and a timer interleave on one thread.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::{Future, poll_fn};
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use mio::{Events, Interest, Token};

/// The longest line a task reads, as the book's echo servers limit theirs.
const MAX_LINE: usize = 64 * 1024;

/// Two TCP clients and a timer on one thread, woken by a reactor on mio.
#[derive(Parser)]
struct Args {
    /// Echo peer of task a [default: a peer this program starts on 127.0.0.1:0]
    #[arg(long)]
    a: Option<SocketAddr>,
    /// Echo peer of task b [default: a peer this program starts on 127.0.0.1:0]
    #[arg(long)]
    b: Option<SocketAddr>,
    /// How long the timer task sleeps, in milliseconds
    #[arg(long, default_value_t = 300)]
    sleep_ms: u64,
    /// Give up when no event and no timer comes for this many seconds
    #[arg(long, default_value_t = 10)]
    idle_s: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mio-executor: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: run
fn run(args: &Args) -> anyhow::Result<()> {
    let sleep = Duration::from_millis(args.sleep_ms);
    let (a, b) = match (args.a, args.b) {
        (Some(a), Some(b)) => (a, b),
        (None, None) => echo_peers(sleep)?,
        _ => bail!("give both --a and --b, or neither"),
    };
    println!("a: peer {a}\nb: peer {b}");
    let reactor = Arc::new(Reactor::new()?);
    let mut executor = Executor::default();
    for (name, peer) in [("a", a), ("b", b)] {
        let reactor = Arc::clone(&reactor);
        executor.spawn(name, async move {
            let mut stream = TcpStream::connect(&reactor, peer).await?;
            stream
                .write_all(format!("ping from {name}\n").as_bytes())
                .await?;
            let reply = stream.read_line().await?;
            println!("    {name}: got {reply:?}");
            Ok(())
        });
    }
    let timer = Arc::clone(&reactor);
    executor.spawn("timer", async move {
        sleep_for(&timer, sleep).await;
        println!("    timer: fired");
        Ok(())
    });
    executor.run(&reactor, Duration::from_secs(args.idle_s))
}
// ANCHOR_END: run

/// A future to poll, and the queue it goes back on when its waker is called.
struct Task {
    id: usize,
    name: &'static str,
    // In a Mutex only because `Waker::from` needs `Task: Send + Sync`.
    future: Mutex<Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>>,
    queue: Arc<Queue>,
}

/// The ready queue. No Condvar this time: when it is empty, the loop waits
/// in the reactor, and every wake comes from the loop's own thread.
#[derive(Default)]
struct Queue {
    tasks: Mutex<VecDeque<Arc<Task>>>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<Task>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        let queue = Arc::clone(&self.queue);
        let mut tasks = queue.lock();
        let id = self.id;
        tasks.push_back(self);
        println!(" wake task {id}; queue: {}", ids(&tasks));
    }
}

thread_local! {
    /// The name of the task this thread is polling, for the futures' trace.
    static RUNNING: Cell<&'static str> = const { Cell::new("") };
}

fn ids(tasks: &VecDeque<Arc<Task>>) -> String {
    let ids: Vec<String> = tasks.iter().map(|t| t.id.to_string()).collect();
    format!("[{}]", ids.join(", "))
}

// ANCHOR: reactor
/// Who waits on one socket, for which direction.
#[derive(Default)]
struct Waiters {
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// A deadline in the timer heap; the sequence number keeps equal deadlines
/// in the order they were set.
struct Timer {
    deadline: Instant,
    seq: u64,
    waker: Waker,
}

/// The reactor: the kernel's readiness queue (mio::Poll, epoll on Linux),
/// the waker of each task that waits on a socket, and the timers.
struct Reactor {
    poll: Mutex<mio::Poll>,
    registry: mio::Registry,
    state: Mutex<ReactorState>,
}

#[derive(Default)]
struct ReactorState {
    sockets: HashMap<Token, Waiters>,
    next_token: usize,
    timers: BinaryHeap<Reverse<Timer>>,
    next_seq: u64,
}

impl Reactor {
    /// One turn, when no task is ready: wait for sockets up to the next
    /// deadline (or `idle`), then wake the tasks whose socket or timer is
    /// ready. Returns how many tasks it woke.
    fn turn(&self, idle: Duration) -> io::Result<usize> {
        let next = self.state().timers.peek().map(|t| t.0.deadline);
        let timeout = next
            .map_or(idle, |at| at.saturating_duration_since(Instant::now()));
        println!("queue empty; reactor: poll, timeout {timeout:?}");
        let mut events = Events::with_capacity(64);
        let mut poll = self.poll.lock().unwrap_or_else(|p| p.into_inner());
        poll.poll(&mut events, Some(timeout))?;
        let now = Instant::now();
        let mut state = self.state();
        let expired =
            state.timers.iter().filter(|t| t.0.deadline <= now).count();
        let ready = events.iter().count();
        println!(
            "reactor: {} ready, {}",
            count(ready, "socket"),
            count(expired, "timer")
        );
        let mut woken = Vec::new();
        for event in &events {
            let waiters = state.sockets.entry(event.token()).or_default();
            // Closed and failed sockets count as ready: the woken task's
            // own call then returns the end of stream or the error.
            if event.is_readable() || event.is_read_closed() || event.is_error()
            {
                woken.extend(
                    waiters
                        .reader
                        .take()
                        .map(|w| (event.token(), "readable", w)),
                );
            }
            if event.is_writable()
                || event.is_write_closed()
                || event.is_error()
            {
                woken.extend(
                    waiters
                        .writer
                        .take()
                        .map(|w| (event.token(), "writable", w)),
                );
            }
        }
        let mut fired = Vec::new();
        while state.timers.peek().is_some_and(|t| t.0.deadline <= now) {
            fired.extend(state.timers.pop().map(|t| t.0.waker));
        }
        // A waker may run any code (the task's Wake impl locks the queue): call
        // it with no lock of the reactor held.
        drop(state);
        let count = woken.len() + fired.len();
        for (token, ready, waker) in woken {
            print!("  token {} {ready}:", token.0);
            waker.wake();
        }
        for waker in fired {
            print!("  timer:");
            waker.wake();
        }
        Ok(count)
    }
}
// ANCHOR_END: reactor

impl Reactor {
    fn new() -> io::Result<Reactor> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let poll = Mutex::new(poll);
        let state = Mutex::default();
        Ok(Reactor {
            poll,
            registry,
            state,
        })
    }

    fn state(&self) -> MutexGuard<'_, ReactorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, stream: &mut mio::net::TcpStream) -> io::Result<Token> {
        let mut state = self.state();
        let token = Token(state.next_token);
        state.next_token += 1;
        state.sockets.insert(token, Waiters::default());
        // mio is edge-triggered: an event says "became ready", once. That
        // is enough here because a future only waits after its call has
        // returned WouldBlock, and no event is lost while nobody waits.
        let both = Interest::READABLE | Interest::WRITABLE;
        self.registry.register(stream, token, both)?;
        Ok(token)
    }

    /// Leaves the waker of the task that polls: woken when `token` is ready
    /// for `interest`.
    fn wait(&self, token: Token, interest: Interest, waker: &Waker) {
        let mut state = self.state();
        let waiters = state.sockets.entry(token).or_default();
        let slot = if interest.is_readable() {
            &mut waiters.reader
        } else {
            &mut waiters.writer
        };
        *slot = Some(waker.clone());
    }

    fn remove(&self, token: Token, stream: &mut mio::net::TcpStream) {
        self.state().sockets.remove(&token);
        let _ = self.registry.deregister(stream);
    }

    fn add_timer(&self, deadline: Instant, waker: &Waker) {
        let mut state = self.state();
        let seq = state.next_seq;
        state.next_seq += 1;
        let waker = waker.clone();
        state.timers.push(Reverse(Timer {
            deadline,
            seq,
            waker,
        }));
    }
}

impl PartialEq for Timer {
    fn eq(&self, other: &Timer) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Timer) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Timer) -> std::cmp::Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

// ANCHOR: sleep
/// Ready once `duration` has passed: until then, its waker sits in the
/// reactor's timer heap, and the loop's next poll times out at its deadline.
async fn sleep_for(reactor: &Reactor, duration: Duration) {
    let deadline = Instant::now() + duration;
    poll_fn(|cx| {
        if Instant::now() >= deadline {
            return Poll::Ready(());
        }
        // A poll before the deadline with no cause adds a second entry; it
        // only wakes the task once more, which a future must cope with.
        reactor.add_timer(deadline, cx.waker());
        println!(
            "    {}: sleep {duration:?}: deadline in the timer heap",
            RUNNING.get()
        );
        Poll::Pending
    })
    .await
}
// ANCHOR_END: sleep

/// A mio stream with the reactor that wakes the task waiting on it.
struct TcpStream {
    stream: mio::net::TcpStream,
    token: Token,
    reactor: Arc<Reactor>,
    buffer: Vec<u8>,
}

impl TcpStream {
    async fn connect(
        reactor: &Arc<Reactor>,
        peer: SocketAddr,
    ) -> anyhow::Result<TcpStream> {
        let context = || format!("connect to {peer}");
        // Starts the handshake and returns at once (EINPROGRESS): the
        // connection is made when the socket becomes writable.
        let mut stream =
            mio::net::TcpStream::connect(peer).with_context(context)?;
        let token = reactor.add(&mut stream).with_context(context)?;
        let reactor = Arc::clone(reactor);
        let stream = TcpStream {
            stream,
            token,
            reactor,
            buffer: Vec::new(),
        };
        let mut started = false;
        poll_fn(|cx| {
            if !started {
                started = true;
                return stream.pending(
                    cx,
                    Interest::WRITABLE,
                    "connect in progress",
                );
            }
            if let Some(e) = stream.stream.take_error()? {
                return Poll::Ready(Err(e));
            }
            match stream.stream.peer_addr() {
                Ok(_) => Poll::Ready(Ok(())),
                Err(e) if e.kind() == ErrorKind::NotConnected => stream
                    .pending(cx, Interest::WRITABLE, "connect in progress"),
                Err(e) => Poll::Ready(Err(e)),
            }
        })
        .await
        .with_context(context)?;
        let local = stream.stream.local_addr()?;
        println!("    {}: connected from {local}", RUNNING.get());
        Ok(stream)
    }

    /// The future's side of WouldBlock: leave the waker, return Pending.
    fn pending<T>(
        &self,
        cx: &Context,
        interest: Interest,
        why: &str,
    ) -> Poll<T> {
        self.reactor.wait(self.token, interest, cx.waker());
        let what = if interest.is_readable() {
            "readable"
        } else {
            "writable"
        };
        let name = RUNNING.get();
        println!(
            "    {name}: {why}: wait until token {} is {what}",
            self.token.0
        );
        Poll::Pending
    }

    async fn write_all(&mut self, mut bytes: &[u8]) -> anyhow::Result<()> {
        poll_fn(|cx| {
            while !bytes.is_empty() {
                match self.stream.write(bytes) {
                    Ok(0) => {
                        return Poll::Ready(Err(ErrorKind::WriteZero.into()));
                    }
                    Ok(n) => bytes = &bytes[n..],
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        return self.pending(
                            cx,
                            Interest::WRITABLE,
                            "write would block",
                        );
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            Poll::Ready(Ok(()))
        })
        .await
        .context("write")
    }

    // ANCHOR: read
    /// Reads up to a newline: each poll reads what the socket has, until
    /// the read would block; then the task waits for the reactor.
    async fn read_line(&mut self) -> anyhow::Result<String> {
        poll_fn(|cx| {
            loop {
                if let Some(end) = self.buffer.iter().position(|&b| b == b'\n')
                {
                    let line = String::from_utf8_lossy(&self.buffer[..end])
                        .into_owned();
                    self.buffer.drain(..=end);
                    return Poll::Ready(Ok(line));
                }
                let mut chunk = [0; 1024];
                match self.stream.read(&mut chunk) {
                    Ok(0) => {
                        let e = io::Error::new(
                            ErrorKind::UnexpectedEof,
                            "the peer closed",
                        );
                        return Poll::Ready(Err(e));
                    }
                    // A peer that never sends a newline must not grow the
                    // buffer for ever.
                    Ok(_) if self.buffer.len() >= MAX_LINE => {
                        let e = io::Error::new(
                            ErrorKind::InvalidData,
                            "a line over 64 KiB",
                        );
                        return Poll::Ready(Err(e));
                    }
                    Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        return self.pending(
                            cx,
                            Interest::READABLE,
                            "read would block",
                        );
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        })
        .await
        .context("read")
    }
    // ANCHOR_END: read
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        self.reactor.remove(self.token, &mut self.stream);
    }
}

// ANCHOR: executor
#[derive(Default)]
struct Executor {
    queue: Arc<Queue>,
    live: usize,
    spawned: usize,
}

impl Executor {
    fn spawn(
        &mut self,
        name: &'static str,
        future: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.spawned += 1;
        self.live += 1;
        let (id, queue) = (self.spawned, Arc::clone(&self.queue));
        let future = Mutex::new(Box::pin(future) as Pin<Box<_>>);
        let task = Arc::new(Task {
            id,
            name,
            future,
            queue,
        });
        let mut tasks = self.queue.lock();
        tasks.push_back(task);
        println!("spawn task {id} ({name}); queue: {}", ids(&tasks));
    }

    /// Runs every ready task; when none is, lets the reactor wait for the
    /// sockets and timers and wake their tasks; ends when all are done.
    fn run(mut self, reactor: &Reactor, idle: Duration) -> anyhow::Result<()> {
        let (mut polls, mut turns) = (0, 0);
        while self.live > 0 {
            let next = self.queue.lock().pop_front();
            let Some(task) = next else {
                turns += 1;
                if reactor.turn(idle)? == 0 && reactor.state().timers.is_empty()
                {
                    bail!(
                        "nothing happened for {idle:?}: the peers went silent"
                    );
                }
                continue;
            };
            println!("poll task {} ({})", task.id, task.name);
            polls += 1;
            let waker = Waker::from(Arc::clone(&task));
            let mut cx = Context::from_waker(&waker);
            RUNNING.set(task.name);
            let poll = task
                .future
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
                .poll(&mut cx);
            match poll {
                Poll::Ready(result) => {
                    result.with_context(|| {
                        format!("task {} ({})", task.id, task.name)
                    })?;
                    println!("  -> Ready: task {} is done", task.id);
                    self.live -= 1;
                }
                Poll::Pending => println!("  -> Pending"),
            }
        }
        let name = thread::current().name().unwrap_or("unnamed").to_string();
        println!(
            "no task left: the loop ends after {polls} task polls and {turns} reactor turns, all on thread {name}"
        );
        println!("threads in this process: {}", threads());
        Ok(())
    }
}
// ANCHOR_END: executor

/// The process's thread count from /proc (Linux), to show the loop needs one.
fn threads() -> String {
    let status =
        std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find_map(|l| l.strip_prefix("Threads:"));
    line.map_or("unknown (no /proc)".into(), |n| n.trim().to_string())
}

/// The default peers, played by a thread of this process with plain
/// blocking std sockets: each echoes one line, b's before a's, and only
/// after the timer has fired, so that both reads wait in the reactor.
fn echo_peers(sleep: Duration) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let a =
        std::net::TcpListener::bind("127.0.0.1:0").context("bind peer a")?;
    let b =
        std::net::TcpListener::bind("127.0.0.1:0").context("bind peer b")?;
    let addrs = (a.local_addr()?, b.local_addr()?);
    thread::Builder::new().name("peers".into()).spawn(move || {
        let serve = || -> io::Result<()> {
            let mut lines = Vec::new();
            for listener in [a, b] {
                let (stream, _) = listener.accept()?;
                stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                reader.read_line(&mut line)?;
                lines.push((reader.into_inner(), line));
            }
            thread::sleep(sleep * 2); // well after the timer
            for (mut stream, line) in lines.into_iter().rev() {
                stream.write_all(line.as_bytes())?;
                // The next answer only once this client has its line and closed.
                let _ = stream.read(&mut [0; 1]);
            }
            Ok(())
        };
        if let Err(e) = serve() {
            eprintln!("mio-executor: peers: {e}");
        }
    })?;
    Ok(addrs)
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

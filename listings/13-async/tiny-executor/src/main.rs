//! S11.1: the notes' event loop, literally: a queue, and a loop that takes
//! the next entry and runs it. The entries are tasks (futures), a waker puts
//! a task back on the queue, and a thread playing the OS wakes a task from
//! outside the loop. A task that no waker refers to is found and dropped.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io::{self, BufRead};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::{mem, thread};

use clap::Parser;

/// Run five tasks on an event loop made of std alone; type a line when the
/// loop says it blocks.
#[derive(Parser)]
struct Args {}

fn main() -> ExitCode {
    // No options: parsing gives `--help`, and refuses anything else.
    Args::parse();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tiny-executor: {e}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: run
fn run() -> io::Result<()> {
    let mut executor = Executor::default();
    let mailbox = Arc::new(Mailbox::default());
    let stdin = Arc::new(Slot::default());
    os_thread(Arc::clone(&stdin))?;
    let answer = Arc::new(Slot::default());
    let promise = Promise(Arc::clone(&answer));

    let outbox = Arc::clone(&mailbox);
    executor.spawn("producer", async move {
        for n in 1..=3 {
            outbox.send(n).await;
            println!("    producer: sent {n}");
        }
    });
    executor.spawn("consumer", async move {
        for _ in 1..=3 {
            let n = mailbox.receive().await;
            println!("    consumer: got {n}");
            yield_now().await;
        }
    });
    executor.spawn("reader", async move {
        println!("    reader: waiting for a line on stdin");
        match stdin.take().await {
            Some(line) => println!("    reader: got {line:?}"),
            None => println!("    reader: end of input"),
        }
    });
    executor.spawn(
        "forgetful",
        poll_fn(move |_cx| {
            let _owned = &promise; // the future owns it, and drops it
            println!("    forgetful: Pending, and nothing will wake me");
            Poll::<()>::Pending
        }),
    );
    executor.spawn("asker", async move {
        println!("    asker: waiting for the forgetful task's answer");
        match answer.take().await {
            Some(n) => println!("    asker: got {n}"),
            None => println!("    asker: no answer, the promise was broken"),
        }
    });
    executor.run();
    Ok(())
}

/// A promise of an answer that is broken when dropped, as a oneshot
/// channel's Sender is: the task waiting for the answer gets None.
struct Promise(Arc<Slot<Option<u32>>>);

impl Drop for Promise {
    fn drop(&mut self) {
        println!("    forgetful: dropped, and with it its promise");
        self.0.put(None);
    }
}
// ANCHOR_END: run

// ANCHOR: task
/// A future to poll, and the queue it goes back on when its waker is called.
struct Task {
    id: usize,
    name: &'static str,
    // In a Mutex only because `Waker::from` needs `Task: Send + Sync`, and a
    // future is Send but not Sync; only the loop's thread ever locks it.
    future: Mutex<Pin<Box<dyn Future<Output = ()> + Send>>>,
    queue: Arc<Queue>,
}

/// The ready queue: the tasks to poll, in order. The loop sleeps on the
/// Condvar while it is empty.
#[derive(Default)]
struct Queue {
    tasks: Mutex<VecDeque<Arc<Task>>>,
    pushed: Condvar,
}

impl Wake for Task {
    /// What `waker.wake()` does: put the task back on the queue.
    fn wake(self: Arc<Self>) {
        let by = match RUNNING.get() {
            Some(id) => format!("task {id}"),
            None => format!("the {} thread", thread_name()),
        };
        let queue = Arc::clone(&self.queue);
        let mut tasks = queue.lock();
        let id = self.id;
        tasks.push_back(self);
        println!("  {by} wakes task {id}; queue: {}", ids(&tasks));
        queue.pushed.notify_one();
    }
}

thread_local! {
    /// The task this thread is polling, if any: to say who woke whom.
    static RUNNING: Cell<Option<usize>> = const { Cell::new(None) };
}
// ANCHOR_END: task

impl Queue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<Task>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn thread_name() -> String {
    thread::current().name().unwrap_or("unnamed").to_string()
}

fn ids(tasks: &VecDeque<Arc<Task>>) -> String {
    let ids: Vec<String> = tasks.iter().map(|t| t.id.to_string()).collect();
    format!("[{}]", ids.join(", "))
}

// ANCHOR: executor
#[derive(Default)]
struct Executor {
    queue: Arc<Queue>,
    /// Every task not finished yet; wakers hold the other references.
    live: Vec<Arc<Task>>,
    spawned: usize,
}

impl Executor {
    fn spawn(
        &mut self,
        name: &'static str,
        future: impl Future<Output = ()> + Send + 'static,
    ) {
        self.spawned += 1;
        let id = self.spawned;
        let queue = Arc::clone(&self.queue);
        let future = Mutex::new(Box::pin(future) as Pin<Box<_>>);
        let task = Arc::new(Task {
            id,
            name,
            future,
            queue,
        });
        self.live.push(Arc::clone(&task));
        let mut tasks = self.queue.lock();
        tasks.push_back(task);
        println!("spawn task {id} ({name}); queue: {}", ids(&tasks));
    }

    /// The event loop: take the next task, poll it, repeat.
    fn run(mut self) {
        while let Some(task) = self.next() {
            if !self.live.iter().any(|live| Arc::ptr_eq(live, &task)) {
                continue; // a late wake for a task already done
            }
            println!("poll task {} ({})", task.id, task.name);
            let waker = Waker::from(Arc::clone(&task));
            let mut cx = Context::from_waker(&waker);
            RUNNING.set(Some(task.id));
            let mut future =
                task.future.lock().unwrap_or_else(|p| p.into_inner());
            let poll = future.as_mut().poll(&mut cx);
            RUNNING.set(None);
            if poll.is_ready() {
                println!("  -> Ready: task {} is done", task.id);
                self.live.retain(|live| !Arc::ptr_eq(live, &task));
            } else {
                println!("  -> Pending");
            }
        }
    }
}
// ANCHOR_END: executor

// ANCHOR: next
impl Executor {
    /// The next task to poll; while there is none, sleeps until a wake from
    /// outside the loop, or returns None when no wake can ever come.
    fn next(&mut self) -> Option<Arc<Task>> {
        let queue = Arc::clone(&self.queue);
        let mut tasks = queue.lock();
        loop {
            if let Some(task) = tasks.pop_front() {
                return Some(task);
            }
            // A count of 1 means `live` holds the only reference: no waker
            // for the task exists, and no wake can ever come. (A count above
            // 1 proves nothing: a waker may sit where nobody will call it.)
            let (dead, live): (Vec<_>, Vec<_>) = mem::take(&mut self.live)
                .into_iter()
                .partition(|task| Arc::strong_count(task) == 1);
            self.live = live;
            if !dead.is_empty() {
                // Dropping a task drops its future, which may wake another
                // task, and waking locks the queue: unlock it first.
                drop(tasks);
                for task in dead {
                    println!(
                        "queue empty; no waker for task {} exists: it can \
                         never run again; dropped",
                        task.id
                    );
                    drop(task);
                }
                // Look again: a task may have been woken, or lost its last
                // waker, with the tasks just dropped.
                tasks = queue.lock();
                continue;
            }
            if self.live.is_empty() {
                println!("queue empty, no task left: the loop ends");
                return None;
            }
            let waiting: Vec<String> =
                self.live.iter().map(|t| t.id.to_string()).collect();
            println!(
                "queue empty; task {} waits for a wake from outside; blocking",
                waiting.join(", ")
            );
            tasks = queue.pushed.wait(tasks).unwrap_or_else(|p| p.into_inner());
        }
    }
}
// ANCHOR_END: next

// ANCHOR: mailbox
/// A one-slot mailbox between two tasks: `send` waits while the slot is
/// full, `receive` while it is empty, and each wakes the other.
#[derive(Default)]
struct Mailbox {
    state: Mutex<MailboxState>,
}

#[derive(Default)]
struct MailboxState {
    item: Option<u32>,
    sender: Option<Waker>,
    receiver: Option<Waker>,
}

impl Mailbox {
    async fn send(&self, item: u32) {
        let mut item = Some(item);
        poll_fn(|cx| {
            let mut state =
                self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.item.is_some() {
                println!("    producer: the slot is full");
                state.sender = Some(cx.waker().clone());
                return Poll::Pending;
            }
            state.item = item.take();
            if let Some(receiver) = state.receiver.take() {
                receiver.wake();
            }
            Poll::Ready(())
        })
        .await
    }

    async fn receive(&self) -> u32 {
        poll_fn(|cx| {
            let mut state =
                self.state.lock().unwrap_or_else(|p| p.into_inner());
            let Some(item) = state.item.take() else {
                println!("    consumer: the slot is empty");
                state.receiver = Some(cx.waker().clone());
                return Poll::Pending;
            };
            if let Some(sender) = state.sender.take() {
                sender.wake();
            }
            Poll::Ready(item)
        })
        .await
    }
}

/// Pending once, after waking itself: the task goes to the back of the
/// queue, and the others run first (asyncio.sleep(0) in Python).
fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}
// ANCHOR_END: mailbox

// ANCHOR: os
/// A value that one side puts and the other takes, with the waker of the
/// task that waits to take it.
#[derive(Default)]
struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

#[derive(Default)]
struct SlotState<T> {
    value: Option<T>,
    waiting: Option<Waker>,
}

impl<T> Slot<T> {
    async fn take(&self) -> T {
        poll_fn(|cx| {
            let mut state =
                self.state.lock().unwrap_or_else(|p| p.into_inner());
            match state.value.take() {
                Some(value) => Poll::Ready(value),
                None => {
                    state.waiting = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    fn put(&self, value: T) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.value = Some(value);
        if let Some(waker) = state.waiting.take() {
            waker.wake();
        }
    }
}

/// The OS's part, played by a thread: it blocks in a read of stdin until the
/// line is read, then turns "the read is done" into a wake. A completion, as
/// IOCP and io_uring report one, but at the cost of a blocked thread per read,
/// which they do not need; a reactor would instead wait for many sockets to
/// become ready (epoll) and let each task do its own read.
fn os_thread(slot: Arc<Slot<Option<String>>>) -> io::Result<()> {
    thread::Builder::new().name("stdin".into()).spawn(move || {
        let mut line = String::new();
        let read = io::stdin().lock().read_line(&mut line);
        slot.put(match read {
            Ok(len) if len > 0 => Some(line.trim_end().to_string()),
            _ => None, // the end of input, or an error reading it
        });
    })?;
    Ok(())
}
// ANCHOR_END: os

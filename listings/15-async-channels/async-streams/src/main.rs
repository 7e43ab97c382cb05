//! Beyond the notes: `Stream`, the async iterator, as chapter 10's iterators
//! go on in async code: `stream::iter` and `unfold`, `next`, `map` and `take`,
//! `buffer_unordered` running async work a few at a time, a stream made from a
//! channel's receiver, and `poll_next` beside `Iterator::next`.

use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use anyhow::Result;
use clap::Parser;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::yield_now;

/// Streams: iterators whose next item may have to be waited for.
#[derive(Parser)]
struct Args {
    /// How many lookups buffer_unordered runs at once (0 would start none, and
    /// wait for ever).
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u16).range(1..))]
    at_once: u16,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("async-streams: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// One thread, as asyncio has: tasks take turns only at an `.await`, so the
// lines come out in the same order on every run.
#[tokio::main(flavor = "current_thread")]
async fn run(args: Args) -> Result<()> {
    squares().await;
    lookups(args.at_once.into()).await;
    from_channel().await;
    countdown().await;
    Ok(())
}

// ANCHOR: squares
/// Chapter 10's `my_range` as a stream: unfold keeps the state between items,
/// and each step is an async block, free to await before it yields.
fn my_range(n: u64) -> impl Stream<Item = u64> {
    stream::unfold(0, move |i| async move {
        if i == n {
            return None; // the end, as the iterator's None
        }
        yield_now().await; // any await: a socket, a timer
        println!("  unfold: step {i}");
        Some((i * i, i + 1))
    })
}

async fn squares() {
    let tens = my_range(10).map(|x| x * 10).take(3);
    println!("squares: made a stream; nothing has run yet");
    let mut tens = std::pin::pin!(tens); // `next` needs it pinned (chapter 14)
    while let Some(x) = tens.next().await {
        println!("squares: got {x}");
    }
}
// ANCHOR_END: squares

// ANCHOR: lookups
/// How many lookups are running now, and the most at once.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST: AtomicUsize = AtomicUsize::new(0);

/// A lookup that needs `id % 3 + 1` turns of the loop: a stand-in for network
/// waits that keeps the order of the run the same every time.
async fn look_up(id: u64) -> u64 {
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    MOST.fetch_max(now, Ordering::SeqCst);
    for _ in 0..=id % 3 {
        yield_now().await;
    }
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    id * 100
}

async fn lookups(at_once: usize) {
    let done: Vec<u64> = stream::iter(1..=6)
        .map(look_up) // a stream of futures, none started
        .buffer_unordered(at_once) // at most `at_once` running; first done, first out
        .collect()
        .await;
    println!("lookups: results in the order they finished: {done:?}");
    let most = MOST.load(Ordering::SeqCst);
    println!("lookups: at most {most} running at once (limit {at_once})");
}
// ANCHOR_END: lookups

// ANCHOR: channel
/// A receiver as a stream: unfold's state is the receiver itself.
async fn from_channel() {
    let (tx, rx) = mpsc::channel::<&str>(4);
    tokio::spawn(async move {
        for word in ["alpha", "beta", "gamma"] {
            // Only fails if the stream was dropped: nobody to tell.
            let _ = tx.send(word).await;
        }
    });
    let words = stream::unfold(rx, |mut rx| async move {
        let word = rx.recv().await?; // None once every sender is gone
        Some((word, rx))
    });
    let lengths: Vec<usize> = words.map(str::len).collect().await;
    println!("channel: word lengths {lengths:?}, then the stream ended");
}
// ANCHOR_END: channel

// ANCHOR: poll_next
/// A stream by hand: `poll_next` is `Iterator::next` with a third answer,
/// Pending, for "not yet; I will wake you".
struct Countdown(u32);

impl Stream for Countdown {
    type Item = u32;

    fn poll_next(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<u32>> {
        if self.0 == 0 {
            return Poll::Ready(None);
        }
        self.0 -= 1;
        Poll::Ready(Some(self.0 + 1)) // never Pending: it never waits
    }
}

async fn countdown() {
    let left: Vec<u32> = Countdown(3).collect().await;
    println!("countdown: {left:?}");
}
// ANCHOR_END: poll_next

//! S10.3 and S11.1: an `async fn` is a coroutine that the compiler turns into
//! a state machine, a Future. Here one is polled by hand, with a waker that
//! does nothing, to show each Pending and the final Ready.

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use clap::Parser;

// ANCHOR: not_yet
/// A future that is not ready the first time it is polled, like a read from
/// a socket where no data has arrived yet: the simplest place for an
/// `async fn` to pause.
struct NotYet {
    polled: bool,
}

impl Future for NotYet {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.polled {
            return Poll::Ready(());
        }
        self.polled = true;
        // A real source would keep the waker and call it when ready.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn not_yet() -> NotYet {
    NotYet { polled: false }
}
// ANCHOR_END: not_yet

// ANCHOR: foo
/// The notes' foo, as an async fn: each `.await` is a place it can pause.
async fn foo(a: i64) -> i64 {
    println!("  初始值a： {a}");
    not_yet().await;
    let b = 2;
    println!("  b = {b}");
    not_yet().await;
    println!("  returning a + b");
    a + b
}
// ANCHOR_END: foo

/// An async fn polled by hand, one Pending at a time.
#[derive(Parser)]
struct Args {}

fn main() {
    Args::parse();
    poll_by_hand();
}

// ANCHOR: poll
fn poll_by_hand() {
    let mut future = pin!(foo(1));
    println!("called foo(1): nothing has run yet");
    let mut cx = Context::from_waker(Waker::noop());
    for n in 1.. {
        println!("poll {n}:");
        match future.as_mut().poll(&mut cx) {
            Poll::Pending => println!("  -> Pending"),
            Poll::Ready(value) => {
                println!("  -> Ready({value})");
                break;
            }
        }
    }
}
// ANCHOR_END: poll

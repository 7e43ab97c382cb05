//! S10.2: the running average that the notes only name: a coroutine that
//! keeps a total and a count between values sent to it, and yields the
//! average so far after each.

use corosensei::{Coroutine, CoroutineResult, Yielder};

use clap::Parser;

// ANCHOR: averager
/// Sent a number, yields the average of all numbers sent so far (None
/// before the first). It never returns: it lives as long as its owner.
fn averager() -> Coroutine<f64, Option<f64>, ()> {
    Coroutine::new(|yielder: &Yielder<f64, Option<f64>>, _: f64| {
        let _state = Announce("the averager's stack is unwound: state dropped");
        let (mut total, mut count) = (0.0, 0.0);
        let mut average = None;
        loop {
            let term = yielder.suspend(average);
            total += term;
            count += 1.0;
            average = Some(total / count);
        }
    })
}

/// Prints its message when dropped: shows when the paused body's locals go.
struct Announce(&'static str);

impl Drop for Announce {
    fn drop(&mut self) {
        println!("{}", self.0);
    }
}
// ANCHOR_END: averager

/// A running average kept by a coroutine.
#[derive(Parser)]
struct Args {}

fn main() {
    Args::parse();
    run();
}

// ANCHOR: run
fn run() {
    let mut averager = averager();
    // Priming runs the body to its first yield, which hands out None; the
    // value passed to start it is the closure's `_` argument, unused.
    show("primed", averager.resume(0.0));
    for term in [10.0, 30.0, 5.0] {
        show(&format!("sent {term}"), averager.resume(term));
    }
    println!("dropping the averager");
}

fn show(what: &str, step: CoroutineResult<Option<f64>, ()>) {
    match step {
        CoroutineResult::Yield(Some(average)) => {
            println!("{what}: {average:.1}")
        }
        CoroutineResult::Yield(None) => println!("{what}: None"),
        CoroutineResult::Return(()) => println!("{what}: finished"),
    }
}
// ANCHOR_END: run

//! S10.2: the running average that the notes only name: a coroutine that
//! keeps a total and a count between values sent to it, and yields the
//! average so far after each.

use corosensei::{Coroutine, CoroutineResult, Yielder};

// ANCHOR: averager
/// Sent a number, yields the average of all numbers sent so far (None
/// before the first). It never returns: it lives as long as its owner.
fn averager() -> Coroutine<f64, Option<f64>, ()> {
    Coroutine::new(|yielder: &Yielder<f64, Option<f64>>, _: f64| {
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
// ANCHOR_END: averager

// ANCHOR: main
fn main() {
    let mut average = averager();
    // Priming runs the body to its first yield, which hands out None.
    show("primed", average.resume(0.0));
    for term in [10.0, 30.0, 5.0] {
        show(&format!("sent {term}"), average.resume(term));
    }
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
// ANCHOR_END: main

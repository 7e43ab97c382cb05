//! S9.1-S9.2: an iterator is a value with a `next` method. It computes
//! nothing until asked; past the end it returns `None` where Python raises
//! StopIteration; and `fuse` makes "past the end" last.

use std::sync::mpsc;

use clap::Parser;

/// The Iterator trait: next, laziness, and what happens past the end.
#[derive(Parser)]
struct Args {}

fn main() {
    Args::parse();
    one_at_a_time();
    lazy();
    past_the_end();
}

// ANCHOR: next
/// The notes' `l = iter(range(5))` and `next(l)`, in Rust.
fn one_at_a_time() {
    let mut l = 0..5;
    println!("next: {:?}", l.next());
    println!("next: {:?}", l.next());
    let rest: Vec<i32> = l.by_ref().collect();
    println!("the rest: {rest:?}");
    // Python raises StopIteration here; Rust returns None, a value like any
    // other, and a `for` loop stops at it.
    println!("past the end: {:?}", l.next());
}
// ANCHOR_END: next

// ANCHOR: lazy
/// Adapters build a recipe; only `next` (here, called by `collect`) runs it.
fn lazy() {
    let squares = (0..10).map(|i| {
        println!("  computing {i}*{i}");
        i * i
    });
    println!("built the iterator: nothing computed yet");
    let first: Vec<i32> = squares.take(3).collect();
    println!("took 3: {first:?}");
}
// ANCHOR_END: lazy

// ANCHOR: fuse
/// An iterator may return Some again after a None: this one reads whatever
/// a channel holds right now. `fuse` turns the first None into the end.
fn past_the_end() {
    let (tx, rx) = mpsc::channel();
    let mut waiting = std::iter::from_fn(|| rx.try_recv().ok());
    let mut fused = std::iter::from_fn(|| rx.try_recv().ok()).fuse();

    tx.send("first").expect("the receiver is alive");
    println!("unfused: {:?}", waiting.next());
    println!("unfused: {:?} (the channel is empty)", waiting.next());
    tx.send("second").expect("the receiver is alive");
    println!("unfused: {:?} (it came back)", waiting.next());

    println!("fused:   {:?} (the channel is empty)", fused.next());
    tx.send("third").expect("the receiver is alive");
    println!("fused:   {:?} (ended for good)", fused.next());
}
// ANCHOR_END: fuse

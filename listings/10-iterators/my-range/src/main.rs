//! S9.3-S9.4: the notes' generator `my_range(n)`, which yields i*i and prints
//! i when it is resumed. Five `next` calls print 0 0 1 1 4 2 9 3 16, from a
//! hand-written state machine and from `iter::from_fn` alike.

use clap::Parser;

/// The notes' generator my_range, as a state machine and with iter::from_fn.
#[derive(Parser)]
struct Args {}

fn main() {
    Args::parse();
    println!("my_range(10), a state machine:");
    five_nexts(MyRange::Start { n: 10 });
    println!("my_range(10), iter::from_fn:");
    five_nexts(my_range(10));
    println!("my_range(2) past its end, a state machine:");
    five_nexts(MyRange::Start { n: 2 });
    println!("my_range(2) past its end, iter::from_fn:");
    five_nexts(my_range(2));
}

/// The notes' `print(next(rg))`, five times.
fn five_nexts(mut rg: impl Iterator<Item = u64>) {
    for _ in 0..5 {
        match rg.next() {
            Some(value) => println!("{value}"),
            None => println!("(the end: Python raises StopIteration)"),
        }
    }
}

// ANCHOR: state_machine
/// Where the generator's body is: before it starts, paused at its one
/// `yield`, or after it returns.
enum MyRange {
    /// Created; the body has not started.
    Start { n: u64 },
    /// Paused at `yield i*i`, in the loop's `i`-th turn.
    Paused { i: u64, n: u64 },
    /// Returned: from now on, every `next` is the end.
    Done,
}

impl Iterator for MyRange {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let (i, n) = match *self {
            MyRange::Start { n } => (0, n),
            // Resumed after the yield: the rest of that turn, `print(i)`,
            // runs now, then the loop goes on.
            MyRange::Paused { i, n } => {
                println!("{i}");
                (i + 1, n)
            }
            MyRange::Done => return None,
        };
        if i < n {
            *self = MyRange::Paused { i, n };
            Some(i * i)
        } else {
            *self = MyRange::Done;
            None
        }
    }
}
// ANCHOR_END: state_machine

// ANCHOR: from_fn
/// The same states, kept in the closure's captured variables.
fn my_range(n: u64) -> impl Iterator<Item = u64> {
    let mut paused_at: Option<u64> = None; // None: not started yet
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let i = match paused_at {
            None => 0,
            Some(i) => {
                println!("{i}");
                i + 1
            }
        };
        if i < n {
            paused_at = Some(i);
            Some(i * i)
        } else {
            done = true;
            None
        }
    })
}
// ANCHOR_END: from_fn

//! S10.1: the notes' coroutine `foo(1)`: primed with `next`, then sent 2 and
//! 99. First as a real coroutine (corosensei, which runs it on a stack of
//! its own), then as the state machine a compiler would make of it.

use corosensei::{Coroutine, CoroutineResult, Yielder};

use clap::Parser;

/// The notes' coroutine foo, primed and sent values.
#[derive(Parser)]
struct Args {}

fn main() {
    Args::parse();
    println!("a coroutine (corosensei):");
    with_a_coroutine();
    println!("a state machine:");
    with_a_state_machine();
}

// ANCHOR: coroutine
fn with_a_coroutine() {
    let a = 1;
    // Yielder<In, Out>: `suspend` hands out an Out and returns the next In.
    let mut rg = Coroutine::new(move |yielder: &Yielder<i64, i64>, _: i64| {
        println!("初始值a： {a}");
        let b = yielder.suspend(a);
        println!("传递值b： {b}");
        let c = yielder.suspend(a + b);
        println!("传递值c： {c}");
    });
    // Python primes with next(rg), which is send(None): it runs the body up
    // to the first yield. A resume always passes a value; this first one
    // arrives as the closure's second argument, which foo ignores.
    for sent in [0, 2, 99] {
        match rg.resume(sent) {
            CoroutineResult::Yield(value) => println!("{value}"),
            CoroutineResult::Return(()) => {
                println!("(returned: Python raises StopIteration here)");
            }
        }
    }
}
// ANCHOR_END: coroutine

// ANCHOR: state_machine
/// Where foo's body is: before it starts, paused at one of its two yields,
/// or after it returns.
enum Foo {
    Start { a: i64 },
    AtFirstYield { a: i64 },
    AtSecondYield,
    Done,
}

enum Step {
    Yield(i64),
    Return,
}

impl Foo {
    fn resume(&mut self, sent: i64) -> Step {
        match *self {
            Foo::Start { a } => {
                println!("初始值a： {a}");
                *self = Foo::AtFirstYield { a };
                Step::Yield(a)
            }
            Foo::AtFirstYield { a } => {
                let b = sent;
                println!("传递值b： {b}");
                *self = Foo::AtSecondYield;
                Step::Yield(a + b)
            }
            Foo::AtSecondYield => {
                let c = sent;
                println!("传递值c： {c}");
                *self = Foo::Done;
                Step::Return
            }
            Foo::Done => Step::Return,
        }
    }
}

fn with_a_state_machine() {
    let mut rg = Foo::Start { a: 1 };
    for sent in [0, 2, 99] {
        match rg.resume(sent) {
            Step::Yield(value) => println!("{value}"),
            Step::Return => {
                println!("(returned: Python raises StopIteration here)")
            }
        }
    }
}
// ANCHOR_END: state_machine

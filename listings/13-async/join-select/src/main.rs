//! S11.1: waiting for several things at once inside one task. join! polls
//! its futures in turn until all are done, so the wait is the longest one,
//! not the sum (asyncio.gather); select! returns with the first, and drops
//! the others, which cancels them.

use std::future::Future;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use tokio::time::sleep;

/// Three lookups one after another, then with join!; or a race with
/// select!.
#[derive(Parser)]
struct Args {
    /// What to show.
    demo: Demo,
    /// The time unit of the lookups, in milliseconds: they take 2, 3 and 4
    /// units.
    #[arg(long, default_value_t = 100)]
    #[arg(value_parser = clap::value_parser!(u64).range(10..=2_000))]
    unit_ms: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Demo {
    /// Three lookups one after another, then with join!.
    Join,
    /// A race between two lookups, with select!.
    Race,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let unit = Duration::from_millis(args.unit_ms);
    match args.demo {
        Demo::Join => join(unit).await,
        Demo::Race => race(unit).await,
    }
}

/// A lookup that takes `delay`, as a query to another service would.
async fn fetch(what: &'static str, delay: Duration) -> &'static str {
    sleep(delay).await;
    what
}

/// A lookup, and when it began and ended its wait.
struct Timed {
    what: &'static str,
    began: Instant,
    ended: Instant,
}

async fn timed(what: &'static str, delay: Duration) -> Timed {
    let began = Instant::now();
    let what = fetch(what, delay).await;
    Timed {
        what,
        began,
        ended: Instant::now(),
    }
}

// ANCHOR: join
async fn join(unit: Duration) {
    // Settings, not measurements: printed as whole milliseconds.
    let (longest, sum) = (4 * unit, 9 * unit);
    let ms = |d: Duration| d.as_millis();
    let times = |took: Duration, of: Duration| took.div_duration_f64(of);

    let start = Instant::now();
    let profile = timed("profile", 2 * unit).await;
    let orders = timed("orders", 3 * unit).await;
    let offers = timed("offers", 4 * unit).await;
    let took = start.elapsed();
    let [a, b, c] = [&profile, &orders, &offers].map(|t| t.what);
    println!("one after another: {a}, {b}, {c}");
    println!(
        "  took {took:?}: {:.2}x the sum ({} ms)",
        times(took, sum),
        ms(sum)
    );
    let in_turn = orders.began >= profile.ended && offers.began >= orders.ended;
    println!("  each began after the one before had ended: {in_turn}");

    let start = Instant::now();
    let (profile, orders, offers) = tokio::join!(
        timed("profile", 2 * unit),
        timed("orders", 3 * unit),
        timed("offers", 4 * unit),
    );
    let took = start.elapsed();
    let all = [&profile, &orders, &offers];
    let [a, b, c] = all.map(|t| t.what);
    println!("join!: {a}, {b}, {c}");
    let of_longest = times(took, longest);
    println!(
        "  took {took:?}: {of_longest:.2}x the longest ({} ms)",
        ms(longest)
    );
    // A sleep never ends early, and join! polls all three before any can
    // end: both hold however busy the machine is.
    println!("  at least the longest: {}", took >= longest);
    let last_began = all.iter().map(|t| t.began).max();
    let first_ended = all.iter().map(|t| t.ended).min();
    println!("  all three waiting at once: {}", last_began < first_ended);
}
// ANCHOR_END: join

// ANCHOR: race
/// Prints a line if dropped before its future finished: shows when select!
/// cancels a losing future.
struct Cancelled {
    what: &'static str,
    finished: bool,
}

impl Drop for Cancelled {
    fn drop(&mut self) {
        if !self.finished {
            println!("  cancelled: {}", self.what);
        }
    }
}

/// `future`, watched by a `Cancelled` guard that it owns.
fn guarded<F: Future>(
    what: &'static str,
    future: F,
) -> impl Future<Output = F::Output> {
    let guard = Cancelled {
        what,
        finished: false,
    };
    async move {
        // The whole guard moves into the future (not just the field set
        // below), so that dropping the future drops it.
        let mut guard = guard;
        let output = future.await;
        guard.finished = true;
        output
    }
}

async fn race(unit: Duration) {
    let start = Instant::now();
    // The primary hangs; the replica answers after one unit.
    let hour = Duration::from_secs(3600);
    let primary = guarded("the query to the primary", fetch("primary", hour));
    let replica = guarded("the query to the replica", fetch("replica", unit));
    tokio::select! {
        from = primary => println!("select!: the {from} answered first"),
        from = replica => println!("select!: the {from} answered first"),
    }
    println!("  after {:?}", start.elapsed());
}
// ANCHOR_END: race

//! Beyond the notes: a deadlock by lock order. Two transfers between the
//! same two accounts, one each way, each locking the account it takes money
//! from first: each holds one lock and waits for the other's, for ever.
//! std's Mutex has no timed lock, so main waits for the transfers with a
//! deadline and reports who holds what. Locking by account id fixes it;
//! so does try_lock on the second account, backing off when it is taken.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Barrier, Mutex, MutexGuard, TryLockError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use clap::{Parser, ValueEnum};

/// Two transfers between two accounts, one each way, on two threads.
#[derive(Parser)]
struct Args {
    /// Which account each transfer locks first.
    #[arg(long, value_enum, default_value_t = Order::FromFirst)]
    order: Order,
    /// How long to wait for the transfers before calling it a deadlock.
    #[arg(long, default_value_t = 5000)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=600_000))]
    deadline_ms: u64,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Order {
    /// The account the money leaves first: the order a transfer reads in.
    FromFirst,
    /// The lower account id first, whichever way the money goes.
    ById,
    /// From first, but never wait holding a lock: try the second, and if
    /// it is taken, release the first, pause, and start again.
    BackOff,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lock-order: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Two accounts, and a board where each transfer says what it holds and
/// what it waits for, so that main can tell when they are stuck.
struct Bank {
    accounts: Vec<Mutex<u64>>,
    board: Mutex<Vec<String>>,
    backed_off: AtomicU32,
    all_hold_one: Barrier,
}

struct Transfer {
    from: usize,
    to: usize,
    amount: u64,
}

// ANCHOR: order
impl Order {
    /// The two accounts of a transfer, in the order this rule locks them.
    fn locks(self, t: &Transfer) -> (usize, usize) {
        match self {
            Order::FromFirst | Order::BackOff => (t.from, t.to),
            Order::ById => (t.from.min(t.to), t.from.max(t.to)),
        }
    }
}
// ANCHOR_END: order

// ANCHOR: transfer
fn transfer(
    bank: &Bank,
    n: usize,
    t: &Transfer,
    order: Order,
    firsts: &[usize],
) -> Result<()> {
    let (first, second) = order.locks(t);
    bank.post(n, format!("waits for account {first}"));
    let mut a = lock(&bank.accounts[first])?;
    bank.post(
        n,
        format!("holds account {first} and waits for account {second}"),
    );
    bad_luck(bank, firsts);
    let mut b = lock(&bank.accounts[second])?;
    move_money(t, first, &mut a, &mut b);
    bank.post(
        n,
        format!("done: locked account {first}, then account {second}"),
    );
    Ok(())
}
// ANCHOR_END: transfer

// ANCHOR: back-off
fn transfer_backing_off(bank: &Bank, n: usize, t: &Transfer) -> Result<()> {
    let (first, second) = (t.from, t.to);
    for attempt in 0_u32.. {
        let mut a = lock(&bank.accounts[first])?;
        bank.post(
            n,
            format!("holds account {first} and tries account {second}"),
        );
        if attempt == 0 {
            // Bad luck, made certain: nobody here waits in lock() while
            // holding a lock, so a Barrier can hold both at their first.
            bank.all_hold_one.wait();
        }
        match bank.accounts[second].try_lock() {
            Ok(mut b) => {
                move_money(t, first, &mut a, &mut b);
                bank.post(
                    n,
                    format!(
                        "done: locked account {first}, then account {second}"
                    ),
                );
                return Ok(());
            }
            Err(TryLockError::WouldBlock) => {
                drop(a);
                bank.backed_off.fetch_add(1, Ordering::Relaxed);
                // Pauses that differ between transfers, so that two which
                // collided once do not collide again in step (a livelock).
                let pause = (n as u32 + 1) * (attempt + 1).min(20);
                thread::sleep(Duration::from_millis(u64::from(pause)));
            }
            Err(TryLockError::Poisoned(_)) => bail!("a transfer panicked"),
        }
    }
    unreachable!("an unbounded range")
}
// ANCHOR_END: back-off

/// Moves the money between two locked accounts; `a` is the one locked first.
fn move_money(t: &Transfer, first: usize, a: &mut u64, b: &mut u64) {
    let (from, to) = if first == t.from { (a, b) } else { (b, a) };
    *from -= t.amount;
    *to += t.amount;
}

// ANCHOR: bad-luck
/// Bad luck, made certain: returns once the account that every transfer
/// locks first is locked. Without it, one transfer could finish before the
/// other starts, and the program would deadlock only some of the time.
fn bad_luck(bank: &Bank, firsts: &[usize]) {
    for &id in firsts {
        // Ok means nobody held it: the guard is dropped at once; look again.
        while bank.accounts[id].try_lock().is_ok() {
            thread::yield_now();
        }
    }
}
// ANCHOR_END: bad-luck

impl Bank {
    fn post(&self, n: usize, status: String) {
        // The board's lock is only ever taken last, and held for one line.
        if let Ok(mut board) = self.board.lock() {
            board[n] = status;
        }
    }
}

fn lock(account: &Mutex<u64>) -> Result<MutexGuard<'_, u64>> {
    account.lock().map_err(|_| anyhow!("a transfer panicked"))
}

// ANCHOR: run
fn run(args: Args) -> Result<()> {
    let transfers = [
        Transfer {
            from: 1,
            to: 2,
            amount: 30,
        },
        Transfer {
            from: 2,
            to: 1,
            amount: 50,
        },
    ];
    // Account 0 is unused, so that an account's id is its index.
    let bank = Arc::new(Bank {
        accounts: [0, 100, 100].map(Mutex::new).into(),
        board: Mutex::new(vec![String::new(); transfers.len()]),
        backed_off: AtomicU32::new(0),
        all_hold_one: Barrier::new(transfers.len()),
    });
    let firsts: Arc<[usize]> =
        transfers.iter().map(|t| args.order.locks(t).0).collect();
    for (n, t) in transfers.iter().enumerate() {
        println!(
            "transfer {}: account {} -> account {}, {}",
            n + 1,
            t.from,
            t.to,
            t.amount
        );
    }
    let (done_tx, done_rx) = mpsc::channel();
    for (n, t) in transfers.into_iter().enumerate() {
        let (bank, firsts, done_tx) =
            (bank.clone(), firsts.clone(), done_tx.clone());
        // Not a scoped thread: a scope joins its threads at its end, and a
        // deadlocked thread never ends. These end with the process.
        thread::spawn(move || {
            let _ = done_tx.send(match args.order {
                Order::BackOff => transfer_backing_off(&bank, n, &t),
                order => transfer(&bank, n, &t, order, &firsts),
            });
        });
    }
    let deadline = Instant::now() + Duration::from_millis(args.deadline_ms);
    for _ in 0..firsts.len() {
        match done_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(result) => result?,
            Err(RecvTimeoutError::Timeout) => {
                bail!("{}", stuck(&bank, args.deadline_ms))
            }
            Err(RecvTimeoutError::Disconnected) => {
                bail!("a transfer thread died")
            }
        }
    }
    // ANCHOR_END: run
    for (n, status) in bank
        .board
        .lock()
        .map_err(|_| anyhow!("poisoned"))?
        .iter()
        .enumerate()
    {
        println!("transfer {}: {status}", n + 1);
    }
    if args.order == Order::BackOff {
        let times = bank.backed_off.load(Ordering::Relaxed);
        println!("back-offs in all: {times}");
    }
    let balance = |id: usize| lock(&bank.accounts[id]).map(|b| *b);
    println!(
        "balances: account 1 = {}, account 2 = {}",
        balance(1)?,
        balance(2)?
    );
    Ok(())
}

/// The one line that says who is stuck on what.
fn stuck(bank: &Bank, deadline_ms: u64) -> String {
    let board = match bank.board.lock() {
        Ok(board) => board,
        Err(_) => return "a transfer panicked".into(),
    };
    let who: Vec<String> = board
        .iter()
        .enumerate()
        .filter(|(_, status)| !status.starts_with("done"))
        .map(|(n, status)| format!("transfer {} {status}", n + 1))
        .collect();
    format!(
        "deadlock: not done after {deadline_ms} ms: {}",
        who.join("; ")
    )
}

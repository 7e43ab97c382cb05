//! Beyond the notes: a deadlock by lock order. Two transfers between the
//! same two accounts, one each way, each locking the account it takes money
//! from first: each holds one lock and waits for the other's, for ever.
//! std's Mutex has no timed lock, so main waits for the transfers with a
//! deadline and reports who holds what. Locking by account id fixes it.

use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
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

#[derive(Clone, Copy, ValueEnum)]
enum Order {
    /// The account the money leaves first: the order a transfer reads in.
    FromFirst,
    /// The lower account id first, whichever way the money goes.
    ById,
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
            Order::FromFirst => (t.from, t.to),
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
    // a is the account locked first: which of the two it is depends on the order.
    let (from, to) = if first == t.from {
        (&mut *a, &mut *b)
    } else {
        (&mut *b, &mut *a)
    };
    *from -= t.amount;
    *to += t.amount;
    bank.post(
        n,
        format!("done: locked account {first}, then account {second}"),
    );
    Ok(())
}
// ANCHOR_END: transfer

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
            let _ = done_tx.send(transfer(&bank, n, &t, args.order, &firsts));
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

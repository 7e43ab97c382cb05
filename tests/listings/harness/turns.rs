//! Who runs when. Every listing run takes a turn in this test suite, and a heavy run takes
//! one on the machine as well:
//!
//! - **machine-wide**, heavy runs (thousands of threads or connections) take turns with every
//!   other heavy run, also those of another `cargo test` (another checkout, another user) at
//!   the same time: two of them at once could exhaust what the machine has;
//! - **in this suite**, while `BOOK_MEASURE=1` records figures, a measuring run has the
//!   suite to itself: it waits for every other listing to end, and none starts until it has
//!   ended.
//!
//! A test may hold several runs at once (a server and its client), so a turn that this
//! test's thread already holds lets it start more runs without waiting: a waiting measuring
//! run must not block the second run of a test whose first run it is waiting for. (A test
//! that started runs from threads of its own would not be known as one test here: none
//! does.)

use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// However busy the machine, a turn comes within this time, or the test fails and says why.
const PATIENCE: Duration = Duration::from_secs(600);

/// A run's place in the turns; dropping it ends them. (The suite's turn is declared first,
/// so it ends first.)
pub struct Turn {
    _suite: SuiteTurn,
    _machine: Option<MachineTurn>,
}

impl Turn {
    /// Waits for the turns a run needs: `heavy` runs take the machine's turn, and `alone`
    /// runs (measuring runs while figures are recorded) the whole suite.
    pub fn take(name: &str, heavy: bool, alone: bool) -> Turn {
        let deadline = Instant::now() + PATIENCE;
        let suite = if alone {
            SuiteTurn::alone(name, deadline)
        } else {
            SuiteTurn::shared(name, deadline)
        };
        let machine = heavy.then(|| MachineTurn::take(name, deadline));
        Turn {
            _suite: suite,
            _machine: machine,
        }
    }
}

struct Suite {
    /// Runs going on beside each other, by the test thread that started them (a few
    /// threads at most: a list will do).
    shared: Vec<(ThreadId, usize)>,
    alone: bool,
    /// Runs that wait to be alone: no new test starts a run before them.
    waiting_alone: usize,
}

static SUITE: Mutex<Suite> = Mutex::new(Suite {
    shared: Vec::new(),
    alone: false,
    waiting_alone: 0,
});
static CHANGED: Condvar = Condvar::new();

fn suite() -> MutexGuard<'static, Suite> {
    SUITE.lock().unwrap_or_else(|p| p.into_inner())
}

enum SuiteTurn {
    Shared(ThreadId),
    Alone,
}

impl SuiteTurn {
    fn shared(name: &str, deadline: Instant) -> SuiteTurn {
        let me = thread::current().id();
        let mut state = suite();
        loop {
            let held = state.shared.iter_mut().find(|(thread, _)| *thread == me);
            if let Some((_, runs)) = held {
                *runs += 1;
                return SuiteTurn::Shared(me);
            }
            if !(state.alone || state.waiting_alone > 0) {
                state.shared.push((me, 1));
                return SuiteTurn::Shared(me);
            }
            state = wait(state, name, deadline);
        }
    }

    fn alone(name: &str, deadline: Instant) -> SuiteTurn {
        let me = thread::current().id();
        let mut state = suite();
        assert!(
            state.shared.iter().all(|(thread, _)| *thread != me),
            "{name}: a run that has the suite to itself cannot start while its test holds another"
        );
        state.waiting_alone += 1;
        drop(state);
        // Counted as waiting until it has its turn, or gives up: a run that times out must
        // not keep every later one waiting behind it.
        let waiting = Waiting;
        let mut state = suite();
        while state.alone || !state.shared.is_empty() {
            state = wait(state, name, deadline);
        }
        state.alone = true;
        drop(state);
        drop(waiting);
        SuiteTurn::Alone
    }
}

/// A run counted in `waiting_alone` while it exists.
struct Waiting;

impl Drop for Waiting {
    fn drop(&mut self) {
        suite().waiting_alone -= 1;
        CHANGED.notify_all();
    }
}

fn wait(
    state: MutexGuard<'static, Suite>,
    name: &str,
    deadline: Instant,
) -> MutexGuard<'static, Suite> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        drop(state);
        panic!("{name}: no turn to run after {PATIENCE:?}");
    }
    CHANGED
        .wait_timeout(state, left)
        .unwrap_or_else(|p| p.into_inner())
        .0
}

impl Drop for SuiteTurn {
    fn drop(&mut self) {
        let mut state = suite();
        match self {
            SuiteTurn::Shared(me) => {
                if let Some((_, runs)) = state.shared.iter_mut().find(|(t, _)| t == me) {
                    *runs -= 1;
                }
                state.shared.retain(|&(_, runs)| runs > 0);
            }
            SuiteTurn::Alone => state.alone = false,
        }
        drop(state);
        CHANGED.notify_all();
    }
}
/// The machine's turn for heavy runs. On Linux it is a name in the abstract socket namespace:
/// one process at a time can bind it, the kernel lets it go when that process ends however
/// it ends, and it leaves no file behind, for this user or the next.
struct MachineTurn {
    #[cfg(target_os = "linux")]
    _name: std::os::unix::net::UnixListener,
    #[cfg(not(target_os = "linux"))]
    _file: std::fs::File,
}

impl MachineTurn {
    fn take(name: &str, deadline: Instant) -> MachineTurn {
        loop {
            match Self::try_take() {
                Ok(Some(turn)) => return turn,
                Ok(None) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    panic!("{name}: no turn for a heavy run on this machine in {PATIENCE:?}")
                }
                Err(e) => panic!("{name}: cannot take a turn for a heavy run: {e}"),
            }
        }
    }

    #[cfg(target_os = "linux")]
    fn try_take() -> std::io::Result<Option<MachineTurn>> {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixListener};
        let addr = SocketAddr::from_abstract_name(b"book-listings-heavy-turn")?;
        match UnixListener::bind_addr(&addr) {
            Ok(listener) => Ok(Some(MachineTurn { _name: listener })),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Elsewhere, a lock on a file in this checkout's target directory: suites of one
    /// checkout take turns.
    #[cfg(not(target_os = "linux"))]
    fn try_take() -> std::io::Result<Option<MachineTurn>> {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("heavy-runs.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(MachineTurn { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

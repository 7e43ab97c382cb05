//! Beyond the notes: a one-shot mailbox. One thread writes a result, then
//! sets a ready flag with a Release store; another loads the flag with
//! Acquire and, once it is set, reads the result. Its tests run it under
//! loom, which tries every interleaving of a small model and every value
//! each load may return under the memory model: it passes Release and
//! Acquire, and catches Relaxed on either side.

// ANCHOR: sync
// Under `cargo test`, loom's atomics stand in for std's: same API, but
// loom's record every store, so that a load may return any value the
// memory model allows, not only the one this machine's hardware would.
// (As in blocking-queue, `cfg(test)` rather than loom's own `cfg(loom)`, so
// that a plain `cargo test` runs the models.)
mod sync {
    #[cfg(test)]
    pub use loom::sync::atomic::{AtomicBool, AtomicU64};
    #[cfg(not(test))]
    pub use std::sync::atomic::{AtomicBool, AtomicU64};
}
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use sync::{AtomicBool, AtomicU64};
// ANCHOR_END: sync

// ANCHOR: mailbox
/// A result that one thread publishes once and another reads.
pub struct Mailbox {
    result: AtomicU64,
    ready: AtomicBool,
}

impl Mailbox {
    pub fn new() -> Self {
        Self {
            result: AtomicU64::new(0),
            ready: AtomicBool::new(false),
        }
    }

    /// The writer's side: the result first, then the flag.
    pub fn publish(&self, result: u64) {
        // Relaxed is enough here: the Release store below orders it.
        self.result.store(result, Relaxed);
        // Release: every write this thread made before this store is
        // visible to a thread whose Acquire load reads this `true`.
        self.ready.store(true, Release);
    }

    /// The reader's side: the result if the flag is set, `None` if not yet.
    pub fn try_read(&self) -> Option<u64> {
        // Acquire pairs with publish's Release: having read `true`, this
        // thread sees everything the writer did before setting it.
        if self.ready.load(Acquire) {
            Some(self.result.load(Relaxed))
        } else {
            None
        }
    }
}
// ANCHOR_END: mailbox

impl Default for Mailbox {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    // ANCHOR: model
    /// A way to publish, and a way to read: Mailbox's, or a broken copy.
    type Publish = fn(&Mailbox, u64);
    type TryRead = fn(&Mailbox) -> Option<u64>;

    /// A writer thread publishes 42 while the main thread reads once. loom
    /// runs this for every interleaving of the two threads, and for every
    /// value each load may return: the flag may not be set yet (`None`,
    /// fine); if it is, the result must be 42, never the initial 0.
    fn publish_while_reading(publish: Publish, try_read: TryRead) {
        let mailbox = Arc::new(Mailbox::new());
        let writer = {
            let mailbox = Arc::clone(&mailbox);
            thread::spawn(move || publish(&mailbox, 42))
        };
        if let Some(result) = try_read(&mailbox) {
            assert_eq!(result, 42, "read the result before it was written");
        }
        writer.join().unwrap();
    }

    #[test]
    fn release_and_acquire_always_see_the_result() {
        loom::model(|| {
            publish_while_reading(Mailbox::publish, Mailbox::try_read)
        });
    }
    // ANCHOR_END: model

    /// The counter's case, for contrast: two threads add 1 with Relaxed,
    /// and the read after both joins sees 2 in every execution. The joins
    /// order the read; nothing else is read on the strength of the count.
    #[test]
    fn relaxed_is_enough_for_a_counter() {
        loom::model(|| {
            let count = Arc::new(AtomicU64::new(0));
            let adders: Vec<_> = (0..2)
                .map(|_| {
                    let count = Arc::clone(&count);
                    thread::spawn(move || count.fetch_add(1, Relaxed))
                })
                .collect();
            for adder in adders {
                adder.join().unwrap();
            }
            assert_eq!(count.load(Relaxed), 2);
        });
    }

    // ANCHOR: broken
    /// publish with a Relaxed flag: nothing orders the result before it.
    fn publish_relaxed(mailbox: &Mailbox, result: u64) {
        mailbox.result.store(result, Relaxed);
        mailbox.ready.store(true, Relaxed);
    }

    /// try_read with a Relaxed flag: nothing orders the result after it.
    fn try_read_relaxed(mailbox: &Mailbox) -> Option<u64> {
        if mailbox.ready.load(Relaxed) {
            Some(mailbox.result.load(Relaxed))
        } else {
            None
        }
    }

    /// Each test passes only if loom finds a run where the flag is set
    /// and the result is still 0.
    #[test]
    #[should_panic(expected = "read the result before it was written")]
    fn a_relaxed_store_is_caught() {
        loom::model(|| {
            publish_while_reading(publish_relaxed, Mailbox::try_read)
        });
    }

    #[test]
    #[should_panic(expected = "read the result before it was written")]
    fn a_relaxed_load_is_caught() {
        loom::model(|| {
            publish_while_reading(Mailbox::publish, try_read_relaxed)
        });
    }
    // ANCHOR_END: broken
}

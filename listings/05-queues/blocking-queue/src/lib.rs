//! S4.1-S4.3: the notes' three thread queues (FIFO, LIFO, priority) as one
//! blocking queue: a Mutex and a Condvar around a storage that decides the
//! order. Its tests run it under loom, which tries every distinct
//! interleaving of a small model.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

// ANCHOR: sync
// Under `cargo test`, loom's Mutex and Condvar stand in for std's: same API,
// but every lock, wait and notify is a point where loom's scheduler may
// switch threads. loom's own convention is `cfg(loom)`, set with
// RUSTFLAGS="--cfg loom"; `cfg(test)` lets a plain `cargo test` run the
// models too. The price: every unit test in this crate gets loom's types,
// so each must run inside `loom::model`.
mod sync {
    #[cfg(test)]
    pub use loom::sync::{Condvar, Mutex, MutexGuard};
    #[cfg(not(test))]
    pub use std::sync::{Condvar, Mutex, MutexGuard};
}
use sync::{Condvar, Mutex, MutexGuard};
// ANCHOR_END: sync

// ANCHOR: storage
/// Where the items wait, and so which one comes out next.
pub trait Storage: Default {
    type Item;
    fn push(&mut self, item: Self::Item);
    fn pop(&mut self) -> Option<Self::Item>;
}

/// First in, first out: Python's `queue.Queue`.
impl<T> Storage for VecDeque<T> {
    type Item = T;
    fn push(&mut self, item: T) {
        self.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.pop_front()
    }
}

/// Last in, first out: Python's `queue.LifoQueue`, a stack.
impl<T> Storage for Vec<T> {
    type Item = T;
    fn push(&mut self, item: T) {
        Vec::push(self, item);
    }
    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
}

/// Smallest first: Python's `queue.PriorityQueue`. `BinaryHeap` pops its
/// largest item, so each item goes in wrapped in `Reverse`, which turns
/// the order around, and comes out unwrapped.
impl<T: Ord> Storage for BinaryHeap<Reverse<T>> {
    type Item = T;
    fn push(&mut self, item: T) {
        BinaryHeap::push(self, Reverse(item));
    }
    fn pop(&mut self) -> Option<T> {
        BinaryHeap::pop(self).map(|Reverse(item)| item)
    }
}

pub type FifoQueue<T> = BlockingQueue<VecDeque<T>>;
pub type LifoQueue<T> = BlockingQueue<Vec<T>>;
pub type PriorityQueue<T> = BlockingQueue<BinaryHeap<Reverse<T>>>;
// ANCHOR_END: storage

// ANCHOR: queue
/// A queue that threads share by reference (`&self` everywhere): `get`
/// blocks until there is an item.
pub struct BlockingQueue<S> {
    items: Mutex<S>,
    /// Notified on every `put`: an item is there for one waiting `get`
    /// (CPython's `Queue` calls its condition the same).
    not_empty: Condvar,
}

impl<S: Storage> BlockingQueue<S> {
    pub fn new() -> Self {
        Self {
            items: Mutex::new(S::default()),
            not_empty: Condvar::new(),
        }
    }

    pub fn put(&self, item: S::Item) {
        // The guard is a temporary, dropped at the `;`: the lock is free
        // before the notify, so the woken thread does not wake into a lock
        // still held. The price: a consumer can take the item before the
        // notify, which then wakes a `get` for nothing. `get`'s loop handles
        // that; the `if` that loom catches (below, in the tests) does not.
        self.lock().push(item);
        // One item is work for one consumer: wake one, not all.
        self.not_empty.notify_one();
    }

    /// Waits for an item and takes it.
    pub fn get(&self) -> S::Item {
        let mut items = self.lock();
        // A loop, not an `if`: a wait can end with no item there. Another
        // consumer may take the item between the notify and this thread
        // getting the lock back; the notify may come late, for an item this
        // same consumer took without waiting (`put` notifies after it
        // unlocks); and a wait may end with no notify at all.
        loop {
            if let Some(item) = items.pop() {
                return item;
            }
            items = self.not_empty.wait(items).expect(POISONED);
        }
    }

    /// Waits at most `timeout` for an item: `None` is Python's `queue.Empty`.
    pub fn get_timeout(&self, timeout: Duration) -> Option<S::Item> {
        // A deadline too far for an `Instant` (`Duration::MAX`) never comes:
        // wait as `get` does, rather than panic on the overflow.
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return Some(self.get());
        };
        let mut items = self.lock();
        loop {
            if let Some(item) = items.pop() {
                return Some(item);
            }
            // Each wake-up may come early: wait only for what is left.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            items = self.not_empty.wait_timeout(items, left).expect(POISONED).0;
        }
    }

    fn lock(&self) -> MutexGuard<'_, S> {
        self.items.lock().expect(POISONED)
    }
}

impl<S: Storage> Default for BlockingQueue<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// Only `push` and `pop` run under the lock; a panic there (an `Ord` that
/// panics, say) leaves the storage in no state worth going on with.
const POISONED: &str = "a thread panicked while holding the queue's lock";
// ANCHOR_END: queue

#[cfg(test)]
mod tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    // ANCHOR: model
    /// A way to take one item: `BlockingQueue::get`, or a broken copy.
    type Get<S> = fn(&BlockingQueue<S>) -> <S as Storage>::Item;

    /// One producer puts two items while the main thread takes two with
    /// `get`. loom runs this once for every distinct way the two threads
    /// can interleave at the lock, the wait and the notify; a `get` that
    /// never wakes up is a deadlock, which loom reports as a failure.
    fn put_two_get_two<S>(items: [S::Item; 2], get: Get<S>) -> [S::Item; 2]
    where
        S: Storage + Send + 'static,
        S::Item: Send + 'static,
    {
        let queue = Arc::new(BlockingQueue::<S>::new());
        let producer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                for item in items {
                    queue.put(item);
                }
            })
        };
        let got = [get(&queue), get(&queue)];
        producer.join().unwrap();
        got
    }

    #[test]
    fn fifo_gets_both_items_in_order() {
        loom::model(|| {
            let got =
                put_two_get_two::<VecDeque<_>>([1, 2], BlockingQueue::get);
            assert_eq!(got, [1, 2]);
        });
    }
    // ANCHOR_END: model

    #[test]
    fn lifo_and_priority_get_both_items() {
        // The order depends on how many items are in when a get runs,
        // which depends on the interleaving: check that nothing is lost.
        loom::model(|| {
            let mut got = put_two_get_two::<Vec<_>>([1, 2], BlockingQueue::get);
            got.sort();
            assert_eq!(got, [1, 2]);
        });
        loom::model(|| {
            let mut got = put_two_get_two::<BinaryHeap<Reverse<_>>>(
                [2, 1],
                BlockingQueue::get,
            );
            got.sort();
            assert_eq!(got, [1, 2]);
        });
    }

    #[test]
    fn two_consumers_get_one_item_each() {
        loom::model(|| {
            let queue = Arc::new(FifoQueue::new());
            let consumer = {
                let queue = Arc::clone(&queue);
                thread::spawn(move || queue.get())
            };
            let producer = {
                let queue = Arc::clone(&queue);
                thread::spawn(move || {
                    queue.put(1);
                    queue.put(2);
                })
            };
            let mut got = [queue.get(), consumer.join().unwrap()];
            producer.join().unwrap();
            got.sort();
            assert_eq!(got, [1, 2]);
        });
    }

    #[test]
    fn get_timeout_takes_an_item_that_arrives() {
        // loom's wait_timeout never times out: this checks only that a put
        // wakes get_timeout. The deadline is on the real clock, so it must
        // be one no execution can reach (a loaded machine can take 1 s):
        // a century goes through the deadline loop; `Duration::MAX`
        // overflows an `Instant`, so get_timeout waits as `get` does.
        const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
        for timeout in [CENTURY, Duration::MAX] {
            loom::model(move || {
                let queue = Arc::new(FifoQueue::new());
                let producer = {
                    let queue = Arc::clone(&queue);
                    thread::spawn(move || queue.put("job"))
                };
                assert_eq!(queue.get_timeout(timeout), Some("job"));
                producer.join().unwrap();
            });
        }
    }

    // ANCHOR: broken
    /// The classic bug: an `if` where `get` has its loop. It waits once,
    /// then assumes that the item it was woken for is still there.
    fn get_with_if<S: Storage>(queue: &BlockingQueue<S>) -> S::Item {
        let mut items = queue.lock();
        if let Some(item) = items.pop() {
            return item;
        }
        items = queue.not_empty.wait(items).expect(POISONED);
        items.pop().expect("woken, so an item is there")
    }

    /// The same model as the FIFO test, with the broken `get`: the test
    /// passes only if loom finds an interleaving that makes it panic.
    #[test]
    #[should_panic(expected = "woken, so an item is there")]
    fn an_if_instead_of_the_loop_is_caught() {
        loom::model(|| {
            put_two_get_two::<VecDeque<u32>>([1, 2], get_with_if);
        });
    }
    // ANCHOR_END: broken
}

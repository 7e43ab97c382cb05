//! S9.1: ten million numbers held in a Vec, and the same numbers produced one
//! at a time by an iterator. A global allocator that wraps the system's
//! counts the heap bytes each needs, exactly.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

use clap::Parser;

// ANCHOR: allocator
/// The system allocator, with a count of the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to the system allocator with the caller's own
// arguments, so it keeps the system allocator's guarantees. `realloc` and
// `alloc_zeroed` keep their default forms, which go through `alloc` and
// `dealloc` below, so every pointer `dealloc` sees came from `System.alloc`
// with the same layout. The counting only does atomic operations: it never
// panics and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract for `layout`.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, with this `layout`.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `work`; returns its result and the most heap bytes it held at once.
fn peak_heap<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let before = IN_USE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let result = work();
    (result, PEAK.load(Relaxed) - before)
}
// ANCHOR_END: allocator

/// Heap bytes of 10,000,000 numbers in a Vec and in an iterator, counted.
#[derive(Parser)]
struct Args {}

fn main() {
    Args::parse();
    compare();
}

// ANCHOR: compare
const N: u64 = 10_000_000;

fn compare() {
    // `list(range(10**7))`: every number in memory at once.
    let (sum, bytes) = peak_heap(|| {
        let list: Vec<u64> = black_box((0..N).collect());
        list.iter().sum::<u64>()
    });
    let n = grouped(N as usize);
    println!("Vec of {n} u64:  sum {sum}, heap {} bytes", grouped(bytes));

    // `iter(range(10**7))`: one number at a time.
    let (sum, bytes) = peak_heap(|| black_box(0..N).sum::<u64>());
    println!(
        "iterator over them: sum {sum}, heap {} bytes",
        grouped(bytes)
    );
}
// ANCHOR_END: compare

/// 80000000 as 80,000,000.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

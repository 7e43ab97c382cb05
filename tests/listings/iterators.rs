//! Chapter 10, iterators and generators (S9.1-S9.4).

use crate::harness::{assert_snapshot, listing};

#[test]
fn lazy_next_shows_next_laziness_and_fuse() {
    let transcript = listing("lazy-next").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert_snapshot!(transcript, "run");
}

#[test]
fn list_vs_iterator_counts_the_heap() {
    let transcript = listing("list-vs-iterator").spawn().finish();
    let text = &transcript.text;
    // 10,000,000 u64 are 80,000,000 bytes; the iterator needs no heap at all.
    assert!(text.contains("heap 80,000,000 bytes"), "{text}");
    assert!(
        text.contains("iterator over them: sum 49999995000000, heap 0 bytes"),
        "{text}"
    );
    assert_snapshot!(transcript, "run");
}

/// The notes' generator, with five `next` calls, prints these lines (CPython 3.11 does).
const PYTHON_PRINTS: [&str; 9] = ["0", "0", "1", "1", "4", "2", "9", "3", "16"];

#[test]
fn my_range_prints_what_the_python_generator_prints() {
    let transcript = listing("my-range").spawn().finish();
    let lines: Vec<&str> = transcript.text.lines().collect();
    for heading in [
        "my_range(10), a state machine:",
        "my_range(10), iter::from_fn:",
    ] {
        let start = lines.iter().position(|l| *l == heading).expect(heading) + 1;
        assert_eq!(lines[start..start + 9], PYTHON_PRINTS, "after {heading:?}");
    }
    assert_snapshot!(transcript, "run");
}

//! Chapter 12 (beyond the notes), readiness: non-blocking sockets, and an echo server on mio.

use std::time::Duration;

use crate::harness::{assert_refused, assert_snapshot, listing};

/// A duration as `{:?}` prints it (`11.585ms`, `83µs`): what the snapshot shows as
/// [DURATION].
fn duration(shown: &str) -> Duration {
    let unit_at = shown
        .find(|c: char| c.is_alphabetic())
        .unwrap_or_else(|| panic!("no unit in {shown:?}"));
    let (number, unit) = shown.split_at(unit_at);
    let number: f64 = number.parse().unwrap_or_else(|_| panic!("{shown:?}"));
    let scale = match unit {
        "s" => 1.0,
        "ms" => 1e-3,
        "µs" => 1e-6,
        "ns" => 1e-9,
        _ => panic!("unknown unit in {shown:?}"),
    };
    Duration::from_secs_f64(number * scale)
}

/// The word after `before` on the line that starts with `prefix`.
fn word_after<'a>(text: &'a str, prefix: &str, before: &str) -> &'a str {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.split_once(before))
        .and_then(|(_, rest)| rest.split([' ', ',', ';']).next())
        .unwrap_or_else(|| panic!("no {before:?} on a line {prefix:?}:\n{text}"))
}

#[test]
fn nonblocking_calls_return_at_once_and_a_retry_loop_spins() {
    let mut transcript = listing("nonblocking").spawn().finish();
    let text = transcript.text.clone();
    assert!(transcript.status.success(), "{text}");
    // Nothing to accept, nothing to read: both calls say so at once instead of waiting.
    for prefix in ["accept, no client yet: ", "read, nothing sent: "] {
        let line = text.lines().find(|l| l.starts_with(prefix)).expect(prefix);
        assert!(line.contains("(os error 11)"), "{text}");
        assert!(duration(word_after(&text, prefix, " after ")) < Duration::from_secs(1));
    }
    // The spinning read asked the kernel again and again while the peer slept; the blocking
    // read asked once. How much CPU the spin got is the scheduler's to say on a loaded
    // machine, but it is always far more than the blocking read's, which slept.
    let retries: u64 = word_after(&text, "spinning read: ", " after ")
        .parse()
        .unwrap();
    assert!(retries > 1000, "{text}");
    let spin_cpu = duration(word_after(&text, "spinning read: ", "CPU time "));
    let blocking_cpu = duration(word_after(&text, "blocking read: ", "CPU time "));
    assert!(spin_cpu > 5 * blocking_cpu, "{text}");
    assert!(duration(word_after(&text, "blocking read: ", " in ")) >= Duration::from_millis(150));
    // Some of the write fits in the kernel's buffers, not all 32 MiB of it; then WouldBlock.
    let accepted: f64 = word_after(&text, "write of ", ": ").parse().unwrap();
    assert!(accepted > 0.0 && accepted < 32.0, "{text}");
    assert!(text.contains("write of the rest: Resource temporarily unavailable"));
    transcript.redact_matches(r"after \d+ retries", "after [N] retries");
    assert_snapshot!(transcript, "run");
}

#[test]
fn nonblocking_refuses_a_zero_delay() {
    assert_refused!("nonblocking", &["--delay", "0"], "zero-delay");
}

//! Chapter 6 in depth (beyond the notes): a deadlock by lock order and its fix.

use std::time::{Duration, Instant};

use crate::harness::{assert_refused, assert_snapshot, listing};

#[test]
fn lock_order_from_first_deadlocks_and_says_who_holds_what() {
    let started = Instant::now();
    // The harness kills the run after its 60 seconds: a deadlock the listing
    // failed to detect fails the test instead of hanging it.
    let transcript = listing("lock-order").spawn().finish();
    let text = &transcript.text;
    assert_eq!(transcript.status.code(), Some(1), "{text}");
    // Each transfer holds the lock the other waits for; the deadlock is
    // certain, so this is the line on every run.
    assert!(
        text.contains(
            "lock-order: deadlock: not done after 5000 ms: \
             transfer 1 holds account 1 and waits for account 2; \
             transfer 2 holds account 2 and waits for account 1\n"
        ),
        "{text}"
    );
    assert!(!text.contains("balances"), "{text}");
    // The deadline is a wait for the workers, never shorter than asked.
    assert!(started.elapsed() >= Duration::from_millis(5000), "{text}");
    assert_snapshot!(transcript, "from-first");
}

#[test]
fn lock_order_by_id_completes_both_transfers() {
    let transcript = listing("lock-order")
        .args(["--order", "by-id"])
        .spawn()
        .finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    // Both transfers lock account 1 first, whichever way the money goes.
    for n in [1, 2] {
        assert!(
            text.contains(&format!(
                "transfer {n}: done: locked account 1, then account 2\n"
            )),
            "{text}"
        );
    }
    // 100 - 30 + 50 and 100 + 30 - 50: no money made or lost.
    assert!(
        text.contains("balances: account 1 = 120, account 2 = 80\n"),
        "{text}"
    );
    assert_snapshot!(transcript, "by-id");
}

#[test]
fn lock_order_back_off_completes_after_backing_off() {
    let mut transcript = listing("lock-order")
        .args(["--order", "back-off"])
        .spawn()
        .finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    // Each transfer locks the account the money leaves first, as in the
    // deadlocked run, and still completes.
    for (n, first, second) in [(1, 1, 2), (2, 2, 1)] {
        assert!(
            text.contains(&format!(
                "transfer {n}: done: locked account {first}, then account {second}\n"
            )),
            "{text}"
        );
    }
    assert!(
        text.contains("balances: account 1 = 120, account 2 = 80\n"),
        "{text}"
    );
    // Both transfers hold their first lock when they try their second, so
    // the first try_lock of the two always fails: one back-off at least.
    // How many more depends on the scheduler.
    let back_offs: u32 = text
        .lines()
        .find_map(|l| l.strip_prefix("back-offs in all: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of back-offs:\n{text}"));
    assert!(back_offs >= 1, "{text}");
    transcript.redact_matches(r"back-offs in all: \d+", "back-offs in all: [1 OR MORE]");
    assert_snapshot!(transcript, "back-off");
}

#[test]
fn lock_order_rejects_an_unknown_order() {
    assert_refused!("lock-order", &["--order", "by-amount"], "bad-order");
}

#[test]
fn lock_order_rejects_a_zero_deadline() {
    assert_refused!("lock-order", &["--deadline-ms", "0"], "bad-deadline");
}

#[test]
fn readers_writer_lets_every_reader_in_at_once_and_the_writer_after() {
    let transcript = listing("readers-writer").spawn().finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    // Reaching this line at all means every reader held the lock at once:
    // main passed a barrier that each reader reaches only while reading.
    assert!(
        text.contains("3 readers hold the read lock at once\n"),
        "{text}"
    );
    assert!(
        text.contains("while they read, try_write() is Err(WouldBlock)\n"),
        "{text}"
    );
    assert!(
        text.contains("while they read, try_read() is Ok(guard)\n"),
        "{text}"
    );
    // Every reader saw the list before the write, none a half-written one.
    assert_eq!(
        text.matches(": version 1, coffee 250 cents\n").count(),
        3,
        "{text}"
    );
    assert!(
        text.ends_with("after write(): version 2, coffee 275 cents\n"),
        "{text}"
    );
    assert_snapshot!(transcript, "run");
}

#[test]
fn readers_writer_rejects_a_single_reader() {
    assert_refused!("readers-writer", &["--readers", "1"], "one-reader");
}

/// What `park-consumer` prints, whatever the timing: every item, in order,
/// then the end; never the notes' early "finish".
const PARKED_CONSUMER: &str = "get A\nget B\nget C\n\
    finish: the producer is done and the queue is empty\n";

#[test]
fn park_consumer_gets_every_item_then_finishes() {
    let transcript = listing("park-consumer").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert_eq!(transcript.text, PARKED_CONSUMER);
    assert_snapshot!(transcript, "run");
}

#[test]
fn park_consumer_without_a_pause_still_waits_for_done() {
    // With no pause, the consumer may find the queue empty, find it full, or
    // race the producer's every step: the output is the same.
    let transcript = listing("park-consumer")
        .args(["--pause-ms", "0"])
        .spawn()
        .finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert_eq!(transcript.text, PARKED_CONSUMER);
}

#[test]
fn park_consumer_rejects_a_long_pause() {
    assert_refused!("park-consumer", &["--pause-ms", "60000"], "long-pause");
}

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
fn lock_order_rejects_an_unknown_order() {
    assert_refused!("lock-order", &["--order", "by-amount"], "bad-order");
}

#[test]
fn lock_order_rejects_a_zero_deadline() {
    assert_refused!("lock-order", &["--deadline-ms", "0"], "bad-deadline");
}

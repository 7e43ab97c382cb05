//! Chapter 5, thread queues (S4.1-S4.3).

use std::time::Duration;

use crate::harness::{assert_refused, assert_snapshot, debug_duration, listing};

/// The duration printed with `{:?}` after "after " on the line that starts
/// with `prefix`: what the snapshot shows as [DURATION].
fn duration_on(text: &str, prefix: &str) -> Duration {
    let line = text
        .lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?}:\n{text}"));
    let shown = line.rsplit("after ").next().expect("rsplit yields a piece");
    debug_duration(shown).unwrap_or_else(|| panic!("no duration in {line:?}"))
}

/// The lines of `text` that start with one of `prefixes`, in order.
fn lines_starting<'a>(text: &'a str, prefixes: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|line| prefixes.iter().any(|p| line.starts_with(p)))
        .collect()
}

#[test]
fn fifo_channel_keeps_order_and_ends_when_the_senders_are_gone() {
    let transcript = listing("fifo-channel").spawn().finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    assert_eq!(
        lines_starting(text, &["fetch", "every sender dropped: the loop"]),
        [
            "fetch page-1.html",
            "fetch page-2.html",
            "fetch page-3.html",
            "fetch page-1.html again, attempt 2",
            "every sender dropped: the loop ended",
        ],
    );
    // recv_timeout waits the whole 100 ms while a sender lives, and not at
    // all once none does.
    let waited = duration_on(text, "a sender alive, nothing sent: Err(Timeout)");
    assert!(waited >= Duration::from_millis(100), "{text}");
    let waited = duration_on(text, "every sender dropped: Err(Disconnected)");
    assert!(waited < Duration::from_millis(100), "{text}");
    // The order of main's lines, and FIFO for what is left. That the blocked
    // send(3) returned only after main received 1 is the channel's promise
    // (a full sync_channel takes nothing more); these lines cannot show it.
    assert_eq!(
        lines_starting(text, &["2 items in", "main:"]),
        [
            "2 items in: try_send(3) is Full",
            "main: recv gives 1",
            "main: the rest, in order: [2, 3]",
        ],
    );
    assert_snapshot!(transcript, "run");
}

#[test]
fn fifo_channel_with_no_capacity_hands_over_directly() {
    let transcript = listing("fifo-channel")
        .args(["--capacity", "0"])
        .spawn()
        .finish();
    let text = &transcript.text;
    assert!(text.contains("0 items in: try_send(1) is Full"), "{text}");
    assert!(text.contains("main: recv gives 1"), "{text}");
    assert!(text.contains("main: the rest, in order: []"), "{text}");
    assert_snapshot!(transcript, "rendezvous");
}

#[test]
fn fifo_channel_rejects_zero_pages() {
    assert_refused!("fifo-channel", &["--pages", "0"], "bad-pages");
}

#[test]
fn crossbeam_workers_share_one_channel() {
    // "3 of them got jobs" holds by construction (the barrier); that the run ended at all
    // shows the channel shared: a worker at the barrier takes no jobs, so the others
    // received theirs from the same channel, or the barrier would never have opened.
    let transcript = listing("crossbeam-workers").spawn().finish();
    let text = &transcript.text;
    assert!(
        text.contains(
            "worker threads: 3, 3 of them got jobs; jobs done: 12, each exactly once: true"
        ),
        "every job done exactly once, by workers that all reached the barrier:\n{text}"
    );
    let waited = duration_on(text, "2 jobs in, nobody receiving");
    assert!(waited >= Duration::from_millis(100), "{text}");
    assert_snapshot!(transcript, "run");
}

#[test]
fn crossbeam_workers_lose_nothing_with_many_workers_and_no_buffer() {
    // More jobs and workers than the book shows, and a channel with no
    // room: every send is a hand-over to a waiting worker.
    let transcript = listing("crossbeam-workers")
        .args(["--workers", "8", "--jobs", "5000", "--capacity", "0"])
        .spawn()
        .finish();
    let text = &transcript.text;
    assert!(
        text.contains(
            "worker threads: 8, 8 of them got jobs; jobs done: 5000, each exactly once: true"
        ),
        "every job done exactly once, by workers that all reached the barrier:\n{text}"
    );
    assert!(transcript.status.success(), "{text}");
}

#[test]
fn crossbeam_workers_with_fewer_jobs_than_workers_ends() {
    // Two workers find the channel closed before their first job; they must
    // not keep the others waiting for them.
    let transcript = listing("crossbeam-workers")
        .args(["--workers", "5", "--jobs", "3"])
        .spawn()
        .finish();
    let text = &transcript.text;
    assert!(
        text.contains(
            "worker threads: 5, 3 of them got jobs; jobs done: 3, each exactly once: true"
        ),
        "{text}"
    );
    assert!(transcript.status.success(), "{text}");
}

#[test]
fn crossbeam_workers_rejects_zero_workers() {
    assert_refused!("crossbeam-workers", &["--workers", "0"], "bad-workers");
}

#[test]
fn blocking_queue_orders_blocks_and_times_out() {
    let transcript = listing("blocking-queue").spawn().finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    assert!(
        text.contains(r#"priority, smallest first: [(5, "D"), (10, "A"), (10, "C"), (20, "B")]"#),
        "{text}"
    );
    // Ordered by the barrier and the queue, whatever the scheduler does.
    let lines = lines_starting(text, &["consumer:", "main:"]);
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], "consumer: calling get on an empty queue");
    assert_eq!(lines[1], "main: put \"job-1\"");
    assert!(
        lines[2].starts_with("consumer: got \"job-1\" after "),
        "{text}"
    );
    // get blocked for at least main's 100 ms before the put.
    let waited = duration_on(text, "consumer: got");
    assert!(waited >= Duration::from_millis(100), "{text}");
    let waited = duration_on(text, "empty queue: get_timeout returned None");
    assert!(waited >= Duration::from_millis(100), "{text}");
    assert_snapshot!(transcript, "run");
}

#[test]
fn blocking_queue_rejects_a_zero_timeout() {
    assert_refused!("blocking-queue", &["--timeout-ms", "0"], "bad-timeout");
}

//! Chapter 15 (beyond the notes): tokio's channels (bounded mpsc, oneshot, watch,
//! broadcast), a chat server on broadcast with a client that lags, and streams.

use crate::harness::{Transcript, assert_refused, assert_snapshot, listing};

/// The index of the first line equal to `line`, or a failure that shows the output.
fn position(transcript: &Transcript, line: &str) -> usize {
    transcript
        .text
        .lines()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no line {line:?} in:\n{}", transcript.text))
}

#[test]
fn mpsc_backpressure_holds_the_producer_until_the_consumer_takes_an_item() {
    let transcript = listing("mpsc-backpressure").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    // With a capacity of 2, items 1 and 2 go in at once; each later item waits until the
    // consumer has taken the one two places ahead of it.
    for item in 3..=5 {
        let waits = position(
            &transcript,
            &format!("producer: queue full, waiting to put {item}"),
        );
        let took = position(&transcript, &format!("consumer: took {}", item - 2));
        let put = position(&transcript, &format!("producer: put {item}"));
        assert!(waits < took && took < put, "{}", transcript.text);
    }
    assert!(
        transcript
            .text
            .ends_with("consumer: queue closed after 5 items\n"),
        "{}",
        transcript.text
    );
    // The trace comes from the awaits on one thread, not from the consumer's pace: a
    // consumer that does no work at all gives the same lines.
    let instant = listing("mpsc-backpressure")
        .args(["--work-ms", "0"])
        .spawn()
        .finish();
    let lines = |t: &Transcript| {
        t.text
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(lines(&instant), lines(&transcript));
    assert_snapshot!(transcript, "run");
}

#[test]
fn mpsc_backpressure_refuses_a_capacity_of_zero() {
    assert_refused!("mpsc-backpressure", &["--capacity", "0"], "zero-capacity");
}

#[test]
fn actor_channels_reply_by_oneshot_keep_the_newest_watch_value_and_broadcast_to_all() {
    let transcript = listing("actor-channels").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    for line in [
        "oneshot: / has 2 hit(s)",
        "oneshot: the counter ended, having seen 2 page(s)",
        // Two values sent with no await between them: the worker sees only the newest.
        "watch: the worker saw starting, then shutting down",
        "broadcast: early subscriber got first, second, third",
        // A subscriber gets only what is sent after it subscribed.
        "broadcast: late subscriber got second, third",
    ] {
        position(&transcript, line);
    }
    assert!(!transcript.text.contains("serving"), "{}", transcript.text);
    assert_snapshot!(transcript, "run");
}

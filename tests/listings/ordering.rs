//! Chapter 7, memory ordering (beyond the notes): the ready flag, run for
//! real. Its loom models are the `ready-flag` lib's own unit tests.

use crate::harness::{assert_refused, assert_snapshot, listing};

#[test]
fn ready_flag_every_read_after_the_flag_sees_the_result() {
    let transcript = listing("ready-flag").spawn().finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    // Release and Acquire guarantee this on every machine; the page says
    // why it proves nothing about Relaxed.
    for line in [
        "round 1: main read result = 1",
        "10000 rounds: 0 reads after ready missed the worker's result",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    assert_snapshot!(transcript, "run");
}

#[test]
fn ready_flag_refuses_bad_options() {
    assert_refused!("ready-flag", &["--rounds", "0"], "bad-rounds");
    assert_refused!("ready-flag", &["--timeout-ms", "0"], "bad-timeout");
}

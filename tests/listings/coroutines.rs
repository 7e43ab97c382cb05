//! Chapter 11, coroutines (S10.1-S10.3).

use crate::harness::{assert_snapshot, listing};

/// The notes' foo(1), primed and sent 2 and 99, prints these lines (CPython 3.11 does).
const PYTHON_PRINTS: [&str; 5] = ["初始值a： 1", "1", "传递值b： 2", "3", "传递值c： 99"];

#[test]
fn send_values_prints_what_the_python_coroutine_prints() {
    let transcript = listing("send-values").spawn().finish();
    let lines: Vec<&str> = transcript.text.lines().collect();
    for heading in ["a coroutine (corosensei):", "a state machine:"] {
        let start = lines.iter().position(|l| *l == heading).expect(heading) + 1;
        assert_eq!(lines[start..start + 5], PYTHON_PRINTS, "after {heading:?}");
        assert!(
            lines[start + 5].starts_with("(returned"),
            "the last send ends it"
        );
    }
    assert_snapshot!(transcript, "run");
}

#[test]
fn running_average_yields_none_then_the_averages() {
    let transcript = listing("running-average").spawn().finish();
    let lines: Vec<&str> = transcript.text.lines().collect();
    let averages: Vec<&str> = lines
        .iter()
        .filter(|line| line.starts_with("primed") || line.starts_with("sent"))
        .map(|line| line.rsplit(": ").next().unwrap_or_default())
        .collect();
    // What CPython 3.11 printed for the classic averager: None when primed, then these.
    assert_eq!(averages, ["None", "10.0", "20.0", "15.0"]);
    // Dropping the paused coroutine drops what its body owns.
    assert_eq!(
        lines.last(),
        Some(&"the averager's stack is unwound: state dropped")
    );
    assert_snapshot!(transcript, "run");
}

#[test]
fn poll_by_hand_shows_each_pending_and_the_ready() {
    let transcript = listing("poll-by-hand").spawn().finish();
    let results: Vec<&str> = transcript
        .text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("-> "))
        .collect();
    assert_eq!(results, ["Pending", "Pending", "Ready(3)"]);
    assert_snapshot!(transcript, "run");
}

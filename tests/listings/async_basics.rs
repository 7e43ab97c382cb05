//! Chapter 13 (S11.1): an event loop from scratch, then tokio's tasks, join!, select!,
//! timeouts and spawn_blocking.

use crate::harness::{Transcript, assert_refused, assert_snapshot, compile_error, listing};

/// The lines of a transcript, trimmed of the indentation that shows nesting.
pub(crate) fn lines(transcript: &Transcript) -> Vec<&str> {
    transcript.text.lines().map(str::trim).collect()
}

/// The index of the first line equal to `line`, or a failure that shows the output.
pub(crate) fn position(transcript: &Transcript, line: &str) -> usize {
    lines(transcript)
        .iter()
        .position(|l| *l == line)
        .unwrap_or_else(|| panic!("no line {line:?} in:\n{}", transcript.text))
}

#[test]
fn tiny_executor_polls_wakes_blocks_and_drops_the_task_nothing_can_wake() {
    let mut run = listing("tiny-executor").spawn();
    // The loop says it blocks only when its queue is empty; the test types the line that
    // the stdin thread turns into a wake only after that, so the trace is always the same.
    run.answer(
        "queue empty; task 3 waits for a wake from outside; blocking\n",
        "hello",
    );
    let transcript = run.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let all = lines(&transcript);
    let got: Vec<&str> = all
        .iter()
        .filter_map(|l| l.strip_prefix("consumer: got "))
        .collect();
    assert_eq!(got, ["1", "2", "3"], "the mailbox hands over in order");
    // The consumer's receive wakes the producer, which goes to the back of the queue; then
    // yield_now puts the consumer behind it, and the producer runs again only after the
    // tasks that were queued before it.
    let in_order = |expected: &[&str]| {
        let at: Vec<usize> = expected.iter().map(|l| position(&transcript, l)).collect();
        assert!(
            at.is_sorted(),
            "not in this order: {expected:#?}\n{}",
            transcript.text
        );
    };
    in_order(&[
        "task 2 wakes task 1; queue: [3, 4, 5, 1]",
        "consumer: got 1",
        "task 2 wakes task 2; queue: [3, 4, 5, 1, 2]",
        "poll task 5 (asker)",
        "producer: sent 2",
    ]);
    // The forgetful task is polled once, found unwakeable and dropped; dropping it breaks
    // its promise, which wakes the asker (the loop must not hold its queue's lock then, or
    // it would deadlock), and the loop finds that wake before it blocks. The reader is
    // woken by the stdin thread, not by a task.
    assert_eq!(
        all.iter()
            .filter(|l| **l == "poll task 4 (forgetful)")
            .count(),
        1
    );
    in_order(&[
        "queue empty; no waker for task 4 exists: it can never run again; dropped",
        "forgetful: dropped, and with it its promise",
        "the main thread wakes task 5; queue: [5]",
        "asker: no answer, the promise was broken",
        "queue empty; task 3 waits for a wake from outside; blocking",
        "the stdin thread wakes task 3; queue: [3]",
        "reader: got \"hello\"",
    ]);
    assert_eq!(
        all.last(),
        Some(&"queue empty, no task left: the loop ends")
    );
    assert_snapshot!(transcript, "hello");
}

#[test]
fn tiny_executor_takes_no_options() {
    assert_refused!("tiny-executor", &["--workers", "2"], "any-option");
}

#[test]
fn tokio_tasks_are_lazy_until_awaited_detached_by_a_dropped_handle_and_a_panic_is_a_join_error() {
    // Task 4's panic is the lesson: its message, printed by the default panic hook on the
    // worker thread, is in the output, once.
    let mut transcript = listing("tokio-tasks").panics(1).spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    position(&transcript, "look_up(1) called: 0 started");
    // Printed while task 4 unwinds, before task 3 may begin: before every task's result.
    let message = position(&transcript, "no record with id 4");
    assert!(message < position(&transcript, r#"task 2: returned "record 2""#));
    transcript.redact_matches(r"thread '([^']+)' \(\d+\)", "thread '$1' ([TID])");
    position(&transcript, r#"awaited: "record 1", 1 started"#);
    // The tasks end in the reverse order (by synchronisation, not by timers, so that no
    // load can change it), and the handles still give their results in the order they are
    // awaited.
    position(&transcript, "the tasks ended in the order 4, 3, 2");
    let results: Vec<&str> = lines(&transcript)
        .into_iter()
        .filter(|l| l.starts_with("task ") && l.contains(": "))
        .collect();
    assert_eq!(
        results,
        [
            r#"task 2: returned "record 2""#,
            r#"task 3: returned "record 3""#,
            "task 4: panicked: no record with id 4",
            r#"task 5, its handle dropped: sent "record 5""#,
        ]
    );
    assert_snapshot!(transcript, "run");
}

#[test]
fn tokio_tasks_refuses_zero_workers() {
    assert_refused!("tokio-tasks", &["--workers", "0"], "zero-workers");
}

#[test]
fn a_task_that_borrows_a_local_does_not_compile() {
    let transcript =
        compile_error("listings/13-async/tokio-tasks/does-not-compile/borrowed-task.rs");
    assert!(
        transcript.text.contains("error[E0373]"),
        "{}",
        transcript.text
    );
    assert!(
        transcript.text.contains("async move"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "borrowed-task-does-not-compile");
}

/// The figure before `suffix` in the line that starts with `prefix`, as printed: `1.00` in
/// "took 904.3ms: 1.00x the sum".
fn figure(transcript: &Transcript, prefix: &str, suffix: &str) -> f64 {
    lines(transcript)
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split_once(suffix))
        .and_then(|(before, _)| before.rsplit([' ', ':']).next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix:?}...{suffix:?} in:\n{}", transcript.text))
}

#[test]
fn join_select_waits_the_longest_not_the_sum() {
    let transcript = listing("join-select")
        .args(["join"])
        .measuring()
        .spawn()
        .finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    // Sleeps never end early: one after another take at least the sum, and join! at least
    // the longest. The page's point, shown by when each lookup began and ended: in turn,
    // each began after the one before had ended; with join!, all three waited at once.
    assert!(
        figure(&transcript, "took ", "x the sum") >= 1.0,
        "{}",
        transcript.text
    );
    position(
        &transcript,
        "each began after the one before had ended: true",
    );
    position(&transcript, "at least the longest: true");
    position(&transcript, "all three waiting at once: true");
    assert_snapshot!(transcript, "join");
    transcript.record_measurement("join");
}

#[test]
fn join_select_cancels_the_loser_before_the_winning_branch_runs() {
    let transcript = listing("join-select").args(["race"]).spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    // Only the loser is cancelled, and before the winning branch's code runs.
    let cancelled = position(&transcript, "cancelled: the query to the primary");
    let won = position(&transcript, "select!: the replica answered first");
    assert!(cancelled < won, "{}", transcript.text);
    assert!(
        !transcript
            .text
            .contains("cancelled: the query to the replica"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "race");
}

#[test]
fn join_select_refuses_a_unit_too_short_to_see() {
    assert_refused!("join-select", &["join", "--unit-ms", "5"], "short-unit");
}

#[test]
fn timeouts_answer_in_time_or_time_out_and_drop_the_wait() {
    let transcript = listing("timeouts").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let answered = position(&transcript, "answer: 12:00");
    let elapsed = position(&transcript, "no answer: deadline has elapsed");
    let gave_up = position(
        &transcript,
        "responder: saw the asker give up: the wait was dropped",
    );
    assert!(
        answered < elapsed && elapsed < gave_up,
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "run");
}

#[test]
fn timeouts_refuses_a_zero_limit() {
    assert_refused!("timeouts", &["--limit-ms", "0"], "zero-limit");
}

#[test]
fn spawn_blocking_lets_the_ticker_run_where_blocking_in_place_does_not() {
    let mut transcript = listing("spawn-blocking").measuring().spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let ticks = |prefix: &str| -> u64 {
        lines(&transcript)
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.trim().strip_suffix(" ticks")?.parse().ok())
            .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{}", transcript.text))
    };
    position(
        &transcript,
        "(each call takes 300 ms; the ticker ticks every 10 ms)",
    );
    // One thread runs every task: while the task blocks it, the ticker cannot run at all.
    assert_eq!(ticks("thread::sleep in the task:"), 0);
    // On a thread of its own, the call leaves the ticker free: about 300 / 10 = 30 ticks on
    // a quiet machine, fewer on a busy one, where the runtime's thread waits for a core; but
    // never none.
    let free = ticks("spawn_blocking:");
    assert!(free > 0, "{}", transcript.text);
    transcript.redact_matches(r"(spawn_blocking: +)\d+ ticks", "${1}[N] ticks");
    assert_snapshot!(transcript, "run");
    transcript.record_measurement("run");
}

#[test]
fn spawn_blocking_refuses_a_block_too_short_to_see() {
    assert_refused!("spawn-blocking", &["--block-ms", "10"], "short-block");
}

//! Chapter 14, beyond the notes: futures in depth. Send futures and locks across `.await`.

use crate::harness::{Transcript, assert_refused, assert_snapshot, compile_error_with, listing};

/// The lines the peer received, after the `the peer received:` line.
fn received(transcript: &Transcript) -> Vec<&str> {
    transcript
        .text
        .lines()
        .skip_while(|l| *l != "the peer received:")
        .skip(1)
        .collect()
}

#[test]
fn lock_across_await_keeps_each_exchange_whole() {
    let transcript = listing("lock-across-await").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    for id in 1..=3 {
        assert!(
            transcript
                .text
                .contains(&format!("task {id}: visitor number {id}\n")),
            "{}",
            transcript.text
        );
    }
    // Under one lock for the whole exchange, each request is followed by its own reply.
    let lines = received(&transcript);
    assert_eq!(lines.len(), 6, "{}", transcript.text);
    for pair in lines.chunks(2) {
        let request = pair[0].strip_suffix(": request");
        assert_eq!(
            request,
            pair[1].strip_suffix(": reply"),
            "{}",
            transcript.text
        );
        assert!(request.is_some(), "{}", transcript.text);
    }
    assert_snapshot!(transcript, "run");
}

#[test]
fn lock_across_await_locked_per_line_interleaves() {
    let transcript = listing("lock-across-await")
        .args(["--lock-each-line"])
        .spawn()
        .finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    // Every task wrote its request before any reply: the others came in between.
    let lines = received(&transcript);
    assert_eq!(lines.len(), 6, "{}", transcript.text);
    assert!(
        lines[..3].iter().all(|l| l.ends_with(": request"))
            && lines[3..].iter().all(|l| l.ends_with(": reply")),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "lock-each-line");
}

#[test]
fn lock_across_await_refuses_zero_tasks() {
    assert_refused!("lock-across-await", &["--tasks", "0"], "zero-tasks");
}

#[test]
fn a_std_guard_across_an_await_is_not_send() {
    let transcript = compile_error_with(
        "listings/14-futures/lock-across-await/does-not-compile/guard-across-await.rs",
        &["tokio"],
    );
    for expected in [
        "future cannot be sent between threads safely",
        "is not implemented for `std::sync::MutexGuard<'_, i32>`",
        "await occurs here",
        "required by a bound in `tokio::spawn`",
    ] {
        assert!(
            transcript.text.contains(expected),
            "no {expected:?} in:\n{}",
            transcript.text
        );
    }
    assert_snapshot!(transcript, "guard-across-await-does-not-compile");
}

#[test]
fn a_guard_dropped_by_hand_still_counts_as_held() {
    let transcript = compile_error_with(
        "listings/14-futures/lock-across-await/does-not-compile/drop-before-await.rs",
        &["tokio"],
    );
    assert!(
        transcript
            .text
            .contains("future cannot be sent between threads safely"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "drop-before-await-does-not-compile");
}

#[test]
fn pin_deadline_reads_what_came_then_stops_at_the_deadline() {
    let transcript = listing("pin-deadline").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    // `biased` reads the lines already sent before it looks at the clock, so all three come
    // however late the loop starts; then the peer is quiet, and only the deadline ends it.
    assert!(
        transcript.text.ends_with(
            "received: line 1\nreceived: line 2\nreceived: line 3\n\
             the deadline (100 ms) passed; lines received: 3\n"
        ),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "run");
}

#[test]
fn pin_deadline_refuses_a_zero_deadline() {
    assert_refused!("pin-deadline", &["--deadline-ms", "0"], "zero-deadline");
}

#[test]
fn an_unpinned_sleep_in_select_does_not_compile() {
    let transcript = compile_error_with(
        "listings/14-futures/pin-deadline/does-not-compile/unpinned-deadline.rs",
        &["tokio"],
    );
    for expected in [
        "error[E0277]: `PhantomPinned` cannot be unpinned",
        "required for `Sleep` to implement `Unpin`",
        "consider using the `pin!` macro",
    ] {
        assert!(
            transcript.text.contains(expected),
            "no {expected:?} in:\n{}",
            transcript.text
        );
    }
    assert_snapshot!(transcript, "unpinned-deadline-does-not-compile");
}

#[test]
fn local_tasks_share_an_rc_on_one_thread() {
    let transcript = listing("local-tasks").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    // Every task recorded its visit before any resumed from its yield: on one thread, each
    // runs until it awaits. When all are done, only main's reference is left.
    for id in 1..=3 {
        assert!(
            transcript
                .text
                .contains(&format!("task {id}: 3 visitors so far\n")),
            "{}",
            transcript.text
        );
    }
    assert!(
        transcript
            .text
            .ends_with("visitors: [1, 2, 3]; references to the list left: 1\n"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "run");
}

#[test]
fn local_tasks_refuses_zero_tasks() {
    assert_refused!("local-tasks", &["--tasks", "0"], "zero-tasks");
}

#[test]
fn an_rc_in_a_spawned_task_is_not_send() {
    let transcript = compile_error_with(
        "listings/14-futures/local-tasks/does-not-compile/rc-task.rs",
        &["tokio"],
    );
    for expected in [
        "future cannot be sent between threads safely",
        "the trait `Send` is not implemented for `Rc<RefCell<Vec<&str>>>`",
        "captured value is not `Send`",
    ] {
        assert!(
            transcript.text.contains(expected),
            "no {expected:?} in:\n{}",
            transcript.text
        );
    }
    assert_snapshot!(transcript, "rc-task-does-not-compile");
}

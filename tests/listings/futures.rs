//! Chapter 14, beyond the notes: futures in depth. Send futures and locks across `.await`,
//! Pin, LocalSet, a task that never awaits, and async fn in traits.

use std::time::Duration;

use crate::harness::{
    Transcript, assert_refused, assert_snapshot, compile_error_with, debug_duration, listing,
    on_snapshot_compiler,
};

/// Compiles a snippet of this chapter that uses tokio and must not compile, and checks that
/// the compiler's messages say `token`, which any compiler says (`Send`, an error code), and,
/// on the compiler the snapshots belong to, each of `wording`: its exact phrases, which the
/// page quotes and a newer compiler may word its own way.
fn refused_by_rustc(snippet: &str, token: &str, wording: &[&str]) -> Transcript {
    let transcript = compile_error_with(snippet, &["tokio"]);
    let mut expected = vec![token];
    if on_snapshot_compiler() {
        expected.extend_from_slice(wording);
    }
    for expected in expected {
        assert!(
            transcript.text.contains(expected),
            "no {expected:?} in:\n{}",
            transcript.text
        );
    }
    transcript
}

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
    let transcript = refused_by_rustc(
        "listings/14-futures/lock-across-await/does-not-compile/guard-across-await.rs",
        "`Send`",
        &[
            "future cannot be sent between threads safely",
            "is not implemented for `std::sync::MutexGuard<'_, i32>`",
            "await occurs here",
            "required by a bound in `tokio::spawn`",
        ],
    );
    assert_snapshot!(transcript, "guard-across-await-does-not-compile");
}

#[test]
fn a_borrowed_guard_dropped_by_hand_still_counts_as_held() {
    let transcript = refused_by_rustc(
        "listings/14-futures/lock-across-await/does-not-compile/drop-before-await.rs",
        "`Send`",
        &[
            "future cannot be sent between threads safely",
            "await occurs here, with `mut count` maybe used later",
        ],
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
    let transcript = refused_by_rustc(
        "listings/14-futures/pin-deadline/does-not-compile/unpinned-deadline.rs",
        "Unpin",
        &[
            "error[E0277]: `PhantomPinned` cannot be unpinned",
            "required for `Sleep` to implement `Unpin`",
            "consider using the `pin!` macro",
        ],
    );
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
    let transcript = refused_by_rustc(
        "listings/14-futures/local-tasks/does-not-compile/rc-task.rs",
        "`Send`",
        &[
            "future cannot be sent between threads safely",
            "the trait `Send` is not implemented for `Rc<RefCell<Vec<&str>>>`",
            "captured value is not `Send`",
        ],
    );
    assert_snapshot!(transcript, "rc-task-does-not-compile");
}

/// The fields of the line that starts with `prefix`: `ticks while busy: N; worst lateness: D`.
fn ticks_and_lateness(transcript: &Transcript, prefix: &str) -> (usize, Duration) {
    let line = transcript
        .text
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{}", transcript.text));
    let (ticks, late) = line
        .strip_prefix("ticks while busy: ")
        .and_then(|rest| rest.split_once("; worst lateness: "))
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    let ticks = ticks
        .parse()
        .unwrap_or_else(|_| panic!("no count in {line:?}"));
    let late = debug_duration(late).unwrap_or_else(|| panic!("no duration in {line:?}"));
    (ticks, late)
}

#[test]
fn busy_task_starves_its_thread_and_stops_only_at_an_await() {
    let mut transcript = listing("busy-task").measuring().spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    // By design, not by timing: one thread, and a loop with no .await, so the ticker cannot
    // run until it ends. Its first tick fell due one tick (10 ms) after the ticker's first
    // poll, which came before the busy task took the thread, and it ran only once the 200 ms
    // of work were over: at least 190 ms late, and load can only make that more. (A run
    // with no tick at all prints no lateness, and fails here.)
    let (ticks, late) = ticks_and_lateness(&transcript, "without yielding: ");
    assert_eq!(ticks, 0, "{}", transcript.text);
    assert!(
        late >= Duration::from_millis(200 - 10),
        "a tick came {late:?} late:\n{}",
        transcript.text
    );
    // With a yield every millisecond, the ticker gets turns while the task is busy: about
    // 20 ticks fall due in 200 ms; one is a wide margin even on a loaded machine.
    let (ticks, _) = ticks_and_lateness(&transcript, "with yield_now: ");
    assert!(ticks >= 1, "{}", transcript.text);
    // abort() returned while the task spun; it spun on, and was stopped at its .await.
    assert!(
        transcript.text.ends_with(
            "spinner: abort() has returned; I spun 50 ms more, and now I await\n\
             its handle: cancelled, at the .await\n"
        ),
        "{}",
        transcript.text
    );
    transcript.redact_matches(r"(with yield_now: ticks while busy:) \d+", "$1 [N]");
    assert_snapshot!(transcript, "run");
    transcript.record_measurement("run");
}

#[test]
fn busy_task_refuses_a_tick_longer_than_the_work() {
    let transcript = listing("busy-task")
        .args(["--busy-ms", "20", "--tick-ms", "30"])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert_snapshot!(transcript, "tick-longer-than-busy");
}

#[test]
fn async_trait_answers_through_generics_and_through_dyn() {
    let transcript = listing("async-trait").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    // Both ways call the same implementations: the generic counts agree with the dyn answers.
    for line in [
        "table knows 2 of the names",
        "directory knows 1 of the names",
        "ada in the table: Ada Lovelace",
        "linus in the directory: Linus Torvalds",
    ] {
        assert!(
            transcript.text.contains(&format!("{line}\n")),
            "no {line:?} in:\n{}",
            transcript.text
        );
    }
    assert_snapshot!(transcript, "run");
}

#[test]
fn async_trait_refuses_a_long_delay() {
    assert_refused!("async-trait", &["--delay-ms", "5000"], "long-delay");
}

#[test]
fn a_trait_with_an_async_fn_is_not_dyn_compatible() {
    let transcript = refused_by_rustc(
        "listings/14-futures/async-trait/does-not-compile/dyn-lookup.rs",
        "E0038",
        &[
            "error[E0038]: the trait `Lookup` is not dyn compatible",
            "because method `look_up` is `async`",
        ],
    );
    assert_snapshot!(transcript, "dyn-lookup-does-not-compile");
}

#[test]
fn a_trait_async_fn_promises_no_send() {
    let transcript = refused_by_rustc(
        "listings/14-futures/async-trait/does-not-compile/spawn-generic.rs",
        "`Send`",
        &[
            "future cannot be sent between threads safely",
            "it awaits another future which is not `Send`",
            "-> impl std::future::Future<Output = Option<String>> + Send;",
        ],
    );
    assert_snapshot!(transcript, "spawn-generic-does-not-compile");
}

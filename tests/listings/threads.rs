//! Chapter 4, threads and processes (S3.1-S3.8).

use crate::harness::{compile_error, listing};

#[test]
fn thread_demo_runs_100_threads_and_lists_them() {
    let transcript = listing("thread-demo").spawn().finish();
    let text = &transcript.text;
    // While the workers wait at the gate, main and all 100 are alive; after join, main alone.
    assert!(
        text.contains("live threads while the workers run: 101 ("),
        "{text}"
    );
    assert!(
        text.contains("live threads after join: 1 (thread-demo)"),
        "{text}"
    );
    transcript.assert_snapshot("run");
}

#[test]
fn thread_struct_runs_named_threads() {
    let transcript = listing("thread-struct").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    transcript.assert_snapshot("run");
}

#[test]
fn shared_state_borrows_and_shares() {
    let transcript = listing("shared-state").spawn().finish();
    assert!(
        transcript.text.contains("under a Mutex: 4000"),
        "{}",
        transcript.text
    );
    transcript.assert_snapshot("run");
}

#[test]
fn shared_state_without_a_lock_does_not_compile() {
    let transcript = compile_error(
        "listings/04-threads-processes/shared-state/does-not-compile/unsynchronised.rs",
    );
    assert!(
        transcript.text.contains("error[E0499]"),
        "{}",
        transcript.text
    );
    transcript.assert_snapshot("does-not-compile");
}

#[test]
fn process_demo_children_change_only_their_own_global() {
    let transcript = listing("process-demo").spawn().finish();
    let text = &transcript.text;
    let pid_of = |line: &str| {
        line.split("pid ")
            .nth(1)?
            .split(',')
            .next()?
            .parse::<u32>()
            .ok()
    };
    let children: Vec<&str> = text.lines().filter(|l| l.starts_with("child ")).collect();
    let mut pids: Vec<u32> = children.iter().filter_map(|l| pid_of(l)).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(
        pids.len(),
        10,
        "ten processes, each with a pid of its own:\n{text}"
    );
    let parent = text
        .lines()
        .find(|l| l.starts_with("parent: "))
        .expect("the parent's line");
    assert!(!pids.contains(&pid_of(parent).expect("a pid")), "{text}");
    assert!(children.iter().all(|l| l.ends_with("VISITS = 1")), "{text}");
    assert!(parent.ends_with("VISITS = 0"), "{text}");
    transcript.assert_snapshot("run");
}

#[test]
fn process_demo_rejects_a_bad_argument() {
    let transcript = listing("process-demo").args(["bogus"]).spawn().finish();
    assert_eq!(transcript.status.code(), Some(1));
    transcript.assert_snapshot("bad-argument");
}

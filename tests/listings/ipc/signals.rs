//! S7.7, signals and semaphores: the page src/ipc/signals.md.

use std::fs;

use super::{Stop, stopped};
use crate::harness::{assert_refused, assert_snapshot, listing};

#[test]
fn signal_child_counts_merges_and_shuts_down() {
    let transcript = listing("signal-child").spawn().finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    // Three SIGUSR1 sent while blocked were handled once: standard signals do not queue.
    assert!(
        text.contains("child: SIGUSR2: 1 SIGUSR1 handled so far"),
        "{text}"
    );
    // Three sent one at a time were each handled.
    assert!(
        text.contains("child: SIGUSR2: 4 SIGUSR1 handled so far"),
        "{text}"
    );
    assert!(
        text.contains("child: SIGTERM: 4 SIGUSR1 handled; exiting"),
        "{text}"
    );
    assert!(
        text.contains("parent: the child exited: exit status: 0"),
        "{text}"
    );
    assert_snapshot!(transcript, "run");
}

#[test]
fn signal_child_refuses_zero_signals() {
    assert_refused!("signal-child", &["--signals", "0"], "zero-signals");
}

/// Whether the named semaphore `name` (`/sem-gate-...`, as the listing printed it) is left
/// behind: on Linux it is the file /dev/shm/sem.<name without the slash>. (Elsewhere it is no
/// file, and this finds none.)
fn left_behind(name: &str) -> bool {
    std::path::Path::new(&format!("/dev/shm/sem.{}", name.trim_start_matches('/'))).exists()
}

/// The semaphore's name, from the listing's first line.
const CREATED: &str = r"^semaphore (/sem-gate-[0-9a-f]{16}) created with value \d+$";

/// The random part of the semaphore's name, as the snapshots show it.
fn redact_name(transcript: &mut crate::harness::Transcript) {
    transcript.redact_matches(r"/sem-gate-[0-9a-f]{16}", "/sem-gate-[RANDOM]");
}

/// The most children the parent saw inside at once, from its last line.
fn most_inside(text: &str) -> usize {
    let last = text.lines().last().unwrap_or_default();
    let most = last
        .split("at most ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next());
    most.and_then(|n| n.parse().ok()).expect("a count")
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "needs Linux: the test reads /dev/shm"
)]
fn semaphore_gate_lets_at_most_two_in() {
    let mut run = listing("semaphore-gate").spawn();
    let name = run.wait_for_line(CREATED)[1].clone();
    let mut transcript = run.finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    assert_eq!(most_inside(text), 2, "{text}");
    assert_eq!(text.matches("a child enters").count(), 5, "{text}");
    assert_eq!(text.matches("a child leaves").count(), 5, "{text}");
    assert!(!left_behind(&name), "{name} left behind");
    redact_name(&mut transcript);
    assert_snapshot!(transcript, "run");
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "needs Linux: the test reads /dev/shm"
)]
fn semaphore_gate_count_is_not_vacuous() {
    // With value 5, all five are let in together, and the parent sees it.
    let mut run = listing("semaphore-gate").args(["--value", "5"]).spawn();
    let name = run.wait_for_line(CREATED)[1].clone();
    let transcript = run.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert_eq!(most_inside(&transcript.text), 5, "{}", transcript.text);
    assert!(!left_behind(&name), "{name} left behind");
}

#[test]
fn semaphore_gate_refuses_a_zero_value() {
    assert_refused!("semaphore-gate", &["--value", "0"], "zero-value");
}

/// Processes still running whose command line names the semaphore of this run.
fn children_of_run(name: &str) -> Vec<String> {
    let mark = format!("{name} ");
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| fs::read(entry.ok()?.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(&mark))
        .collect()
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "needs Linux: the test reads /proc and /dev/shm"
)]
fn semaphore_gate_loses_the_permit_of_a_killed_child_and_cleans_up() {
    let mut run = listing("semaphore-gate").args(["--kill-inside"]).spawn();
    let name = run.wait_for_line(CREATED)[1].clone();
    let mut transcript = run.finish();
    let text = &transcript.text;
    assert_eq!(transcript.status.code(), Some(1), "{text}");
    // Two were let in, one died: the value stays 0 with one live child inside.
    assert!(
        text.contains("sem_trywait: no permit free, with 1 live child inside"),
        "{text}"
    );
    assert!(
        children_of_run(&name).is_empty(),
        "{:?}",
        children_of_run(&name)
    );
    assert!(!left_behind(&name), "{name} left behind");
    redact_name(&mut transcript);
    assert_snapshot!(transcript, "kill-inside");
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "needs Linux: the test reads /dev/shm"
)]
fn semaphore_gate_removes_its_semaphore_on_ctrl_c_and_sigterm() {
    for how in [Stop::CtrlC, Stop::Term] {
        // 32 children to start: the run goes on well after the semaphore is made.
        let args = ["--children", "32"];
        let run = stopped("semaphore-gate", &args, CREATED, how);
        let name = &run.ready[1];
        assert!(!left_behind(name), "{name} left after {how:?}");
    }
}

//! Chapter 9, queues between processes (S7.1, S7.2): src/ipc/queues.md.

use super::{Stop, TestDir, stopped};
use crate::harness::{assert_refused, assert_snapshot, listing};

/// The pids after `pattern` (`started: pid `, `pid `) on each line that has it.
fn pids_after(text: &str, pattern: &str) -> Vec<u32> {
    text.lines()
        .flat_map(|line| line.split(pattern).skip(1))
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// The listing reaped each child itself, and none still runs. Only a process's parent can
/// wait for it, and only once: the exit status the listing printed for each pid (`reaped`,
/// a pattern with `{pid}` in it, matches that line) came from its own `waitpid`. A child it
/// had left behind would have been re-parented to init (or a subreaper), which reaps it
/// instead, and the listing could not have printed its status. Then no pid may still run.
fn assert_reaped_by_listing(pids: &[u32], reaped: &str, text: &str) {
    for pid in pids {
        let line = regex::Regex::new(&format!(
            "(?m)^{}$",
            reaped.replace("{pid}", &pid.to_string())
        ))
        .expect("a valid pattern");
        assert!(
            line.is_match(text),
            "no exit status of child {pid} from the listing itself\n{text}"
        );
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let running = state
            .split(") ")
            .nth(1)
            .is_some_and(|rest| !rest.starts_with('Z'));
        assert!(!running, "child {pid} still runs: {state}\n{text}");
    }
}

/// `process-queue` prints how each child ended, from its own wait.
const PROCESS_QUEUE_REAPED: &str = r"(producer|consumer) \(pid {pid}\) ended, .+:";
/// `pool-queue` prints how each worker ended, from its own wait.
const POOL_QUEUE_REAPED: &str = r"reaped pid {pid}: .+";

/// The lines the parent printed for one child's output, without the `  | ` prefix.
fn block<'a>(text: &'a str, role: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|line| !line.starts_with(&format!("{role} (pid ")))
        .skip(1)
        .take_while(|line| line.starts_with("  | "))
        .map(|line| &line["  | ".len()..])
        .collect()
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: the test reads /proc")]
fn process_queue_consumer_gets_every_letter_then_end() {
    let transcript = listing("process-queue").spawn().finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    assert_eq!(
        block(text, "producer"),
        ["put A", "put B", "put C", "put End"],
        "{text}"
    );
    assert_eq!(
        block(text, "consumer"),
        ["get A", "get B", "get C", "End after 3 letters: finish"],
        "{text}"
    );
    let children = pids_after(text, "started: pid ");
    assert_eq!(children.len(), 2, "{text}");
    assert_reaped_by_listing(&children, PROCESS_QUEUE_REAPED, text);
    assert_snapshot!(transcript, "run");
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: the test reads /proc")]
fn process_queue_stop_when_empty_finishes_before_anything_arrives() {
    let transcript = listing("process-queue")
        .args(["--stop-when-empty"])
        .spawn()
        .finish();
    let text = &transcript.text;
    // The consumer looked once, found nothing, and ended; only then did the producer start,
    // and its first put failed: nobody receives any more.
    assert_eq!(
        block(text, "consumer"),
        ["empty: finish, after 0 letters"],
        "{text}"
    );
    assert_eq!(
        block(text, "producer"),
        ["process-queue: cannot put A: Broken pipe (os error 32)"],
        "{text}"
    );
    assert_eq!(transcript.status.code(), Some(1), "{text}");
    assert!(
        text.ends_with("process-queue: the producer failed: exit code 1\n"),
        "{text}"
    );
    assert_reaped_by_listing(
        &pids_after(text, "started: pid "),
        PROCESS_QUEUE_REAPED,
        text,
    );
    assert_snapshot!(transcript, "stop-when-empty");
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: the test reads /proc")]
fn process_queue_reports_a_producer_that_fails_midway() {
    let transcript = listing("process-queue")
        .args(["--fail-after", "1"])
        .spawn()
        .finish();
    let text = &transcript.text;
    assert_eq!(transcript.status.code(), Some(1), "{text}");
    // Disconnected without End: the consumer knows the stream is incomplete.
    assert_eq!(
        block(text, "consumer"),
        [
            "get A",
            "process-queue: the queue closed after 1 letter without End: \
             the producer ended early"
        ],
        "{text}"
    );
    let children = pids_after(text, "started: pid ");
    assert_eq!(children.len(), 2, "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains(") ended, exit code 1:"))
            .count(),
        2,
        "both children reaped and reported:\n{text}"
    );
    assert_reaped_by_listing(&children, PROCESS_QUEUE_REAPED, text);
    assert_snapshot!(transcript, "producer-fails");
}

#[test]
fn process_queue_rejects_zero_items() {
    assert_refused!("process-queue", &["--items", "0"], "zero-items");
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: the test reads /proc")]
fn pool_queue_every_task_reported_once_by_the_pool() {
    let transcript = listing("pool-queue").spawn().finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    let first = text.lines().next().unwrap_or_default();
    let workers = pids_after(first, "pid ");
    assert_eq!(workers.len(), 3, "{text}");
    let tasks: Vec<&str> = text.lines().filter(|l| l.starts_with("task ")).collect();
    assert_eq!(tasks.len(), 10, "{text}");
    let mut reporters = Vec::new();
    for (n, line) in tasks.iter().enumerate() {
        let n = n as u64;
        assert!(
            line.starts_with(&format!("task {n}: {}, pid ", n * n)),
            "{line}\n{text}"
        );
        let pid = pids_after(line, "pid ")[0];
        assert!(workers.contains(&pid), "{line}: not a worker\n{text}");
        reporters.push(pid);
    }
    reporters.sort();
    reporters.dedup();
    assert_eq!(reporters.len(), 3, "{text}");
    assert_reaped_by_listing(&workers, POOL_QUEUE_REAPED, text);
    assert!(
        text.contains("10 of 10 tasks reported exactly once, by 3 of the 3 workers"),
        "{text}"
    );
    assert_snapshot!(transcript, "ten-tasks");
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: the test reads /proc")]
fn pool_queue_reports_a_failing_worker_and_reaps_the_rest() {
    let transcript = listing("pool-queue")
        .args(["--fail-task", "4"])
        .spawn()
        .finish();
    let text = &transcript.text;
    assert_eq!(transcript.status.code(), Some(1), "{text}");
    // Task 4 went to the second worker, as did task 7, which it never reached.
    assert!(text.contains("task 4: no result"), "{text}");
    assert!(text.contains("task 7: no result"), "{text}");
    assert!(
        text.contains("8 of 10 tasks reported exactly once"),
        "{text}"
    );
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("pool-queue: 2 tasks without a good result; failed workers: pid ")
            && last.ends_with(", exit code 1"),
        "{text}"
    );
    // The workers share the listing's output: finish() has already checked that none of
    // them still holds it.
    let workers = pids_after(text.lines().next().unwrap_or_default(), "pid ");
    assert_reaped_by_listing(&workers, POOL_QUEUE_REAPED, text);
    assert_snapshot!(transcript, "failing-worker");
}

/// One worker, a thousand tasks: far more than its task channel holds while the worker is
/// blocked putting results on a queue nobody reads yet. The pool reads results while it hands
/// out the tasks, so the run ends (it hung when it sent them all first).
#[test]
fn pool_queue_one_worker_a_thousand_tasks() {
    let transcript = listing("pool-queue")
        .args(["--workers", "1", "--tasks", "1000"])
        .spawn()
        .finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    assert!(
        text.contains("1000 of 1000 tasks reported exactly once, by 1 of the 1 workers"),
        "{text}"
    );
}

#[test]
fn pool_queue_rejects_zero_workers() {
    assert_refused!("pool-queue", &["--workers", "0"], "zero-workers");
}

/// ipc-channel's one-shot servers put their sockets in directories of their own in TMPDIR;
/// these two listings point TMPDIR at a directory of the run's, in `--dir`.
#[test]
fn process_queue_leaves_no_socket_on_ctrl_c_and_sigterm() {
    for how in [Stop::CtrlC, Stop::Term] {
        let dir = TestDir::new("process-queue-stopped");
        let args = ["--dir", dir.arg()];
        let run = stopped("process-queue", &args, r"^consumer started: pid ", how);
        dir.assert_empty(&run.transcript);
    }
}

#[test]
fn pool_queue_leaves_no_socket_on_ctrl_c_and_sigterm() {
    for how in [Stop::CtrlC, Stop::Term] {
        let dir = TestDir::new("pool-queue-stopped");
        let args = ["--dir", dir.arg(), "--workers", "16", "--tasks", "1000"];
        let run = stopped("pool-queue", &args, r"^pool of 16 worker processes", how);
        dir.assert_empty(&run.transcript);
    }
}

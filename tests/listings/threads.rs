//! Chapter 4, threads and processes (S3.1-S3.8).

use crate::harness::{assert_refused, assert_snapshot, compile_error, listing};

#[test]
fn thread_plain_joins_100_threads_and_gets_their_results() {
    let transcript = listing("thread-plain").spawn().finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    // Joined in the order they were started, so the results come back in it.
    assert!(text.contains("joined them: 100 results"), "{text}");
    assert!(text.contains("  first: request 0 (mode q)"), "{text}");
    assert!(text.contains("  last:  request 99 (mode q)"), "{text}");
    assert_snapshot!(transcript, "run");
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "needs Linux: thread-demo lists threads from /proc"
)]
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
    assert_snapshot!(transcript, "run");
}

#[test]
fn thread_struct_runs_named_threads() {
    let transcript = listing("thread-struct").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert_snapshot!(transcript, "run");
}

#[test]
fn shared_state_borrows_and_shares() {
    let transcript = listing("shared-state").spawn().finish();
    assert!(
        transcript.text.contains("under a Mutex: 4000"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "run");
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
    assert_snapshot!(transcript, "does-not-compile");
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
    assert_snapshot!(transcript, "run");
}

#[test]
fn process_demo_rejects_a_bad_argument() {
    assert_refused!("process-demo", &["bogus"], "bad-argument");
}

/// The pids of the pool's workers, from its first line.
fn worker_pids(text: &str) -> Vec<u32> {
    let first = text.lines().next().unwrap_or_default();
    first
        .split("pid ")
        .skip(1)
        .filter_map(|pid| pid.trim_end_matches([',', ' ']).parse().ok())
        .collect()
}

/// The tasks' lines of a pool's run: (task, pid, which of its worker's tasks it was), as the
/// workers reported them.
fn tasks_done(text: &str) -> Vec<(u32, u32, u32)> {
    let line = regex::Regex::new(r"(?m)^task (\d+): pid (\d+), its task (\d+)$").unwrap();
    line.captures_iter(text)
        .map(|c| {
            (
                c[1].parse().unwrap(),
                c[2].parse().unwrap(),
                c[3].parse().unwrap(),
            )
        })
        .collect()
}

/// What the workers' reports must show in any run: every task ran in one of the pool's
/// workers, each worker counted its own tasks 1, 2, 3, ... with none missing, and the waves
/// printed are those counts. Which task fell into which wave depends on timing: on a loaded
/// machine a worker can fall a whole task behind (3, 3, 2, 2 instead of 3, 3, 3, 1), so the
/// snapshot hides the counts, which the recorded run shows.
fn check_reports(text: &str, workers: &[u32], done: &[(u32, u32, u32)]) -> Vec<u32> {
    for &worker in workers {
        let mut counted: Vec<u32> = done.iter().filter(|t| t.1 == worker).map(|t| t.2).collect();
        counted.sort();
        assert!(
            counted.iter().copied().eq(1..=counted.len() as u32),
            "worker {worker} counted {counted:?}:\n{text}"
        );
    }
    for &(task, pid, _) in done {
        assert!(
            workers.contains(&pid),
            "task {task} ran outside the pool:\n{text}"
        );
    }
    let mut waves = Vec::new();
    for &(_, _, nth) in done {
        let index = nth as usize - 1;
        if waves.len() <= index {
            waves.resize(index + 1, 0);
        }
        waves[index] += 1;
    }
    let printed: Vec<String> = waves.iter().map(u32::to_string).collect();
    assert!(
        text.contains(&format!("finished in waves of {}\n", printed.join(", "))),
        "the waves are not the workers' counts:\n{text}"
    );
    waves
}

/// Hides what varies with timing in a pool's report: which of its worker's tasks each was,
/// and so the waves (the first, every worker's first task, is asserted on).
fn redact_waves(transcript: &mut crate::harness::Transcript) {
    transcript.redact_matches(r", its task \d+", ", its task [N]");
    transcript.redact_matches(
        r"finished in waves of 3(, \d+)*",
        "finished in waves of 3, [THEN AS IT FELL]",
    );
}

#[test]
fn pool_plain_runs_ten_tasks_on_its_three_workers() {
    let transcript = listing("pool-plain")
        .args(["--sleep-ms", "200"])
        .spawn()
        .finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    let workers = worker_pids(text);
    assert_eq!(workers.len(), 3, "{text}");
    // One line per task, in task order, each naming the worker that ran it.
    let line = regex::Regex::new(r"(?m)^task (\d+): pid (\d+)$").unwrap();
    let tasks: Vec<(u32, u32)> = line
        .captures_iter(text)
        .map(|c| (c[1].parse().unwrap(), c[2].parse().unwrap()))
        .collect();
    assert!(tasks.iter().map(|t| t.0).eq(0..10), "{text}");
    assert!(tasks.iter().all(|t| workers.contains(&t.1)), "{text}");
    assert!(text.contains("10 tasks done in "), "{text}");
    // Three at a time at most: some worker ran four 200 ms tasks in a row.
    assert!(
        transcript.elapsed >= std::time::Duration::from_millis(800),
        "{text}"
    );
    assert_snapshot!(transcript, "ten-tasks");
}

#[test]
fn process_pool_reuses_three_workers_in_waves() {
    let mut transcript = listing("process-pool")
        .args(["--sleep-ms", "200"])
        .measuring()
        .spawn()
        .finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    let workers = worker_pids(text);
    assert_eq!(workers.len(), 3, "{text}");
    let done = tasks_done(text);
    assert_eq!(done.len(), 10, "{text}");
    let waves = check_reports(text, &workers, &done);
    // The first wave is every worker's first task: all three took part.
    assert_eq!(waves[0], 3, "{text}");
    // As the workers reported it: the three of them ran all ten tasks, each
    // one at least, and each was reaped after a clean exit.
    for &worker in &workers {
        assert!(done.iter().any(|t| t.1 == worker), "{text}");
        assert!(
            text.contains(&format!("worker pid {worker} reaped: exit code 0")),
            "{text}"
        );
    }
    assert!(text.contains("distinct worker pids: 3"), "{text}");
    // A sleep never ends early: the busiest worker slept its tasks one after
    // another. (No upper bound: a loaded machine can be slow.)
    let busiest = done.iter().map(|t| t.2).max().unwrap();
    assert!(
        transcript.elapsed >= std::time::Duration::from_millis(200) * busiest,
        "{text}"
    );
    redact_waves(&mut transcript);
    assert_snapshot!(transcript, "ten-tasks");
    transcript.record_measurement("ten-tasks");
}

#[test]
fn process_pool_reports_a_crashed_worker_and_goes_on() {
    let mut transcript = listing("process-pool")
        .args(["--sleep-ms", "200", "--crash-task", "7"])
        .spawn()
        .finish();
    let text = &transcript.text;
    assert_eq!(transcript.status.code(), Some(1), "{text}");
    let workers = worker_pids(text);
    let done = tasks_done(text);
    assert_eq!(done.len(), 9, "{text}");
    let waves = check_reports(text, &workers, &done);
    assert_eq!(waves[0], 3, "{text}");
    let killed = regex::Regex::new(r"(?m)^task 7: its worker, pid (\d+), killed by signal 9$")
        .unwrap()
        .captures(text)
        .unwrap_or_else(|| panic!("task 7's worker was not killed:\n{text}"))[1]
        .to_string();
    for worker in workers {
        let status = if worker.to_string() == killed {
            "killed by signal 9"
        } else {
            "exit code 0"
        };
        assert!(
            text.contains(&format!("worker pid {worker} reaped: {status}")),
            "{text}"
        );
    }
    redact_waves(&mut transcript);
    assert_snapshot!(transcript, "crash");
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: the test reads /proc")]
fn process_pool_leaves_no_worker_running_when_interrupted() {
    let mut run = listing("process-pool").spawn();
    let workers = worker_pids(&run.wait_for_line(r"^pool of 3 worker processes: .*$")[0]);
    assert_eq!(workers.len(), 3);
    // SIGINT to the parent alone (`kill -INT`), not to the group as Ctrl-C would: the
    // workers get no signal, and must stop because their task channel closes. The output
    // closes only when every process holding it has closed it: the workers too.
    run.signal("INT");
    let transcript = run.finish();
    assert_eq!(transcript.status.code(), None, "ended by the signal");
    // A worker that has closed its output may still be on its way out: allow it a moment.
    for pid in workers {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie about to be reaped by init: not running.
            let running = state
                .split(") ")
                .nth(1)
                .is_some_and(|rest| !rest.starts_with('Z'));
            if !running {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "worker {pid} still runs: {state}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

#[test]
fn process_pool_removes_its_directory_on_ctrl_c() {
    // The run's directory holds ipc-channel's sockets while the workers connect; the pool
    // removes it however it ends. Ctrl-C reaches the workers too, as at a terminal.
    // A directory of the test's own, removed however the test ends.
    let dir = crate::ipc::TestDir::new("process-pool");
    let mut run = listing("process-pool").args(["--dir", dir.arg()]).spawn();
    run.wait_for_line(r"^pool of 3 worker processes: .*$");
    // Chapter 9's RunDir: `process-pool.` and six random characters.
    let made: Vec<_> = std::fs::read_dir(dir.arg())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.to_string_lossy().contains("/process-pool."))
        .collect();
    assert_eq!(made.len(), 1, "no run directory in {}: {made:?}", dir.arg());
    run.ctrl_c();
    let transcript = run.finish();
    // Ended by the signal, after the pool stopped its workers and removed its directory
    // (finish checks that no process of the listing's group is left).
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        transcript.status.signal(),
        Some(libc::SIGINT),
        "{}",
        transcript.text
    );
    dir.assert_empty(&transcript);
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "needs Linux: threads-vs-processes reads /proc"
)]
fn threads_vs_processes_measures_start_memory_and_crashes() {
    let transcript = listing("threads-vs-processes").measuring().spawn().finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    // What the chapter claims from these figures: a process costs more to start and more
    // memory than a thread, and a crash takes down what the text says it does.
    let ratio = |prefix: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .expect(prefix);
        let before_x = line.rsplit_once("x a thread").expect("a ratio").0;
        let number = before_x.rsplit(' ').next().and_then(|r| r.parse().ok());
        number.expect("a number")
    };
    assert!(
        ratio("process: ") > 1.0,
        "starting a process costs more:\n{text}"
    );
    assert!(
        ratio("(20 waiting children)") > 1.0,
        "a process needs more memory:\n{text}"
    );
    assert!(
        text.contains("a thread panics: join returned Err"),
        "{text}"
    );
    assert!(
        text.contains(
            "a fault in one thread of a child: the child was killed by signal 11 (SIGSEGV); \
             its main thread died with it"
        ),
        "{text}"
    );
    assert_snapshot!(transcript, "this-machine");
    transcript.record_measurement("this-machine");
}

//! Chapter 9, pipes (S7.5): `pipe-child` (anonymous) and `named-pipe` (a FIFO).

use super::{Stop, TestDir, stopped};

use crate::harness::{assert_refused, assert_snapshot, listing};

#[test]
fn pipe_child_sends_far_more_than_a_pipe_holds_and_gets_it_all_back() {
    let transcript = listing("pipe-child").spawn().finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    // About 2 MiB each way, through pipes that hold 64 KiB: no deadlock, nothing lost.
    assert!(text.contains("sent 100000 lines, 2.0 MiB"), "{text}");
    assert!(text.contains("got back 100000 lines, 2.0 MiB"), "{text}");
    assert!(text.contains(r#"first: "LINE 1 OF 100000""#), "{text}");
    assert!(text.contains(r#"last: "LINE 100000 OF 100000""#), "{text}");
    assert_snapshot!(transcript, "run");
}

#[test]
fn pipe_child_rejects_zero_lines() {
    assert_refused!("pipe-child", &["--lines", "0"], "zero-lines");
}

#[test]
fn named_pipe_joins_two_separate_children_and_leaves_no_fifo() {
    let dir = TestDir::new("named-pipe");
    let mut transcript = listing("named-pipe")
        .args(["--dir", dir.arg()])
        .spawn()
        .finish();
    let text = transcript.text.clone();
    assert!(transcript.status.success(), "{text}");
    assert!(
        text.contains("open for writing, O_NONBLOCK, no reader: ENXIO"),
        "{text}"
    );
    // The writer's open returned only after the reader's: it blocks until a reader opens.
    let waits = text.find("writer: pid ").expect("the writer");
    let reader = text.find("reader: pid ").expect("the reader");
    let opened = text.find("writer: opened").expect("opened");
    assert!(waits < reader && reader < opened, "{text}");
    for n in 1..=3 {
        assert!(
            text.contains(&format!("reader: got \"message {n} of 3\"")),
            "{text}"
        );
    }
    assert!(text.contains("reader: end of file"), "{text}");
    let pids: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(": pid "))
        .filter_map(|l| l.split("pid ").nth(1)?.split(',').next())
        .collect();
    assert_eq!(pids.len(), 2, "{text}");
    assert_ne!(pids[0], pids[1], "two processes:\n{text}");
    // No FIFO, no directory left.
    dir.assert_empty(&transcript);
    let run_dir = format!(r"{}/named-pipe\.\w{{6}}", regex::escape(dir.arg()));
    transcript.redact_matches(&run_dir, "[TMP]/named-pipe.[RANDOM]");
    transcript.redact_matches(r"--dir \S+", "--dir [TMP]");
    assert_snapshot!(transcript, "run");
}

#[test]
fn named_pipe_rejects_zero_messages() {
    assert_refused!("named-pipe", &["--messages", "0"], "zero-messages");
}

#[test]
fn named_pipe_reports_a_directory_that_does_not_exist() {
    let mut transcript = listing("named-pipe")
        .args(["--dir", "/nonexistent/book-test"])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert_eq!(transcript.text.lines().count(), 1, "{}", transcript.text);
    transcript.redact_matches(r"named-pipe\.\w{6}", "named-pipe.[RANDOM]");
    assert_snapshot!(transcript, "missing-dir");
}

#[test]
fn named_pipe_reader_refuses_a_path_that_is_no_fifo() {
    let missing = listing("named-pipe")
        .args(["fifo-reader", "/nonexistent/fifo"])
        .spawn()
        .finish();
    assert_eq!(missing.status.code(), Some(1), "{}", missing.text);
    assert_eq!(missing.text.lines().count(), 1, "{}", missing.text);
    assert_snapshot!(missing, "reader-missing-path");
    let file = listing("named-pipe")
        .args(["fifo-writer", "Cargo.toml"])
        .spawn()
        .finish();
    assert_eq!(file.status.code(), Some(1), "{}", file.text);
    assert_eq!(file.text.lines().count(), 1, "{}", file.text);
    assert_snapshot!(file, "writer-not-a-fifo");
}

#[test]
fn named_pipe_removes_its_fifo_on_ctrl_c_and_sigterm() {
    for how in [Stop::CtrlC, Stop::Term] {
        let dir = TestDir::new("named-pipe-stopped");
        let args = ["--dir", dir.arg()];
        let run = stopped("named-pipe", &args, r"^made the FIFO ", how);
        dir.assert_empty(&run.transcript);
    }
}

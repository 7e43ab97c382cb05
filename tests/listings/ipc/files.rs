//! Chapter 9, files between processes (S7.3): `file-lock`.

use std::path::Path;

use super::{Stop, TestDir, stopped};
use crate::harness::{Transcript, assert_refused, assert_snapshot, listing};

/// Runs `file-lock --lock <lock>` in a directory of its own; checks that the directory is
/// empty afterwards.
fn file_lock(lock: &str) -> Transcript {
    let dir = TestDir::new(&format!("file-lock-{lock}"));
    let mut transcript = listing("file-lock")
        .args(["--lock", lock, "--dir", dir.arg()])
        .spawn()
        .finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert!(
        transcript
            .text
            .contains("the file at the end: 3 whole records"),
        "{}",
        transcript.text
    );
    dir.assert_empty(&transcript);
    let run_dir = format!(r"{}/file-lock\.\w{{6}}", regex::escape(dir.arg()));
    transcript.redact_matches(&run_dir, "[TMP]/file-lock.[RANDOM]");
    transcript.redact_matches(r"--dir \S+", "--dir [TMP]");
    transcript
}

const TORN: &str = r#"reader: TORN  "record 3 of ""#;
const WHOLE: &str = r#"reader: whole "record 3 of 3: complete\n""#;

#[test]
fn file_lock_without_a_lock_reads_a_torn_record() {
    let transcript = file_lock("none");
    let text = &transcript.text;
    assert!(text.contains(TORN), "{text}");
    assert!(!text.contains(WHOLE), "{text}");
    assert_snapshot!(transcript, "no-lock");
}

#[test]
fn file_lock_held_by_the_writer_alone_does_not_stop_the_reader() {
    let transcript = file_lock("writer");
    let text = &transcript.text;
    assert!(text.contains("each under an exclusive lock"), "{text}");
    assert!(text.contains(TORN), "{text}");
    assert_snapshot!(transcript, "writer-locks");
}

#[test]
fn file_lock_on_both_sides_makes_the_reader_wait_for_the_whole_record() {
    let transcript = file_lock("both");
    let text = &transcript.text;
    // try_lock_shared failed while the record was half-written: the reader had to wait.
    assert!(text.contains("the file is locked; waiting"), "{text}");
    assert!(text.contains(WHOLE), "{text}");
    assert!(!text.contains("TORN"), "{text}");
    let complete = text.find("writer: record 3 complete").expect("written");
    let locked = text.find("reader: got a shared lock").expect("locked");
    assert!(complete < locked, "{text}");
    assert_snapshot!(transcript, "both-lock");
}

#[test]
fn file_lock_rejects_zero_records() {
    assert_refused!("file-lock", &["--records", "0"], "zero-records");
}

#[test]
fn file_lock_reports_a_directory_that_does_not_exist() {
    let missing = Path::new("/nonexistent/book-test");
    let mut transcript = listing("file-lock")
        .args(["--dir", missing.to_str().unwrap()])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert_eq!(transcript.text.lines().count(), 1, "{}", transcript.text);
    assert!(!missing.exists());
    transcript.redact_matches(r"file-lock\.\w{6}", "file-lock.[RANDOM]");
    assert_snapshot!(transcript, "missing-dir");
}

#[test]
fn file_lock_removes_its_directory_on_ctrl_c_and_sigterm() {
    for how in [Stop::CtrlC, Stop::Term] {
        let dir = TestDir::new("file-lock-stopped");
        let args = ["--lock", "both", "--dir", dir.arg()];
        let run = stopped("file-lock", &args, r"^file: ", how);
        dir.assert_empty(&run.transcript);
    }
}

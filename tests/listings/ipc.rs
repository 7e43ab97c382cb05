//! Chapter 9, communication between processes (S7.1-S7.7): one file per page.

mod files;
mod latency;
mod pipes;
mod queues;
mod shared_memory;
mod signals;
mod sockets;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use crate::harness::{Transcript, assert_refused, assert_snapshot, listing};

/// A directory a test owns, passed to the listing as `--dir`; removed when dropped.
pub(crate) struct TestDir(PathBuf);

impl TestDir {
    pub fn new(test: &str) -> TestDir {
        let name = format!("book-test-{test}-{}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).expect("create the test's directory");
        TestDir(path)
    }

    pub fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }

    /// The listing removed everything it made in the directory.
    pub fn assert_empty(&self, transcript: &Transcript) {
        let left: Vec<_> = std::fs::read_dir(&self.0)
            .expect("read the test's directory")
            .map(|entry| entry.expect("an entry").path())
            .collect();
        assert!(
            left.is_empty(),
            "left behind: {left:?}\n{}",
            transcript.text
        );
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How a test stops a listing: Ctrl-C at its terminal (SIGINT to its whole process group, its
/// children too), or `kill -TERM` to the listing's process alone.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stop {
    CtrlC,
    Term,
}

/// A listing stopped half-way by a signal.
pub(crate) struct Stopped {
    pub transcript: Transcript,
    /// The groups of the line the test waited for before it sent the signal.
    pub ready: Vec<String>,
}

/// Starts `name` with `args`, waits for a line matching `ready` (the listing's files exist by
/// then), stops it `how`, and checks that it ended as the pages say: by that very signal,
/// re-raised once its guards have cleaned up. The listing must still be running when the
/// signal comes; a run that finished first (status 0) says nothing about the cleanup, so it is
/// started again, ten times at most. (After each `ready` line the listing has milliseconds
/// of work left at least, far longer than the test takes to send the signal, unless a busy
/// machine holds the test back.)
pub(crate) fn stopped(name: &str, args: &[&str], ready: &str, how: Stop) -> Stopped {
    for _ in 0..10 {
        let mut run = listing(name).args(args).spawn();
        let ready = run.wait_for_line(ready);
        let signal = match how {
            Stop::CtrlC => {
                run.ctrl_c();
                libc::SIGINT
            }
            Stop::Term => {
                run.signal("TERM");
                libc::SIGTERM
            }
        };
        let transcript = run.finish();
        if transcript.status.success() {
            eprintln!("{name} finished before {how:?} came; running it again");
            continue;
        }
        assert_eq!(
            transcript.status.signal(),
            Some(signal),
            "{name} after {how:?}: {}\n{}",
            transcript.status,
            transcript.text
        );
        return Stopped { transcript, ready };
    }
    panic!("{name} finished before {how:?} came, ten times");
}

/// `ctrl-c-cleanup` (the chapter's first page): its directory, made under `dir`, and the run.
fn ctrl_c_cleanup(dir: &TestDir, wait: &str) -> (crate::harness::Run, PathBuf) {
    let mut run = listing("ctrl-c-cleanup")
        .args(["--dir", dir.arg(), "--wait", wait])
        .spawn();
    let made = PathBuf::from(&run.wait_for_line(r"^made (.+)$")[1]);
    run.wait_for_line(r"^waiting \d+ s");
    (run, made)
}

/// Its directory and the pid in its name, as the snapshot shows them.
fn redact_run_dir(transcript: &mut Transcript, dir: &TestDir) {
    transcript.redact_matches(&regex::escape(dir.arg()), "[TMP]");
    transcript.redact_matches(r"ctrl-c-cleanup\.\w{6}", "ctrl-c-cleanup.[RANDOM]");
}

#[test]
fn ctrl_c_cleanup_removes_its_directory_on_ctrl_c() {
    let dir = TestDir::new("ctrl-c-cleanup-int");
    // A minute's wait: the Ctrl-C comes long before it ends, on any machine.
    let (run, made) = ctrl_c_cleanup(&dir, "60");
    assert!(Path::new(&made).join("data.txt").is_file(), "{made:?}");
    run.ctrl_c();
    let mut transcript = run.finish();
    // Ended by the signal, re-raised after the guard removed the directory.
    assert_eq!(
        transcript.status.signal(),
        Some(libc::SIGINT),
        "{}",
        transcript.text
    );
    assert!(!made.exists(), "{}", transcript.text);
    dir.assert_empty(&transcript);
    redact_run_dir(&mut transcript, &dir);
    assert_snapshot!(transcript, "ctrl-c");
}

#[test]
fn ctrl_c_cleanup_removes_its_directory_on_sigterm_and_sighup() {
    let dir = TestDir::new("ctrl-c-cleanup-term");
    for (name, signal) in [("TERM", libc::SIGTERM), ("HUP", libc::SIGHUP)] {
        let (run, made) = ctrl_c_cleanup(&dir, "60");
        run.signal(name);
        let transcript = run.finish();
        assert_eq!(
            transcript.status.signal(),
            Some(signal),
            "SIG{name}: {}",
            transcript.text
        );
        assert!(!made.exists(), "SIG{name}: {}", transcript.text);
        dir.assert_empty(&transcript);
    }
}

#[test]
fn ctrl_c_cleanup_removes_its_directory_after_its_wait() {
    let dir = TestDir::new("ctrl-c-cleanup-wait");
    let (run, made) = ctrl_c_cleanup(&dir, "0");
    let mut transcript = run.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert!(!made.exists(), "{}", transcript.text);
    dir.assert_empty(&transcript);
    redact_run_dir(&mut transcript, &dir);
    assert_snapshot!(transcript, "waited");
}

#[test]
fn ctrl_c_cleanup_reports_a_missing_directory() {
    let transcript = listing("ctrl-c-cleanup")
        .args(["--dir", "/nonexistent/directory"])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    let mut transcript = transcript;
    transcript.redact_matches(r"ctrl-c-cleanup\.\w{6}", "ctrl-c-cleanup.[RANDOM]");
    assert_snapshot!(transcript, "missing-dir");
}

#[test]
fn ctrl_c_cleanup_refuses_a_wait_over_an_hour() {
    assert_refused!("ctrl-c-cleanup", &["--wait", "3601"], "long-wait");
}

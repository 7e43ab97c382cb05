//! S7.4, Unix domain sockets: the page src/ipc/sockets.md.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Stop, TestDir, stopped};
use crate::harness::{assert_refused, assert_snapshot, listing};

/// The run directories (`unix-sockets.XXXXXX`) left in `dir`.
fn left_behind(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("unix-sockets."))
        })
        .collect()
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: SO_PEERCRED")]
fn unix_sockets_stream_datagrams_and_peer_credentials() {
    let mut run = listing("unix-sockets").spawn();
    let made = run.wait_for_line(r"^run directory (.+/unix-sockets\.\w{6}), mode 700: ")[1].clone();
    let mut transcript = run.finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    assert!(
        text.contains("stream.sock bound: a socket file: true"),
        "{text}"
    );
    // SO_PEERCRED named the child that connected, and our own user.
    assert!(
        text.contains(": the child: true; same user: true"),
        "{text}"
    );
    assert_eq!(text.matches("child got:  LINE ").count(), 3, "{text}");
    // Every datagram arrived, in order, with its own length (the listing checks each).
    assert!(
        text.contains("parent got all 1000, in order, each as it was sent"),
        "{text}"
    );
    assert!(text.contains("child got the reply: got 1000"), "{text}");
    assert!(!Path::new(&made).exists(), "the run directory remains");
    transcript.redact_matches(
        r"(?m)^run directory .+/unix-sockets\.\w{6},",
        "run directory [TMP]/unix-sockets.[RANDOM],",
    );
    assert_snapshot!(transcript, "run");
}

#[test]
fn unix_sockets_refuses_zero_lines() {
    assert_refused!("unix-sockets", &["--lines", "0"], "zero-lines");
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: SO_PEERCRED")]
fn unix_sockets_reports_a_missing_directory() {
    let mut transcript = listing("unix-sockets")
        .args(["--dir", "/nonexistent/directory"])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert_eq!(transcript.text.lines().count(), 1, "{}", transcript.text);
    transcript.redact_matches(r"unix-sockets\.\w{6}", "unix-sockets.[RANDOM]");
    assert_snapshot!(transcript, "missing-directory");
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: SO_PEERCRED")]
fn unix_sockets_removes_its_directory_when_a_path_is_too_long() {
    // A socket's path must fit in 108 bytes (sun_path); this directory alone is longer.
    let scratch = std::env::temp_dir().join(format!(
        "book-unix-sockets-{}-{}",
        std::process::id(),
        "long".repeat(25)
    ));
    fs::create_dir_all(&scratch).unwrap();
    let run = listing("unix-sockets")
        .args(["--dir".to_string(), scratch.display().to_string()])
        .spawn();
    let mut transcript = run.finish();
    let leftovers = left_behind(&scratch);
    let _ = fs::remove_dir_all(&scratch);
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert!(
        transcript
            .text
            .contains("path must be shorter than SUN_LEN"),
        "{}",
        transcript.text
    );
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    assert_snapshot!(
        transcript
            .redact_matches(&regex::escape(&scratch.to_string_lossy()), "[DIR]")
            .redact_matches(r"unix-sockets\.\w{6}", "unix-sockets.[RANDOM]"),
        "path-too-long"
    );
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: SO_PEERCRED")]
fn unix_sockets_removes_its_sockets_on_ctrl_c_and_sigterm() {
    for how in [Stop::CtrlC, Stop::Term] {
        let dir = TestDir::new("unix-sockets-stopped");
        // 100,000 datagrams: the run lasts long after the socket is bound.
        let args = ["--dir", dir.arg(), "--datagrams", "100000"];
        let run = stopped("unix-sockets", &args, r"^stream\.sock bound", how);
        dir.assert_empty(&run.transcript);
    }
}

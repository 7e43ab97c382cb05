//! Chapter 9: see tests/listings/ipc.rs.

use super::{Stop, stopped};
use crate::harness::{assert_refused, assert_snapshot, listing};

const TOTAL: u64 = 4 * 1_000_000;

#[test]
fn shared_counter_loses_updates_only_when_load_and_store_are_separate() {
    let mut run = listing("shared-counter").spawn();
    let file = run.wait_for_line(r"^shared file: (.+)$")[1].clone();
    // In memory, not on a disk, wherever the system has /dev/shm.
    if std::path::Path::new("/dev/shm").is_dir() {
        assert!(file.starts_with("/dev/shm/"), "{file}");
    }
    let racy = run.wait_for_line(r"^load, then store: (\d+) \((\d+) updates lost\)$");
    let total: u64 = racy[1].parse().unwrap();
    let lost: u64 = racy[2].parse().unwrap();
    // What the book states: updates can be lost, never invented.
    assert!(total <= TOTAL, "{total}");
    assert_eq!(total + lost, TOTAL);
    run.redact(
        &format!("load, then store: {total} ({lost}"),
        "load, then store: [AT MOST 4000000] ([THE REST]",
    );
    let mut transcript = run.finish();
    transcript.redact_matches(
        r"(?m)^shared file: .+$",
        "shared file: /dev/shm/shared-counter-[UNIQUE]/counter",
    );
    assert!(transcript.status.success(), "{}", transcript.text);
    assert!(
        transcript
            .text
            .contains("fetch_add:        4000000 (0 updates lost)"),
        "{}",
        transcript.text
    );
    // The listing's directory is gone, with the file in it.
    let dir = std::path::Path::new(&file).parent().unwrap();
    assert!(!dir.exists(), "{} was left behind", dir.display());
    assert_snapshot!(transcript, "run");
}

#[test]
fn shared_counter_rejects_a_single_process() {
    assert_refused!("shared-counter", &["--processes", "1"], "one-process");
}

#[test]
fn shared_counter_removes_its_directory_on_ctrl_c_and_sigterm() {
    for how in [Stop::CtrlC, Stop::Term] {
        // 100,000,000 additions a child: the run is still counting when the signal comes.
        let args = ["--count", "100000000"];
        let run = stopped("shared-counter", &args, r"^shared file: (.+)$", how);
        let file = std::path::Path::new(&run.ready[1]);
        let dir = file.parent().unwrap();
        assert!(
            !dir.exists(),
            "{} was left behind after {how:?}",
            dir.display()
        );
    }
}

//! Chapter 9: see tests/listings/ipc.rs.

use std::time::Duration;

use super::{Stop, stopped};
use crate::harness::{assert_refused, assert_snapshot, listing, workspace_root};

/// The table's rows: mechanism and ratio, read from the raw output.
fn rows(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .skip_while(|line| !line.starts_with("mechanism"))
        .skip(1)
        .take_while(|line| !line.starts_with("every mechanism"))
        .map(|line| {
            let name = line[..23].trim().to_string();
            let ratio = line.rsplit(' ').next().unwrap();
            (name, ratio.trim_end_matches('x').parse().unwrap())
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "needs Linux: PR_SET_PDEATHSIG, sigtimedwait, futex"
)]
fn ipc_latency_times_every_mechanism_on_this_machine() {
    let mut run = listing("ipc-latency")
        .budget(Duration::from_secs(180))
        .measuring()
        .spawn();
    let folder = run.wait_for_line(r"^temporary directory: (.+)$")[1].clone();
    let mut transcript = run.finish();
    transcript.redact_matches(
        r"(?m)^temporary directory: .+$",
        "temporary directory: [TEMP]/ipc-latency.[RANDOM]",
    );
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    // Each child echoed every value of every round trip, or the listing
    // would have stopped with an error.
    assert!(
        text.contains("every mechanism: 10000 round trips, every value echoed"),
        "{text}"
    );
    let rows = rows(text);
    let names: Vec<&str> = rows.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "anonymous pipes",
            "FIFO pair",
            "Unix stream",
            "Unix datagram",
            "TCP, 127.0.0.1",
            "ipc-channel",
            "shared memory, spinning",
            "shared memory, futex",
            "signals",
        ],
        "{text}"
    );
    // The FIFOs, sockets and shared file went with their folder.
    assert!(
        !std::path::Path::new(&folder).exists(),
        "{folder} was left behind"
    );
    assert_snapshot!(transcript, "this-machine");
    transcript.record_measurement("this-machine");
    recorded_run_says_what_the_pages_say();
}

/// What the pages say of the recorded run (latency.md, spinning.md): the spinning row was the
/// fastest, and the futex row, the same memory woken through the kernel, took hundreds of
/// times as long. A re-recording that contradicts them fails here (while recording, this
/// reads the file just written).
fn recorded_run_says_what_the_pages_say() {
    let path = workspace_root().join("tests/measurements/ipc-latency__this-machine.txt");
    let recorded = std::fs::read_to_string(&path).expect("read the recorded run");
    let rows = rows(&recorded);
    let ratio = |name: &str| {
        rows.iter()
            .find(|(row, _)| row == name)
            .unwrap_or_else(|| panic!("no row {name:?} in {}", path.display()))
            .1
    };
    assert_eq!(ratio("shared memory, spinning"), 1.0, "{recorded}");
    assert!(ratio("shared memory, futex") >= 100.0, "{recorded}");
}

#[test]
fn ipc_latency_rejects_too_few_rounds() {
    assert_refused!("ipc-latency", &["--rounds", "5"], "few-rounds");
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "needs Linux: PR_SET_PDEATHSIG, sigtimedwait, futex"
)]
fn ipc_latency_removes_its_folder_on_ctrl_c_and_sigterm() {
    for how in [Stop::CtrlC, Stop::Term] {
        // A million rounds per mechanism: minutes of work left when the signal comes.
        let args = ["--rounds", "1000000"];
        let run = stopped("ipc-latency", &args, r"^temporary directory: (.+)$", how);
        let folder = std::path::Path::new(&run.ready[1]);
        assert!(
            !folder.exists(),
            "{} was left behind after {how:?}",
            folder.display()
        );
    }
}

//! Every listing, run for real: one module per chapter, one shared harness.
//! Snapshots live in tests/snapshots/, named `<listing>__<scenario>.snap`.

mod harness;

mod async_basics;
mod async_channels;
mod c10k;
mod coroutines;
mod echo;
mod futures;
mod gil;
mod hardening;
mod http;
mod ipc;
mod iterators;
mod mutex;
mod mutex_depth;
mod names;
mod ordering;
mod queues;
mod reactor;
mod readiness;
mod tcp;
mod tcp_depth;
mod thread_communication;
mod threads;
mod udp;

/// Every listing answers `--help` with clap's usage line and exit status 0, as a real program
/// does: each crate under `listings/`, found there, so a new listing is checked without a line
/// of its own.
#[test]
fn every_listing_answers_help() {
    let mut names = Vec::new();
    let listings = harness::workspace_root().join("listings");
    for chapter in std::fs::read_dir(&listings).expect("listings/").flatten() {
        for krate in std::fs::read_dir(chapter.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if krate.path().join("src/main.rs").exists() {
                names.push(krate.file_name().to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    assert!(!names.is_empty(), "no listing under {}", listings.display());
    for name in &names {
        harness::assert_answers_help(name);
    }
}

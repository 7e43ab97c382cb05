//! Every listing, run for real: one module per chapter, one shared harness.
//! Snapshots live in tests/snapshots/, named `<listing>__<scenario>.snap`.

mod harness;

mod coroutines;
mod gil;
mod http;
mod ipc;
mod iterators;
mod mutex;
mod queues;
mod tcp;
mod thread_communication;
mod threads;
mod udp;

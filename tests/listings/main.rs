//! Every listing, run for real: one module per chapter, one shared harness.
//! Snapshots live in tests/snapshots/, named `<listing>__<scenario>.snap`.

mod harness;

mod async_basics;
mod c10k;
mod coroutines;
mod echo;
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

//! S11.1: C10K's parts that are not the measurement itself: the servers, run
//! in child processes, and what the system allows and reports (Linux only).

pub mod server;
pub mod system;

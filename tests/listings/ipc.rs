//! Chapter 9, communication between processes (S7.1-S7.7): one file per page.

mod files;
mod latency;
mod pipes;
mod queues;
mod shared_memory;
mod signals;
mod sockets;

//! Chapter 9: see tests/listings/ipc.rs.

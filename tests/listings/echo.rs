//! Chapter 12 (S11.1).

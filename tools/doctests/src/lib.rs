//! The book's chapters as documentation, so that `cargo test` compiles (and, unless a block
//! says `no_run`, runs) every Rust block in them. See `build.rs`.

include!(concat!(env!("OUT_DIR"), "/chapters.rs"));

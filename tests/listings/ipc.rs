//! Chapter 9, communication between processes (S7.1-S7.7): one file per page.

mod files;
mod latency;
mod pipes;
mod queues;
mod shared_memory;
mod signals;
mod sockets;

use std::path::PathBuf;

use crate::harness::Transcript;

/// A directory a test owns, passed to the listing as `--dir`; removed when dropped.
pub(crate) struct TestDir(PathBuf);

impl TestDir {
    pub fn new(test: &str) -> TestDir {
        let name = format!("book-test-{test}-{}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).expect("create the test's directory");
        TestDir(path)
    }

    pub fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }

    /// The listing removed everything it made in the directory.
    pub fn assert_empty(&self, transcript: &Transcript) {
        let left: Vec<_> = std::fs::read_dir(&self.0)
            .expect("read the test's directory")
            .map(|entry| entry.expect("an entry").path())
            .collect();
        assert!(
            left.is_empty(),
            "left behind: {left:?}\n{}",
            transcript.text
        );
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

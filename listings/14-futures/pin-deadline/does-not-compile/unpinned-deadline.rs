// Beyond the notes: one deadline for a loop of reads, polled by select!
// through `&mut` without being pinned. It does not compile; the book
// shows the error.
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::sleep;

#[tokio::main]
async fn main() {
    let (_peer, near) = tokio::io::duplex(1024);
    let mut lines = BufReader::new(near).lines();
    let mut deadline = sleep(Duration::from_millis(100));
    loop {
        tokio::select! {
            line = lines.next_line() => println!("{line:?}"),
            () = &mut deadline => break,
        }
    }
}

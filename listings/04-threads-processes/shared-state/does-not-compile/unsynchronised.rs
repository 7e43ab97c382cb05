// S3.4: the notes' shared global, incremented by two threads with no lock.
// This program does not compile; the book shows the compiler's error.
use std::thread;

fn main() {
    let mut visits = 0;
    thread::scope(|s| {
        s.spawn(|| visits += 1);
        s.spawn(|| visits += 1);
    });
    println!("{visits}");
}

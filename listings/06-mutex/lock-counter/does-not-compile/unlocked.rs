// S5.1: the notes' counter with no lock: two threads share ownership of it
// through an Arc, and each adds 1. This program does not compile; the book
// shows the compiler's error.
use std::sync::Arc;
use std::thread;

fn main() {
    let counter = Arc::new(0_u64);
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let counter = Arc::clone(&counter);
            thread::spawn(move || {
                for _ in 0..10_000_000 {
                    *counter += 1;
                }
            })
        })
        .collect();
    for task in tasks {
        task.join().unwrap();
    }
    println!("{counter}");
}

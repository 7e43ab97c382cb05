// S8.1: a batch sent through a channel, then used by the sender. This
// program does not compile; the book shows the compiler's error.
use std::sync::mpsc;
use std::thread;

fn main() {
    let (to_worker, batches) = mpsc::channel::<Vec<String>>();
    let worker = thread::spawn(move || {
        for mut batch in batches {
            batch.push("from the worker".to_string());
        }
    });
    let batch = vec!["get /".to_string()];
    to_worker.send(batch).unwrap();
    println!("sent {} lines", batch.len());
    drop(to_worker);
    worker.join().unwrap();
}

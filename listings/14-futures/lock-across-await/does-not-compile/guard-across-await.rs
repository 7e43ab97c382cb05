// Beyond the notes: a std Mutex guard held across an .await, in a task
// given to tokio::spawn. It does not compile; the book shows the error.
use std::sync::{Arc, Mutex};

#[tokio::main]
async fn main() {
    let visits = Arc::new(Mutex::new(0));
    let task = tokio::spawn(async move {
        let mut count = visits.lock().unwrap();
        *count += 1;
        tokio::task::yield_now().await;
        println!("visitor number {count}");
    });
    task.await.unwrap();
}

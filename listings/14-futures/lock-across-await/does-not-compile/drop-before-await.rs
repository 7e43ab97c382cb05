// Beyond the notes: the guard dropped by hand before the .await. The
// compiler still counts it as held to the end of its scope, so this does
// not compile either; a block around the guard does.
use std::sync::{Arc, Mutex};

#[tokio::main]
async fn main() {
    let visits = Arc::new(Mutex::new(0));
    let task = tokio::spawn(async move {
        let mut count = visits.lock().unwrap();
        *count += 1;
        let number = *count;
        drop(count);
        tokio::task::yield_now().await;
        println!("visitor number {number}");
    });
    task.await.unwrap();
}

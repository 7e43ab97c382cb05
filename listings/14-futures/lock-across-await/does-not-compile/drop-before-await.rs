// Beyond the notes: the guard dropped by hand before the .await. It was
// borrowed (`*count += 1` is `deref_mut(&mut count)`), and a borrowed local
// stays in the future until its scope ends, moved out or not: refused too.
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

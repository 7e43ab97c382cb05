// S11.1: a task that borrows a local variable. This `spawn` has the bounds
// of tokio::spawn (F: Future + Send + 'static), written out so that rustc
// alone can check the file. It does not compile; the book shows the error.
use std::future::Future;

fn spawn<F>(task: F)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    drop(task);
}

fn main() {
    let names = vec!["ada".to_string(), "grace".to_string()];
    spawn(async {
        println!("{} names", names.len());
    });
}

// Beyond the notes: a task given to tokio::spawn that shares an
// Rc<RefCell<..>>. It does not compile; the book shows the error.
use std::cell::RefCell;
use std::rc::Rc;

#[tokio::main]
async fn main() {
    let visitors = Rc::new(RefCell::new(Vec::new()));
    let shared = Rc::clone(&visitors);
    let task = tokio::spawn(async move {
        shared.borrow_mut().push("ada");
        tokio::task::yield_now().await;
    });
    task.await.unwrap();
    println!("visitors: {:?}", visitors.borrow());
}

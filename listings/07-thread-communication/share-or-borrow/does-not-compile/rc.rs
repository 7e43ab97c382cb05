// S8.1: a reference-counted value sent to another thread: Rc counts its
// owners with a plain integer, not an atomic. This program does not
// compile; the book shows the compiler's error.
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;

fn main() {
    let routes = Rc::new(vec!["/".to_string()]);
    let (to_worker, from_main) = mpsc::channel::<Rc<Vec<String>>>();
    let worker = thread::spawn(move || from_main.recv().map(|r| r.len()));
    to_worker.send(Rc::clone(&routes)).unwrap();
    println!("{:?}", worker.join().unwrap());
}

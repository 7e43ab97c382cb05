// S8.1: a RefCell lent to two scoped threads, each changing it through a
// shared reference. This program does not compile; the book shows the
// compiler's error.
use std::cell::RefCell;
use std::thread;

fn main() {
    let visits = RefCell::new(0);
    thread::scope(|s| {
        s.spawn(|| *visits.borrow_mut() += 1);
        s.spawn(|| *visits.borrow_mut() += 1);
    });
    println!("{}", visits.into_inner());
}

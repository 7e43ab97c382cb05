//! Beyond the notes: tasks that share an Rc<RefCell<..>>, which is not
//! Send. tokio::spawn refuses them; spawn_local on a LocalSet runs them on
//! the one thread that owns the Rc.

use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;

use anyhow::Context;
use clap::Parser;
use tokio::task::{LocalSet, yield_now};

/// Tasks on one thread that record their visits in a shared Rc<RefCell<..>>.
#[derive(Parser)]
struct Args {
    /// How many tasks.
    #[arg(long, default_value_t = 3)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=100))]
    tasks: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local-tasks: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: run
#[tokio::main(flavor = "current_thread")]
async fn run(args: &Args) -> anyhow::Result<()> {
    // A LocalSet's tasks run only while it is driven, and only on the
    // thread that drives it: here, this one, until visit_all returns.
    LocalSet::new().run_until(visit_all(args.tasks)).await
}
// ANCHOR_END: run

// ANCHOR: visit_all
async fn visit_all(tasks: u32) -> anyhow::Result<()> {
    let visitors = Rc::new(RefCell::new(Vec::new()));
    let mut handles = Vec::new();
    for id in 1..=tasks {
        let visitors = Rc::clone(&visitors);
        handles.push(tokio::task::spawn_local(async move {
            // The borrow ends with the statement: a RefCell borrowed across
            // an .await would make the next task's borrow_mut panic.
            visitors.borrow_mut().push(id);
            yield_now().await;
            let seen = visitors.borrow().len();
            println!("task {id}: {seen} visitors so far");
        }));
    }
    for handle in handles {
        handle.await.context("a visiting task failed")?;
    }
    println!(
        "visitors: {:?}; references to the list left: {}",
        visitors.borrow(),
        Rc::strong_count(&visitors)
    );
    Ok(())
}
// ANCHOR_END: visit_all

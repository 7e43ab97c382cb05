//! Beyond the notes: a trait whose method is async, two backends that
//! implement it, a generic function over them, and a dyn-compatible twin of
//! the trait that boxes each call's future, for a list of backends of
//! different types, each queried in a task of its own.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

/// Looks names up in two backends, through generics and through `dyn`.
#[derive(Parser)]
struct Args {
    /// The names to look up.
    #[arg(default_values_t = ["ada".to_string(), "grace".to_string(), "linus".to_string()])]
    names: Vec<String>,
    /// How long the slow backend takes to answer, in milliseconds.
    #[arg(long, default_value_t = 20)]
    #[arg(value_parser = clap::value_parser!(u64).range(0..=1_000))]
    delay_ms: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("async-trait: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: trait
/// Written `async fn look_up(&self, name: &str) -> Option<String>;` it would
/// promise nothing about the future's Send. This form promises it, for
/// every implementation, which may still be written as an async fn.
trait Lookup {
    fn look_up(
        &self,
        name: &str,
    ) -> impl Future<Output = Option<String>> + Send;
}

/// Names kept in memory.
struct Table;

impl Lookup for Table {
    async fn look_up(&self, name: &str) -> Option<String> {
        let full = match name {
            "ada" => "Ada Lovelace",
            "grace" => "Grace Hopper",
            _ => return None,
        };
        Some(full.to_string())
    }
}

/// A directory that answers after a delay, as a service across a network.
struct Directory {
    delay: Duration,
}

impl Lookup for Directory {
    async fn look_up(&self, name: &str) -> Option<String> {
        tokio::time::sleep(self.delay).await;
        (name == "linus").then(|| "Linus Torvalds".to_string())
    }
}

/// Generic: one copy of this function per backend type, each call a plain
/// (unboxed) future.
async fn known<L: Lookup>(backend: &L, names: &[String]) -> usize {
    let mut known = 0;
    for name in names {
        known += usize::from(backend.look_up(name).await.is_some());
    }
    known
}
// ANCHOR_END: trait

// ANCHOR: dyn
/// The dyn-compatible twin: one return type for every implementation, a
/// future boxed on the heap, pinned, Send, and borrowing `self` and `name`.
trait DynLookup {
    fn look_up<'a>(
        &'a self,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>>;
}

impl<T: Lookup> DynLookup for T {
    fn look_up<'a>(
        &'a self,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>> {
        Box::pin(Lookup::look_up(self, name))
    }
}
// ANCHOR_END: dyn

#[tokio::main]
async fn run(args: &Args) -> anyhow::Result<()> {
    let directory = Directory {
        delay: Duration::from_millis(args.delay_ms),
    };
    println!(
        "table knows {} of the names",
        known(&Table, &args.names).await
    );
    println!(
        "directory knows {} of the names",
        known(&directory, &args.names).await
    );
    by_dyn(Arc::new(Table), Arc::new(directory), &args.names).await
}

// ANCHOR: by_dyn
async fn by_dyn(
    table: Arc<Table>,
    directory: Arc<Directory>,
    names: &[String],
) -> anyhow::Result<()> {
    let backends: Vec<(&str, Arc<dyn DynLookup + Send + Sync>)> =
        vec![("table", table), ("directory", directory)];
    for name in names {
        let mut tasks = Vec::new();
        for (which, backend) in &backends {
            let (backend, name) = (Arc::clone(backend), name.clone());
            // The boxed future is Send, so the task that awaits it is too.
            tasks.push((
                *which,
                tokio::spawn(async move { backend.look_up(&name).await }),
            ));
        }
        for (which, task) in tasks {
            let found = task.await.context("a lookup task failed")?;
            println!(
                "{name} in the {which}: {}",
                found.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(())
}
// ANCHOR_END: by_dyn

//! Beyond the notes: tokio's other three channels. A oneshot carries the reply
//! from a task that owns its state (the actor pattern); a watch keeps only the
//! newest value, so a slow reader skips the ones in between; a broadcast gives
//! every subscriber every message sent after it subscribed.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// A hit counter behind a oneshot, a watch of the server's state, and a broadcast.
#[derive(Parser)]
struct Args {
    /// The pages to count a hit for, in order.
    #[arg(default_values_t = ["/".to_string(), "/about".to_string(), "/".to_string()])]
    pages: Vec<String>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("actor-channels: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// One thread, as asyncio has: tasks take turns only at an `.await`, so the
// lines come out in the same order on every run.
#[tokio::main(flavor = "current_thread")]
async fn run(args: Args) -> Result<()> {
    actor(&args.pages).await?;
    latest().await?;
    every().await
}

// ANCHOR: actor
/// A request to the counter, with the channel its answer goes back on.
struct Hit {
    page: String,
    reply: oneshot::Sender<u64>,
}

/// The actor: the only code that touches `hits`, so it needs no lock.
async fn hit_counter(mut requests: mpsc::Receiver<Hit>) -> usize {
    let mut hits: HashMap<String, u64> = HashMap::new();
    while let Some(Hit { page, reply }) = requests.recv().await {
        let count = hits.entry(page).or_default();
        *count += 1;
        // The asker may have given up waiting: then nobody wants the answer.
        let _ = reply.send(*count);
    }
    hits.len()
}

/// What callers use: a request and its reply, as one `async fn`.
async fn hit(counter: &mpsc::Sender<Hit>, page: &str) -> Result<u64> {
    let (reply, answer) = oneshot::channel();
    let page = page.to_string();
    counter
        .send(Hit { page, reply })
        .await
        .context("the counter has stopped")?;
    answer.await.context("the counter dropped the request")
}

async fn actor(pages: &[String]) -> Result<()> {
    let (counter, requests) = mpsc::channel(16);
    let actor = tokio::spawn(hit_counter(requests));
    for page in pages {
        let count = hit(&counter, page).await?;
        println!("oneshot: {page} has {count} hit(s)");
    }
    drop(counter); // the actor's loop ends when its last sender is gone
    let pages = actor.await.context("the counter panicked")?;
    println!("oneshot: the counter ended, having seen {pages} page(s)");
    Ok(())
}
// ANCHOR_END: actor

// ANCHOR: latest
async fn latest() -> Result<()> {
    let (state, mut watcher) = watch::channel("starting");
    let worker = tokio::spawn(async move {
        let mut seen = vec![*watcher.borrow_and_update()];
        // changed() waits for a value newer than the last one seen, and fails
        // once the sender is dropped and there is nothing newer to see.
        while watcher.changed().await.is_ok() {
            seen.push(*watcher.borrow_and_update());
        }
        seen
    });
    tokio::task::yield_now().await; // let the worker see "starting" first
    // Two changes with no `.await` between them: the second overwrites the first
    // before the worker runs again.
    state.send("serving").context("the worker is gone")?;
    state.send("shutting down").context("the worker is gone")?;
    drop(state);
    let seen = worker.await.context("the worker panicked")?;
    println!("watch: the worker saw {}", seen.join(", then "));
    Ok(())
}
// ANCHOR_END: latest

// ANCHOR: every
async fn every() -> Result<()> {
    let (news, mut early) = broadcast::channel::<String>(16);
    news.send("first".into()).context("no subscriber")?;
    let mut late = news.subscribe(); // sees only what is sent from now on
    news.send("second".into()).context("no subscriber")?;
    news.send("third".into()).context("no subscriber")?;
    drop(news);
    for (name, rx) in [("early", &mut early), ("late", &mut late)] {
        let mut got = Vec::new();
        // Each receiver has its own place in the queue; Closed ends it once the
        // sender is gone and it has read everything.
        while let Ok(message) = rx.recv().await {
            got.push(message);
        }
        println!("broadcast: {name} subscriber got {}", got.join(", "));
    }
    Ok(())
}
// ANCHOR_END: every

//! S1.1 and S3.2: the notes' request function run 100 times at once, as the
//! notes' thread demo does: on 100 threads that each block on their own
//! socket (ureq), and as 100 tokio tasks on one runtime (reqwest).

use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;

/// Send the same GET many times at once, on threads and as async tasks.
#[derive(Parser)]
struct Args {
    /// The URL to fetch.
    url: String,
    /// How many requests to run at once.
    #[arg(long, default_value_t = 100)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=10_000))]
    count: u32,
    /// Seconds one request may take.
    #[arg(long, default_value_t = 30)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

/// When one request finished, counted from the start of its round, or why
/// it failed.
type Outcome = Result<Duration, String>;

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http-many: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let timeout = Duration::from_secs(args.timeout);
    let (url, count) = (args.url.as_str(), args.count);
    let runtime = tokio::runtime::Runtime::new()?;
    let threads = || on_threads(url, count, timeout);
    let tasks = || runtime.block_on(as_tasks(url, count, timeout));

    // Each way runs twice, and the second round counts: the first rounds
    // pay for what is cold (the server, the runtime, the page cache).
    let _ = (threads(), tasks()?);
    let threads = report("threads", &threads());
    let tasks = report("tasks", &tasks()?);
    match (threads, tasks) {
        (Some(threads), Some(tasks)) => {
            let ratio = tasks.as_secs_f64() / threads.as_secs_f64();
            println!("tasks took {ratio:.2}x the time of threads");
            Ok(())
        }
        _ => bail!("some requests failed"),
    }
}

// ANCHOR: threads
/// One OS thread per request; each blocks in its own socket calls.
fn on_threads(url: &str, count: u32, timeout: Duration) -> Vec<Outcome> {
    let config = ureq::Agent::config_builder().timeout_global(Some(timeout));
    let agent = ureq::Agent::new_with_config(config.build());
    let started = Instant::now();
    let get = || -> Outcome {
        let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
        response
            .body_mut()
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok(started.elapsed())
    };
    thread::scope(|scope| {
        let requests: Vec<_> = (0..count)
            .map(|_| thread::Builder::new().spawn_scoped(scope, get))
            .collect();
        let join = |request: Result<thread::ScopedJoinHandle<Outcome>, _>| {
            let request = request.map_err(|e| format!("no thread: {e}"))?;
            request.join().unwrap_or(Err("the thread panicked".into()))
        };
        requests.into_iter().map(join).collect()
    })
}
// ANCHOR_END: threads

// ANCHOR: tasks
/// One tokio task per request; a few threads poll them all.
async fn as_tasks(
    url: &str,
    count: u32,
    timeout: Duration,
) -> Result<Vec<Outcome>> {
    let client = reqwest::Client::builder().timeout(timeout).build()?;
    let started = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..count {
        let request = client.get(url);
        requests.spawn(async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            let response =
                response.error_for_status().map_err(|e| e.to_string())?;
            response.bytes().await.map_err(|e| e.to_string())?;
            Ok(started.elapsed())
        });
    }
    Ok(requests.join_all().await)
}
// ANCHOR_END: tasks

/// Prints one line for a round: how many requests succeeded, and when the
/// first, the median and the last finished. Returns when the last finished,
/// if all succeeded.
fn report(how: &str, outcomes: &[Outcome]) -> Option<Duration> {
    let mut done: Vec<Duration> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().copied())
        .collect();
    done.sort();
    let total = outcomes.len();
    print!("{how}: {} of {total} requests succeeded", done.len());
    if let (Some(first), Some(last)) = (done.first(), done.last()) {
        let median = done[done.len() / 2];
        print!(", finished after {first:.1?} (first), {median:.1?} (median),");
        print!(" {last:.1?} (last)");
    }
    println!();
    if let Some(Err(error)) = outcomes.iter().find(|o| o.is_err()) {
        println!("{how}: first failure: {error}");
    }
    if done.len() == total {
        done.last().copied()
    } else {
        None
    }
}

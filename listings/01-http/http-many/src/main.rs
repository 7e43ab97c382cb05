//! S1.1: the notes' request function run 100 times at once, as the notes do
//! with 100 threads: first on 100 threads that each block on their own
//! socket (ureq), then as 100 tokio tasks on one runtime (reqwest).

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

/// How long one request took, or why it failed.
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

    let started = Instant::now();
    let threads = on_threads(&args.url, args.count, timeout);
    let threads_wall = started.elapsed();
    let threads_ok = report("threads", threads_wall, &threads);

    let runtime = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    let tasks = runtime.block_on(as_tasks(&args.url, args.count, timeout))?;
    let tasks_wall = started.elapsed();
    let tasks_ok = report("tasks", tasks_wall, &tasks);
    let ratio = tasks_wall.as_secs_f64() / threads_wall.as_secs_f64();
    println!("tasks took {ratio:.2}x the wall time of threads");

    if !(threads_ok && tasks_ok) {
        bail!("some requests failed");
    }
    Ok(())
}

// ANCHOR: threads
/// One OS thread per request; each blocks in its own socket calls.
fn on_threads(url: &str, count: u32, timeout: Duration) -> Vec<Outcome> {
    let config = ureq::Agent::config_builder().timeout_global(Some(timeout));
    let agent = ureq::Agent::new_with_config(config.build());
    thread::scope(|scope| {
        let requests: Vec<_> = (0..count)
            .map(|_| {
                scope.spawn(|| {
                    let started = Instant::now();
                    let mut response =
                        agent.get(url).call().map_err(|e| e.to_string())?;
                    let body = response.body_mut();
                    body.read_to_vec().map_err(|e| e.to_string())?;
                    Ok(started.elapsed())
                })
            })
            .collect();
        requests
            .into_iter()
            .map(|request| request.join().unwrap_or(Err("panicked".into())))
            .collect()
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
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..count {
        let request = client.get(url);
        requests.spawn(async move {
            let started = Instant::now();
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

/// Prints one line for a round: how many succeeded, in what wall time, and
/// the spread of the single requests' times. Returns whether all succeeded.
fn report(how: &str, wall: Duration, outcomes: &[Outcome]) -> bool {
    let mut times: Vec<Duration> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().copied())
        .collect();
    times.sort();
    let total = outcomes.len();
    print!(
        "{how}: {} of {total} requests succeeded in {wall:.1?}",
        times.len()
    );
    if let (Some(first), Some(last)) = (times.first(), times.last()) {
        let median = times[times.len() / 2];
        print!("; each took {first:.1?} to {last:.1?}, median {median:.1?}");
    }
    println!();
    if let Some(Err(error)) = outcomes.iter().find(|o| o.is_err()) {
        println!("{how}: first failure: {error}");
    }
    times.len() == total
}

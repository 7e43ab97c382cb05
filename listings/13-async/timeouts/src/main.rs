//! S11.1: tokio::time::timeout, Rust's asyncio.wait_for: a question whose
//! reply comes at once is answered well within the limit; one whose reply
//! never comes times out, and the wait for it is cancelled by dropping it,
//! which the other side sees.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use tokio::sync::oneshot;
use tokio::time::timeout;

/// Ask two questions, each with a time limit.
#[derive(Parser)]
struct Args {
    /// How long to wait for each reply, in milliseconds.
    #[arg(long, default_value_t = 200)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=60_000))]
    limit_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("timeouts: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let limit = Duration::from_millis(args.limit_ms);
    ask("the time", Responder::AnswersAtOnce, limit).await?;
    ask("the meaning of life", Responder::NeverAnswers, limit).await
}

#[derive(Clone, Copy)]
enum Responder {
    AnswersAtOnce,
    NeverAnswers,
}

// ANCHOR: ask
async fn ask(
    question: &str,
    responder: Responder,
    limit: Duration,
) -> Result<()> {
    let (mut reply_to, reply) = oneshot::channel();
    let responder = tokio::spawn(async move {
        match responder {
            Responder::AnswersAtOnce => {
                // Fails only if the asker has stopped waiting: then nobody
                // wants the answer, and there is nothing to do.
                let _ = reply_to.send("12:00");
                "replied"
            }
            Responder::NeverAnswers => {
                // Holds the sender, so the reply stays pending, until the
                // asker drops its end.
                reply_to.closed().await;
                "saw the asker give up: the wait was dropped"
            }
        }
    });
    let ms = limit.as_millis();
    println!("asking {question}, waiting at most {ms} ms");
    match timeout(limit, reply).await {
        Ok(Ok(answer)) => println!("  answer: {answer}"),
        Ok(Err(_)) => println!("  the responder left without an answer"),
        Err(elapsed) => println!("  no answer: {elapsed}"),
    }
    println!("  responder: {}", responder.await?);
    Ok(())
}
// ANCHOR_END: ask

//! S1.1: the notes' GET with a browser's User-Agent, through reqwest, the
//! client a Rust programmer picks where a Python one picks `requests`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;

/// The User-Agent of the notes: a Chrome on Windows, as a browser sends it.
const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/80.0.3987.87 Safari/537.36 SE 2.X MetaSr 1.0";

/// GET a URL and print the status, a few headers and the body's size.
#[derive(Parser)]
struct Args {
    /// The URL to fetch (http:// or https://).
    url: reqwest::Url,
    /// The User-Agent header to send.
    #[arg(long, default_value = BROWSER)]
    user_agent: String,
    /// Seconds the whole request may take.
    #[arg(long, default_value_t = 30)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

fn main() -> ExitCode {
    // rustls needs a cryptography provider, and this book builds it with
    // `ring` (chapter 1 says why); this fails, harmlessly, if one is already
    // installed. A reqwest with its default features needs no such line.
    // ANCHOR: provider
    let _ = rustls::crypto::ring::default_provider().install_default();
    // ANCHOR_END: provider
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http-get: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: get
fn run(args: Args) -> Result<()> {
    let client = reqwest::blocking::Client::builder()
        .user_agent(&args.user_agent)
        .timeout(Duration::from_secs(args.timeout))
        .build()?;
    let url = args.url;
    if !matches!(url.scheme(), "http" | "https") {
        anyhow::bail!("{url}: not an http:// or https:// URL");
    }
    let response = client.get(url.clone()).send().map_err(|e| {
        if e.is_timeout() {
            anyhow::anyhow!("GET {url}: no response within {} s", args.timeout)
        } else {
            anyhow::anyhow!("GET {url}: {}", root_cause(&e))
        }
    })?;

    println!("{:?} {}", response.version(), response.status());
    for name in ["content-type", "content-length", "server"] {
        if let Some(value) = response.headers().get(name) {
            println!("{name}: {}", value.to_str().unwrap_or("(not text)"));
        }
    }
    // Like requests, reqwest returns a 404 or a 500 as a response, not an
    // error; this program treats them as failures, after printing them.
    let status = response.status();
    // A timeout can also strike while the body arrives; reqwest reports it
    // as "error decoding response body", with the timeout in its sources.
    let body = response.bytes().map_err(|e| {
        if e.is_timeout() {
            anyhow::anyhow!(
                "GET {url}: timed out after {} s, while the body arrived",
                args.timeout
            )
        } else {
            anyhow::anyhow!("GET {url}: cannot read the body: {}", chain(&e))
        }
    })?;
    println!("body: {} bytes", body.len());
    if status.is_client_error() || status.is_server_error() {
        anyhow::bail!("the server answered {status}");
    }
    Ok(())
}
// ANCHOR_END: get

/// reqwest wraps the error that matters in several layers ("error sending
/// request", "client error (Connect)"); the innermost one is what happened.
fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// Every layer of an error, outermost first: what reqwest was doing, and why.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        text += &format!(": {source}");
        cause = source.source();
    }
    text
}

//! S1.1: the other half of the notes' request: a POST with a body and
//! headers, through reqwest; prints the status and the response body.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// POST a body to a URL and print the response.
#[derive(Parser)]
struct Args {
    /// The URL to post to.
    url: reqwest::Url,
    /// The request body.
    #[arg(short, long, default_value = "")]
    data: String,
    /// A request header, as "Name: value" (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Seconds the whole request may take.
    #[arg(long, default_value_t = 30)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

fn main() -> ExitCode {
    // rustls needs a cryptography provider, and this book builds it with
    // `ring` (chapter 1 says why); this fails, harmlessly, if one is already
    // installed. A reqwest with its default features needs no such line.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http-post: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: post
fn run(args: Args) -> Result<()> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(args.timeout))
        .build()?;
    let response = client
        .post(args.url.clone())
        .headers(parse_headers(&args.headers)?)
        .body(args.data)
        .send()
        .map_err(|e| {
            anyhow::anyhow!("POST {}: {}", args.url, root_cause(&e))
        })?;
    let status = response.status();
    println!("{:?} {status}", response.version());
    println!("{}", response.text().context("cannot read the body")?);
    if !status.is_success() {
        bail!("the server answered {status}");
    }
    Ok(())
}

/// "Name: value" strings into a HeaderMap; the http crate rejects names
/// and values that are not valid HTTP (a newline in a value, say).
fn parse_headers(headers: &[String]) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for header in headers {
        let Some((name, value)) = header.split_once(':') else {
            bail!("{header:?} is not Name: value");
        };
        let name = HeaderName::try_from(name.trim())
            .with_context(|| format!("bad header name in {header:?}"))?;
        let value = HeaderValue::try_from(value.trim())
            .with_context(|| format!("bad header value in {header:?}"))?;
        map.append(name, value);
    }
    Ok(map)
}
// ANCHOR_END: post

/// reqwest wraps the error that matters in several layers; the innermost
/// one is what happened.
fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

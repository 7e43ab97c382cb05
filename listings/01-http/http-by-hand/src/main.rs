//! S1.1: the notes' request (url, method, body, headers) written by hand as
//! HTTP/1.1 text on a TCP stream, and the response parsed back: the work a
//! client library does for you. Plain http:// only; https needs TLS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use url::Url;

/// Send one HTTP/1.1 request by hand and print both sides of the exchange.
#[derive(Parser)]
struct Args {
    /// An http:// URL.
    url: Url,
    /// The request method.
    #[arg(short = 'X', long, default_value = "GET")]
    method: String,
    /// A request header, as "Name: value" (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// The request body.
    #[arg(short, long)]
    data: Option<String>,
    /// Seconds to wait for the connection and for each read.
    #[arg(long, default_value_t = 30)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

/// Larger lines or bodies mean a broken or hostile server, not a web page.
const MAX_LINE: u64 = 8 * 1024;
const MAX_BODY: u64 = 64 * 1024 * 1024;

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http-by-hand: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let url = &args.url;
    ensure!(
        url.scheme() == "http",
        "{url}: only http:// (https needs TLS)"
    );
    let host = url.host_str().context("the URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let request = build_request(&args)?;
    let timeout = Duration::from_secs(args.timeout);
    let stream = connect(host, port, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;

    show('>', &request);
    (&stream).write_all(request.as_bytes())?;

    let mut response = BufReader::new(&stream);
    let (head, body) = read_response(&mut response).map_err(|e| {
        match e.downcast_ref::<std::io::Error>() {
            Some(io) if is_timeout(io) => {
                anyhow::anyhow!("no response within {} s", args.timeout)
            }
            _ => e,
        }
    })?;
    show('<', &head);
    if !body.is_empty() {
        println!("{}", String::from_utf8_lossy(&body));
    }
    // As with requests, a 404 or a 500 is a response, not a failed request;
    // this program reports it as a failure after printing it.
    let status = head.lines().next().unwrap_or_default();
    let code = status.split(' ').nth(1).unwrap_or_default();
    if code.starts_with(['4', '5']) {
        bail!(
            "the server answered {}",
            status.split_once(' ').unwrap_or_default().1
        );
    }
    Ok(())
}

/// Tries each address the host name resolves to, as Python's
/// `socket.create_connection` does, and reports the last failure.
fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
    let mut last_error = None;
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = Some((addr, e)),
        }
    }
    match last_error {
        Some((addr, e)) => Err(e).context(format!("cannot connect to {addr}")),
        None => bail!("{host} has no address"),
    }
}

// ANCHOR: request
/// The request line, the headers, a blank line, then the body.
fn build_request(args: &Args) -> Result<String> {
    let url = &args.url;
    let mut path = url.path().to_string();
    if let Some(query) = url.query() {
        path = format!("{path}?{query}");
    }
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let method = &args.method;
    ensure!(is_token(method), "{method:?} is not a method name");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for header in &args.headers {
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        // A CR or LF in a value would start a header the user never wrote.
        let clean = !value.contains(['\r', '\n']);
        ensure!(is_token(name) && clean, "{header:?} is not Name: value");
        request += &format!("{name}: {}\r\n", value.trim());
    }
    // One request per connection: the server closes it after answering.
    request += "Connection: close\r\n";
    if let Some(body) = &args.data {
        request += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
    } else {
        request += "\r\n";
    }
    Ok(request)
}
// ANCHOR_END: request

fn is_token(text: &str) -> bool {
    let special = "!#$%&'*+-.^_`|~";
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || special.contains(c))
}

// ANCHOR: response
/// Reads the status line and headers, then the body in whichever of the
/// three ways the headers announce: chunked, a length, or until the close.
fn read_response(reader: &mut impl BufRead) -> Result<(String, Vec<u8>)> {
    let status = read_line(reader)?;
    let mut parts = status.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    ensure!(version.starts_with("HTTP/1."), "not HTTP/1.x: {status:?}");
    ensure!(code.parse::<u16>().is_ok(), "no status code in {status:?}");

    let mut head = format!("{status}\r\n");
    let (mut chunked, mut length) = (false, None);
    loop {
        let line = read_line(reader)?;
        head += &format!("{line}\r\n");
        if line.is_empty() {
            break; // the blank line ends the headers
        }
        let (name, value) = line.split_once(':').context("bad header")?;
        let (name, value) = (name.to_ascii_lowercase(), value.trim());
        if name == "transfer-encoding" {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name == "content-length" {
            length = Some(value.parse::<u64>().context("bad Content-Length")?);
        }
    }

    let mut body = Vec::new();
    if chunked {
        read_chunks(reader, &mut body)?;
    } else if let Some(length) = length {
        ensure!(length <= MAX_BODY, "a {length}-byte body is too large");
        reader.take(length).read_to_end(&mut body)?;
        ensure!(body.len() as u64 == length, "the body ended early");
    } else {
        reader.take(MAX_BODY).read_to_end(&mut body)?;
    }
    Ok((head, body))
}

/// Each chunk is its size in hex on a line, the bytes, and CRLF; size 0
/// ends the body.
fn read_chunks(reader: &mut impl BufRead, body: &mut Vec<u8>) -> Result<()> {
    loop {
        let line = read_line(reader)?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(hex, 16).context("bad chunk size")?;
        if size == 0 {
            while !read_line(reader)?.is_empty() {} // optional trailers
            return Ok(());
        }
        ensure!(
            body.len() as u64 + size <= MAX_BODY,
            "the body is too large"
        );
        let before = body.len();
        reader.take(size).read_to_end(body)?;
        ensure!((body.len() - before) as u64 == size, "a chunk ended early");
        ensure!(read_line(reader)?.is_empty(), "no CRLF after a chunk");
    }
}
// ANCHOR_END: response

/// One CRLF-terminated line, without the CRLF.
fn read_line(reader: &mut impl BufRead) -> Result<String> {
    let mut line = Vec::new();
    reader.take(MAX_LINE).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        bail!("the server closed the connection early");
    }
    ensure!(line.ends_with(b"\n"), "a line longer than {MAX_LINE} bytes");
    let line = String::from_utf8(line).context("a header is not text")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn is_timeout(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{TimedOut, WouldBlock};
    matches!(error.kind(), WouldBlock | TimedOut)
}

/// Prints one side of the exchange as `curl -v` does: `>` for what was
/// sent, `<` for what came back.
fn show(side: char, text: &str) {
    for line in text.split("\r\n").take_while(|line| !line.is_empty()) {
        println!("{side} {line}");
    }
    println!("{side}");
}

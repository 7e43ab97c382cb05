//! S1.1: the notes' request (url, method, body, headers) written by hand as
//! HTTP/1.1 text on a TCP stream, and the response parsed back: the work a
//! client library does for you. Plain http:// only; https needs TLS. The
//! body is decoded in the charset the server names.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use encoding_rs::{Encoding, UTF_8};
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
    /// Seconds to wait for the name lookup, the connection and each read.
    #[arg(long, default_value_t = 30)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

/// Larger than this means a broken or hostile server, not a web page.
const MAX_LINE: u64 = 8 * 1024;
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// Headers that say where the request goes or where it ends: this program
/// writes them, and one given with -H would contradict it.
const RESERVED: [&str; 4] =
    ["host", "connection", "content-length", "transfer-encoding"];

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
    match url.scheme() {
        "http" => {}
        "https" => bail!("{url}: https:// needs TLS, which this program lacks"),
        // `localhost:8000` parses as a URL whose scheme is `localhost`.
        _ if !url.has_host() => bail!("{url}: no http:// in front"),
        scheme => bail!("{url}: {scheme}:// is not HTTP"),
    }
    // The request is checked before anything is sent anywhere.
    let request = build_request(&args)?;
    let timeout = Duration::from_secs(args.timeout);
    let stream = connect(url, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;

    show('>', &request);
    (&stream).write_all(request.as_bytes())?;

    let mut reader = BufReader::new(&stream);
    let secs = args.timeout;
    let mut interim = 0;
    let head = loop {
        let head = read_head(&mut reader).map_err(|e| {
            timed_out(e, &format!("no response within {secs} s"))
        })?;
        show('<', &head.text);
        // 100 Continue and 103 Early Hints come before the real response;
        // 101 would switch protocols, which this program never asks for.
        if !(100..200).contains(&head.status) || head.status == 101 {
            break head;
        }
        interim += 1;
        ensure!(interim <= 10, "over 10 interim responses, and no answer");
    };
    let body = read_body(&mut reader, &head, &args.method)
        .map_err(|e| timed_out(e, &format!("the body stalled for {secs} s")))?;
    if !body.is_empty() {
        println!("{}", decode(&body, head.charset.as_deref()));
    }
    // As with requests, a 404 or a 500 is a response, not a failed request;
    // this program reports it as a failure after printing it.
    ensure!(
        head.status < 400,
        "the server answered {}",
        head.status_text
    );
    Ok(())
}

/// Tries each address the host name resolves to, as Python's
/// `socket.create_connection` does, and reports the last failure.
fn connect(url: &Url, timeout: Duration) -> Result<TcpStream> {
    let host = url.host_str().context("the URL has no host")?;
    let addrs = resolve(url, timeout)
        .with_context(|| format!("cannot resolve {host}"))?;
    let mut last_error = None;
    for addr in addrs {
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

// ANCHOR: resolve
/// The system's name lookup takes no timeout, so it runs on a thread of its
/// own, and the program stops waiting for it after `timeout`.
fn resolve(url: &Url, timeout: Duration) -> Result<Vec<SocketAddr>> {
    let (sender, receiver) = mpsc::channel();
    let url = url.clone();
    thread::spawn(move || sender.send(url.socket_addrs(|| Some(80))));
    match receiver.recv_timeout(timeout) {
        Ok(addrs) => Ok(addrs?),
        Err(_) => bail!("no answer within {} s", timeout.as_secs()),
    }
}
// ANCHOR_END: resolve

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
        let (name, value) = parse_header(header)?;
        request += &format!("{name}: {value}\r\n");
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

fn parse_header(header: &str) -> Result<(&str, &str)> {
    let Some((name, value)) = header.split_once(':') else {
        bail!("{header:?} is not a header: write Name: value");
    };
    let (name, value) = (name.trim(), value.trim());
    ensure!(is_token(name), "{name:?} is not a header name");
    let lower = name.to_ascii_lowercase();
    ensure!(
        !RESERVED.contains(&lower.as_str()),
        "{name} is set by this program"
    );
    // A CR LF in a value would end this header and start one nobody wrote.
    let clean = value.chars().all(|c| c == '\t' || !c.is_control());
    ensure!(
        clean,
        "the value of {name} holds a control character: {value:?}"
    );
    Ok((name, value))
}
// ANCHOR_END: request

fn is_token(text: &str) -> bool {
    let special = "!#$%&'*+-.^_`|~";
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || special.contains(c))
}

/// The status line and headers, and what they say about the body.
struct Head {
    text: String,
    status: u16,
    status_text: String,
    chunked: bool,
    length: Option<u64>,
    /// The `charset` of the Content-Type, if it names one.
    charset: Option<String>,
}

// ANCHOR: response
/// Reads the status line and the headers, up to the blank line.
fn read_head(reader: &mut impl BufRead) -> Result<Head> {
    let status_line = read_line(reader)?;
    let mut parts = status_line.splitn(2, ' ');
    let version = parts.next().unwrap_or_default();
    let status_text = parts.next().unwrap_or_default().to_string();
    ensure!(
        version.starts_with("HTTP/1."),
        "not HTTP/1.x: {status_line:?}"
    );
    let code = status_text.split(' ').next().unwrap_or_default();
    let status = code.parse().context("no status code")?;

    let mut head = Head {
        text: format!("{status_line}\r\n"),
        status,
        status_text,
        chunked: false,
        length: None,
        charset: None,
    };
    loop {
        let line = read_line(reader)?;
        head.text += &format!("{line}\r\n");
        ensure!(head.text.len() <= MAX_HEAD, "headers over {MAX_HEAD} bytes");
        if line.is_empty() {
            return Ok(head); // the blank line ends the headers
        }
        let (name, value) = line.split_once(':').context("bad header")?;
        let (name, value) = (name.to_ascii_lowercase(), value.trim());
        if name == "transfer-encoding" {
            head.chunked = value.eq_ignore_ascii_case("chunked");
        } else if name == "content-length" {
            head.length = Some(value.parse().context("bad Content-Length")?);
        } else if name == "content-type" {
            head.charset = charset(value);
        }
    }
}

/// Reads the body in whichever way the head announces: chunked, a length,
/// or until the server closes the connection.
fn read_body(
    reader: &mut impl BufRead,
    head: &Head,
    method: &str,
) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    // These responses have no body, whatever their headers say.
    let none = method == "HEAD" || matches!(head.status, 100..200 | 204 | 304);
    if none {
        return Ok(body);
    }
    if head.chunked {
        read_chunks(reader, &mut body)?;
    } else if let Some(length) = head.length {
        ensure!(length <= MAX_BODY, "a {length}-byte body is too large");
        reader.take(length).read_to_end(&mut body)?;
        ensure!(body.len() as u64 == length, "the body ended early");
    } else {
        reader.take(MAX_BODY + 1).read_to_end(&mut body)?;
        ensure!(body.len() as u64 <= MAX_BODY, "the body is too large");
    }
    Ok(body)
}

/// Each chunk is its size in hex on a line, the bytes, and CRLF; size 0
/// ends the body, after optional trailer lines.
fn read_chunks(reader: &mut impl BufRead, body: &mut Vec<u8>) -> Result<()> {
    loop {
        let line = read_line(reader)?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(hex, 16).context("bad chunk size")?;
        if size == 0 {
            while !read_line(reader)?.is_empty() {} // trailers
            return Ok(());
        }
        let room = MAX_BODY - body.len() as u64;
        ensure!(size <= room, "the body is too large");
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
    if !line.ends_with(b"\n") {
        ensure!(
            (line.len() as u64) < MAX_LINE,
            "a line over {MAX_LINE} bytes"
        );
        bail!("the server closed the connection mid-line");
    }
    let line = String::from_utf8(line).context("a header is not text")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The `charset` parameter of a Content-Type such as
/// `text/html; charset=gbk`.
fn charset(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        let value = value.trim().trim_matches('"');
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.to_string())
    })
}

/// The body as text, in the encoding the server named; UTF-8 if it named
/// none or one this program does not know (and then it says so).
fn decode(body: &[u8], charset: Option<&str>) -> String {
    let label = charset.unwrap_or("utf-8");
    let Some(encoding) = Encoding::for_label(label.as_bytes()) else {
        let (text, _) = UTF_8.decode_without_bom_handling(body);
        return format!("{text}\n(unknown charset {label:?}: shown as UTF-8)");
    };
    let (text, _) = encoding.decode_without_bom_handling(body);
    text.into_owned()
}

/// A read timeout becomes `message`; any other error stays as it is.
fn timed_out(error: anyhow::Error, message: &str) -> anyhow::Error {
    use std::io::ErrorKind::{TimedOut, WouldBlock};
    match error.downcast_ref::<std::io::Error>() {
        Some(io) if matches!(io.kind(), WouldBlock | TimedOut) => {
            anyhow::anyhow!("{message}")
        }
        _ => error,
    }
}

/// Prints one side of the exchange as `curl -v` does: `>` for what was
/// sent, `<` for what came back.
fn show(side: char, text: &str) {
    for line in text.split("\r\n").take_while(|line| !line.is_empty()) {
        println!("{side} {line}");
    }
    println!("{side}");
}

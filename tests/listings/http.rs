//! Chapter 1, HTTP requests (S1.1). There is no internet here, and tests must not depend on
//! it: each test starts a small HTTP server of its own (axum, on 127.0.0.1:0) and points
//! the listing at it.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{any, get, post};
use socket2::{Domain, Socket, Type};

use crate::harness::{Transcript, assert_snapshot, listing};

/// The test server: what it saw, and the runtime it runs on (dropped with it).
struct Server {
    addr: SocketAddr,
    seen: Arc<Seen>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// What the server saw: each User-Agent, and for /delay how many requests it held at once.
#[derive(Default)]
struct Seen {
    user_agents: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    round_peak: AtomicUsize,
    /// The peak of each round of /delay requests (a round ends when none is in flight).
    peaks: Mutex<Vec<usize>>,
}

impl Server {
    fn start() -> Server {
        let seen = Arc::new(Seen::default());
        let app = Router::new()
            .route("/", get(page))
            .route("/echo", post(echo))
            .route("/status/{code}", any(status))
            .route("/chunked", get(chunked))
            .route("/delay", get(delay))
            .route("/never", get(never))
            .with_state(Arc::clone(&seen));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the test server");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        Server {
            addr,
            seen,
            runtime: Some(runtime),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    /// Drops every connection at once, the one held open by /never included.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn page(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
) -> ([(&'static str, &'static str); 1], &'static str) {
    let agent = headers.get("user-agent").map_or("(none)".to_string(), |v| {
        v.to_str().unwrap_or("?").to_string()
    });
    seen.user_agents.lock().unwrap().push(agent);
    (
        [("content-type", "text/html; charset=utf-8")],
        "<!doctype html>\n<title>Hello</title>\n<p>Hello from the test server.</p>\n",
    )
}

/// Answers with what it received: the method, the headers a client chose, the body.
async fn echo(method: Method, headers: HeaderMap, body: String) -> String {
    let mut lines = vec![format!("method: {method}")];
    for (name, value) in &headers {
        let name = name.as_str();
        if name == "content-type" || name.starts_with("x-") {
            lines.push(format!("{name}: {}", value.to_str().unwrap_or("?")));
        }
    }
    lines.push(format!("body: {body}"));
    lines.join("\n")
}

async fn status(Path(code): Path<u16>) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

/// A body of unknown length, which hyper sends with chunked transfer encoding.
async fn chunked() -> Body {
    let parts = ["first chunk, ", "second chunk, ", "last chunk\n"];
    Body::from_stream(futures_util::stream::iter(parts.map(Ok::<_, Infallible>)))
}

/// A request that takes 100 ms to answer, like a server that does some work.
async fn delay(State(seen): State<Arc<Seen>>) -> &'static str {
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.round_peak.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    if seen.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
        let peak = seen.round_peak.swap(0, Ordering::SeqCst);
        seen.peaks.lock().unwrap().push(peak);
    }
    "done\n"
}

async fn never() -> &'static str {
    std::future::pending::<()>().await;
    unreachable!()
}

/// An address where nothing listens: a socket bound but never listening refuses every
/// connection, with no race against another test taking the port.
fn refusing() -> (Socket, SocketAddr) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    (socket, addr)
}

/// A server that answers one request with `response`, byte for byte: for responses a
/// well-behaved server never sends. Its accept and reads give up after 30 s.
fn raw_server(response: &'static [u8]) -> SocketAddr {
    raw_server_then(response, false)
}

/// `raw_server`, and when `hold`, the connection stays open after the response (until the
/// client closes it, or 30 s): a body that stalls.
fn raw_server_then(response: &'static [u8], hold: bool) -> SocketAddr {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(1).unwrap();
    // On Linux the receive timeout bounds accept too.
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let listener = TcpListener::from(socket);
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut request = Vec::new();
        let mut buf = [0; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(len) => request.extend_from_slice(&buf[..len]),
            }
        }
        let _ = stream.write_all(response);
        while hold && matches!(stream.read(&mut buf), Ok(1..)) {}
    });
    addr
}

const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/80.0.3987.87 Safari/537.36 SE 2.X MetaSr 1.0";

/// A test of `--timeout 1` must not pass on the 30 s default.
fn assert_quick(transcript: &Transcript) {
    assert!(
        transcript.elapsed < Duration::from_secs(10),
        "took {:?}: the timeout was not applied",
        transcript.elapsed
    );
}

#[test]
fn http_by_hand_gets_a_page() {
    let server = Server::start();
    let transcript = listing("http-by-hand")
        .args([server.url("/")])
        .spawn()
        .finish();
    assert_snapshot!(transcript, "get");
}

#[test]
fn http_by_hand_reads_no_body_for_head() {
    let server = Server::start();
    assert_snapshot!(
        listing("http-by-hand")
            .args(["-X", "HEAD", &server.url("/")])
            .spawn()
            .finish(),
        "head"
    );
}

#[test]
fn http_by_hand_reads_a_chunked_body() {
    let server = Server::start();
    assert_snapshot!(
        listing("http-by-hand")
            .args([server.url("/chunked")])
            .spawn()
            .finish(),
        "chunked"
    );
}

#[test]
fn http_by_hand_reads_chunk_extensions_and_trailers() {
    let addr = raw_server(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;name=value\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n",
    );
    assert_snapshot!(
        listing("http-by-hand")
            .args([format!("http://{addr}/")])
            .spawn()
            .finish(),
        "chunk-extensions"
    );
}

#[test]
fn http_by_hand_reports_a_body_cut_short() {
    let addr = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..");
    let transcript = listing("http-by-hand")
        .args([format!("http://{addr}/")])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1));
    assert_snapshot!(transcript, "cut-short");
}

#[test]
fn http_by_hand_refuses_endless_headers() {
    // 70,000 bytes of headers, over the listing's 64 KiB limit for the whole head.
    static ENDLESS: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let response = ENDLESS.get_or_init(|| {
        let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..2000 {
            response
                .extend_from_slice(format!("X-Padding-{i:04}: {}\r\n", "x".repeat(16)).as_bytes());
        }
        response.extend_from_slice(b"\r\n");
        response
    });
    let addr = raw_server(response);
    assert_snapshot!(
        listing("http-by-hand")
            .args([format!("http://{addr}/")])
            .spawn()
            .finish(),
        "endless-headers"
    );
}

#[test]
fn http_by_hand_posts_a_body_with_headers() {
    let server = Server::start();
    assert_snapshot!(
        listing("http-by-hand")
            .args([
                "-X",
                "POST",
                "-H",
                "Content-Type: text/plain",
                "-H",
                "X-Lesson: S1.1",
            ])
            .args(["--data", "hello", &server.url("/echo")])
            .spawn()
            .finish(),
        "post"
    );
}

#[test]
fn http_by_hand_refuses_https_and_bad_headers() {
    let server = Server::start();
    let https = listing("http-by-hand")
        .args([server.url("/").replace("http:", "https:")])
        .spawn()
        .finish();
    assert_eq!(https.status.code(), Some(1));
    assert_snapshot!(https, "https");
    for (scenario, header) in [
        ("bad-header", "X-Evil: yes\r\nX-Injected: 1"),
        ("no-colon", "NoColon"),
        ("reserved-header", "Content-Length: 100"),
    ] {
        let refused = listing("http-by-hand")
            .args(["-H", header, &server.url("/")])
            .spawn()
            .finish();
        assert_eq!(refused.status.code(), Some(1));
        assert_snapshot!(refused, scenario);
    }
}

#[test]
fn http_get_sends_the_browser_user_agent() {
    let server = Server::start();
    let transcript = listing("http-get").args([server.url("/")]).spawn().finish();
    let agents = server.seen.user_agents.lock().unwrap().clone();
    assert_eq!(agents, [BROWSER], "one request, with the notes' User-Agent");
    assert_snapshot!(transcript, "page");
}

#[test]
fn http_get_prints_a_500_and_fails() {
    let server = Server::start();
    assert_snapshot!(
        listing("http-get")
            .args([server.url("/status/500")])
            .spawn()
            .finish(),
        "server-error"
    );
}

#[test]
fn http_get_reports_a_malformed_url() {
    assert_snapshot!(
        listing("http-get")
            .args(["htp:/127.0.0.1"])
            .spawn()
            .finish(),
        "bad-url"
    );
}

#[test]
fn http_post_sends_a_body_and_headers() {
    let server = Server::start();
    assert_snapshot!(
        listing("http-post")
            .args([
                "--data",
                "{\"lang\": \"rust\"}",
                "-H",
                "Content-Type: application/json",
            ])
            .args(["-H", "X-Lesson: S1.1", &server.url("/echo")])
            .spawn()
            .finish(),
        "echo"
    );
}

#[test]
fn http_post_rejects_a_bad_header() {
    let server = Server::start();
    assert_snapshot!(
        listing("http-post")
            .args(["-H", "no colon here", &server.url("/echo")])
            .spawn()
            .finish(),
        "bad-header"
    );
}

#[test]
fn http_many_runs_100_requests_at_once_both_ways() {
    let server = Server::start();
    let transcript = listing("http-many")
        .args([server.url("/delay")])
        .measuring()
        .spawn()
        .finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    for how in ["threads", "tasks"] {
        let line = transcript
            .text
            .lines()
            .find(|line| line.starts_with(&format!("{how}: ")))
            .unwrap_or_else(|| panic!("no {how} line in:\n{}", transcript.text));
        assert!(line.contains("100 of 100 requests succeeded"), "{line}");
    }
    // Four rounds (a warm-up and a measured one, each way). One at a time, the server would
    // never hold two requests at once; in each round it holds many. (Not always all 100 for
    // threads: the first threads' requests can end before the last threads have started, and
    // on a loaded machine a round can even fall idle for a moment and count as two.)
    let peaks = server.seen.peaks.lock().unwrap().clone();
    let busy = peaks.iter().filter(|&&peak| peak >= 10).count();
    assert!(
        peaks.len() >= 4 && busy >= 4,
        "four rounds, each holding 10 or more requests at once: {peaks:?}"
    );
    assert_snapshot!(transcript, "local-server");
    transcript.record_measurement("local-server");
}

/// The three clients against a port where nothing listens.
#[test]
fn every_client_reports_a_refused_connection() {
    let (_socket, addr) = refusing();
    for (name, extra) in [
        ("http-by-hand", &[][..]),
        ("http-get", &[]),
        ("http-post", &["--data", "hello"]),
    ] {
        let transcript = listing(name)
            .args(extra)
            .args([format!("http://{addr}/")])
            .spawn()
            .finish();
        assert_eq!(transcript.status.code(), Some(1), "{name}");
        assert_snapshot!(transcript, "refused");
    }
}

#[test]
fn every_client_gives_up_on_a_server_that_never_answers() {
    let server = Server::start();
    for name in ["http-by-hand", "http-get"] {
        let transcript = listing(name)
            .args(["--timeout", "1", &server.url("/never")])
            .spawn()
            .finish();
        assert_quick(&transcript);
        assert_snapshot!(transcript, "timeout");
    }
}

#[test]
fn every_client_prints_a_404_and_fails() {
    let server = Server::start();
    for name in ["http-by-hand", "http-get"] {
        let transcript = listing(name)
            .args([server.url("/status/404")])
            .spawn()
            .finish();
        assert_eq!(transcript.status.code(), Some(1), "{name}");
        assert_snapshot!(transcript, "not-found");
    }
}

/// Headers that promise 100 bytes, then 10 of them, then nothing: the body stalls.
const STALLING: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";

#[test]
fn http_get_says_that_a_stalled_body_timed_out() {
    let addr = raw_server_then(STALLING, true);
    let transcript = listing("http-get")
        .args(["--timeout", "1", &format!("http://{addr}/")])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert!(transcript.text.contains("timed out"), "{}", transcript.text);
    assert_quick(&transcript);
    assert_snapshot!(transcript, "body-timeout");
}

#[test]
fn http_by_hand_says_what_is_wrong_with_the_scheme() {
    for (scenario, url) in [("no-scheme", "localhost:8000"), ("ftp", "ftp://127.0.0.1/")] {
        let transcript = listing("http-by-hand").args([url]).spawn().finish();
        assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
        assert!(!transcript.text.contains("TLS"), "{}", transcript.text);
        assert_snapshot!(transcript, scenario);
    }
}

#[test]
fn http_by_hand_skips_an_interim_response() {
    let addr = raw_server(
        b"HTTP/1.1 100 Continue\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfinal\n",
    );
    let transcript = listing("http-by-hand")
        .args([format!("http://{addr}/")])
        .spawn()
        .finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert!(
        transcript
            .text
            .ends_with("< HTTP/1.1 200 OK\n< Content-Length: 6\n<\nfinal\n\n"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "interim");
}

#[test]
fn http_by_hand_decodes_the_charset_the_server_names() {
    // 你好 in GBK, as a server in the notes' world might send it.
    let addr = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=gbk\r\n\
          Content-Length: 5\r\n\r\n\xc4\xe3\xba\xc3\n",
    );
    let transcript = listing("http-by-hand")
        .args([format!("http://{addr}/")])
        .spawn()
        .finish();
    assert!(transcript.text.contains("\n你好\n"), "{}", transcript.text);
    assert_snapshot!(transcript, "gbk-body");
}

#[test]
fn http_by_hand_bounds_the_name_lookup() {
    // `.invalid` never resolves. Without a network the lookup may fail at once or wait for
    // a name server; either way it ends within --timeout.
    let mut transcript = listing("http-by-hand")
        .args(["--timeout", "2", "http://name.invalid/"])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert!(
        transcript.text.contains("cannot resolve name.invalid: "),
        "{}",
        transcript.text
    );
    assert_quick(&transcript);
    // Which of the two happened varies with the machine's network.
    transcript.redact_matches(r"(cannot resolve name\.invalid: ).*", "${1}[WHY]");
    assert_snapshot!(transcript, "unresolvable");
}

#[test]
fn http_by_hand_stops_after_ten_interim_responses() {
    let eleven = "HTTP/1.1 100 Continue\r\n\r\n".repeat(11);
    let addr = raw_server_then(Box::leak(eleven.into_bytes().into_boxed_slice()), true);
    let transcript = listing("http-by-hand")
        .args([format!("http://{addr}/")])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert!(
        transcript.text.contains("over 10 interim responses"),
        "{}",
        transcript.text
    );
}

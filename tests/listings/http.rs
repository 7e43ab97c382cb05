//! Chapter 1, HTTP requests (S1.1). There is no internet here, and tests must not depend on
//! it: each test starts a small HTTP server of its own (axum, on 127.0.0.1:0) and points
//! the listing at it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{any, get, post};
use socket2::{Domain, Socket, Type};

use crate::harness::listing;

/// The test server: what it received, and the runtime it runs on (dropped with it).
struct Server {
    addr: SocketAddr,
    user_agents: Arc<Mutex<Vec<String>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    fn start() -> Server {
        let user_agents = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/", get(page))
            .route("/echo", post(echo))
            .route("/status/{code}", any(status))
            .route("/chunked", get(chunked))
            .route("/delay", get(delay))
            .route("/never", get(never))
            .with_state(Arc::clone(&user_agents));
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
            user_agents,
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

type Seen = State<Arc<Mutex<Vec<String>>>>;

async fn page(
    State(seen): Seen,
    headers: HeaderMap,
) -> ([(&'static str, &'static str); 1], &'static str) {
    let agent = headers.get("user-agent").map_or("(none)".to_string(), |v| {
        v.to_str().unwrap_or("?").to_string()
    });
    seen.lock().unwrap().push(agent);
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
async fn delay() -> &'static str {
    tokio::time::sleep(Duration::from_millis(100)).await;
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

#[test]
fn http_by_hand_gets_a_page() {
    let server = Server::start();
    let transcript = listing("http-by-hand")
        .args([server.url("/")])
        .spawn()
        .finish();
    transcript.assert_snapshot("get");
}

#[test]
fn http_by_hand_reads_a_chunked_body() {
    let server = Server::start();
    listing("http-by-hand")
        .args([server.url("/chunked")])
        .spawn()
        .finish()
        .assert_snapshot("chunked");
}

#[test]
fn http_by_hand_posts_a_body_with_headers() {
    let server = Server::start();
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
        .finish()
        .assert_snapshot("post");
}

#[test]
fn http_by_hand_prints_a_404_and_fails() {
    let server = Server::start();
    let transcript = listing("http-by-hand")
        .args([server.url("/status/404")])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1));
    transcript.assert_snapshot("not-found");
}

#[test]
fn http_by_hand_refuses_https_and_bad_headers() {
    let server = Server::start();
    let https = listing("http-by-hand")
        .args([server.url("/").replace("http:", "https:")])
        .spawn()
        .finish();
    assert_eq!(https.status.code(), Some(1));
    https.assert_snapshot("https");
    let injected = listing("http-by-hand")
        .args(["-H", "X-Evil: yes\r\nX-Injected: 1", &server.url("/")])
        .spawn()
        .finish();
    assert_eq!(injected.status.code(), Some(1));
    injected.assert_snapshot("bad-header");
}

#[test]
fn http_by_hand_reports_a_refused_connection() {
    let (_socket, addr) = refusing();
    listing("http-by-hand")
        .args([format!("http://{addr}/")])
        .spawn()
        .finish()
        .assert_snapshot("refused");
}

#[test]
fn http_by_hand_gives_up_on_a_server_that_never_answers() {
    let server = Server::start();
    listing("http-by-hand")
        .args(["--timeout", "1", &server.url("/never")])
        .spawn()
        .finish()
        .assert_snapshot("timeout");
}

#[test]
fn http_get_sends_the_browser_user_agent() {
    let server = Server::start();
    let transcript = listing("http-get").args([server.url("/")]).spawn().finish();
    let agents = server.user_agents.lock().unwrap().clone();
    assert_eq!(agents.len(), 1, "one request");
    assert!(
        agents[0].starts_with("Mozilla/5.0 (Windows NT 10.0"),
        "{agents:?}"
    );
    transcript.assert_snapshot("page");
}

#[test]
fn http_get_prints_a_404_and_fails() {
    let server = Server::start();
    let transcript = listing("http-get")
        .args([server.url("/status/404")])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1));
    transcript.assert_snapshot("not-found");
}

#[test]
fn http_get_prints_a_500_and_fails() {
    let server = Server::start();
    listing("http-get")
        .args([server.url("/status/500")])
        .spawn()
        .finish()
        .assert_snapshot("server-error");
}

#[test]
fn http_get_reports_a_malformed_url() {
    listing("http-get")
        .args(["htp:/127.0.0.1"])
        .spawn()
        .finish()
        .assert_snapshot("bad-url");
}

#[test]
fn http_get_reports_a_refused_connection() {
    let (_socket, addr) = refusing();
    listing("http-get")
        .args([format!("http://{addr}/")])
        .spawn()
        .finish()
        .assert_snapshot("refused");
}

#[test]
fn http_get_gives_up_on_a_server_that_never_answers() {
    let server = Server::start();
    listing("http-get")
        .args(["--timeout", "1", &server.url("/never")])
        .spawn()
        .finish()
        .assert_snapshot("timeout");
}

#[test]
fn http_post_sends_a_body_and_headers() {
    let server = Server::start();
    listing("http-post")
        .args([
            "--data",
            "{\"lang\": \"rust\"}",
            "-H",
            "Content-Type: application/json",
        ])
        .args(["-H", "X-Lesson: S1.1", &server.url("/echo")])
        .spawn()
        .finish()
        .assert_snapshot("echo");
}

#[test]
fn http_post_rejects_a_bad_header() {
    let server = Server::start();
    listing("http-post")
        .args(["-H", "no colon here", &server.url("/echo")])
        .spawn()
        .finish()
        .assert_snapshot("bad-header");
}

#[test]
fn http_many_runs_100_requests_at_once_both_ways() {
    let server = Server::start();
    let transcript = listing("http-many")
        .args([server.url("/delay")])
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
        // Each request waits 100 ms at the server; one after another, 100 would take 10 s.
        // Far less means they really ran at once.
        let wall = line
            .split(" in ")
            .nth(1)
            .and_then(|rest| rest.split(';').next());
        let wall = wall.and_then(parse_debug_duration).expect("a wall time");
        assert!(
            wall < Duration::from_secs(5),
            "{how} took {wall:?}: not concurrent"
        );
    }
    transcript.assert_snapshot("local-server");
    transcript.record_measurement("local-server");
}

/// `1.234567ms` or `1.2s`, as Debug prints a Duration.
fn parse_debug_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("µs") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix("ns") {
        (n, 1e-9)
    } else {
        (text.strip_suffix('s')?, 1.0)
    };
    Some(Duration::from_secs_f64(number.parse::<f64>().ok()? * scale))
}

//! Chapter 13, beyond the notes: the tiny executor with a real reactor on mio. The test
//! plays both echo peers, and answers each only at the step it chooses, so that the trace
//! is the same on every run.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use crate::async_basics::{lines, position};
use crate::harness::{Run, assert_refused, assert_snapshot, listing};

fn peer() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback peer");
    let addr = listener.local_addr().expect("its address").to_string();
    (listener, addr)
}

/// The connection the listing made, already in the listener's backlog: the listing said it
/// is connected, so accepting must not wait.
fn accepted(listener: &TcpListener, run: &Run) -> TcpStream {
    listener.set_nonblocking(true).expect("non-blocking accept");
    let stream = match listener.accept() {
        Ok((stream, _)) => stream,
        Err(e) if e.kind() == ErrorKind::WouldBlock => run.fail("no connection to accept"),
        Err(e) => run.fail(&format!("accept: {e}")),
    };
    stream.set_nonblocking(false).expect("blocking stream");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    stream
}

fn line(stream: &TcpStream, run: &Run) -> String {
    let mut line = String::new();
    if let Err(e) = BufReader::new(stream).read_line(&mut line) {
        run.fail(&format!("the listing sent no line: {e}"));
    }
    line
}

/// The listing with the test as both peers, once both clients have sent their line and wait
/// for the answer. On loopback the kernel completes the handshake inside connect(2), so both
/// sockets are writable before the loop's first poll, and one poll reports both. The timer
/// is the longest wait by far, so it fires after both reads wait, whatever the load.
fn both_waiting() -> (Run, TcpStream, TcpStream) {
    let (a, a_addr) = peer();
    let (b, b_addr) = peer();
    let mut run = listing("mio-executor")
        .args(["--a", &a_addr, "--b", &b_addr, "--sleep-ms", "1000"])
        .spawn();
    run.wait_for_line(r"^ +b: read would block");
    let (a, b) = (accepted(&a, &run), accepted(&b, &run));
    assert_eq!(line(&a, &run), "ping from a\n");
    assert_eq!(line(&b, &run), "ping from b\n");
    (run, a, b)
}

#[test]
fn mio_executor_interleaves_two_connections_and_a_timer_on_one_thread() {
    // The test answers b once the timer has fired, and a once b is done.
    let (mut run, mut a, mut b) = both_waiting();
    run.wait_for_line(r"-> Ready: task 3 is done");
    b.write_all(b"ping from b\n").expect("answer b");
    run.wait_for_line(r"-> Ready: task 2 is done");
    a.write_all(b"ping from a\n").expect("answer a");
    let transcript = run.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let at = |line: &str| position(&transcript, line);
    // Both reads wait in the reactor at once, the timer fires while they wait, and b gets
    // its answer and ends while a still waits: three things in flight, one thread.
    let a_waits = at("a: read would block: wait until token 0 is readable");
    let b_waits = at("b: read would block: wait until token 1 is readable");
    let fired = at("timer: fired");
    let b_done = at("-> Ready: task 2 is done");
    let a_got = at(r#"a: got "ping from a""#);
    assert!(a_waits < b_waits && b_waits < fired && fired < b_done && b_done < a_got);
    assert!(
        !lines(&transcript)[a_waits..b_done].contains(&"poll task 1 (a)"),
        "task a is not polled while it waits:\n{}",
        transcript.text
    );
    let all = lines(&transcript);
    assert!(
        all.contains(&"threads in this process: 1"),
        "one thread:\n{}",
        transcript.text
    );
    assert_snapshot!(transcript, "two-peers");
}

#[test]
fn mio_executor_reports_a_refused_connection_in_one_line() {
    // A port nobody listens on: bound, then closed.
    let closed = peer().1;
    let (_b, b_addr) = peer();
    let transcript = listing("mio-executor")
        .args(["--a", &closed, "--b", &b_addr])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    let last = lines(&transcript)
        .into_iter()
        .find(|l| l.starts_with("mio-executor: "))
        .unwrap_or_default()
        .to_string();
    assert!(
        last.starts_with("mio-executor: task 1 (a): connect to 127.0.0.1:")
            && last.ends_with("Connection refused (os error 111)"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "refused");
}

#[test]
fn mio_executor_wants_both_peers_or_neither() {
    let (_a, a_addr) = peer();
    let transcript = listing("mio-executor")
        .args(["--a", &a_addr])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert_snapshot!(transcript, "one-peer");
}

#[test]
fn mio_executor_refuses_an_address_that_is_not_one() {
    assert_refused!(
        "mio-executor",
        &["--a", "nowhere", "--b", "127.0.0.1:1"],
        "bad-address"
    );
}

#[test]
fn mio_executor_reports_a_peer_that_closes_without_answering() {
    // Peer a closes without answering: a's read wakes, and finds the end of the stream.
    let (run, a, _b) = both_waiting();
    drop(a);
    let transcript = run.finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    position(
        &transcript,
        "mio-executor: task 1 (a): read: the peer closed",
    );
    assert_snapshot!(transcript, "peer-closed");
}

#[test]
fn mio_executor_refuses_a_line_over_its_limit() {
    // Peer a answers with 70 KiB and no newline: the read stops at the limit, not at memory.
    let (run, mut a, _b) = both_waiting();
    a.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    a.write_all(&[b'x'; 70 * 1024]).expect("send the long line");
    let transcript = run.finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    position(
        &transcript,
        "mio-executor: task 1 (a): read: a line over 64 KiB",
    );
}

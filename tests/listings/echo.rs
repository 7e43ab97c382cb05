//! Chapter 12 (S11.1): the async echo server and its client. The server runs as a listing;
//! clients are the echo-client listing or sockets in the test, whose every read has a timeout.
//! Each step waits for the server's log line before the next (the server logs a connection's
//! end only once its task is reaped), so the logs come out in one order on every run.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, SockRef, Socket, Type};

use crate::harness::{Run, Transcript, assert_refused, listing};

/// The echo server on a free port, and the address it reports.
fn server(extra: &[&str]) -> (Run, SocketAddr) {
    let mut run = listing("echo-server")
        .args(["--bind", "127.0.0.1:0"])
        .args(extra)
        .spawn();
    let addr = run.wait_for_line(r"^listening on (\S+)$")[1]
        .parse()
        .unwrap();
    (run, addr)
}

/// A test client, named in the server's log as `[client NAME]`; waits until the server has
/// accepted it.
fn client(server: &mut Run, addr: SocketAddr, name: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let local = stream.local_addr().unwrap().to_string();
    server.redact(&local, &format!("[client {name}]"));
    server.wait_for_line(&format!(r"^\[client {name}\] connected$"));
    stream
}

/// Reads exactly `expected` back: the echo, newline included.
fn expect_echo(stream: &mut TcpStream, server: &Run, expected: &str) {
    let mut echo = vec![0; expected.len()];
    if let Err(e) = stream.read_exact(&mut echo) {
        server.fail(&format!("no echo of {expected:?} ({e})"));
    }
    assert_eq!(String::from_utf8_lossy(&echo), expected);
}

/// Reads until the server closes its side: returns what came before the end of the stream.
fn read_to_eof(stream: &mut TcpStream, server: &Run) -> String {
    let mut rest = Vec::new();
    if let Err(e) = stream.read_to_end(&mut rest) {
        server.fail(&format!("no end of stream from the server ({e})"));
    }
    String::from_utf8(rest).unwrap()
}

/// Closes with SO_LINGER 0: the kernel sends a reset (RST) instead of an orderly FIN.
fn reset(stream: TcpStream) {
    SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

/// Ctrl-C (or `name`), then the server's exit: status 0.
fn stop(server: Run, name: &str) -> Transcript {
    server.signal(name);
    let transcript = server.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    transcript
}

/// A test of `--idle 1` or `--grace 1` must not pass on the defaults (60 s, 10 s).
fn assert_quick(transcript: &Transcript) {
    assert!(
        transcript.elapsed < Duration::from_secs(8),
        "took {:?}: the short timeout was not applied",
        transcript.elapsed
    );
}

#[test]
fn echo_client_talks_to_echo_server_over_many_connections() {
    let (server, addr) = server(&["--quiet"]);
    let client = listing("echo-client")
        .args(["--server", &addr.to_string()])
        .args(["--connections", "4", "--messages", "3"])
        .spawn()
        .finish();
    assert!(client.status.success(), "{}", client.text);
    assert_eq!(client.text.matches("all echoes match, then EOF").count(), 4);
    client.assert_snapshot("four-at-once");

    // Quiet: no line per connection, only the address and the summary. Whether a task that
    // has just sent its EOF is reaped before the signal arrives varies, so the server's log
    // is asserted on rather than snapshotted.
    let transcript = stop(server, "INT");
    let log = &transcript.text;
    assert!(!log.contains("connected"), "{log}");
    assert!(log.contains("shut down: 4 served;"), "{log}");
    assert!(log.contains("grace period: 0"), "{log}");
}

#[test]
fn echo_client_reports_a_closed_port() {
    // Bound but not listening: connections are refused, and no other test can take the port.
    let closed = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    closed
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let addr = closed.local_addr().unwrap().as_socket().unwrap();
    let transcript = listing("echo-client")
        .args(["--server", &addr.to_string()])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert!(transcript.text.contains("Connection refused"));
    transcript.assert_snapshot("refused");
}

#[test]
fn echo_client_refuses_a_bad_address() {
    assert_refused("echo-client", &["--server", "localhost"], "bad-address");
}

#[test]
fn echo_server_refuses_a_zero_line_length() {
    assert_refused("echo-server", &["--max-line", "0"], "zero-max-line");
}

#[test]
fn echo_server_serves_three_clients_at_once() {
    let (mut server, addr) = server(&[]);
    let mut a = client(&mut server, addr, "A");
    let mut b = client(&mut server, addr, "B");
    let mut c = client(&mut server, addr, "C");
    // The last to connect is echoed first, while A and B are still open and silent: a
    // server that served one connection at a time would still be waiting on A.
    c.write_all(b"C first\n").unwrap();
    expect_echo(&mut c, &server, "C first\n");
    b.write_all(b"then B\n").unwrap();
    expect_echo(&mut b, &server, "then B\n");
    // Two lines in one write, and one line in two writes: newlines frame the lines.
    a.write_all(b"A, one\nA, two\n").unwrap();
    expect_echo(&mut a, &server, "A, one\nA, two\n");
    a.set_nodelay(true).unwrap();
    a.write_all(b"A, in ").unwrap();
    a.write_all(b"two writes\n").unwrap();
    expect_echo(&mut a, &server, "A, in two writes\n");

    for (mut stream, name) in [(a, "A"), (b, "B"), (c, "C")] {
        stream.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_eof(&mut stream, &server), "");
        server.wait_for_line(&format!(r"^\[client {name}\] closed its side"));
    }
    let transcript = stop(server, "INT");
    assert!(transcript.text.contains("3 served; open at shutdown: 0,"));
    transcript.assert_snapshot("three-at-once");
}

#[test]
fn echo_server_survives_every_fault() {
    let (mut server, addr) = server(&["--idle", "1", "--max-line", "16"]);
    let _silent = client(&mut server, addr, "silent");
    server.wait_for_line(r"^\[client silent\] was silent for 1 s; hanging up$");

    // Half-close with a tail: whole lines come back, then the end of the stream.
    let mut half = client(&mut server, addr, "half");
    half.write_all(b"one\ntwo\ntail").unwrap();
    half.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut half, &server), "one\ntwo\n");
    server.wait_for_line(r"^\[client half\] closed its side after 2 lines, mid-line \(4 bytes");

    let mut rude = client(&mut server, addr, "rude");
    rude.write_all(b"bye\n").unwrap();
    expect_echo(&mut rude, &server, "bye\n");
    reset(rude);
    server.wait_for_line(r"^\[client rude\] reset the connection after 1 line$");

    let mut long = client(&mut server, addr, "long");
    // One write: the server may hang up (and reset) as soon as it has read 17 bytes.
    long.write_all(&[b'x'; 40].iter().chain(b"\n").copied().collect::<Vec<u8>>())
        .unwrap();
    server.wait_for_line(r"^\[client long\] sent a line over 16 bytes; hanging up$");

    let mut polite = client(&mut server, addr, "polite");
    polite.write_all(b"still there?\n").unwrap();
    expect_echo(&mut polite, &server, "still there?\n");
    polite.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut polite, &server), "");
    server.wait_for_line(r"^\[client polite\] closed its side after 1 line; closed ours$");

    let transcript = stop(server, "INT");
    assert_quick(&transcript);
    transcript.assert_snapshot("faults");
}

#[test]
fn echo_server_finishes_the_line_in_progress_on_ctrl_c() {
    let (mut server, addr) = server(&[]);
    let mut idle = client(&mut server, addr, "idle");
    idle.write_all(b"hello\n").unwrap();
    expect_echo(&mut idle, &server, "hello\n");
    // One write of a line and the start of the next: the server reads both in one go, so by
    // the time the first comes back, the start of the second is in its hands.
    let mut busy = client(&mut server, addr, "busy");
    busy.write_all(b"first\nsecond, half").unwrap();
    expect_echo(&mut busy, &server, "first\n");

    server.signal("INT");
    server.wait_for_line(r"^SIGINT: stopped accepting; open connections: 2$");
    // Between lines, a connection is closed at once; no new client is accepted.
    assert_eq!(read_to_eof(&mut idle, &server), "");
    server.wait_for_line(r"^\[client idle\] closed at shutdown after 1 line$");
    let refused = TcpStream::connect(addr).map(drop).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    // The line in progress is finished, echoed whole, and then the server closes.
    busy.write_all(b" done\n").unwrap();
    assert_eq!(read_to_eof(&mut busy, &server), "second, half done\n");

    let transcript = server.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert!(
        transcript
            .text
            .contains("open at shutdown: 2, finished: 2,")
    );
    transcript.assert_snapshot("ctrl-c");
}

#[test]
fn echo_server_stops_on_sigterm_too() {
    let (mut server, addr) = server(&[]);
    let mut client = client(&mut server, addr, "A");
    client.write_all(b"are you there?\n").unwrap();
    expect_echo(&mut client, &server, "are you there?\n");
    server.signal("TERM");
    assert_eq!(read_to_eof(&mut client, &server), "");
    let transcript = server.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    transcript.assert_snapshot("sigterm");
}

#[test]
fn echo_server_aborts_what_is_left_after_the_grace_period() {
    let (mut server, addr) = server(&["--grace", "1"]);
    let mut stuck = client(&mut server, addr, "stuck");
    // As above: the start of a line the client will never finish.
    stuck.write_all(b"hello\nnever fini").unwrap();
    expect_echo(&mut stuck, &server, "hello\n");
    server.signal("INT");
    server
        .wait_for_line(r"open at shutdown: 1, finished: 0, aborted after the 1 s grace period: 1$");
    // The aborted task dropped the socket: the client reads the end of the stream, no echo.
    assert_eq!(read_to_eof(&mut stuck, &server), "");
    let transcript = server.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert_quick(&transcript);
    transcript.assert_snapshot("grace-expired");
}

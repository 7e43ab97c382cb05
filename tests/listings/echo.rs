//! Chapter 13 (S11.1): the async echo server and its client. The server runs as a listing;
//! clients are the echo-client listing or sockets in the test, whose every read has a timeout.
//! Each step waits for the server's log line before the next (the server logs a connection's
//! end only once its task is reaped), so the logs come out in one order on every run.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::harness::{Run, Transcript, assert_refused, assert_snapshot, listing, reset, serving};

/// A test client, named in the server's log as `[client NAME]`; waits until the server has
/// accepted it.
pub(crate) fn client(server: &mut Run, addr: SocketAddr, name: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    named(server, &stream, name);
    server.wait_for_line(&format!(r"^\[client {name}\] connected$"));
    stream
}

/// Shows `stream`'s address in the server's log as `[client NAME]`, and gives its reads and
/// writes a timeout.
pub(crate) fn named(server: &mut Run, stream: &TcpStream, name: &str) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let local = stream.local_addr().unwrap().to_string();
    server.redact(&local, &format!("[client {name}]"));
}

/// Reads exactly `expected` back: the echo, newline included.
pub(crate) fn expect_echo(stream: &mut TcpStream, server: &Run, expected: &str) {
    let mut echo = vec![0; expected.len()];
    if let Err(e) = stream.read_exact(&mut echo) {
        server.fail(&format!("no echo of {expected:?} ({e})"));
    }
    assert_eq!(String::from_utf8_lossy(&echo), expected);
}

/// Reads until the server closes its side: returns what came before the end of the stream.
pub(crate) fn read_to_eof(stream: &mut TcpStream, server: &Run) -> String {
    let mut rest = Vec::new();
    if let Err(e) = stream.read_to_end(&mut rest) {
        server.fail(&format!("no end of stream from the server ({e})"));
    }
    String::from_utf8(rest).unwrap()
}

/// Ctrl-C (`INT`, to the whole group, as a terminal sends it) or another signal, then the
/// server's exit: status 0.
pub(crate) fn stop(server: Run, name: &str) -> Transcript {
    if name == "INT" {
        server.ctrl_c();
    } else {
        server.signal(name);
    }
    let transcript = server.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    transcript
}

/// A test of a short `--idle` or `--grace` must not pass on the defaults (60 s, 10 s):
/// `since` (the signal, say) to the exit took less than `limit`.
fn assert_quick(since: Instant, limit: Duration, transcript: &Transcript) {
    let took = since.elapsed();
    assert!(
        took < limit,
        "took {took:?}: the short timeout was not applied\n{}",
        transcript.text
    );
}

/// Stops the server as Ctrl-Z would (SIGSTOP), and waits until every thread of it has
/// stopped: until `resume`, what clients send piles up in the kernel, unread.
fn pause(server: &Run) {
    server.signal("STOP");
    let tasks = format!("/proc/{}/task", server.pid());
    let stopped = || {
        std::fs::read_dir(&tasks).unwrap().all(|task| {
            let stat = std::fs::read_to_string(task.unwrap().path().join("stat"));
            // The state follows the command name, which is in parentheses.
            stat.is_ok_and(|stat| {
                stat.rsplit_once(") ")
                    .is_some_and(|(_, s)| s.starts_with('T'))
            })
        })
    };
    poll(server, "the server to stop", stopped);
}

fn resume(server: &Run) {
    server.signal("CONT");
}

/// Two clients for a shutdown test, connected with `connect` (each server logs a connection
/// its own way): `idle`, between lines after one echo, and `busy`, in the middle of its
/// second line. One write of a line and the start of the next: the server reads both in one
/// go, so by the time the first comes back, the start of the second is in its read buffer.
pub(crate) fn idle_and_mid_line(
    server: &mut Run,
    addr: SocketAddr,
    connect: fn(&mut Run, SocketAddr, &str) -> TcpStream,
) -> (TcpStream, TcpStream) {
    let mut idle = connect(server, addr, "idle");
    idle.write_all(b"hello\n").unwrap();
    expect_echo(&mut idle, server, "hello\n");
    let mut busy = connect(server, addr, "busy");
    busy.write_all(b"first\nsecond, half").unwrap();
    expect_echo(&mut busy, server, "first\n");
    (idle, busy)
}

/// After the shutdown signal, `busy` (from `idle_and_mid_line`) ends its line and sends two
/// more in the same write: the line in progress is finished, and so is every whole line that
/// came with its end (one write: one read of the server). Then the server closes its side.
pub(crate) fn finish_the_line(busy: &mut TcpStream, server: &Run) {
    busy.write_all(b" done\nthird\nfourth\n").unwrap();
    assert_eq!(
        read_to_eof(busy, server),
        "second, half done\nthird\nfourth\n"
    );
}

/// Sends `bytes`, then a reset, while the server is paused, and resumes it once the kernel has
/// taken the reset: the server reads the bytes (bytes sent before a reset stay readable), and
/// meets the reset only when it writes.
pub(crate) fn send_and_reset_while_paused(
    server: &Run,
    addr: SocketAddr,
    stream: TcpStream,
    bytes: &[u8],
) {
    let local = stream.local_addr().unwrap();
    pause(server);
    (&stream).write_all(bytes).unwrap();
    reset(stream);
    wait_for_reset(server, addr, local);
    resume(server);
}

/// Waits until the kernel has taken the reset of the connection from `client` to `server`:
/// a reset closes the server's socket at once, and a closed socket leaves the kernel's table
/// of connections (`/proc/net/tcp`), even while the server still holds it.
fn wait_for_reset(server: &Run, server_addr: SocketAddr, client: SocketAddr) {
    let gone = || server_side_state(server_addr, client).is_none();
    poll(server, "the kernel to take the reset", gone);
}

/// Waits until the server's side of the connection from `client` is established (state
/// `01` in `/proc/net/tcp`): then it is in the listen queue, whether or not the server has
/// accepted it. `connect` can return a moment before: on loopback the client's last ACK of
/// the handshake may still be on its way.
pub(crate) fn wait_for_established(server: &Run, server_addr: SocketAddr, client: SocketAddr) {
    let queued = || server_side_state(server_addr, client).as_deref() == Some("01");
    poll(server, "the server's side of the connection", queued);
}

/// The state (`01` established, `06` TIME_WAIT...) of the server's side of the connection
/// from `client`, if the kernel still has it.
fn server_side_state(server: SocketAddr, client: SocketAddr) -> Option<String> {
    let ends = (
        format!(":{:04X}", server.port()),
        format!(":{:04X}", client.port()),
    );
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().find_map(|row| {
        let fields: Vec<&str> = row.split_whitespace().collect();
        (fields.len() > 3 && fields[1].ends_with(&ends.0) && fields[2].ends_with(&ends.1))
            .then(|| fields[3].to_string())
    })
}

/// Polls `done` every millisecond, for at most 30 seconds: for states of the kernel that no
/// call can wait for.
fn poll(server: &Run, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        if Instant::now() > deadline {
            server.fail(&format!("gave up waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn echo_client_talks_to_echo_server_over_many_connections() {
    let (server, addr) = serving("echo-server", &["--quiet"]);
    let client = listing("echo-client")
        .args(["--server", &addr.to_string()])
        .args(["--connections", "4", "--messages", "3"])
        .spawn()
        .finish();
    assert!(client.status.success(), "{}", client.text);
    assert_eq!(client.text.matches("all echoes match, then EOF").count(), 4);
    assert_snapshot!(client, "four-at-once");

    // Quiet: no line per connection, only the address and the summary. Whether a task that
    // has just sent its EOF is reaped before the signal arrives varies, so the server's log
    // is asserted on rather than snapshotted.
    let transcript = stop(server, "INT");
    let log = &transcript.text;
    assert!(!log.contains("connected"), "{log}");
    assert!(log.contains("shut down: 4 served;"), "{log}");
    assert!(log.contains("aborted: 0"), "{log}");
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
    assert_snapshot!(transcript, "refused");
}

#[test]
fn echo_client_refuses_a_bad_address() {
    // A host name is welcome (`--server localhost:7777`), but it needs its port.
    let transcript = listing("echo-client")
        .args(["--server", "localhost"])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert_snapshot!(transcript, "bad-address");
}

#[test]
fn echo_server_refuses_a_zero_line_length() {
    assert_refused!("echo-server", &["--max-line", "0"], "zero-max-line");
}

#[test]
fn echo_server_refuses_a_zero_backlog() {
    assert_refused!("echo-server", &["--backlog", "0"], "zero-backlog");
}

/// Three clients, A, B and C, talk to an echo server at once (chapter 12's mio server too):
/// returns them, open, with their names.
pub(crate) fn three_at_once(server: &mut Run, addr: SocketAddr) -> [(TcpStream, &'static str); 3] {
    let mut a = client(server, addr, "A");
    let mut b = client(server, addr, "B");
    let mut c = client(server, addr, "C");
    // The last to connect is echoed first, while A and B are still open and silent: a
    // server that served one connection at a time would still be waiting on A.
    c.write_all(b"C first\n").unwrap();
    expect_echo(&mut c, server, "C first\n");
    b.write_all(b"then B\n").unwrap();
    expect_echo(&mut b, server, "then B\n");
    // Two lines in one write, and one line in two writes: newlines frame the lines.
    a.write_all(b"A, one\nA, two\n").unwrap();
    expect_echo(&mut a, server, "A, one\nA, two\n");
    a.set_nodelay(true).unwrap();
    a.write_all(b"A, in ").unwrap();
    a.write_all(b"two writes\n").unwrap();
    expect_echo(&mut a, server, "A, in two writes\n");
    [(a, "A"), (b, "B"), (c, "C")]
}

#[test]
fn echo_server_serves_three_clients_at_once() {
    let (mut server, addr) = serving("echo-server", &[]);
    for (mut stream, name) in three_at_once(&mut server, addr) {
        stream.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_eof(&mut stream, &server), "");
        server.wait_for_line(&format!(r"^\[client {name}\] closed its side"));
    }
    let transcript = stop(server, "INT");
    assert!(transcript.text.contains("3 served; open at shutdown: 0,"));
    assert_snapshot!(transcript, "three-at-once");
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: the test reads /proc")]
fn echo_server_survives_every_fault() {
    // The default `--idle` (60 s): no stall of a loaded machine turns one ending into another.
    let (mut server, addr) = serving("echo-server", &["--max-line", "16"]);

    // Half-close with a tail: whole lines come back, then the end of the stream.
    let mut half = client(&mut server, addr, "half");
    half.write_all(b"one\ntwo\ntail").unwrap();
    half.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut half, &server), "one\ntwo\n");
    server.wait_for_line(r"^\[client half\] closed its side after 2 lines, mid-line \(4 bytes");

    // A reset the server reads: it comes after the echo.
    let mut rude = client(&mut server, addr, "rude");
    rude.write_all(b"bye\n").unwrap();
    expect_echo(&mut rude, &server, "bye\n");
    reset(rude);
    server.wait_for_line(r"^\[client rude\] reset the connection after 1 line$");

    // A reset the server meets when it writes: the line and the reset both arrive while the
    // server is paused, so it reads the line (bytes before a reset stay readable), and only
    // its echo fails. That line was never echoed.
    let hasty = client(&mut server, addr, "hasty");
    send_and_reset_while_paused(&server, addr, hasty, b"hello\n");
    server.wait_for_line(r"^\[client hasty\] reset the connection after 0 lines; line 1 not");

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
    assert_snapshot!(transcript, "faults");
}

#[test]
fn echo_server_hangs_up_on_slow_clients() {
    let (mut server, addr) = serving("echo-server", &["--idle", "2"]);
    let started = Instant::now();
    let _silent = client(&mut server, addr, "silent");
    server.wait_for_line(r"^\[client silent\] sent no whole line in 2 s; hanging up$");

    // Never silent for long, but never a newline: `--idle` is a deadline for the whole line.
    // Each wait for the server to hang up lasts at most a quarter of a second.
    let mut drip = client(&mut server, addr, "drip");
    drip.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let mut dripped = 0;
    loop {
        // After the hang-up, a byte may meet a reset: that ends it too.
        if drip.write_all(b"z").is_err() {
            break;
        }
        dripped += 1;
        match drip.read(&mut [0]) {
            Ok(0) => break,
            Ok(_) => server.fail("an echo without a newline"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        if dripped == 200 {
            server.fail("no hang-up after 200 bytes");
        }
    }
    server.wait_for_line(r"^\[client drip\] sent no whole line in 2 s; hanging up$");

    // Sends lines without end and reads none of the echoes: once they fill the client's
    // receive buffer and the server's send buffer, the server's write waits, and times out.
    // A small receive buffer makes that sooner; the lines start before the server has even
    // accepted the connection, so that it never waits for one.
    let deaf = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    deaf.set_recv_buffer_size(4096).unwrap();
    deaf.connect(&addr.into()).unwrap();
    let deaf = TcpStream::from(deaf);
    named(&mut server, &deaf, "deaf");
    let mut lines = deaf.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        let line: Vec<u8> = [b'y'; 999].iter().chain(b"\n").copied().collect();
        let lines_64 = line.repeat(64);
        let mut sent = 0;
        // Ends when the server hangs up (with a reset: it leaves what we sent unread), or
        // after the write timeout if it never does.
        while lines.write_all(&lines_64).is_ok() {
            sent += lines_64.len();
        }
        sent
    });
    server.wait_for_line(r"^\[client deaf\] connected$");
    server.wait_for_line(r"^\[client deaf\] read no echo for 2 s; hanging up$");
    let sent = flood.join().unwrap();
    assert!(sent > 0);

    let transcript = stop(server, "INT");
    assert!(transcript.text.contains("3 served;"), "{}", transcript.text);
    // Three hang-ups of at least 2 s each, far below the default 60.
    assert_quick(started, Duration::from_secs(40), &transcript);
    assert_snapshot!(transcript, "idle");
}

#[test]
fn echo_server_finishes_every_line_received_on_ctrl_c() {
    let (mut server, addr) = serving("echo-server", &[]);
    let (mut idle, mut busy) = idle_and_mid_line(&mut server, addr, client);

    server.ctrl_c();
    server.wait_for_line(r"^SIGINT: stopped accepting; open connections: 2$");
    // Between lines, the server closes its side at once; when the client closes in turn,
    // the connection is over. No new client is accepted.
    assert_eq!(read_to_eof(&mut idle, &server), "");
    drop(idle);
    server.wait_for_line(r"^\[client idle\] closed at shutdown after 1 line$");
    let refused = TcpStream::connect(addr).map(drop).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    finish_the_line(&mut busy, &server);
    // What the client sends after that is read and thrown away, until it closes.
    busy.write_all(b"too late\n").unwrap();
    drop(busy);

    let transcript = server.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let log = &transcript.text;
    assert!(
        log.contains("after 4 lines; 9 bytes after that discarded"),
        "{log}"
    );
    assert!(
        log.contains("open at shutdown: 2, finished: 2, aborted: 0"),
        "{log}"
    );
    assert_snapshot!(transcript, "ctrl-c");
}

#[test]
fn echo_server_stops_on_sigterm_too() {
    let (mut server, addr) = serving("echo-server", &[]);
    let mut client = client(&mut server, addr, "A");
    client.write_all(b"are you there?\n").unwrap();
    expect_echo(&mut client, &server, "are you there?\n");
    server.signal("TERM");
    assert_eq!(read_to_eof(&mut client, &server), "");
    drop(client);
    let transcript = server.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert_snapshot!(transcript, "sigterm");
}

/// A client with half a line sent, which it will never finish.
fn stuck(server: &mut Run, addr: SocketAddr) -> TcpStream {
    let mut stuck = client(server, addr, "stuck");
    // As above: the start of a line comes with the first, in one write.
    stuck.write_all(b"hello\nnever fini").unwrap();
    expect_echo(&mut stuck, server, "hello\n");
    stuck
}

#[test]
fn echo_server_aborts_what_is_left_after_the_grace_period() {
    let (mut server, addr) = serving("echo-server", &["--grace", "1"]);
    let mut stuck = stuck(&mut server, addr);
    let signalled = Instant::now();
    server.ctrl_c();
    server.wait_for_line(r"^the 1 s grace period is over: aborting the 1 still open$");
    // The aborted task dropped the socket: the client reads the end of the stream, no echo.
    assert_eq!(read_to_eof(&mut stuck, &server), "");
    let transcript = server.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert!(transcript.text.contains("finished: 0, aborted: 1"));
    // The default grace period is 10 s.
    assert_quick(signalled, Duration::from_secs(8), &transcript);
    assert_snapshot!(transcript, "grace-expired");
}

#[test]
fn echo_server_aborts_at_once_on_a_second_ctrl_c() {
    let (mut server, addr) = serving("echo-server", &["--grace", "60"]);
    let mut stuck = stuck(&mut server, addr);
    server.ctrl_c();
    server.wait_for_line(r"^SIGINT: stopped accepting; open connections: 1$");
    let signalled = Instant::now();
    server.ctrl_c();
    server.wait_for_line(r"^SIGINT again: aborting the 1 still open$");
    assert_eq!(read_to_eof(&mut stuck, &server), "");
    let transcript = server.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert!(transcript.text.contains("finished: 0, aborted: 1"));
    assert_quick(signalled, Duration::from_secs(30), &transcript);
    assert_snapshot!(transcript, "ctrl-c-twice");
}

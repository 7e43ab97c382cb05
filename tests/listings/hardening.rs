//! Chapter 16 (beyond the notes): chapter 13's echo server hardened. The server runs as a
//! listing; its clients are sockets in the test, whose every read has a timeout. Each step
//! waits for the server's log line before the next, so the logs come out in one order on
//! every run.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::echo::{
    expect_echo, finish_the_line, idle_and_mid_line, named, read_to_eof,
    send_and_reset_while_paused, stop, wait_for_established,
};
use crate::harness::{
    Run, Transcript, assert_refused, assert_snapshot, listing, serving, workspace_root,
};

const SERVER: &str = "hardened-echo";

/// A test client, named in the server's log as `[client NAME]`; waits until the server has
/// accepted it (its span's first event).
fn client(server: &mut Run, addr: SocketAddr, name: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    named(server, &stream, name);
    connected(server, name);
    stream
}

/// Waits for `[client NAME]`'s "connected" line: returns how many were open with it.
fn connected(server: &mut Run, name: &str) -> usize {
    let pattern = format!(r"conn\{{id=\d+ peer=\[client {name}\]\}}: connected open=(\d+)$");
    server.wait_for_line(&pattern)[1].parse().unwrap()
}

/// The server's log line for `[client NAME]`'s end, which it writes once the connection is
/// over; `end` is a pattern for how it ended.
fn ended(server: &mut Run, name: &str, end: &str) {
    server.wait_for_line(&format!(r"peer=\[client {name}\]\}}: {end}"));
}

/// Shuts down the client's side, reads every echo to the end of the stream, and waits for
/// the server's log of it.
fn leave(server: &mut Run, mut stream: TcpStream, name: &str, lines: &str) {
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut stream, server), "");
    ended(server, name, &format!("closed its side after {lines}$"));
}

#[test]
fn hardened_echo_frames_lines_with_a_codec() {
    let (mut server, addr) = serving(SERVER, &["--max-line", "16"]);

    // Lines in any writes; `\r\n` is a newline too; exactly 16 bytes fits; a tail without
    // its newline comes back as a last line, newline added.
    let mut lines = client(&mut server, addr, "lines");
    lines.write_all(b"hello\ntwo ").unwrap();
    lines
        .write_all(b"writes\r\nsixteen bytes ok\ntail")
        .unwrap();
    lines.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        read_to_eof(&mut lines, &server),
        "hello\ntwo writes\nsixteen bytes ok\ntail\n"
    );
    ended(&mut server, "lines", "closed its side after 4 lines$");

    // A line over the limit: the client is told, in one line, then the end of the stream.
    let mut long = client(&mut server, addr, "long");
    long.write_all(&[b'x'; 40].iter().chain(b"\n").copied().collect::<Vec<u8>>())
        .unwrap();
    assert_eq!(
        read_to_eof(&mut long, &server),
        "error: a line over 16 bytes\n"
    );
    drop(long);
    ended(
        &mut server,
        "long",
        "sent a line over 16 bytes; told it, hung up$",
    );

    // Latin-1 café: not UTF-8.
    let mut latin1 = client(&mut server, addr, "latin1");
    latin1.write_all(b"caf\xe9\n").unwrap();
    assert_eq!(
        read_to_eof(&mut latin1, &server),
        "error: a line that is not UTF-8\n"
    );
    drop(latin1);
    ended(
        &mut server,
        "latin1",
        "sent a line that is not UTF-8; told it, hung up$",
    );

    // A reset the server meets when it writes, as in chapter 13: three lines and the reset
    // arrive while the server is paused; it reads the lines (bytes before a reset stay
    // readable), and the first echo meets the reset. No line was echoed.
    let hasty = client(&mut server, addr, "hasty");
    send_and_reset_while_paused(&server, addr, hasty, b"hello\nhello\nhello\n");
    ended(
        &mut server,
        "hasty",
        "reset the connection after 0 lines; line 1 not echoed$",
    );

    let transcript = stop(server, "INT");
    assert!(
        transcript
            .text
            .contains("shut down: 4 served, 0 turned away, 0 cut off")
    );
    assert_snapshot!(transcript, "framing");
}

#[test]
fn hardened_echo_refuses_a_zero_line_length() {
    assert_refused!(SERVER, &["--max-line", "0"], "zero-max-line");
}

#[test]
fn hardened_echo_refuses_an_idle_of_zero() {
    assert_refused!(SERVER, &["--idle", "0"], "zero-idle");
}

#[test]
fn hardened_echo_refuses_a_zero_cap() {
    assert_refused!(SERVER, &["--max-connections", "0"], "zero-max-connections");
}

#[test]
fn hardened_echo_reports_an_address_in_use() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let transcript = listing(SERVER).args(["--bind", &addr]).spawn().finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert!(transcript.text.contains("Address already in use"));
    assert_snapshot!(transcript, "address-in-use");
}

/// True if `stream` gets no byte within `wait`: a server that has not accepted it cannot
/// send one, so a loaded machine never turns this false.
fn silent_for(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let silent = matches!(
        stream.read(&mut [0]),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
    );
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    silent
}

#[test]
fn hardened_echo_serves_at_most_its_cap() {
    let (mut server, addr) = serving(SERVER, &["--max-connections", "2"]);
    let mut a = client(&mut server, addr, "A");
    let b = client(&mut server, addr, "B");
    server.wait_for_line(r"^ INFO 2 open, the cap: connection 3 waits until one ends$");

    // Two more: the kernel completes their handshakes (connect returns), and queues them;
    // the server does not accept them, so their lines get no echo.
    let mut waiting = Vec::new();
    for name in ["C", "D"] {
        let mut stream = TcpStream::connect(addr).unwrap();
        named(&mut server, &stream, name);
        stream
            .write_all(format!("{name} waits\n").as_bytes())
            .unwrap();
        waiting.push((stream, name));
    }
    for (stream, name) in &mut waiting {
        if !silent_for(stream, Duration::from_millis(300)) {
            server.fail(&format!("client {name} was served beyond the cap"));
        }
    }
    // A and B are served all along.
    a.write_all(b"A still served\n").unwrap();
    expect_echo(&mut a, &server, "A still served\n");

    // Each that leaves lets one in: C after A, D after B, each echoed then.
    let [(mut c, _), (mut d, _)] = <[_; 2]>::try_from(waiting).unwrap();
    leave(&mut server, a, "A", "1 line");
    assert_eq!(connected(&mut server, "C"), 2);
    server.wait_for_line(r"^ INFO 2 open, the cap: connection 4 waits until one ends$");
    expect_echo(&mut c, &server, "C waits\n");
    leave(&mut server, b, "B", "0 lines");
    assert_eq!(connected(&mut server, "D"), 2);
    server.wait_for_line(r"^ INFO 2 open, the cap: connection 5 waits until one ends$");
    expect_echo(&mut d, &server, "D waits\n");
    leave(&mut server, c, "C", "1 line");
    leave(&mut server, d, "D", "1 line");

    let transcript = stop(server, "INT");
    // The page's claim: 4 clients, never more than 2 served at once.
    let open: Vec<usize> = transcript
        .text
        .lines()
        .filter_map(|line| line.split_once("connected open=")?.1.parse().ok())
        .collect();
    assert_eq!(open, [1, 2, 2, 2], "{}", transcript.text);
    assert!(
        transcript
            .text
            .contains("shut down: 4 served, 0 turned away, 0 cut off")
    );
    assert_snapshot!(transcript, "cap");
}

#[test]
fn hardened_echo_turns_away_the_clients_waiting_at_the_cap_on_ctrl_c() {
    let (mut server, addr) = serving(SERVER, &["--max-connections", "1"]);
    let mut a = client(&mut server, addr, "A");
    server.wait_for_line(r"^ INFO 1 open, the cap: connection 2 waits until one ends$");
    // B waits in the listen queue, its line unread.
    let mut b = TcpStream::connect(addr).unwrap();
    named(&mut server, &b, "B");
    b.write_all(b"B waits\n").unwrap();
    // In the queue for certain before the signal, or the server would find it empty.
    wait_for_established(&server, addr, b.local_addr().unwrap());

    server.ctrl_c();
    server.wait_for_line(r"SIGINT: stopped accepting");
    // A, between lines, is closed; B is accepted, told, and closed: no reset for either.
    assert_eq!(read_to_eof(&mut a, &server), "");
    drop(a);
    ended(&mut server, "A", "closed at shutdown after 0 lines$");
    assert_eq!(
        read_to_eof(&mut b, &server),
        "error: the server is shutting down\n"
    );
    drop(b);
    ended(
        &mut server,
        "B",
        "waited in the listen queue; told it we are shutting down$",
    );

    let transcript = server.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let log = &transcript.text;
    assert!(
        log.contains("shut down: 1 served, 1 turned away, 0 cut off"),
        "{log}"
    );
    assert_snapshot!(transcript, "shutdown-at-the-cap");
}

#[test]
fn hardened_echo_finishes_every_line_received_on_ctrl_c() {
    let (mut server, addr) = serving(SERVER, &[]);
    let (mut idle, mut busy) = idle_and_mid_line(&mut server, addr, client);

    server.ctrl_c();
    server.wait_for_line(r"SIGINT: stopped accepting");
    // Between lines: the server closes its side at once, and is done when we close ours.
    assert_eq!(read_to_eof(&mut idle, &server), "");
    drop(idle);
    ended(&mut server, "idle", "closed at shutdown after 1 line$");
    // Refused: the listener is closed. Unless a test running beside this one has bound the
    // freed port since; then the connection is that program's, and proves nothing.
    if let Err(e) = TcpStream::connect(addr) {
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    }
    finish_the_line(&mut busy, &server);
    drop(busy);

    let transcript = server.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let log = &transcript.text;
    assert!(log.contains("finished at shutdown after 4 lines"), "{log}");
    assert!(
        log.contains("shut down: 2 served, 0 turned away, 0 cut off"),
        "{log}"
    );
    assert_snapshot!(transcript, "ctrl-c");
}

/// A client with half a line in the server's read buffer, which it never finishes: one write
/// of a whole line and the start of the next, so that by the time the line's echo comes back,
/// the server has read the start of the next too.
fn stuck(server: &mut Run, addr: SocketAddr) -> TcpStream {
    let mut stuck = client(server, addr, "stuck");
    stuck.write_all(b"a whole line\nhalf a li").unwrap();
    expect_echo(&mut stuck, server, "a whole line\n");
    stuck
}

/// After `signals`, the stuck client is cut off: it reads the end of the stream with no
/// echo, and the server exits with status 0, and in less than `limit`: a test of a short
/// grace must not pass on the default (10 s).
fn cut_off(mut server: Run, mut stuck: TcpStream, signals: &[&str], limit: Duration) -> Transcript {
    let signalled = Instant::now();
    for (i, signal) in signals.iter().enumerate() {
        if *signal == "INT" {
            server.ctrl_c();
        } else {
            server.signal(signal);
        }
        // `wait_for_line` finds the first match in the whole output: each signal's own line.
        if i == 0 {
            server.wait_for_line(&format!("SIG{signal}: stopped accepting"));
        } else {
            server.wait_for_line(&format!("SIG{signal} again: cutting off"));
        }
    }
    assert_eq!(read_to_eof(&mut stuck, &server), "");
    let transcript = server.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let took = signalled.elapsed();
    assert!(took < limit, "took {took:?}\n{}", transcript.text);
    assert!(
        transcript
            .text
            .contains("shut down: 1 served, 0 turned away, 1 cut off")
    );
    transcript
}

#[test]
fn hardened_echo_cuts_off_at_the_end_of_the_grace_period() {
    let (mut server, addr) = serving(SERVER, &["--grace", "1"]);
    let stuck = stuck(&mut server, addr);
    let transcript = cut_off(server, stuck, &["TERM"], Duration::from_secs(8));
    assert!(
        transcript
            .text
            .contains("the grace period is over: cutting off")
    );
    assert_snapshot!(transcript, "sigterm-grace");
}

#[test]
fn hardened_echo_cuts_off_at_once_on_a_second_ctrl_c() {
    // Far below the 60 s grace: the second Ctrl-C ends the wait.
    let (mut server, addr) = serving(SERVER, &["--grace", "60"]);
    let stuck = stuck(&mut server, addr);
    let transcript = cut_off(server, stuck, &["INT", "INT"], Duration::from_secs(30));
    assert!(transcript.text.contains("SIGINT again: cutting off"));
    assert_snapshot!(transcript, "ctrl-c-twice");
}

#[test]
fn hardened_echo_traces_each_connection_in_its_span() {
    let (mut server, addr) = serving(SERVER, &["--verbose"]);
    let a = client(&mut server, addr, "A");
    let b = client(&mut server, addr, "B");
    // Interleaved: each event still names its connection, through its span.
    for (stream, line) in [
        (&a, "from A\n"),
        (&b, "from B, longer\n"),
        (&a, "A again\n"),
    ] {
        let mut stream = stream.try_clone().unwrap();
        stream.write_all(line.as_bytes()).unwrap();
        expect_echo(&mut stream, &server, line);
    }
    leave(&mut server, a, "A", "2 lines");
    leave(&mut server, b, "B", "1 line");
    let transcript = stop(server, "TERM");
    assert_eq!(transcript.text.matches("}: echo bytes=").count(), 3);
    assert_snapshot!(transcript, "verbose");
}

/// The code lines (neither blank nor a comment) between `// ANCHOR: name` and its end.
fn code_lines(listing: &str, anchor: &str) -> usize {
    let text = std::fs::read_to_string(workspace_root().join(listing)).unwrap();
    let start = format!("// ANCHOR: {anchor}");
    let end = format!("// ANCHOR_END: {anchor}");
    text.lines()
        .map(str::trim)
        .skip_while(|line| *line != start)
        .take_while(|line| *line != end)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .count()
}

/// The line counts the pages compare: a connection's code (framing.md) and the shutdown
/// (shutdown.md), here and in chapter 13's server.
#[test]
fn hardened_echo_is_shorter_than_chapter_13s() {
    let before = "listings/13-async/echo-server/src/lib.rs";
    let after = "listings/16-hardening/hardened-echo/src/main.rs";
    let connection_before: usize = ["echo", "ends", "linger"]
        .iter()
        .map(|anchor| code_lines(before, anchor))
        .sum();
    let connection_after = code_lines(after, "echo") + code_lines(after, "hang_up");
    assert_eq!((connection_before, connection_after), (91, 88));
    let shutdown = (
        code_lines(before, "shutdown"),
        code_lines(after, "shutdown"),
    );
    assert_eq!(shutdown, (31, 22));
}

//! Chapter 12 (beyond the notes), readiness: non-blocking sockets, and an echo server on mio.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::echo::{client, expect_echo, named, read_to_eof, stop, three_at_once};
use crate::harness::{
    Run, assert_refused, assert_snapshot, debug_duration, listing, reset, serving,
};

/// A duration as `{:?}` prints it (`11.585ms`, `83µs`).
fn duration(shown: &str) -> Duration {
    debug_duration(shown).unwrap_or_else(|| panic!("not a duration: {shown:?}"))
}

/// The word after `before` on the line that starts with `prefix`.
fn word_after<'a>(text: &'a str, prefix: &str, before: &str) -> &'a str {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.split_once(before))
        .and_then(|(_, rest)| rest.split([' ', ',', ';']).next())
        .unwrap_or_else(|| panic!("no {before:?} on a line {prefix:?}:\n{text}"))
}

#[test]
fn nonblocking_calls_return_at_once_and_a_retry_loop_spins() {
    let mut transcript = listing("nonblocking").spawn().finish();
    let text = transcript.text.clone();
    assert!(transcript.status.success(), "{text}");
    // Nothing to accept, nothing to read: both calls say so at once instead of waiting.
    for prefix in ["accept, no client yet: ", "read, nothing sent: "] {
        let line = text.lines().find(|l| l.starts_with(prefix)).expect(prefix);
        assert!(line.contains("(os error 11)"), "{text}");
        assert!(duration(word_after(&text, prefix, " after ")) < Duration::from_secs(1));
    }
    // The spinning read asked the kernel again and again while the peer slept; the blocking
    // read asked once. How much CPU the spin got is the scheduler's to say on a loaded
    // machine, but it is always far more than the blocking read's, which slept.
    let retries: u64 = word_after(&text, "spinning read: ", " after ")
        .parse()
        .unwrap();
    assert!(retries > 1000, "{text}");
    let spin_cpu = duration(word_after(&text, "spinning read: ", "CPU time "));
    let blocking_cpu = duration(word_after(&text, "blocking read: ", "CPU time "));
    assert!(spin_cpu > 5 * blocking_cpu, "{text}");
    // The peer sent the line 200 ms after the blocking read began: a sleep never ends early.
    let waited = duration(word_after(&text, "blocking read: ", " in "));
    assert!(waited >= Duration::from_millis(200), "{text}");
    // Some of the write fits in the kernel's buffers, not all 32 MiB of it; then WouldBlock.
    let accepted: f64 = word_after(&text, "write of ", ": ").parse().unwrap();
    assert!(accepted > 0.0 && accepted < 32.0, "{text}");
    assert!(text.contains("write of the rest: Resource temporarily unavailable"));
    transcript.redact_matches(r"after \d+ retries", "after [N] retries");
    assert_snapshot!(transcript, "run");
}

#[test]
fn nonblocking_refuses_a_zero_delay() {
    assert_refused!("nonblocking", &["--delay", "0"], "zero-delay");
}

/// Half-closes, then reads until the server closes its side too.
fn say_goodbye(mut stream: TcpStream, server: &mut Run, name: &str) {
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut stream, server), "");
    server.wait_for_line(&format!(r"^\[client {name}\] closed its side"));
}

#[test]
fn mio_echo_server_serves_echo_client_over_many_connections() {
    let (server, addr) = serving("mio-echo-server", &["--quiet"]);
    let client = listing("echo-client")
        .args(["--server", &addr.to_string()])
        .args(["--connections", "10", "--messages", "5"])
        .spawn()
        .finish();
    assert!(client.status.success(), "{}", client.text);
    assert_eq!(
        client.text.matches("all echoes match, then EOF").count(),
        10
    );
    assert_snapshot!(client, "mio-server");
    let log = stop(server, "INT").text;
    assert!(!log.contains("connected"), "{log}");
    assert!(log.contains("shut down: 10 served;"), "{log}");
}

#[test]
fn mio_echo_server_serves_three_clients_at_once() {
    let (mut server, addr) = serving("mio-echo-server", &[]);
    // The same three clients as chapter 13's tokio server gets.
    let [a, b, (mut c, _)] = three_at_once(&mut server, addr);
    // A tail without a newline is never echoed.
    c.write_all(b"tail").unwrap();
    for (stream, name) in [a, b, (c, "C")] {
        say_goodbye(stream, &mut server, name);
    }
    // A reset, after one line.
    let mut rude = client(&mut server, addr, "rude");
    rude.write_all(b"bye\n").unwrap();
    expect_echo(&mut rude, &server, "bye\n");
    reset(rude);
    server.wait_for_line(r"^\[client rude\] reset the connection after 1 line$");
    // Too long a line: the default limit is 1024 bytes.
    let mut long = client(&mut server, addr, "long");
    long.write_all(&[b'x'; 2000]).unwrap();
    server.wait_for_line(r"^\[client long\] sent a line over 1024 bytes; hanging up$");
    let transcript = stop(server, "INT");
    let log = &transcript.text;
    assert!(
        log.contains("mid-line (4 bytes dropped); closed ours"),
        "{log}"
    );
    assert!(log.contains("shut down: 5 served; 0 partial writes; write interest added 0 times"));
    assert_snapshot!(transcript, "three-at-once");
}

#[test]
fn mio_echo_server_keeps_what_a_slow_reader_has_not_taken() {
    let (mut server, addr) = serving("mio-echo-server", &[]);
    // A small receive buffer, and nothing read until the server says it is waiting: the
    // echoes fill it and the server's send buffer, and the server's writes come back short.
    let slow = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    slow.set_recv_buffer_size(4096).unwrap();
    slow.connect(&addr.into()).unwrap();
    let mut slow = TcpStream::from(slow);
    named(&mut server, &slow, "slow");
    server.wait_for_line(r"^\[client slow\] connected$");
    // More than every buffer between the two programs can hold (the kernel caps each at a
    // few MiB), so the server must wait for write readiness before all of it is sent.
    let line: Vec<u8> = [b'y'; 999].iter().chain(b"\n").copied().collect();
    let total = 32 << 20;
    let mut writer = slow.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        for _ in 0..total / line.len() {
            writer.write_all(&line)?;
        }
        writer.shutdown(Shutdown::Write)
    });
    server.wait_for_line(r"^\[client slow\] reads slower than it sends: echoes wait$");
    let mut echoed = Vec::new();
    if let Err(e) = slow.read_to_end(&mut echoed) {
        server.fail(&format!("echoes cut short ({e})"));
    }
    flood.join().unwrap().expect("every line sent");
    let lines = total / 1000;
    assert_eq!(echoed.len(), lines * 1000);
    assert!(
        echoed
            .chunks(1000)
            .all(|l| l[..999] == [b'y'; 999] && l[999] == b'\n')
    );
    server.wait_for_line(&format!(
        r"^\[client slow\] closed its side after {lines} lines; closed ours$"
    ));
    let mut transcript = stop(server, "INT");
    // How often the writes came back short depends on the kernel's buffers; never 0.
    let summary = transcript.text.lines().last().unwrap().to_string();
    let count = |before: &str| -> u64 {
        summary
            .split_once(before)
            .unwrap()
            .0
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(count(" partial writes") > 0, "{summary}");
    let added: u64 = word_after(&summary, "shut down", "added ").parse().unwrap();
    assert!(added > 0, "{summary}");
    transcript.redact_matches(r"\d+ partial writes", "[N] partial writes");
    transcript.redact_matches(r"added \d+ times", "added [N] times");
    assert_snapshot!(transcript, "slow-reader");
}

#[test]
fn mio_echo_server_hangs_up_on_an_idle_client() {
    let (mut server, addr) = serving("mio-echo-server", &["--idle-timeout", "1"]);
    let started = Instant::now();
    // A line, and then nothing: the deadline counts from the last progress.
    let mut quiet = client(&mut server, addr, "quiet");
    quiet.write_all(b"one line\n").unwrap();
    expect_echo(&mut quiet, &server, "one line\n");
    let _silent = client(&mut server, addr, "silent");
    server.wait_for_line(r"^\[client quiet\] idle for 1 s; hanging up$");
    server.wait_for_line(r"^\[client silent\] idle for 1 s; hanging up$");
    // The server closed: the client reads the end of the stream.
    let mut rest = Vec::new();
    quiet.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let transcript = stop(server, "INT");
    // Not the default 60 s.
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "idle");
}

#[test]
fn mio_echo_server_refuses_a_zero_idle_timeout() {
    assert_refused!(
        "mio-echo-server",
        &["--idle-timeout", "0"],
        "zero-idle-timeout"
    );
}

#[test]
fn mio_echo_server_refuses_a_zero_backlog() {
    assert_refused!("mio-echo-server", &["--backlog", "0"], "zero-backlog");
}

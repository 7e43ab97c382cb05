//! Chapter 3, TCP in depth (beyond the notes): framing, half-close, TIME_WAIT, Nagle,
//! keepalive. Servers run as listings; the test's own sockets have a timeout on every read,
//! and each step waits for the server's log line before the next.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use crate::harness::{
    Run, assert_refused, assert_snapshot, debug_duration, listing, python3_present, serving,
};

/// A test client, named in the server's log (which brackets addresses) as `[client NAME]`.
fn client(server: &mut Run, addr: SocketAddr, name: &str) -> TcpStream {
    crate::tcp::labelled_client(server, addr, &format!("client {name}"))
}

/// Reads until the server closes (or resets) the connection.
fn expect_closed(stream: &mut TcpStream, server: &Run) {
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => server.fail(&format!("the server did not close the connection: {e}")),
    }
}

#[test]
fn length_prefix_client_and_server_exchange_frames() {
    let (server, addr) = serving("length-prefix", &["--clients", "1"]);
    let client = listing("length-prefix")
        .args([
            "--connect",
            &addr.to_string(),
            "你好",
            "",
            "a longer message",
        ])
        .spawn()
        .finish();
    assert!(client.status.success(), "{}", client.text);
    assert!(
        client
            .text
            .contains("reply: 你好\nreply: \nreply: a longer message\n")
    );
    assert_snapshot!(client, "client");
    let mut transcript = server.finish();
    transcript.redact_matches(r"\[127\.0\.0\.1:\d+\]", "[client]");
    assert!(
        transcript.text.contains("frames echoed: 3"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "server");
}

#[test]
fn length_prefix_server_refuses_oversized_and_truncated_frames() {
    let (mut server, addr) = serving("length-prefix", &["--clients", "4", "--max-frame", "1024"]);

    // 4 GiB announced: refused from the header alone, before any allocation.
    let mut huge = client(&mut server, addr, "huge");
    huge.write_all(&u32::MAX.to_be_bytes()).unwrap();
    server.wait_for_line(r"\[client huge\] announced a frame of 4294967295 bytes, over");
    expect_closed(&mut huge, &server);

    let mut short = client(&mut server, addr, "short");
    short.write_all(&100u32.to_be_bytes()).unwrap();
    short.write_all(b"only 19 bytes here.").unwrap();
    short.shutdown(Shutdown::Write).unwrap();
    server.wait_for_line(r"\[client short\] announced a frame of 100 bytes; the stream ended");

    let mut stub = client(&mut server, addr, "stub");
    stub.write_all(&[0, 0]).unwrap();
    stub.shutdown(Shutdown::Write).unwrap();
    server.wait_for_line(r"\[client stub\] the stream ended 2 bytes into a 4-byte length");

    // The server still serves.
    let mut good = client(&mut server, addr, "good");
    good.write_all(&[&5u32.to_be_bytes()[..], b"hello"].concat())
        .unwrap();
    let mut reply = [0; 9];
    if let Err(e) = good.read_exact(&mut reply) {
        server.fail(&format!("no reply after the faults: {e}"));
    }
    assert_eq!(&reply, b"\0\0\0\x05hello");
    drop(good);
    let transcript = server.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert_snapshot!(transcript, "faults");
}

#[test]
fn length_prefix_client_refuses_a_message_over_the_maximum() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let transcript = listing("length-prefix")
        .args([
            "--connect",
            &listener.local_addr().unwrap().to_string(),
            "--max-frame",
            "4",
            "too long",
        ])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert_snapshot!(transcript, "too-long");
}

#[test]
fn length_prefix_refuses_a_negative_maximum() {
    assert_refused!("length-prefix", &["--max-frame=-1"], "negative-max");
}

// A read timeout of zero seconds is no timeout at all to std (`set_read_timeout` refuses
// `Some(ZERO)`), so clap refuses it before a connection is made.
#[test]
fn length_prefix_refuses_a_zero_idle_timeout() {
    assert_refused!("length-prefix", &["--idle", "0"], "zero-idle");
}

#[test]
fn half_close_ends_a_request_and_still_reads_the_reply() {
    let transcript = listing("half-close").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let text = &transcript.text;
    for claim in [
        "with shutdown(Write): the server read 14 bytes to the end\n  and the client read its \
         reply: got 14 bytes\n",
        "for the end, and gave up\n  and closed: the client read the end, and no reply\n",
        "after shutdown(Read): read gives Ok(0)\n",
        "after shutdown(Both): write gives an error: BrokenPipe",
        "and the server reads Ok(0)\n",
    ] {
        assert!(text.contains(claim), "missing {claim:?}:\n{text}");
    }
    assert_snapshot!(transcript, "demo");
}

#[test]
fn half_close_refuses_a_wait_of_zero() {
    // A read timeout of zero is an error in std: clap refuses it first.
    assert_refused!("half-close", &["--wait-ms", "0"], "zero-wait");
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: /proc/net/tcp")]
fn time_wait_holds_the_port_until_so_reuseaddr() {
    let measure = std::env::var_os("BOOK_MEASURE").is_some_and(|v| v == "1");
    let mut run = listing("time-wait");
    if measure {
        // TIME_WAIT lasts 60 s on Linux: only a recording run waits it out.
        run = run
            .args(["--wait-for-rebind"])
            .measuring()
            .budget(Duration::from_secs(240));
    }
    let mut transcript = run.spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let text = transcript.text.clone();
    for claim in [
        "std's listener has SO_REUSEADDR: true\n",
        "TIME_WAIT (06), ",
        "without SO_REUSEADDR: AddrInUse (",
        "with SO_REUSEADDR: bound at once\n",
        "std's TcpListener::bind: bound 127.0.0.1:",
    ] {
        assert!(text.contains(claim), "missing {claim:?}:\n{text}");
    }
    assert!(
        text.contains(": 1\n  0100007F:") && text.matches(" 06\n").count() == 1,
        "not exactly one TIME_WAIT entry for the connection:\n{text}"
    );
    // /proc writes ports in hex, which the harness does not know as ports.
    transcript.redact_matches(r"0100007F:[0-9A-F]{4}", "0100007F:[PORT]");
    // Python's socket sets no option: it fails where socket2 without the option fails.
    let python = python3_present();
    if python {
        assert!(
            text.contains(
                "Python, socket.socket(): OSError: [Errno 98] Address already in use\n\
                 Python, with SO_REUSEADDR: bound\n"
            ),
            "{text}"
        );
    } else {
        assert!(text.contains("python3 not found, skipped\n"), "{text}");
    }
    if measure {
        // Its record is the page's figure; the run without the wait is the snapshot.
        assert!(text.contains("without SO_REUSEADDR the bind worked again after"));
        transcript.record_measurement("wait-for-rebind");
    } else if python {
        assert_snapshot!(transcript, "demo");
    } else {
        eprintln!("python3 is not here: the Python half is checked as skipped, no snapshot");
    }
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: /proc/net/tcp")]
fn time_wait_without_python_skips_its_python_half() {
    let transcript = listing("time-wait")
        .args(["--python", "/nonexistent/python3"])
        .spawn()
        .finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let text = &transcript.text;
    assert!(
        text.ends_with("/nonexistent/python3 not found, skipped\n"),
        "{text}"
    );
    assert!(
        text.contains("std's TcpListener::bind: bound 127.0.0.1:"),
        "{text}"
    );
}

/// The p50 on the line that starts with `way`.
fn p50(text: &str, way: &str) -> Duration {
    text.lines()
        .find_map(|line| line.strip_prefix(way)?.strip_prefix(": p50 "))
        .and_then(|rest| debug_duration(rest.split(',').next()?))
        .unwrap_or_else(|| panic!("no p50 for {way}:\n{text}"))
}

#[test]
fn nagle_delays_the_second_small_write() {
    let transcript = listing("nagle").measuring().spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let text = &transcript.text;
    let nagle = p50(text, "two writes, Nagle on (the default)");
    let nodelay = p50(text, "two writes, TCP_NODELAY");
    let one_write = p50(text, "one write, Nagle on");
    // Linux delays an ACK by 40 ms at least; load only makes every figure longer, so the
    // margins hold on a busy machine: a tenth of the delay, and ten times the others.
    assert!(
        nagle >= Duration::from_millis(5),
        "Nagle's p50 {nagle:?}:\n{text}"
    );
    assert!(
        nagle >= nodelay * 10,
        "{nagle:?} against {nodelay:?}:\n{text}"
    );
    assert!(
        nagle >= one_write * 10,
        "{nagle:?} against {one_write:?}:\n{text}"
    );
    assert_snapshot!(transcript, "loopback");
    transcript.record_measurement("loopback");
}

#[test]
fn nagle_refuses_zero_rounds() {
    assert_refused!("nagle", &["--rounds", "0"], "zero-rounds");
}

/// The number after `prefix` on the line that starts with it (`tcp_keepalive_time 7200`).
fn number_after(text: &str, prefix: &str) -> u64 {
    text.find(prefix)
        .and_then(|at| {
            let rest = &text[at + prefix.len()..];
            let end = rest.find(|c: char| !c.is_ascii_digit())?;
            rest[..end].parse().ok()
        })
        .unwrap_or_else(|| panic!("no number after {prefix:?}:\n{text}"))
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "needs Linux: TCP_INFO and socket filters"
)]
fn keepalive_probes_an_idle_connection_and_drops_a_dead_peer() {
    let idle = 3;
    let mut transcript = listing("keepalive").measuring().spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let text = transcript.text.clone();

    // The system's defaults are this machine's: positive, and what SO_KEEPALIVE alone gets.
    let time = number_after(&text, "tcp_keepalive_time ");
    let interval = number_after(&text, "tcp_keepalive_intvl ");
    let probes = number_after(&text, "tcp_keepalive_probes ");
    assert!(time > 0 && interval > 0 && probes > 0, "{text}");
    let alone = format!(
        "SO_KEEPALIVE alone: probes after {time} s idle, every {interval} s, {probes} of them\n"
    );
    for claim in [
        "a new connection: SO_KEEPALIVE false\n",
        &alone,
        "with TcpKeepalive: probes after 1 s idle, every 1 s, 3 of them\n",
        "  without: 0, and the peer 0\n",
        "a peer that drops every segment: read gave TimedOut (",
    ] {
        assert!(text.contains(claim), "missing {claim:?}:\n{text}");
    }

    // A probe a second, each answered: timers fire late under load, never early, so at
    // least idle - 1 in `idle` seconds; the peer's count is read just after, one off at most.
    let sent = number_after(&text, "  with keepalive: ");
    let answered = number_after(&text, ", and the peer answered ");
    assert!(sent + 1 >= idle, "{sent} probes in {idle} s:\n{text}");
    assert!(
        answered >= 1 && answered.abs_diff(sent) <= 1,
        "{sent} probes, {answered} answers:\n{text}"
    );

    // Idle 1 s, then 3 unanswered probes a second apart: the read fails after 4 s, no sooner
    // (a quarter-second allowed for the kernel's coarse timers), and long before the
    // listing's own 34 s read timeout.
    let waited = text
        .lines()
        .find_map(|line| debug_duration(line.rsplit_once(") after ")?.1))
        .unwrap_or_else(|| panic!("no wait:\n{text}"));
    assert!(
        waited >= Duration::from_millis(3750) && waited < Duration::from_secs(30),
        "the dead peer's read ended after {waited:?}:\n{text}"
    );

    transcript.redact_matches(r"(tcp_keepalive_\w+) \d+", "$1 [N]");
    transcript.redact_matches(
        r"alone: probes after \d+ s idle, every \d+ s, \d+ of",
        "alone: probes after [N] s idle, every [N] s, [N] of",
    );
    transcript.redact_matches(
        r"keepalive: \d+, and the peer answered \d+",
        "keepalive: [N], and the peer answered [N]",
    );
    assert_snapshot!(transcript, "loopback");
    transcript.record_measurement("loopback");
}

#[test]
fn keepalive_refuses_an_idle_time_of_zero() {
    assert_refused!("keepalive", &["--idle", "0"], "zero-idle");
    for bad in ["abc", "-1", "61", ""] {
        let transcript = listing("keepalive").args(["--idle", bad]).spawn().finish();
        assert_eq!(transcript.status.code(), Some(2), "{}", transcript.text);
        assert!(
            transcript.text.starts_with("error: "),
            "{bad:?}: {}",
            transcript.text
        );
    }
}

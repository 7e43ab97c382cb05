//! Chapter 3, TCP (S2.4-S2.6). Servers run as listings; clients are the tcp-client listing
//! or sockets in the test, whose every read has a timeout. Each step waits for the server's
//! log line before the next, so the logs come out in one order on every run.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use encoding_rs::GBK;
use socket2::{Domain, Socket, Type};

use crate::harness::{Run, Transcript, assert_refused, assert_snapshot, listing, reset, serving};

/// A test client, named in the server's log as `[client NAME]`.
fn client(server: &mut Run, addr: SocketAddr, name: &str) -> TcpStream {
    labelled_client(server, addr, &format!("[client {name}]"))
}

/// A test client whose address the server's log shows as `label`; every read times out.
pub(crate) fn labelled_client(server: &mut Run, addr: SocketAddr, label: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let local = stream.local_addr().unwrap().to_string();
    server.redact(&local, label);
    stream
}

fn gbk(text: &str) -> Vec<u8> {
    GBK.encode(text).0.into_owned()
}

/// Reads the server's reply to one message: `expected`, in GBK.
fn expect_reply(stream: &mut TcpStream, server: &Run, expected: &str) {
    let expected = gbk(expected);
    let mut reply = vec![0; expected.len()];
    if let Err(e) = stream.read_exact(&mut reply) {
        server.fail(&format!("the client got no reply ({e})"));
    }
    assert_eq!(reply, expected);
}

#[test]
fn tcp_client_talks_to_tcp_server() {
    let (mut server, addr) = serving("tcp-server", &["--clients", "1"]);
    let mut client = listing("tcp-client")
        .args(["--server", &addr.to_string()])
        .spawn();
    client.answer("message: ", "你好，服务器");
    server.wait_for_line("sent: 你好，服务器$");
    let client = client.finish();
    assert!(client.status.success(), "{}", client.text);
    assert_snapshot!(client, "reply");
    assert_snapshot!(server.finish(), "one-client");
}

#[test]
fn tcp_client_talks_to_the_line_framed_threaded_server() {
    // The threaded server answers a message when its newline arrives: a client that sent
    // none would wait for a reply until its timeout.
    let (mut server, addr) = serving("tcp-threaded-server", &["--clients", "1"]);
    let mut client = listing("tcp-client")
        .args(["--server", &addr.to_string(), "--wait", "10"])
        .spawn();
    client.answer("message: ", "你好，服务器");
    server.wait_for_line("sent: 你好，服务器$");
    let client = client.finish();
    assert!(client.status.success(), "{}", client.text);
    assert!(client.text.contains("reply: 我收到了\n"), "{}", client.text);
    assert_snapshot!(client, "threaded");
    server.finish();
}

#[test]
fn tcp_client_reports_a_closed_port() {
    // Bound but not listening: connections are refused, and no other test can take the port.
    let closed = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    closed
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let addr = closed.local_addr().unwrap().as_socket().unwrap();
    assert_snapshot!(
        listing("tcp-client")
            .args(["--server", &addr.to_string()])
            .spawn()
            .finish(),
        "refused"
    );
}

#[test]
fn tcp_client_refuses_an_empty_message() {
    // A listener that never accepts: the kernel completes the connection all the same.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = listing("tcp-client")
        .args(["--server", &listener.local_addr().unwrap().to_string()])
        .spawn();
    client.answer("message: ", "");
    let transcript = client.finish();
    assert_eq!(transcript.status.code(), Some(1));
    assert_snapshot!(transcript, "empty");
}

#[test]
fn tcp_client_refuses_a_line_that_is_not_utf8() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = listing("tcp-client")
        .args(["--server", &listener.local_addr().unwrap().to_string()])
        .spawn();
    // 中 typed on a console that sends GBK.
    client.answer_bytes("message: ", &gbk("中"));
    let transcript = client.finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert!(
        transcript.text.contains(
            "tcp-client: the message is not UTF-8 text: this program reads UTF-8 and sends it \
             as GBK\n"
        ),
        "{}",
        transcript.text
    );
}

#[test]
fn tcp_server_serves_one_client_after_another() {
    let (mut server, addr) = serving("tcp-server", &["--clients", "2"]);
    let mut first = client(&mut server, addr, "A");
    server.wait_for_line(r"\[client A\] connected$");
    first.write_all(&gbk("A 的第一条")).unwrap();
    expect_reply(&mut first, &server, "我收到了");

    // B's connection completes at once (the kernel queues it in the backlog), and its
    // message waits in B's receive buffer: the server reads nothing from B until A leaves.
    let mut second = client(&mut server, addr, "B");
    second.write_all(&gbk("B 在等")).unwrap();
    first.shutdown(Shutdown::Write).unwrap();
    expect_reply(&mut second, &server, "我收到了");
    drop(second);
    let transcript = server.finish();
    let log = &transcript.text;
    let a_left = log.find("closed the connection").expect("A left");
    let b_came = log.rfind("connected").expect("B was accepted");
    assert!(a_left < b_came, "B was served before A left:\n{log}");
    assert_snapshot!(transcript, "one-after-another");
}

#[test]
fn tcp_server_survives_a_silent_client_and_a_reset() {
    let (mut server, addr) = serving("tcp-server", &["--clients", "3", "--idle", "1"]);
    let _silent = client(&mut server, addr, "silent");
    server.wait_for_line(r"\[client silent\]: was silent");

    let mut rude = client(&mut server, addr, "rude");
    rude.write_all(&gbk("再见")).unwrap();
    expect_reply(&mut rude, &server, "我收到了");
    reset(rude);
    server.wait_for_line(r"\[client rude\]: Connection reset");

    let mut polite = client(&mut server, addr, "polite");
    polite.write_all(&gbk("还在吗")).unwrap();
    expect_reply(&mut polite, &server, "我收到了");
    drop(polite);
    let transcript = server.finish();
    assert_quick(&transcript);
    assert_snapshot!(transcript, "faults");
}

#[test]
fn tcp_server_refuses_a_negative_backlog() {
    assert_refused!("tcp-server", &["--backlog=-5"], "negative-backlog");
}

/// A test of `--idle 1` must not pass on the 60 s default.
fn assert_quick(transcript: &Transcript) {
    assert!(
        transcript.elapsed < Duration::from_secs(20),
        "took {:?}: --idle was not applied",
        transcript.elapsed
    );
}

#[test]
fn byte_stream_shows_merged_writes_and_split_characters() {
    let transcript = listing("byte-stream").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert_snapshot!(transcript, "demo");
}

#[test]
fn tcp_threaded_server_serves_clients_at_once() {
    let (mut server, addr) = serving("tcp-threaded-server", &["--clients", "2"]);
    let mut first = client(&mut server, addr, "A");
    server.wait_for_line(r"\[client A\] connected$");
    let mut second = client(&mut server, addr, "B");
    server.wait_for_line(r"\[client B\] connected$");

    // B is answered while A is still connected: a one-at-a-time server would wait for A.
    second.write_all(&gbk("B 先说\n")).unwrap();
    expect_reply(&mut second, &server, "我收到了\n");
    // One write with two messages, then one message split over two writes: the newlines
    // decide what a message is, not the writes.
    first.write_all(&gbk("第一条\n第二条\n")).unwrap();
    expect_reply(&mut first, &server, "我收到了\n我收到了\n");
    // Without Nagle's algorithm each write leaves at once, as its own segment (the server
    // may still read them together; either way it must find one message).
    first.set_nodelay(true).unwrap();
    let split = gbk("分两次写\n");
    first.write_all(&split[..3]).unwrap();
    first.write_all(&split[3..]).unwrap();
    expect_reply(&mut first, &server, "我收到了\n");

    drop(second);
    server.wait_for_line(r"\[client B\] closed");
    drop(first);
    assert_snapshot!(server.finish(), "two-at-once");
}

#[test]
fn tcp_threaded_server_survives_every_fault() {
    let (mut server, addr) = serving(
        "tcp-threaded-server",
        &["--clients", "6", "--idle", "1", "--max-line", "16"],
    );
    let _silent = client(&mut server, addr, "silent");
    server.wait_for_line(r"\[client silent\] was silent for 1 s; hanging up$");

    // Half a line, then nothing: the log says what was left unfinished.
    let mut stalled = client(&mut server, addr, "stalled");
    stalled.write_all(&gbk("说到一半")).unwrap();
    server.wait_for_line(r"\[client stalled\] was silent for 1 s after 8 bytes of a line");

    let mut half = client(&mut server, addr, "half");
    half.write_all(&gbk("没说完")).unwrap();
    half.shutdown(Shutdown::Write).unwrap();
    server.wait_for_line(r"\[client half\] closed the connection mid-message");

    let mut rude = client(&mut server, addr, "rude");
    rude.write_all(&gbk("再见\n")).unwrap();
    expect_reply(&mut rude, &server, "我收到了\n");
    reset(rude);
    server.wait_for_line(r"\[client rude\]: Connection reset");

    let mut long = client(&mut server, addr, "long");
    // One write: the server may hang up (and reset) as soon as it has read 17 bytes.
    long.write_all(&[b'x'; 40].iter().chain(b"\n").copied().collect::<Vec<u8>>())
        .unwrap();
    server.wait_for_line(r"\[client long\] sent a line over 16 bytes");

    let mut polite = client(&mut server, addr, "polite");
    polite.write_all(&gbk("还在吗\n")).unwrap();
    expect_reply(&mut polite, &server, "我收到了\n");
    drop(polite);
    let transcript = server.finish();
    assert_quick(&transcript);
    assert_snapshot!(transcript, "faults");
}

#[test]
fn tcp_threaded_server_turns_away_clients_over_its_cap() {
    let (mut server, addr) = serving(
        "tcp-threaded-server",
        &["--clients", "3", "--max-clients", "1"],
    );
    let mut first = client(&mut server, addr, "A");
    server.wait_for_line(r"\[client A\] connected$");
    // A holds the only place: B is accepted and closed at once.
    let mut second = client(&mut server, addr, "B");
    server.wait_for_line(r"\[client B\]: already serving --max-clients 1; closing$");
    let mut buf = [0; 16];
    match second.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => server.fail(&format!("B was not closed: {other:?}")),
    }
    first.write_all(&gbk("我先来的\n")).unwrap();
    expect_reply(&mut first, &server, "我收到了\n");
    drop(first);
    server.wait_for_line(r"\[client A\] closed the connection$");
    // A's place is free again.
    let mut third = client(&mut server, addr, "C");
    third.write_all(&gbk("轮到我了\n")).unwrap();
    expect_reply(&mut third, &server, "我收到了\n");
    drop(third);
    assert_snapshot!(server.finish(), "capped");
}

#[test]
fn tcp_threaded_server_hangs_up_on_a_slow_drip_at_its_deadline() {
    // A byte every 200 ms: never silent for --idle 5, so only --deadline 1 can end it.
    let (mut server, addr) = serving(
        "tcp-threaded-server",
        &["--clients", "1", "--idle", "5", "--deadline", "1"],
    );
    let mut drip = client(&mut server, addr, "drip");
    drip.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0; 16];
    let mut closed = false;
    // At most 100 drips (20 s): a server without the deadline would still be serving.
    for _ in 0..100 {
        if drip.write_all(b"x").is_err() {
            closed = true;
            break;
        }
        match drip.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => server.fail("a reply to half a line"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    if !closed {
        server.fail("the server still served the drip after 20 s");
    }
    let mut transcript = server.finish();
    assert!(
        transcript
            .text
            .contains("reached the --deadline of 1 s after"),
        "{}",
        transcript.text
    );
    // How many bytes dripped in before the deadline depends on the machine's pace.
    transcript.redact_matches(r"after \d+ bytes", "after [N] bytes");
    assert_snapshot!(transcript, "deadline");
}

#[test]
fn tcp_threaded_server_takes_a_deadline_past_the_clock_as_none() {
    // u64::MAX seconds from now is more than `Instant` can hold: no deadline, no panic.
    let (mut server, addr) = serving(
        "tcp-threaded-server",
        &["--clients", "1", "--deadline", &u64::MAX.to_string()],
    );
    let mut far = client(&mut server, addr, "far");
    far.write_all(&gbk("还早\n")).unwrap();
    expect_reply(&mut far, &server, "我收到了\n");
    drop(far);
    server.wait_for_line(r"\[client far\] closed the connection$");
    let transcript = server.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
}

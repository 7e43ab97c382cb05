//! Chapter 2, UDP (S2.1-S2.3). The test plays the peer with its own socket on 127.0.0.1.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use encoding_rs::GBK;

use crate::harness::{Run, Transcript, assert_snapshot, listing, python3_present};

const MENU: &str = "1 send, 2 receive, 3 quit> ";

/// A peer socket on loopback whose every receive gives up after a while.
fn peer() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a peer on loopback");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a read timeout");
    socket
}

fn addr(socket: &UdpSocket) -> String {
    socket.local_addr().expect("a bound socket").to_string()
}

/// The next datagram `run`'s listing sent to `socket`; a failure shows the listing's output.
fn receive(socket: &UdpSocket, run: &Run) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0; 2048];
    match socket.recv_from(&mut buf) {
        Ok((len, from)) => (buf[..len].to_vec(), from),
        Err(e) => run.fail(&format!("the peer received no datagram ({e})")),
    }
}

fn gbk(text: &str) -> Vec<u8> {
    GBK.encode(text).0.into_owned()
}

/// udp-demo bound to a free port, talking to `peer`.
fn udp_demo(peer: &UdpSocket) -> Run {
    listing("udp-demo")
        .args(["--bind", "127.0.0.1:0", "--peer", &addr(peer)])
        .spawn()
}

#[test]
fn udp_demo_sends_gbk_and_prints_the_reply() {
    let peer = peer();
    let mut run = udp_demo(&peer);
    run.answer("message: ", "你好, UDP");
    let (bytes, from) = receive(&peer, &run);
    assert_eq!(bytes, gbk("你好, UDP"), "the line travels GBK-encoded");
    peer.send_to(&gbk("我收到了"), from).unwrap();
    assert_snapshot!(run.finish(), "reply");
}

#[test]
fn udp_demo_marks_a_reply_that_is_not_gbk() {
    let peer = peer();
    let mut run = udp_demo(&peer);
    run.answer("message: ", "hello");
    let (_, from) = receive(&peer, &run);
    // 0xFF is never part of a GBK character.
    peer.send_to(b"ok \xff", from).unwrap();
    assert_snapshot!(run.finish(), "reply-not-gbk");
}

#[test]
fn udp_demo_reports_a_character_gbk_lacks() {
    let peer = peer();
    let mut run = udp_demo(&peer);
    run.answer("message: ", "hi 👋");
    assert_snapshot!(run.finish(), "not-gbk");
}

#[test]
fn udp_demo_refuses_a_line_that_is_not_utf8() {
    let peer = peer();
    let mut run = udp_demo(&peer);
    // 中 typed on a console that sends GBK.
    run.answer_bytes("message: ", &gbk("中"));
    let transcript = run.finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert!(
        transcript.text.contains(
            "udp-demo: the message is not UTF-8 text: this program reads UTF-8 and sends it \
             as GBK\n"
        ),
        "{}",
        transcript.text
    );
}

#[test]
fn udp_demo_sends_nothing_when_input_ends() {
    let peer = peer();
    let mut run = udp_demo(&peer);
    run.wait_for_line("^bound to ");
    let transcript = run.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert_snapshot!(transcript, "input-ended");
}

#[test]
fn udp_demo_gives_up_when_nobody_answers() {
    let silent = peer();
    let mut run = listing("udp-demo")
        .args([
            "--bind",
            "127.0.0.1:0",
            "--wait",
            "1",
            "--peer",
            &addr(&silent),
        ])
        .spawn();
    run.answer("message: ", "anyone?");
    receive(&silent, &run);
    assert_snapshot!(run.finish(), "no-reply");
}

#[test]
fn udp_demo_rejects_a_bad_address() {
    let run = listing("udp-demo")
        .args(["--bind", "127.0.0.1:0", "--peer", "127.0.0.1:70000"])
        .spawn();
    assert_snapshot!(run.finish(), "bad-peer");
}

#[test]
fn udp_demo_cannot_bind_a_port_in_use() {
    let taken = peer();
    let run = listing("udp-demo")
        .args(["--bind", &addr(&taken), "--peer", &addr(&taken)])
        .spawn();
    assert_snapshot!(run.finish(), "port-in-use");
}

#[test]
fn decode_order_shows_gbk_first_accepting_utf8() {
    let transcript = listing("decode-order").spawn().finish();
    assert!(
        transcript
            .text
            .contains("UTF-8 bytes -> 鎴戞敹鍒颁簡 (decoded as GBK, no error)"),
        "UTF-8 bytes read as GBK"
    );
    // The book's order is a heuristic: GBK 谢谢 is d0 bb d0 bb, which is valid UTF-8 (лл).
    assert!(
        transcript
            .text
            .contains("GBK bytes -> лл (decoded as UTF-8: WRONG)"),
        "short GBK text read as UTF-8"
    );
    assert_snapshot!(transcript, "both-orders");
}

#[test]
fn udp_demo_reports_a_reply_longer_than_its_buffer() {
    let peer = peer();
    let mut run = udp_demo(&peer);
    run.answer("message: ", "send me a lot");
    let (_, from) = receive(&peer, &run);
    peer.send_to(&[b'x'; 1500], from).unwrap();
    let mut transcript = run.finish();
    let shown = format!(">>>{}\n", "x".repeat(1024));
    assert!(transcript.text.contains(&shown), "the first 1024 bytes");
    assert!(
        transcript.text.contains("the rest is lost"),
        "{}",
        transcript.text
    );
    // 1024 x's would fill the page.
    transcript.redact_matches("x{1024}", "xxx...(1024 x's)...xxx");
    assert_snapshot!(transcript, "truncated");
}

/// udp-chat on a free port, and the address it reports.
fn udp_chat(extra: &[&str]) -> (Run, String) {
    let mut run = listing("udp-chat")
        .args(["--bind", "127.0.0.1:0"])
        .args(extra)
        .spawn();
    let chat = run.wait_for_line(r"^chat socket bound to (\S+)$")[1].clone();
    (run, chat)
}

/// Menu choice 1: the chat sends `message` to `host` on `peer`'s port (shown as [PORT]).
fn send_from_chat(run: &mut Run, host: &str, peer: &UdpSocket, message: &str) {
    let port = peer.local_addr().unwrap().port().to_string();
    run.redact(&port, "[PORT]")
        .answer(MENU, "1")
        .answer("peer host> ", host)
        .answer("peer port> ", &port)
        .answer("message> ", message);
}

#[test]
fn udp_chat_sends_receives_and_quits() {
    let peer = peer();
    let (mut run, _) = udp_chat(&[]);
    send_from_chat(&mut run, "127.0.0.1", &peer, "你好");
    let (bytes, chat) = receive(&peer, &run);
    assert_eq!(
        bytes,
        "你好".as_bytes(),
        "the chat sends UTF-8, as the notes' does"
    );

    // The same words in both encodings; the UTF-8 ones are those that the notes'
    // GBK-first order turns into 鎴戞敹鍒颁簡.
    peer.send_to(&gbk("我收到了"), chat).unwrap();
    run.answer(MENU, "2");
    peer.send_to("我收到了".as_bytes(), chat).unwrap();
    run.answer(MENU, "2").answer(MENU, "3");
    assert_snapshot!(run.finish(), "session");
}

#[test]
fn udp_chat_asks_again_after_bad_input() {
    let (mut run, _) = udp_chat(&[]);
    run.answer(MENU, "send")
        .answer(MENU, "")
        .answer(MENU, "1")
        .answer("peer host> ", "")
        .answer("peer host> ", "::1")
        .answer("peer host> ", "127.255.255.255")
        .answer("peer port> ", "eighty")
        .answer("peer port> ", "0")
        .answer("peer port> ", "70000")
        .answer("peer port> ", "9")
        .answer("message> ", "")
        // Without SO_BROADCAST the kernel refuses a broadcast address: this send fails,
        // and the chat goes on.
        .answer("message> ", "hello, everyone")
        .answer(MENU, "1")
        .answer("peer host> ", "127.0.0.1")
        .close_stdin();
    assert_snapshot!(run.finish(), "bad-input");
}

#[test]
fn udp_chat_sends_to_a_host_name() {
    // The chat's socket is IPv4, so it sends to localhost's first IPv4 address, which is
    // 127.0.0.1 on every machine.
    let peer = peer();
    let (mut run, chat) = udp_chat(&[]);
    send_from_chat(&mut run, "localhost", &peer, "你好");
    let (bytes, from) = receive(&peer, &run);
    assert_eq!(bytes, "你好".as_bytes());
    assert_eq!(
        from.to_string(),
        chat,
        "the datagram comes from the chat's socket"
    );
    run.answer(MENU, "3");
    let transcript = run.finish();
    let sent = format!("sent 6 bytes to {}\n", addr(&peer));
    assert!(transcript.text.contains(&sent), "{}", transcript.text);
    assert_snapshot!(transcript, "host-name");
}

#[test]
fn udp_chat_asks_again_for_a_name_that_does_not_resolve() {
    // Names under .invalid never resolve (RFC 6761). How the lookup fails (no such name, no
    // name server) depends on the machine: the reason is redacted.
    let peer = peer();
    let peer_port = peer.local_addr().unwrap().port().to_string();
    let (mut run, _) = udp_chat(&[]);
    run.redact(&peer_port, "[PORT]")
        .answer(MENU, "1")
        .answer("peer host> ", "no-such-host.invalid")
        // The same question again: a name that does not resolve is a bad answer, not the end.
        .answer("peer host> ", "127.0.0.1")
        .answer("peer port> ", &peer_port)
        .answer("message> ", "hello");
    let (bytes, _) = receive(&peer, &run);
    assert_eq!(bytes, b"hello");
    run.answer(MENU, "3");
    let mut transcript = run.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let line = "input error, please try again: cannot resolve no-such-host.invalid: ";
    assert!(transcript.text.contains(line), "{}", transcript.text);
    transcript.redact_matches(&format!("({}).*", regex::escape(line)), "${1}[WHY]");
    assert_snapshot!(transcript, "unresolvable");
}

#[test]
fn udp_chat_asks_again_after_a_line_that_is_not_utf8() {
    let (mut run, _) = udp_chat(&[]);
    // 二 typed on a console that sends GBK: not UTF-8, so not an answer.
    run.answer_bytes(MENU, &gbk("二")).answer(MENU, "3");
    let transcript = run.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert!(
        transcript.text.contains("the line is not UTF-8"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "not-utf8-input");
}

#[test]
fn udp_chat_shows_bytes_that_are_neither_utf8_nor_gbk() {
    let peer = peer();
    let (mut run, chat) = udp_chat(&[]);
    // Latin-1 "café" then 0xFF: invalid in UTF-8 and in GBK.
    peer.send_to(b"caf\xe9 \xff", chat.as_str()).unwrap();
    run.answer(MENU, "2").answer(MENU, "3");
    assert_snapshot!(run.finish(), "undecodable");
}

#[test]
fn udp_chat_shows_what_a_small_buffer_loses() {
    let peer = peer();
    let (mut run, chat) = udp_chat(&["--buffer", "16"]);
    peer.send_to(b"0123456789abcdefLOST-IN-TRANSIT", chat.as_str())
        .unwrap();
    peer.send_to(b"the next one", chat.as_str()).unwrap();
    // The second receive gets the second datagram: the rest of the first is gone.
    run.answer(MENU, "2").answer(MENU, "2").answer(MENU, "3");
    assert_snapshot!(run.finish(), "truncated");
}

#[test]
fn udp_chat_receive_gives_up_after_its_wait() {
    let (mut run, _) = udp_chat(&["--wait", "1"]);
    run.answer(MENU, "2").answer(MENU, "3");
    assert_snapshot!(run.finish(), "nothing-received");
}

#[test]
fn udp_broadcast_reaches_every_listener_on_the_broadcast_address() {
    // A socket on 127.0.0.1 takes a free port first; two listeners then share that port
    // (SO_REUSEADDR) on the loopback broadcast address. Only they may get the broadcast.
    let unicast = peer();
    let port = unicast.local_addr().unwrap().port();
    let bind = format!("127.255.255.255:{port}");
    let mut first = listing("udp-broadcast")
        .args(["listen", "--bind", &bind])
        .spawn();
    first.wait_for_line(r"^listening on ");
    let mut second = listing("udp-broadcast")
        .args(["listen", "--bind", &bind])
        .spawn();
    second.wait_for_line(r"^listening on ");

    let sender = listing("udp-broadcast")
        .args(["send", "--to", &bind, "hello, everyone"])
        .spawn()
        .finish();
    assert_snapshot!(sender, "send");
    assert_snapshot!(first.finish(), "listen");
    let second = second.finish();
    assert!(
        second.text.contains("-->hello, everyone"),
        "{}",
        second.text
    );

    // Both listeners have printed the broadcast, so the kernel has delivered it to every
    // socket it was going to reach. The 127.0.0.1 socket must not be one of them: the
    // first datagram it holds must be this direct one.
    peer().send_to(b"direct", addr(&unicast)).unwrap();
    let mut buf = [0; 64];
    let (len, _) = unicast.recv_from(&mut buf).expect("the direct datagram");
    assert_eq!(
        &buf[..len],
        b"direct",
        "a socket bound to 127.0.0.1 got the broadcast"
    );
}

#[test]
fn udp_broadcast_listener_decodes_gbk_as_the_chat_does() {
    let unicast = peer();
    let port = unicast.local_addr().unwrap().port();
    let bind = format!("127.255.255.255:{port}");
    let mut listener = listing("udp-broadcast")
        .args(["listen", "--bind", &bind])
        .spawn();
    listener.wait_for_line(r"^listening on ");
    // The notes' broadcast in GBK, from the test's own socket.
    let sender = peer();
    sender.set_broadcast(true).unwrap();
    sender.send_to(&gbk("大家好"), bind.as_str()).unwrap();
    let transcript = listener.finish();
    assert!(
        transcript.text.contains("-->大家好   (GBK, 6 bytes)"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "listen-gbk");
}

#[test]
fn udp_broadcast_listen_gives_up_after_its_wait() {
    let transcript = listing("udp-broadcast")
        .args(["listen", "--bind", "127.0.0.1:0", "--wait", "1"])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert!(
        transcript.elapsed < Duration::from_secs(20),
        "{:?}",
        transcript.elapsed
    );
    assert_snapshot!(transcript, "listen-timeout");
}

#[test]
fn udp_broadcast_blames_so_broadcast_only_for_its_own_error() {
    // An IPv4 socket cannot reach an IPv6 address: nothing to do with SO_BROADCAST.
    let transcript = listing("udp-broadcast")
        .args(["send", "--to", "[::1]:9", "hello?"])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert!(
        !transcript.text.contains("SO_BROADCAST"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "wrong-family");
}

#[test]
fn udp_broadcast_needs_so_broadcast() {
    let listener = peer();
    let to = format!("127.255.255.255:{}", listener.local_addr().unwrap().port());
    let transcript = listing("udp-broadcast")
        .args(["send", "--without-broadcast-flag", "--to", &to, "hello?"])
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1));
    assert_snapshot!(transcript, "refused");
}

/// udp-connected's `demo`, which must succeed and print each of `parts`.
fn udp_connected(demo: &str, parts: &[&str]) -> Transcript {
    let transcript = listing("udp-connected").args([demo]).spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    for part in parts {
        assert!(
            transcript.text.contains(part),
            "{part:?} is missing:\n{}",
            transcript.text
        );
    }
    transcript
}

#[test]
fn udp_connected_hears_its_peer_only() {
    let transcript = udp_connected(
        "filter",
        &[
            ": its peer_addr() is the peer\n",
            // connect sent nothing: the first datagram the peer holds is the one sent after.
            "the peer's first datagram: \"hello\" from the connected socket\n",
            // The stranger's datagram went first, yet the first recv returns the peer's.
            "the stranger sent first, then the peer\nrecv: \"from the peer\"\n",
            // The kernel turned the stranger away as from a closed port, and the connected
            // socket gets nothing more.
            "the stranger's recv: Connection refused",
            "recv again: nothing within 500 ms\n",
        ],
    );
    assert_snapshot!(transcript, "filter");
}

#[test]
fn udp_connected_hears_port_unreachable_only_when_connected() {
    let mut transcript = udp_connected(
        "refused",
        &[
            "connected: send: 7 bytes sent\nconnected: recv: Connection refused",
            "connected: send, then a later send: Connection refused",
            "unconnected: send_to: 7 bytes sent\n\
             unconnected: recv_from: no error, nothing within 500 ms\n",
        ],
    );
    // Another program may take the released port before the listing sends to it (rarely):
    // the listing then says so and tries another, a line the snapshot leaves out.
    transcript.redact_matches(r"(?m)^.* is in use after all .*\n", "");
    assert_snapshot!(transcript, "refused");
}

#[test]
fn udp_connected_python_agrees() {
    if !python3_present() {
        udp_connected(
            "python",
            &["python3: not found, the Python comparison is skipped\n"],
        );
        eprintln!(
            "python3 is not here: the comparison with Python's socket and asyncio is not checked"
        );
        return;
    }
    let transcript = udp_connected(
        "python",
        &[
            "filter: the peer's first datagram: b'hello'\n",
            "filter: recv: b'from the peer'\n",
            "connected: recv: ConnectionRefusedError ",
            "connected: send, then a later send: ConnectionRefusedError ",
            "unconnected: recvfrom: no error, timed out\n",
            "asyncio, remote_addr: error_received(ConnectionRefusedError: ",
            "asyncio, local_addr only: no error_received, timed out\n",
        ],
    );
    assert_snapshot!(transcript, "python");
}

//! Chapter 2, UDP (S2.1-S2.3). The test plays the peer with its own socket on 127.0.0.1.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use encoding_rs::GBK;

use crate::harness::listing;

/// A peer socket on loopback whose every receive gives up after a while.
fn peer() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a peer on loopback");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a read timeout");
    socket
}

fn receive(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0; 2048];
    let (len, from) = socket
        .recv_from(&mut buf)
        .expect("a datagram from the listing");
    (buf[..len].to_vec(), from)
}

fn gbk(text: &str) -> Vec<u8> {
    GBK.encode(text).0.into_owned()
}

#[test]
fn udp_demo_sends_gbk_and_prints_the_reply() {
    let peer = peer();
    let peer_addr = peer.local_addr().unwrap();
    let mut run = listing("udp-demo")
        .args(["--bind", "127.0.0.1:0", "--peer", &peer_addr.to_string()])
        .spawn();
    run.answer("message: ", "你好, UDP");
    let (bytes, from) = receive(&peer);
    assert_eq!(bytes, gbk("你好, UDP"), "the line travels GBK-encoded");
    peer.send_to(&gbk("我收到了"), from).unwrap();
    run.finish().assert_snapshot("reply");
}

#[test]
fn udp_demo_reports_a_character_gbk_lacks() {
    let mut run = listing("udp-demo").args(["--bind", "127.0.0.1:0"]).spawn();
    run.answer("message: ", "hi 👋");
    run.finish().assert_snapshot("not-gbk");
}

#[test]
fn udp_demo_gives_up_when_nobody_answers() {
    let silent = peer();
    let mut run = listing("udp-demo")
        .args(["--bind", "127.0.0.1:0", "--wait", "1"])
        .args(["--peer", &silent.local_addr().unwrap().to_string()])
        .spawn();
    run.answer("message: ", "anyone?");
    receive(&silent);
    run.finish().assert_snapshot("no-reply");
}

#[test]
fn udp_demo_rejects_a_bad_address() {
    let run = listing("udp-demo")
        .args(["--peer", "127.0.0.1:70000"])
        .spawn();
    run.finish().assert_snapshot("bad-peer");
}

#[test]
fn udp_demo_cannot_bind_a_port_in_use() {
    let taken = peer();
    let run = listing("udp-demo")
        .args(["--bind", &taken.local_addr().unwrap().to_string()])
        .spawn();
    run.finish().assert_snapshot("port-in-use");
}

#[test]
fn decode_order_shows_gbk_first_accepting_utf8() {
    let transcript = listing("decode-order").spawn().finish();
    assert!(
        transcript.text.contains("鎴戞敹鍒颁簡"),
        "UTF-8 bytes read as GBK"
    );
    transcript.assert_snapshot("both-orders");
}

#[test]
fn udp_chat_sends_receives_and_quits() {
    let peer = peer();
    let peer_port = peer.local_addr().unwrap().port().to_string();
    let mut run = listing("udp-chat").args(["--bind", "127.0.0.1:0"]).spawn();
    run.redact(&peer_port, "[PORT]")
        .answer("1 send, 2 receive, 3 quit> ", "1")
        .answer("peer ip> ", "127.0.0.1")
        .answer("peer port> ", &peer_port)
        .answer("message> ", "你好");
    let (bytes, chat) = receive(&peer);
    assert_eq!(
        bytes,
        "你好".as_bytes(),
        "the chat sends UTF-8, as the notes' chat does"
    );

    peer.send_to(&gbk("我收到了"), chat).unwrap();
    run.answer("1 send, 2 receive, 3 quit> ", "2");
    peer.send_to("收到了, in UTF-8".as_bytes(), chat).unwrap();
    run.answer("1 send, 2 receive, 3 quit> ", "2")
        .answer("1 send, 2 receive, 3 quit> ", "3");
    run.finish().assert_snapshot("session");
}

#[test]
fn udp_chat_asks_again_after_bad_input() {
    let mut run = listing("udp-chat").args(["--bind", "127.0.0.1:0"]).spawn();
    run.answer("1 send, 2 receive, 3 quit> ", "send")
        .answer("1 send, 2 receive, 3 quit> ", "")
        .answer("1 send, 2 receive, 3 quit> ", "1")
        .answer("peer ip> ", "127.0.0.256")
        .answer("peer ip> ", "")
        .answer("peer ip> ", "::1")
        .answer("peer port> ", "eighty")
        .answer("peer port> ", "0")
        .answer("peer port> ", "70000")
        .answer("peer port> ", "9")
        .answer("message> ", "")
        .close_stdin();
    run.finish().assert_snapshot("bad-input");
}

#[test]
fn udp_chat_shows_what_a_small_buffer_loses() {
    let peer = peer();
    let mut run = listing("udp-chat")
        .args(["--bind", "127.0.0.1:0", "--buffer", "16"])
        .spawn();
    let chat = run.wait_for_line(r"^chat socket bound to (\S+)$")[1].clone();
    peer.send_to(b"0123456789abcdefLOST-IN-TRANSIT", chat.as_str())
        .unwrap();
    run.answer("1 send, 2 receive, 3 quit> ", "2")
        .answer("1 send, 2 receive, 3 quit> ", "3");
    run.finish().assert_snapshot("truncated");
}

#[test]
fn udp_chat_receive_gives_up_after_its_wait() {
    let mut run = listing("udp-chat")
        .args(["--bind", "127.0.0.1:0", "--wait", "1"])
        .spawn();
    run.answer("1 send, 2 receive, 3 quit> ", "2")
        .answer("1 send, 2 receive, 3 quit> ", "3");
    run.finish().assert_snapshot("nothing-received");
}

#[test]
fn udp_broadcast_reaches_every_listener_on_the_broadcast_address() {
    // Two listeners share one port (SO_REUSEADDR) on the loopback broadcast address; a third
    // socket on 127.0.0.1 and the same port must not see the broadcast.
    let mut first = listing("udp-broadcast")
        .args(["listen", "--bind", "127.255.255.255:0"])
        .spawn();
    let port = first.wait_for_line(r"^listening on 127\.255\.255\.255:(\d+)$")[1].clone();
    let mut second = listing("udp-broadcast")
        .args(["listen", "--bind", &format!("127.255.255.255:{port}")])
        .spawn();
    second.wait_for_line(r"^listening on ");
    let unicast = UdpSocket::bind(format!("127.0.0.1:{port}")).expect("127.0.0.1 on that port");
    unicast
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();

    let sender = listing("udp-broadcast")
        .args([
            "send",
            "--to",
            &format!("127.255.255.255:{port}"),
            "hello, everyone",
        ])
        .spawn()
        .finish();
    sender.assert_snapshot("send");
    first.finish().assert_snapshot("listen");
    let second = second.finish();
    assert!(
        second.text.contains("-->hello, everyone"),
        "{}",
        second.text
    );

    // The broadcast was delivered, synchronously, before the send above returned; if the
    // 127.0.0.1 socket had got it, it would come before this direct datagram.
    let direct = peer();
    direct
        .send_to(b"direct", unicast.local_addr().unwrap())
        .unwrap();
    let (first_datagram, _) = receive(&unicast);
    assert_eq!(
        first_datagram, b"direct",
        "a socket bound to 127.0.0.1 got the broadcast"
    );
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
    transcript.assert_snapshot("refused");
}

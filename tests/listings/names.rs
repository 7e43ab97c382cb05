//! Chapter 3's pages on names and addresses (beyond the notes): the resolver, listings that
//! take host names, IPv6 and dual stack. Only loopback names and addresses: whether
//! `localhost` also means `::1` depends on the machine, so the snapshots leave `::1` out and
//! the tests assert what holds on every machine.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

use encoding_rs::GBK;
use socket2::{Domain, Socket, Type};

use crate::harness::{Transcript, assert_snapshot, listing, serving};

/// Whether this machine has IPv6 loopback: binding `[::1]:0` works.
pub fn has_ipv6_loopback() -> bool {
    std::net::UdpSocket::bind("[::1]:0").is_ok()
}

/// A socket bound to `addr` that does not listen: connections to it are refused, and no
/// other program can take the address while it is held.
fn closed(addr: SocketAddr) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Where `localhost` is `::1` first, a client tries `[::1]:PORT` before the test's server on
/// 127.0.0.1: holding that port (where the machine has ::1) makes sure it is refused.
fn hold_ipv6_loopback(port: u16) -> Option<Socket> {
    closed(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))).ok()
}

/// The address lines under `NAME resolves to:`.
fn resolved(text: &str, name: &str) -> Vec<String> {
    text.split(&format!("{name} resolves to:\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no addresses for {name}:\n{text}"))
        .lines()
        .map_while(|line| line.strip_prefix("  "))
        .map(str::to_string)
        .collect()
}

/// Leaves out `[::1]` lines, which only machines whose `localhost` includes IPv6 print.
fn without_ipv6_loopback(transcript: &mut Transcript) {
    transcript.redact_matches(r"(?m)^  \[::1\]:.*\n", "");
}

/// A test of `--wait 2` must not pass on the 10 s default.
fn assert_quick(transcript: &Transcript) {
    assert!(
        transcript.elapsed < Duration::from_secs(20),
        "took {:?}: --wait was not applied",
        transcript.elapsed
    );
}

#[test]
fn resolve_lists_every_address_of_localhost() {
    let mut transcript = listing("resolve").args(["localhost:6666"]).spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    let addrs = resolved(&transcript.text, "localhost:6666");
    for addr in &addrs {
        let addr: SocketAddr = addr.parse().expect("an address");
        assert!(addr.ip().is_loopback(), "{addr} is not loopback");
        assert_eq!(addr.port(), 6666);
    }
    assert!(addrs.contains(&"127.0.0.1:6666".to_string()), "{addrs:?}");

    // tokio's lookup_host asks the same resolver, and gets the same list in the same order.
    let on_tokio = listing("resolve")
        .args(["--tokio", "localhost:6666"])
        .spawn()
        .finish();
    assert!(on_tokio.status.success(), "{}", on_tokio.text);
    assert_eq!(resolved(&on_tokio.text, "localhost:6666"), addrs);

    without_ipv6_loopback(&mut transcript);
    assert_snapshot!(transcript, "localhost");
}

#[test]
fn resolve_connects_to_one_address_after_another() {
    // A listener on 127.0.0.1:PORT, and the same port held closed on 127.0.0.2 (and on ::1,
    // which `localhost` may also name), so that every other attempt is refused.
    let ipv6 = has_ipv6_loopback();
    let (listener, port, _held) = (0..20)
        .find_map(|_| {
            let listener = TcpListener::bind("127.0.0.1:0").ok()?;
            let port = listener.local_addr().ok()?.port();
            let mut held = vec![closed(SocketAddr::from(([127, 0, 0, 2], port))).ok()?];
            if ipv6 {
                held.push(closed(format!("[::1]:{port}").parse().unwrap()).ok()?);
            }
            Some((listener, port, held))
        })
        .expect("a port free on 127.0.0.1, 127.0.0.2 and ::1");
    let mut transcript = listing("resolve")
        .args([
            "--connect".to_string(),
            format!("127.0.0.2:{port}"),
            format!("localhost:{port}"),
        ])
        .spawn()
        .finish();
    drop(listener);
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    let attempts: Vec<&str> = text
        .split("connecting, one address after another:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no attempts:\n{text}"))
        .lines()
        .collect();
    // Every address before the listener's is refused, in the order resolved; the listener's
    // accepts, and nothing after it is tried.
    let (last, before) = attempts.split_last().expect("an attempt");
    assert!(
        last.starts_with(&format!("  127.0.0.1:{port}: connected from 127.0.0.1:")),
        "{text}"
    );
    assert!(
        before[0].starts_with(&format!("  127.0.0.2:{port}: Connection refused")),
        "{text}"
    );
    for attempt in &before[1..] {
        assert!(
            attempt.starts_with(&format!("  [::1]:{port}: Connection refused")),
            "{text}"
        );
    }
    without_ipv6_loopback(&mut transcript);
    // The port the test chose, in the name the harness does not recognise as an address.
    transcript.redact_matches(&format!(r"\blocalhost:{port}\b"), "localhost:[PORT]");
    assert_snapshot!(transcript, "connect");
}

#[test]
fn resolve_reports_a_name_that_does_not_resolve() {
    // `.invalid` never resolves (RFC 6761). Without a network the lookup may fail at once
    // (no such name, or no name server) or wait for a name server; either way it ends
    // within --wait, with one line and status 1.
    for tokio in [false, true] {
        let mut run = listing("resolve");
        if tokio {
            run = run.args(["--tokio"]);
        }
        let mut transcript = run
            .args(["--wait", "2", "no-such-host.invalid:80"])
            .spawn()
            .finish();
        assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
        assert!(
            transcript
                .text
                .starts_with("resolve: cannot resolve no-such-host.invalid:80: "),
            "{}",
            transcript.text
        );
        assert_eq!(transcript.text.lines().count(), 1, "{}", transcript.text);
        assert_quick(&transcript);
        if !tokio {
            // Which failure it was varies with the machine's network.
            transcript.redact_matches(
                r"(cannot resolve no-such-host\.invalid:80: ).*",
                "${1}[WHY]",
            );
            assert_snapshot!(transcript, "unresolvable");
        }
    }
}

#[test]
fn resolve_wants_a_port() {
    let transcript = listing("resolve").args(["localhost"]).spawn().finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert_snapshot!(transcript, "no-port");
}

/// Checks a listing's one-line error for `no-such-host.invalid`, whichever way the lookup failed
/// (no such name, no name server): the reason is redacted.
fn unresolvable(mut transcript: Transcript, prefix: &str) -> Transcript {
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    let line = format!("{prefix}no-such-host.invalid:80: ");
    assert!(transcript.text.contains(&line), "{}", transcript.text);
    transcript.redact_matches(&format!("({}).*", regex::escape(&line)), "${1}[WHY]");
    transcript
}

#[test]
fn udp_demo_sends_to_localhost() {
    // The listing's socket is IPv4, so it sends to localhost's first IPv4 address, which is
    // 127.0.0.1 on every machine.
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let name = format!("localhost:{}", peer.local_addr().unwrap().port());
    let mut run = listing("udp-demo")
        .args(["--bind", "127.0.0.1:0", "--peer", &name])
        .spawn();
    run.redact(&name, "localhost:[PORT]");
    run.answer("message: ", "你好");
    let mut buf = [0; 64];
    let (len, from) = peer
        .recv_from(&mut buf)
        .unwrap_or_else(|e| run.fail(&format!("no datagram ({e})")));
    assert_eq!(&buf[..len], &*GBK.encode("你好").0);
    peer.send_to(&GBK.encode("我收到了").0, from).unwrap();
    let transcript = run.finish();
    assert!(
        transcript.text.contains(">>>我收到了\n"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "localhost");
}

#[test]
fn udp_demo_reports_a_name_that_does_not_resolve() {
    let transcript = listing("udp-demo")
        .args(["--bind", "127.0.0.1:0", "--peer", "no-such-host.invalid:80"])
        .spawn()
        .finish();
    assert_snapshot!(
        unresolvable(transcript, "udp-demo: cannot resolve "),
        "unresolvable"
    );
}

#[test]
fn tcp_client_connects_to_localhost() {
    // The server listens on 127.0.0.1; where localhost is ::1 first, the client's attempt
    // there is refused and it goes on to 127.0.0.1.
    let (mut server, addr) = serving("tcp-server", &["--clients", "1"]);
    let _held = hold_ipv6_loopback(addr.port());
    let name = format!("localhost:{}", addr.port());
    let mut client = listing("tcp-client").args(["--server", &name]).spawn();
    client.redact(&name, "localhost:[PORT]");
    client.answer("message: ", "你好");
    server.wait_for_line("sent: 你好$");
    let transcript = client.finish();
    assert!(
        transcript.text.contains("reply: 我收到了\n"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "localhost");
    server.finish();
}

#[test]
fn tcp_client_reports_a_name_that_does_not_resolve() {
    let transcript = listing("tcp-client")
        .args(["--server", "no-such-host.invalid:80"])
        .spawn()
        .finish();
    assert_snapshot!(
        unresolvable(transcript, "tcp-client: cannot resolve "),
        "unresolvable"
    );
}

#[test]
fn echo_client_connects_to_localhost() {
    let (server, addr) = serving("echo-server", &["--quiet"]);
    let _held = hold_ipv6_loopback(addr.port());
    let name = format!("localhost:{}", addr.port());
    let mut client = listing("echo-client")
        .args(["--server", &name, "--connections", "2", "--messages", "2"])
        .spawn();
    client.redact(&name, "localhost:[PORT]");
    let transcript = client.finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    assert_snapshot!(transcript, "localhost");
    server.ctrl_c();
    let stopped = server.finish();
    assert!(stopped.status.success(), "{}", stopped.text);
}

#[test]
fn echo_client_reports_a_name_that_does_not_resolve() {
    let transcript = listing("echo-client")
        .args(["--server", "no-such-host.invalid:80", "--wait", "2"])
        .spawn()
        .finish();
    assert_quick(&transcript);
    assert_snapshot!(
        unresolvable(transcript, "echo-client: cannot connect to "),
        "unresolvable"
    );
}

#[test]
fn dual_stack_maps_ipv4_clients_unless_v6only() {
    if !has_ipv6_loopback() {
        eprintln!("dual_stack: skipped, this machine has no IPv6 loopback (cannot bind [::1]:0)");
        return;
    }
    let mut transcript = listing("dual-stack").spawn().finish();
    let text = transcript.text.clone();
    assert!(transcript.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    // With IPV6_V6ONLY off, an IPv4 client is a v4-mapped IPv6 peer, and to_canonical
    // gives its IPv4 address back; with it on, the IPv4 connection is refused. ::1 is
    // accepted either way.
    let after = |header: &str| {
        let at = lines
            .iter()
            .position(|line| line.starts_with("[::]:") && line.ends_with(header))
            .unwrap_or_else(|| panic!("no {header:?} section:\n{text}"));
        (lines[at + 1], lines[at + 2])
    };
    let (v4, v6) = after("with IPV6_V6ONLY off:");
    assert!(
        v4.starts_with("  from 127.0.0.1: accepted, peer [::ffff:127.0.0.1]:")
            && v4.contains(", to_canonical 127.0.0.1:"),
        "{text}"
    );
    assert!(
        v6.starts_with("  from ::1: accepted, peer [::1]:"),
        "{text}"
    );
    let (v4, v6) = after("with IPV6_V6ONLY on:");
    assert!(
        v4.starts_with("  from 127.0.0.1: Connection refused"),
        "{text}"
    );
    assert!(
        v6.starts_with("  from ::1: accepted, peer [::1]:"),
        "{text}"
    );

    // std's bind keeps the system's default: v6only exactly when bindv6only is 1. Both are
    // the machine's, and hidden in the snapshot.
    let std_v6only = text.contains("std's TcpListener::bind(\"[::]:0\"): IPV6_V6ONLY on\n");
    if let Some(value) = lines
        .iter()
        .find_map(|line| line.strip_prefix("net.ipv6.bindv6only = "))
    {
        assert_eq!(std_v6only, value == "1", "{text}");
    }
    transcript.redact_matches(r"(net\.ipv6\.bindv6only = )\d", "${1}[0 or 1]");
    transcript.redact_matches(
        r"(TcpListener::bind\(.*\): IPV6_V6ONLY )(on|off)",
        "${1}[off or on]",
    );
    transcript.redact_matches(r"\[::\]:\d+ with", "[::]:[PORT] with");
    transcript.redact_matches(r"\[::ffff:127\.0\.0\.1\]:\d+", "[::ffff:127.0.0.1]:[PORT]");
    assert_snapshot!(transcript, "demo");
}

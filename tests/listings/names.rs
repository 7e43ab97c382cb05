//! Chapter 3's pages on names and addresses (beyond the notes): the resolver, listings that
//! take host names, IPv6 and dual stack. Only loopback names and addresses: whether
//! `localhost` also means `::1` depends on the machine, so the snapshots leave `::1` out and
//! the tests assert what holds on every machine.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::harness::{Transcript, assert_snapshot, listing};

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

//! Chapter 15 (beyond the notes): tokio's channels (bounded mpsc, oneshot, watch,
//! broadcast), a chat server on broadcast with a client that lags, and streams.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::echo::{named, read_to_eof, stop};
use crate::harness::{Run, Transcript, assert_refused, assert_snapshot, listing, serving};

/// The index of the first line equal to `line`, or a failure that shows the output.
fn position(transcript: &Transcript, line: &str) -> usize {
    transcript
        .text
        .lines()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no line {line:?} in:\n{}", transcript.text))
}

#[test]
fn mpsc_backpressure_holds_the_producer_until_the_consumer_takes_an_item() {
    let transcript = listing("mpsc-backpressure").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    // With a capacity of 2, items 1 and 2 go in at once; each later item waits until the
    // consumer has taken the one two places ahead of it.
    for item in 3..=5 {
        let waits = position(
            &transcript,
            &format!("producer: queue full, waiting to put {item}"),
        );
        let took = position(&transcript, &format!("consumer: took {}", item - 2));
        let put = position(&transcript, &format!("producer: put {item}"));
        assert!(waits < took && took < put, "{}", transcript.text);
    }
    assert!(
        transcript
            .text
            .ends_with("consumer: queue closed after 5 items\n"),
        "{}",
        transcript.text
    );
    // The trace comes from the awaits on one thread, not from the consumer's pace: with
    // `--work-ms 0` the consumer still awaits a sleep (tokio registers even a zero one,
    // rounded up to the next millisecond, and is pending once), and gives the same lines.
    let instant = listing("mpsc-backpressure")
        .args(["--work-ms", "0"])
        .spawn()
        .finish();
    let lines = |t: &Transcript| {
        t.text
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(lines(&instant), lines(&transcript));
    assert_snapshot!(transcript, "run");
}

#[test]
fn mpsc_backpressure_refuses_a_capacity_of_zero() {
    assert_refused!("mpsc-backpressure", &["--capacity", "0"], "zero-capacity");
}

#[test]
fn actor_channels_reply_by_oneshot_keep_the_newest_watch_value_and_broadcast_to_all() {
    let transcript = listing("actor-channels").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    for line in [
        "oneshot: / has 2 hit(s)",
        "oneshot: the counter ended, having seen 2 page(s)",
        // Two values sent with no await between them: the worker sees only the newest.
        "watch: the worker saw starting, then shutting down",
        "broadcast: early subscriber got first, second, third",
        // A subscriber gets only what is sent after it subscribed.
        "broadcast: late subscriber got second, third",
    ] {
        position(&transcript, line);
    }
    assert!(!transcript.text.contains("serving"), "{}", transcript.text);
    assert_snapshot!(transcript, "run");
}

/// The chat's ring: `broadcast-chat`'s default capacity, a power of two, so the ring holds
/// exactly this many.
const RING: usize = 16;

/// Joins the chat as `name`: connects (as `[client NAME]` in the server's log), sends the
/// name, and waits for the server to log the join.
fn join(server: &mut Run, stream: TcpStream, name: &str) -> BufReader<TcpStream> {
    named(server, &stream, name);
    (&stream).write_all(format!("{name}\n").as_bytes()).unwrap();
    server.wait_for_line(&format!(r"^\[client {name}\] joined as {name}$"));
    BufReader::new(stream)
}

/// The next line the server sent, without its newline.
fn next_line(client: &mut BufReader<TcpStream>, server: &Run) -> String {
    let mut line = String::new();
    match client.read_line(&mut line) {
        Ok(n) if n > 0 => line.trim_end_matches('\n').to_string(),
        Ok(_) => server.fail("the server closed the connection"),
        Err(e) => server.fail(&format!("no line from the server ({e})")),
    }
}

#[test]
fn broadcast_chat_tells_a_client_that_stopped_reading_how_many_messages_it_missed() {
    let (mut server, addr) = serving("broadcast-chat", &[]);
    // The slow client's receive buffer is shrunk before it connects, and the server caps its
    // send buffer (64 KiB, which Linux doubles): together they hold well under 300 KB, so
    // 500 lines of 1,000 bytes that the slow client does not read must overflow both and
    // then the ring. The lag is certain by size, not by timing.
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let timeout = Duration::from_secs(30);
    socket.connect_timeout(&addr.into(), timeout).unwrap();
    let mut slow = join(&mut server, socket.into(), "slow");
    let mut fast = join(&mut server, connect(addr), "fast");
    assert_eq!(next_line(&mut fast, &server), "* fast joined");
    let mut sent = vec!["* slow joined".to_string(), "* fast joined".to_string()];
    for i in 1..=500 {
        let line = format!("message {i:04} {}", "x".repeat(980));
        fast.get_ref()
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        // The fast client reads each line back before it sends the next: it never lags.
        let echoed = format!("fast: {line}");
        assert_eq!(next_line(&mut fast, &server), echoed);
        sent.push(echoed);
    }
    // Now the slow client reads: what the kernel held, then the server's note, then the
    // newest messages, which the ring kept.
    let mut before = Vec::new();
    let missed: usize = loop {
        let line = next_line(&mut slow, &server);
        if let Some(rest) = line.strip_prefix("server: you missed ") {
            break rest.trim_end_matches(" messages").parse().unwrap();
        }
        before.push(line);
    };
    let after: Vec<String> = (0..RING).map(|_| next_line(&mut slow, &server)).collect();
    assert!(missed > 0);
    assert_eq!(before[..], sent[..before.len()], "in order, from the start");
    assert_eq!(after[..], sent[sent.len() - RING..], "the ring's newest");
    assert_eq!(before.len() + missed + RING, sent.len(), "none lost unsaid");
    server.wait_for_line(&format!(
        r"^\[client slow\] missed {missed} messages, told it so$"
    ));
    drop(slow);
    server.wait_for_line(r"^\[client slow\] left$");
    drop(fast);
    server.wait_for_line(r"^\[client fast\] left$");
    let mut transcript = stop(server, "INT");
    // How many fit in the kernel's buffers varies with the kernel: the count is redacted.
    transcript.redact_matches(r"missed \d+ messages", "missed [N] messages");
    assert_snapshot!(transcript, "lagged");
}

fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect_timeout(&addr, Duration::from_secs(30)).expect("connect to the chat")
}

/// A client that breaks the protocol gets one line saying how, and its connection ends: the
/// server's log, for the test to snapshot under its own name.
fn refused(sends: &[u8], error: &str) -> Transcript {
    let (mut server, addr) = serving("broadcast-chat", &[]);
    let mut stream = connect(addr);
    named(&mut server, &stream, "bad");
    stream.write_all(sends).unwrap();
    let got = read_to_eof(&mut stream, &server);
    assert!(got.ends_with(&format!("error: {error}\n")), "{got:?}");
    server.wait_for_line(&format!(r"^\[client bad\] refused: {error}$"));
    stop(server, "INT")
}

#[test]
fn broadcast_chat_refuses_an_empty_name() {
    assert_snapshot!(refused(b"\n", "empty name"), "empty-name");
}

#[test]
fn broadcast_chat_refuses_a_line_too_long() {
    // Exactly one byte over, and no more: the server reads all of it, so its close is a FIN
    // and the error line arrives (unread bytes would make the kernel send a reset).
    let mut sends = b"carol\n".to_vec();
    sends.extend([b'x'; 4097]);
    let transcript = refused(&sends, "line longer than 4096 bytes");
    assert_snapshot!(transcript, "too-long");
}

#[test]
fn broadcast_chat_refuses_a_line_not_in_utf8() {
    let transcript = refused(b"dave\n\xff\xfe\n", "line not in UTF-8");
    assert_snapshot!(transcript, "not-utf8");
}

#[test]
fn broadcast_chat_closes_a_client_that_names_no_one_in_time() {
    let (mut server, addr) = serving("broadcast-chat", &["--write-timeout", "1"]);
    let mut stream = connect(addr);
    named(&mut server, &stream, "silent");
    let asked = Instant::now();
    assert_eq!(
        read_to_eof(&mut stream, &server),
        "",
        "closed without a word"
    );
    assert!(
        asked.elapsed() >= Duration::from_millis(900),
        "{:?}",
        asked.elapsed()
    );
    server.wait_for_line(r"^\[client silent\] named no one in time; closed$");
    assert_snapshot!(stop(server, "INT"), "silent");
}

#[test]
fn broadcast_chat_logs_a_client_that_leaves_before_naming_itself_and_writes_nothing() {
    let (mut server, addr) = serving("broadcast-chat", &[]);
    let mut stream = connect(addr);
    named(&mut server, &stream, "shy");
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut stream, &server), "", "no error line");
    server.wait_for_line(r"^\[client shy\] left before naming itself$");
    assert_snapshot!(stop(server, "INT"), "no-name");
}

#[test]
fn broadcast_chat_drops_a_client_that_takes_no_line_in_time_and_stops_hearing_it() {
    // A ring longer than the test's 200 lines: the stuck client's forwarder never lags, it
    // only waits on its write.
    let args = [
        "--write-timeout",
        "1",
        "--send-buffer",
        "4096",
        "--capacity",
        "256",
    ];
    let (mut server, addr) = serving("broadcast-chat", &args);
    // A client that never reads, with the smallest buffers: 200 lines of 1,000 bytes cannot
    // all fit in them, so its forwarder's write is pending for good, and the timeout fires
    // whatever the load.
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(30))
        .unwrap();
    let stuck = join(&mut server, socket.into(), "stuck");
    let mut fast = join(&mut server, connect(addr), "fast");
    assert_eq!(next_line(&mut fast, &server), "* fast joined");
    for i in 1..=200 {
        let line = format!("message {i:03} {}", "x".repeat(980));
        fast.get_ref()
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        assert_eq!(next_line(&mut fast, &server), format!("fast: {line}"));
    }
    // Logged while the stuck client is still connected: dropped at once, not when it leaves.
    // This is the proof that the server stops hearing it (the old server logged the drop
    // only once the client closed, and this wait timed out).
    server.wait_for_line(r"^\[client stuck\]: took no whole line in 1s; dropped$");
    // What it says now reaches no one. Lines from two connections have no order a test
    // could rely on, so this step only shows it, as the page does; it proves nothing alone.
    let _ = stuck.get_ref().write_all(b"I am still here\n");
    fast.get_ref().write_all(b"anyone?\n").unwrap();
    assert_eq!(next_line(&mut fast, &server), "fast: anyone?");
    drop(fast);
    server.wait_for_line(r"^\[client fast\] left$");
    drop(stuck);
    assert_snapshot!(stop(server, "INT"), "dropped");
}

#[test]
fn broadcast_chat_refuses_a_ring_of_zero() {
    assert_refused!("broadcast-chat", &["--capacity", "0"], "zero-capacity");
}

#[test]
fn async_streams_are_lazy_run_a_few_at_a_time_and_end_with_their_channel() {
    let transcript = listing("async-streams").spawn().finish();
    assert!(transcript.status.success(), "{}", transcript.text);
    // Nothing runs before the first next, and each step runs only when asked for.
    let made = position(&transcript, "squares: made a stream; nothing has run yet");
    assert!(made < position(&transcript, "  unfold: step 0"));
    assert!(position(&transcript, "squares: got 0") < position(&transcript, "  unfold: step 1"));
    // take(3): a fourth step never runs.
    assert!(!transcript.text.contains("step 3"), "{}", transcript.text);
    // Finished first is out first: lookup 3 needs the fewest turns.
    position(
        &transcript,
        "lookups: results in the order they finished: [300, 100, 200, 400, 600, 500]",
    );
    position(&transcript, "lookups: at most 3 running at once (limit 3)");
    position(
        &transcript,
        "channel: word lengths [5, 4, 5], then the stream ended",
    );
    position(&transcript, "countdown: [3, 2, 1]");
    assert_snapshot!(transcript, "run");
    // One at a time, the lookups finish in the order they started.
    let one = listing("async-streams")
        .args(["--at-once", "1"])
        .spawn()
        .finish();
    position(
        &one,
        "lookups: results in the order they finished: [100, 200, 300, 400, 500, 600]",
    );
    position(&one, "lookups: at most 1 running at once (limit 1)");
}

#[test]
fn async_streams_refuse_zero_at_once() {
    assert_refused!("async-streams", &["--at-once", "0"], "zero-at-once");
}

//! Chapter 12 (S11.1), C10K: ten thousand connections at once against three servers.

use std::time::Duration;

use crate::harness::{assert_refused, listing, python3_present};

/// One row of the table: the columns the test asserts on, by position.
struct Row<'a> {
    connections: u64,
    server: &'a str,
    held: u64,
    trips: u64,
    errors: u64,
    server_cores: f64,
    threads: u64,
}

fn count(field: &str) -> u64 {
    field
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a count: {field:?}"))
}

/// The table's rows: lines that start with a connection count.
fn rows(text: &str) -> Vec<Row<'_>> {
    text.lines()
        .filter(|line| line.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .filter(|line| line.contains('x'))
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(
                f.len(),
                16,
                "14 columns, two of them a figure and a unit: {line}"
            );
            Row {
                connections: count(f[0]),
                server: f[1],
                held: count(f[2]),
                trips: count(f[3]),
                errors: count(f[4]),
                server_cores: f[7].parse().expect("cores"),
                threads: count(f[11]),
            }
        })
        .collect()
}

#[test]
fn c10k_holds_ten_thousand_connections_on_every_server() {
    if !python3_present() {
        eprintln!("python3 is not on this machine: the C10K table with asyncio is not checked");
        return;
    }
    let mut transcript = listing("c10k")
        .budget(Duration::from_secs(240))
        .measuring()
        .spawn()
        .finish();
    let text = transcript.text.clone();
    if hard_file_limit() < 10_064 {
        // Ten thousand connections and 64 spare descriptors do not fit here: the listing
        // must say so, and the table cannot be checked on this machine.
        assert!(text.contains("this machine's hard limit is"), "{text}");
        assert_eq!(transcript.status.code(), Some(1), "{text}");
        eprintln!("the hard limit on open files is too low here: the C10K table is not checked");
        return;
    }
    assert!(transcript.status.success(), "{text}");
    let cores: u64 = text
        .split_once(" cores,")
        .map(|(n, _)| count(n.trim()))
        .expect("the number of cores");
    let rows = rows(&text);
    let servers: Vec<(u64, &str)> = rows.iter().map(|r| (r.connections, r.server)).collect();
    assert_eq!(
        servers,
        [
            (1000, "threads"),
            (1000, "tokio"),
            (1000, "asyncio"),
            (10_000, "threads"),
            (10_000, "tokio"),
            (10_000, "asyncio"),
        ],
        "{text}"
    );
    for row in &rows {
        // Every connection was open at once, and every one of its ten round trips came
        // back with the right reply.
        assert_eq!(row.held, row.connections, "{text}");
        assert_eq!(row.trips, 10 * row.connections, "{text}");
        assert_eq!(row.errors, 0, "{text}");
        // What the chapter says of each: a thread per connection (and the main thread);
        // tokio's workers, one a core, beside the main thread; asyncio's one thread.
        let threads = match row.server {
            "threads" => row.connections + 1,
            "tokio" => cores + 1,
            _ => 1,
        };
        assert_eq!(row.threads, threads, "{}: {text}", row.server);
    }
    // asyncio's loop is one thread: it never keeps more than one core busy (the clock
    // ticks of /proc allow a little over).
    for row in rows.iter().filter(|r| r.server == "asyncio") {
        assert!(row.server_cores <= 1.05, "{text}");
    }
    // The machine's own figures: its cores, its limit, how many threads tokio starts.
    transcript.redact_matches(r"(?m)^\d+ cores,", "[N] cores,");
    transcript.redact_matches(r"allowed: \d+ per", "allowed: [N] per");
    transcript.redact_matches(r"connections: [0-9,]+\n", "connections: [N]\n");
    transcript.redact_matches(
        r"(?m)^( +[0-9,]+ +tokio .*?) +\d+( +[0-9.]+ [KM]iB)",
        "$1 [N]$2",
    );
    // Throughput, the figure before its ratio, and the cores busy after it; the padding
    // varies with the figures' width.
    transcript.redact_matches(
        r" +[0-9,]+( +[0-9.]+x) +[0-9.]+ +[0-9.]+ ",
        " [N]$1 [N] [N] ",
    );
    transcript.assert_snapshot("this-machine");
    transcript.record_measurement("this-machine");
}

/// This process's hard limit on open files, which the listing inherits.
fn hard_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass, which outlives the call.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(got, 0, "getrlimit: {}", std::io::Error::last_os_error());
    limit.rlim_max
}

#[test]
fn c10k_says_when_the_open_file_limit_is_too_low() {
    let transcript = listing("c10k")
        .args(["--connections", "1000", "--python", "never"])
        .file_limit(512)
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    transcript.assert_snapshot("file-limit-too-low");
}

#[test]
fn c10k_rejects_zero_connections() {
    assert_refused("c10k", &["--connections", "1000,0"], "zero-connections");
}

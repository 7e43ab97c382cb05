//! Chapter 13 (S11.1), C10K: ten thousand connections at once against four servers.

use std::time::Duration;

use crate::harness::{assert_refused, assert_snapshot, listing, python3_present};

fn count(field: &str) -> u64 {
    field
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a count: {field:?}"))
}

/// The rows of one of the two tables, split into their columns: a connection count, a
/// server's name, and the figures. The second table's rows are those with a size in KiB or
/// MiB; a round that was not started is in neither.
fn rows(text: &str, cost: bool) -> Vec<Vec<&str>> {
    text.lines()
        .filter(|line| line.contains("iB") == cost && !line.contains("not started"))
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|row| {
            row.len() > 2
                && row[0].replace(',', "").parse::<u64>().is_ok()
                && ["threads", "tokio", "mio", "asyncio"].contains(&row[1])
        })
        .collect()
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
    #[allow(clippy::useless_conversion, reason = "rlim_t is i64 on FreeBSD")]
    let hard = u64::try_from(limit.rlim_max).unwrap_or(u64::MAX);
    hard
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: c10k reads /proc")]
fn c10k_holds_ten_thousand_connections_on_every_server() {
    // Without python3 the Rust servers are still checked; the book's table needs all three.
    let python = python3_present();
    let mut transcript = listing("c10k")
        .args(if python { None } else { Some("--no-python") })
        .budget(Duration::from_secs(300))
        .measuring()
        .heavy()
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
    let ports = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| {
            let ends: Vec<u64> = range
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            Some(ends.get(1)? + 1 - ends.first()?)
        })
        .expect("the ephemeral port range");
    if ports < 10_000 {
        // Each connection needs a local port of its own: the listing must say so.
        assert!(text.contains("need as many local ports"), "{text}");
        assert_eq!(transcript.status.code(), Some(1), "{text}");
        eprintln!("fewer than 10,000 ephemeral ports here: the C10K table is not checked");
        return;
    }
    assert!(transcript.status.success(), "{text}");
    // A thread per connection is started only within the limit the listing read: past it,
    // the row says so instead, and the table cannot be compared with the book's.
    let limit: u64 = text
        .split_once("threads a process may start: about ")
        .and_then(|(_, rest)| rest.split_once(' '))
        .map(|(n, _)| count(n))
        .unwrap_or_else(|| panic!("no limit on threads:\n{text}"));
    let fits = |n: u64| n < limit;
    for n in [1000u64, 10_000] {
        let refused = format!(
            "{:>7}  threads  not started: more threads than this machine allows",
            if n == 1000 { "1,000" } else { "10,000" }
        );
        assert_eq!(text.contains(&refused), !fits(n), "{text}");
    }
    let cores = text
        .split_once(" cores,")
        .map(|(n, _)| count(n.trim()))
        .expect("the number of cores");
    let servers: &[&str] = if python {
        &["threads", "tokio", "mio", "asyncio"]
    } else {
        &["threads", "tokio", "mio"]
    };
    let expected: Vec<(u64, &str)> = [1000, 10_000]
        .iter()
        .flat_map(|&n| servers.iter().map(move |&s| (n, s)))
        .filter(|&(n, server)| server != "threads" || fits(n))
        .collect();

    let served = rows(&text, false);
    let cost = rows(&text, true);
    for table in [&served, &cost] {
        let order: Vec<(u64, &str)> = table.iter().map(|r| (count(r[0]), r[1])).collect();
        assert_eq!(order, expected, "{text}");
    }
    for row in &served {
        // Every connection was open at once, and every one of its ten round trips came
        // back with the right reply.
        let n = count(row[0]);
        assert_eq!(count(row[2]), n, "held: {text}");
        assert_eq!(count(row[3]), 10 * n, "round trips: {text}");
        assert_eq!(count(row[4]), 0, "errors: {text}");
    }
    let cpu_per_trip = |server: &str| -> Duration {
        let row = cost.iter().rfind(|r| r[1] == server).expect("a row");
        let (figure, unit) = row[5].split_at(row[5].find(|c: char| c.is_alphabetic()).unwrap());
        let figure: f64 = figure.parse().expect("a figure");
        match unit {
            "ms" => Duration::from_secs_f64(figure / 1e3),
            "µs" => Duration::from_secs_f64(figure / 1e6),
            _ => panic!("cpu per trip in {unit}: {text}"),
        }
    };
    for row in &cost {
        // What the chapter says of each: a thread per connection (and the main thread);
        // tokio's workers, one a core, beside the main thread; mio's and asyncio's one thread.
        let n = count(row[0]);
        let threads = match row[1] {
            "threads" => n + 1,
            "tokio" => cores + 1,
            _ => 1,
        };
        assert_eq!(count(row[2]), threads, "{}'s threads: {text}", row[1]);
        // mio's and asyncio's loops are one thread: never more than one core busy. CPU time
        // comes from /proc in ticks of 10 ms, and each of the two readings around the round
        // trips may be a tick off: over a round that took `elapsed`, that is 2 ticks.
        if ["mio", "asyncio"].contains(&row[1]) {
            let busy: f64 = row[3].parse().expect("cores");
            let served = served
                .iter()
                .find(|r| r[0] == row[0] && r[1] == row[1])
                .expect("a served row");
            let elapsed = count(served[3]) as f64 / count(served[5]) as f64;
            assert!(busy <= 1.0 + 0.02 / elapsed + 0.01, "{text}");
        }
    }
    // Memory per connection at 10,000 (KiB): a thread keeps more than a task does, and a
    // task with its 8 KiB buffer more than asyncio's connection or mio's, whose buffers
    // start empty.
    let per_connection = |server: &str| -> f64 {
        let row = cost.iter().rfind(|r| r[1] == server).expect("a row");
        assert_eq!(row[9], "KiB", "{text}");
        row[8].parse().expect("a size")
    };
    if fits(10_000) {
        assert!(
            per_connection("threads") > per_connection("tokio"),
            "{text}"
        );
    }
    assert!(per_connection("tokio") > per_connection("mio"), "{text}");
    if python {
        // The interpreter's cost: asyncio spends more of the server's CPU on a round trip.
        assert!(cpu_per_trip("asyncio") > cpu_per_trip("tokio"), "{text}");
        assert!(
            per_connection("tokio") > per_connection("asyncio"),
            "{text}"
        );
    }

    // The machine's own figures: its cores, its limits, how many threads tokio starts.
    transcript.redact_matches(r"(?m)^\d+ cores,", "[N] cores,");
    transcript.redact_matches(r"allowed: \d+ per", "allowed: [N] per");
    transcript.redact_matches(r"connections: [0-9,]+\n", "connections: [N]\n");
    transcript.redact_matches(r"may start: about .*", "may start: about [N] ([LIMIT])");
    transcript.redact_matches(r"(?m)^( +[0-9,]+ +tokio) +\d+ ", "$1 [N] ");
    // Throughput, the figure before its ratio, and the cores busy; their padding varies
    // with the figures' width.
    transcript.redact_matches(r" +[0-9,]+( +[0-9.]+x)", " [N]$1");
    transcript.redact_matches(r" +\d+\.\d\d +\d+\.\d\d ", " [N] [N] ");
    if !fits(10_000) {
        eprintln!(
            "this machine allows about {limit} threads: the threaded server's 10,000 \
             connections were not started, as checked; the table is not compared with the book's"
        );
        return;
    }
    if python {
        assert_snapshot!(transcript, "this-machine");
        transcript.record_measurement("this-machine");
    } else {
        eprintln!("python3 is not here: the asyncio rows and the snapshot are not checked");
    }
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "needs Linux: c10k reads /proc")]
fn c10k_says_when_the_open_file_limit_is_too_low() {
    let transcript = listing("c10k")
        .args(["--connections", "1000", "--no-python"])
        .file_limit(512)
        .spawn()
        .finish();
    assert_eq!(transcript.status.code(), Some(1), "{}", transcript.text);
    assert!(
        transcript.text.contains("hard limit is 512"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "file-limit-too-low");
}

#[test]
fn c10k_rejects_zero_connections() {
    assert_refused!("c10k", &["--connections", "1000,0"], "zero-connections");
}

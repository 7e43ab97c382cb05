//! What differs from run to run, redacted from a transcript: ports the system chose, process
//! ids, dates, measured durations, sizes and ratios, this checkout's path; and the command
//! line, quoted as a reader would type it.

use std::sync::OnceLock;

use regex::{Captures, Regex};

use super::workspace_root;

/// A test's own redactions: each value (where it stands as a whole word) or pattern
/// becomes its placeholder.
pub fn apply(redactions: &[(Regex, String)], text: &str) -> String {
    let mut text = text.to_string();
    for (whole, placeholder) in redactions {
        text = whole.replace_all(&text, placeholder.as_str()).into_owned();
    }
    text
}

/// Replaces what differs between runs with a placeholder: ports the system chose, process
/// ids, HTTP dates, measured durations (printed with Debug, as `1.25ms`), sizes (`12.5 KiB`),
/// ratios (`1.25x`), and this checkout's path. One space stands for the padding before a
/// redacted figure.
pub fn redact(text: &str) -> String {
    static RULES: OnceLock<Vec<(Regex, &str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        vec![
            (Regex::new(r"\bpid:? \d+").unwrap(), "pid [PID]"),
            // The HTTP Date header: "Thu, 26 Nov 2026 13:56:34 GMT".
            (
                Regex::new(r"\b[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")
                    .unwrap(),
                "[DATE]",
            ),
            (
                Regex::new(r"\b\d+(\.\d+)?(ns|µs|ms|s)\b").unwrap(),
                "[DURATION]",
            ),
            // The compiler's own source, in a note of a compiler error: its commit and
            // line numbers change with the compiler's version.
            (
                Regex::new(r"/rustc/[0-9a-f]+/(\S+?):\d+:\d+").unwrap(),
                "/rustc/[COMMIT]/$1:[LINE]",
            ),
            // A measured size, printed as `12.5 KiB`.
            (
                Regex::new(r"\b\d+(\.\d+)? (KiB|MiB|GiB)\b").unwrap(),
                "[SIZE]",
            ),
            // A measured ratio, printed as `1.25x`.
            (Regex::new(r"\b\d+(\.\d+)?x\b").unwrap(), "[RATIO]x"),
        ]
    });
    let root = workspace_root().display().to_string();
    let mut text = text.replace(&root, "[ROOT]");
    for (regex, placeholder) in rules {
        text = regex.replace_all(&text, *placeholder).into_owned();
    }
    // A table right-aligns its figures: the spaces before one vary with its width.
    static PADDING: OnceLock<Regex> = OnceLock::new();
    let padding = PADDING.get_or_init(|| Regex::new(r" +(\[(DURATION|SIZE|RATIO)\])").unwrap());
    let text = padding.replace_all(&text, " $1");
    redact_ephemeral_ports(&text)
}

/// Only ports in the system's ephemeral range are redacted: tests bind port 0, so those are
/// the ports that change; a port a reader typed (say, 70000 in a bad-input test) stays.
pub fn redact_ephemeral_ports(text: &str) -> String {
    static ADDRESS: OnceLock<Regex> = OnceLock::new();
    let address = ADDRESS.get_or_init(|| {
        Regex::new(r"(\b\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):(\d{1,5})\b").unwrap()
    });
    let (low, high) = ephemeral_range();
    address
        .replace_all(text, |c: &Captures| match c[2].parse::<u32>() {
            Ok(port) if (low..=high).contains(&port) => format!("{}:[PORT]", &c[1]),
            _ => c[0].to_string(),
        })
        .into_owned()
}

fn ephemeral_range() -> (u32, u32) {
    let linux = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range");
    let parsed = linux.ok().and_then(|range| {
        let mut ends = range.split_whitespace().map(str::parse);
        Some((ends.next()?.ok()?, ends.next()?.ok()?))
    });
    // Elsewhere, the range IANA suggests (and macOS and Windows use).
    parsed.unwrap_or((49152, 65535))
}

/// The arguments as a reader would type them in a POSIX shell.
pub fn shell_args(args: &[String]) -> String {
    if args.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    format!(" -- {}", quoted.join(" "))
}

fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.:/=[]@%+,".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else if arg.chars().any(char::is_control) {
        // bash's $'...' spells control characters as escapes.
        let escaped: String = arg
            .chars()
            .map(|c| match c {
                '\r' => r"\r".to_string(),
                '\n' => r"\n".to_string(),
                '\t' => r"\t".to_string(),
                '\\' | '\'' => format!("\\{c}"),
                c if c.is_control() => format!("\\x{:02x}", u32::from(c)),
                c => c.to_string(),
            })
            .collect();
        format!("$'{escaped}'")
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

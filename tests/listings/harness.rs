//! The one harness behind every listing's snapshot: build the workspace's binaries once, run a
//! listing as a reader would (arguments, typed answers to its prompts, a peer in the test),
//! and snapshot the terminal transcript with what varies from run to run redacted.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{
    Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use regex::{Captures, Regex};

/// How long one listing may run, in all, before the test kills it and fails. Generous: two
/// test suites may share this machine's 2 cores, and every wait returns as soon as it can.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A listing's binary, ready to run with arguments.
pub struct Listing {
    name: String,
    args: Vec<String>,
    budget: Duration,
    measuring: bool,
    file_limit: Option<u64>,
}

/// Starts describing a run of the listing crate `name` (its package and binary name).
pub fn listing(name: &str) -> Listing {
    Listing {
        name: name.to_string(),
        args: Vec::new(),
        budget: TIMEOUT,
        measuring: false,
        file_limit: None,
    }
}

impl Listing {
    pub fn args<I: IntoIterator<Item = S>, S: ToString>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(|a| a.to_string()));
        self
    }

    /// Gives the run more than the usual 60 seconds in all: for a listing that measures, and
    /// whose own waits (a 10-second round, say) make it long by design.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Marks a run whose figures the book records: while `BOOK_MEASURE=1` records them, such
    /// a run has the machine to itself, with no other listing running beside it. Always, it
    /// takes turns with every other measuring run on this machine, also those of another
    /// `cargo test` at the same time: two of them at once could exhaust what the machine has
    /// (threads, process ids, descriptors) and fail for a reason that is not the listing's.
    pub fn measuring(mut self) -> Self {
        self.measuring = true;
        self
    }

    /// Starts the listing with a lower limit on open files (soft and hard), as on a machine
    /// whose limit is too low for what the listing needs.
    pub fn file_limit(mut self, limit: u64) -> Self {
        self.file_limit = Some(limit);
        self
    }

    /// Starts the listing with stdin, stdout and stderr on pipes. Stdout and stderr share one
    /// pipe, so the transcript has them in the order the program wrote them, as a terminal would.
    pub fn spawn(self) -> Run {
        let binary = binary(&self.name);
        // While figures are recorded, a measuring run has the machine to itself: it waits
        // for every other listing to end, and none starts until it has ended.
        static MACHINE: RwLock<()> = RwLock::new(());
        let turn = recording().then(|| {
            if self.measuring {
                Turn::Alone(MACHINE.write().unwrap_or_else(|p| p.into_inner()))
            } else {
                Turn::Shared(MACHINE.read().unwrap_or_else(|p| p.into_inner()))
            }
        });
        let machine_turn = self
            .measuring
            .then(|| take_machine_turn(&self.name, self.budget));
        let (reader, writer) = std::io::pipe().expect("cannot create a pipe");
        let mut command = Command::new(&binary);
        let file_limit = self.file_limit.map(|limit| libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        });
        // SAFETY: between fork and exec only async-signal-safe calls are allowed, and
        // signal and setrlimit are; `file_limit` is a plain value copied into the closure.
        unsafe {
            command.pre_exec(move || {
                // As a terminal starts a program: Ctrl-C and `kill` act, even when this
                // test runs in a background job, which inherits SIGINT and SIGQUIT ignored.
                for signal in [libc::SIGINT, libc::SIGQUIT] {
                    if libc::signal(signal, libc::SIG_DFL) == libc::SIG_ERR {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                match file_limit {
                    Some(limit) if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 => {
                        Err(std::io::Error::last_os_error())
                    }
                    _ => Ok(()),
                }
            });
        }
        let mut child = command
            .args(&self.args)
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::piped())
            .stdout(writer.try_clone().expect("cannot duplicate a pipe"))
            .stderr(writer)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdin = child.stdin.take();
        let command_line = format!("$ cargo run -p {}{}", self.name, shell_args(&self.args));
        let screen = Arc::new(Screen::default());
        let reading = Arc::clone(&screen);
        // The Command above holds no copy of the pipe's write end any more, so this read sees
        // end-of-file when the listing (and any child that inherited its output) has exited.
        let reader = std::thread::spawn(move || reading.fill_from(reader));
        Run {
            name: self.name,
            child,
            stdin,
            screen,
            reader: Some(reader),
            started: Instant::now(),
            budget: self.budget,
            _turn: turn,
            _machine_turn: machine_turn,
            measuring: self.measuring,
            command_line,
            redactions: Vec::new(),
            typed_up_to: 0,
        }
    }
}

/// Waits for this machine's measuring turn: an exclusive lock on one file in the temporary
/// directory, so that test suites of different checkouts take turns too. Waiting is bounded.
fn take_machine_turn(name: &str, budget: Duration) -> std::fs::File {
    let path = std::env::temp_dir().join("book-listings-measuring.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    // Whoever holds the turn finishes within its own budget; allow a few of those.
    let deadline = Instant::now() + 4 * budget;
    loop {
        match file.try_lock() {
            Ok(()) => return file,
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{name}: no measuring turn ({}): {e}", path.display()),
        }
    }
}

/// A server listing on a free loopback port (`--bind 127.0.0.1:0` and `extra`), and the
/// address it reports in its line `listening on ADDR`.
pub fn serving(name: &str, extra: &[&str]) -> (Run, SocketAddr) {
    let mut run = listing(name)
        .args(["--bind", "127.0.0.1:0"])
        .args(extra)
        .spawn();
    let addr = run.wait_for_line(r"^listening on (\S+)$")[1]
        .parse()
        .unwrap_or_else(|e| run.fail(&format!("not an address: {e}")));
    (run, addr)
}

/// The test's side of a TCP connection ends with SO_LINGER 0: the kernel sends a reset (RST)
/// instead of an orderly FIN.
pub fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
    drop(stream);
}

/// Whether `python3` runs here: listings that compare with the notes' Python need it, and
/// their tests say so and skip that comparison when it is missing.
pub fn python3_present() -> bool {
    Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A bad command-line value: the listing refuses it with clap's usage error and exit status
/// 2, before it does anything else; the snapshot `<listing>__<scenario>` shows the message.
pub fn assert_refused(name: &str, args: &[&str], scenario: &str) {
    let transcript = listing(name).args(args).spawn().finish();
    assert_eq!(transcript.status.code(), Some(2), "{}", transcript.text);
    transcript.assert_snapshot(scenario);
}

/// Compiles `snippet` (a path from the workspace root, inside a listing's folder) with rustc
/// alone, as a program the book says does not compile, and returns the compiler's messages as
/// the listing's transcript: the real error that a `compile_fail` block shows.
pub fn compile_error(snippet: &str) -> Transcript {
    let listing = Path::new(snippet)
        .components()
        .nth(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .expect("a snippet lives in listings/<chapter>/<listing>/");
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("book-compile-error-{}-{call}", std::process::id());
    let out = std::env::temp_dir().join(name);
    let started = Instant::now();
    let output = Command::new("rustc")
        .args([
            "--edition",
            "2024",
            "--color",
            "never",
            "--emit=metadata",
            "-o",
        ])
        .arg(&out)
        .arg(snippet)
        .current_dir(workspace_root())
        .output()
        .expect("cannot run rustc");
    let _ = std::fs::remove_file(&out);
    assert!(
        !output.status.success(),
        "{snippet} compiled, but the book says it does not"
    );
    Transcript {
        name: listing,
        command_line: format!("$ rustc --edition 2024 {snippet}"),
        text: String::from_utf8_lossy(&output.stderr).into_owned(),
        status: output.status,
        elapsed: started.elapsed(),
        redactions: Vec::new(),
        measuring: false,
    }
}

/// A run's hold on the machine while figures are recorded.
enum Turn {
    Alone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
}

/// A running listing.
pub struct Run {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    screen: Arc<Screen>,
    reader: Option<JoinHandle<()>>,
    started: Instant,
    budget: Duration,
    /// Held while figures are recorded (see `spawn`).
    _turn: Option<Turn>,
    /// A measuring run's turn on this machine (see `measuring`); closing the file ends it.
    _machine_turn: Option<std::fs::File>,
    measuring: bool,
    command_line: String,
    redactions: Vec<(Regex, String)>,
    /// Screen length after the last typed line: a prompt must appear after it.
    typed_up_to: usize,
}

impl Run {
    /// The listing's process id: to send it a signal, say.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the listing a signal by name: `INT` is what Ctrl-C sends.
    pub fn signal(&self, name: &str) -> &Self {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap_or_else(|e| self.fail(&format!("cannot run kill: {e}")));
        if !sent.success() {
            self.fail(&format!("kill -{name} failed: {sent}"));
        }
        self
    }

    /// Waits for the listing to print `prompt` (and nothing after it), then types `answer`
    /// and Enter. The answer appears in the transcript just as a terminal would echo it.
    pub fn answer(&mut self, prompt: &str, answer: &str) -> &mut Self {
        let from = self.typed_up_to;
        let what = format!("the prompt {prompt:?}");
        let mut output = self.wait_until(&what, |text| text[from..].ends_with(prompt));
        // Echo before typing: the listing cannot print its response before it reads the line.
        output.text.push_str(answer);
        output.text.push('\n');
        let typed_up_to = output.text.len();
        drop(output);
        self.typed_up_to = typed_up_to;
        let stdin = self
            .stdin
            .as_mut()
            .expect("stdin is open until close_stdin");
        stdin
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap_or_else(|e| panic!("{}: cannot type {answer:?}: {e}", self.name));
        self
    }

    /// Waits for a whole output line that matches `pattern`, and returns the match's groups
    /// (group 0 is the whole match): this is how a test learns the address a listing bound.
    /// The line is matched as the snapshot will show it, after the test's own `redact`s.
    pub fn wait_for_line(&mut self, pattern: &str) -> Vec<String> {
        let regex = Regex::new(pattern).expect("a valid pattern");
        let what = format!("a line matching {pattern:?}");
        let redactions = &self.redactions;
        let complete_lines = |text: &str| {
            let lines: Vec<String> = text
                .split_inclusive('\n')
                .filter(|line| line.ends_with('\n'))
                .map(|line| apply(redactions, line.trim_end()))
                .collect();
            lines
        };
        let output = self.wait_until(&what, |text| {
            complete_lines(text).iter().any(|line| regex.is_match(line))
        });
        let lines = complete_lines(&output.text);
        let line = lines
            .iter()
            .find(|line| regex.is_match(line))
            .expect("found");
        let groups = regex.captures(line).expect("the line matches");
        groups
            .iter()
            .map(|g| g.map_or(String::new(), |g| g.as_str().to_string()))
            .collect()
    }

    /// Shows `value` (where it stands as a whole word) as `placeholder` in the snapshot: for a
    /// varying value the generic rules cannot recognise, such as a port typed as an answer.
    pub fn redact(&mut self, value: &str, placeholder: &str) -> &mut Self {
        // Compiled once here: `wait_for_line` applies it again on every wake-up.
        let whole = Regex::new(&format!(r"\b{}\b", regex::escape(value))).unwrap();
        self.redactions.push((whole, placeholder.to_string()));
        self
    }

    /// Closes the listing's stdin: what Ctrl-D does at a terminal.
    pub fn close_stdin(&mut self) -> &mut Self {
        self.stdin = None;
        self
    }

    /// Closes stdin, waits for the listing to exit, and returns what it printed.
    pub fn finish(mut self) -> Transcript {
        self.close_stdin();
        // The output pipe closes when the listing exits, and only then if no process it
        // started is still alive: a listing that leaves a child running fails here.
        drop(self.wait_until_closed());
        let status = self.wait_for_exit();
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the reader thread does not panic");
        }
        let transcript = Transcript {
            name: self.name.clone(),
            command_line: self.command_line.clone(),
            text: self.screen.text(),
            status,
            elapsed: self.started.elapsed(),
            redactions: std::mem::take(&mut self.redactions),
            measuring: self.measuring,
        };
        assert!(
            !transcript.text.contains("panicked at"),
            "{} panicked; a listing reports errors in one line instead:\n{}",
            self.name,
            transcript.text
        );
        transcript
    }

    /// The output has closed, so the process is exiting: this poll ends almost at once.
    fn wait_for_exit(&mut self) -> ExitStatus {
        loop {
            match self.child.try_wait().expect("cannot wait for the listing") {
                Some(status) => return status,
                None if self.started.elapsed() > self.budget => {
                    self.fail("gave up waiting for the listing to exit")
                }
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    /// Blocks until `done` holds for the transcript so far; fails if the output ends first or
    /// time runs out.
    fn wait_until(&self, what: &str, done: impl Fn(&str) -> bool) -> MutexGuard<'_, Output> {
        let output = self.wait_for(what, |output| done(&output.text) || output.closed);
        if !done(&output.text) {
            drop(output);
            self.fail(&format!(
                "gave up waiting for {what}: the listing closed its output"
            ));
        }
        output
    }

    /// Blocks until the output ends: the listing has exited, and no process it started still
    /// holds the pipe.
    fn wait_until_closed(&self) -> MutexGuard<'_, Output> {
        self.wait_for("the listing to close its output", |output| output.closed)
    }

    fn wait_for(&self, what: &str, done: impl Fn(&Output) -> bool) -> MutexGuard<'_, Output> {
        let mut output = self.screen.lock();
        while !done(&output) {
            let left = self.budget.saturating_sub(self.started.elapsed());
            if left.is_zero() {
                drop(output);
                self.fail(&format!("gave up waiting for {what}"));
            }
            output = self
                .screen
                .changed
                .wait_timeout(output, left)
                .expect("not poisoned")
                .0;
        }
        output
    }

    /// Panics with `what` went wrong and the listing's output so far: for a test's own
    /// failures (a peer that got nothing, say), so that the message shows why.
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "{}: {what} after {:.1} s; output so far:\n{}",
            self.name,
            self.started.elapsed().as_secs_f64(),
            self.screen.text()
        )
    }
}

impl Drop for Run {
    /// A test that fails half-way still leaves no listing running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What the listing printed so far, shared between the reader thread and the test. The
/// text and the end-of-output flag share one mutex, the one the condition variable waits
/// with, so that no change can slip in between a check and a wait.
#[derive(Default)]
struct Screen {
    state: Mutex<Output>,
    changed: Condvar,
}

#[derive(Default)]
struct Output {
    text: String,
    closed: bool,
}

impl Screen {
    fn lock(&self) -> MutexGuard<'_, Output> {
        self.state.lock().expect("not poisoned")
    }

    fn text(&self) -> String {
        self.lock().text.clone()
    }

    fn fill_from(&self, mut pipe: impl Read) {
        let mut pending = Vec::new();
        let mut buf = [0; 4096];
        loop {
            let len = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(len) => len,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            pending.extend_from_slice(&buf[..len]);
            // Keep an incomplete UTF-8 character for the next read.
            let valid = match std::str::from_utf8(&pending) {
                Ok(s) => s.len(),
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(_) => pending.len(),
            };
            let chunk: Vec<u8> = pending.drain(..valid).collect();
            self.lock().text.push_str(&String::from_utf8_lossy(&chunk));
            self.changed.notify_all();
        }
        let mut output = self.lock();
        output.text.push_str(&String::from_utf8_lossy(&pending));
        output.closed = true;
        drop(output);
        self.changed.notify_all();
    }
}

/// What a finished listing printed, with its command line and exit status.
pub struct Transcript {
    name: String,
    command_line: String,
    /// The raw output (not redacted), for assertions about values the snapshot hides.
    pub text: String,
    pub status: ExitStatus,
    /// From `spawn` to the exit: a test of a timeout checks that it was short.
    pub elapsed: Duration,
    redactions: Vec<(Regex, String)>,
    measuring: bool,
}

impl Transcript {
    /// Shows every match of `pattern` as `placeholder` in the snapshot and in the check of a
    /// recorded measurement: for a part of a line that varies in shape, which the test has
    /// asserted on itself (which of two known failures happened, say).
    pub fn redact_matches(&mut self, pattern: &str, placeholder: &str) -> &mut Self {
        let regex = Regex::new(pattern).expect("a valid pattern");
        self.redactions.push((regex, placeholder.to_string()));
        self
    }

    /// Checks the transcript against `tests/snapshots/<listing>__<scenario>.snap`.
    ///
    /// The snapshot holds the command line, the output with typed answers, and the exit status
    /// when it is not 0; ephemeral ports, pids, measured durations and local paths are redacted.
    pub fn assert_snapshot(&self, scenario: &str) {
        let mut shown = format!("{}\n{}", self.command_line, self.text);
        if !shown.ends_with('\n') {
            shown.push('\n');
        }
        if !self.status.success() {
            let code = self
                .status
                .code()
                .map_or("a signal".into(), |c| c.to_string());
            shown.push_str(&format!("[exit status: {code}]\n"));
        }
        let shown = redact(&apply(&self.redactions, &shown));
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.bind(|| {
            insta::assert_snapshot!(format!("{}__{scenario}", self.name), shown);
        });
    }
}

impl Transcript {
    /// Keeps a measurement listing's real figures for the book. With `BOOK_MEASURE=1`, writes
    /// the transcript, with its figures (only ports and this checkout's path are redacted),
    /// and the machine it ran on to
    /// `tests/measurements/<listing>__<scenario>.txt`, which a chapter includes; otherwise
    /// checks that the file is there. The snapshot, redacted, is still checked on every run.
    pub fn record_measurement(&self, scenario: &str) {
        assert!(
            self.measuring,
            "{}: a run whose figures are recorded starts with `listing(..).measuring()`",
            self.name
        );
        let dir = workspace_root().join("tests/measurements");
        let path = dir.join(format!("{}__{scenario}.txt", self.name));
        if recording() {
            let root = workspace_root().display().to_string();
            let text = format!("{}\n{}", self.command_line, self.text).replace(&root, "[ROOT]");
            let text = redact_ephemeral_ports(&text);
            let record = format!("Measured on {}.\n\n{text}", machine());
            std::fs::create_dir_all(&dir).expect("create tests/measurements");
            std::fs::write(&path, record).expect("write the measurement");
        } else {
            let recorded = std::fs::read_to_string(&path).unwrap_or_else(|_| {
                panic!(
                    "{} is missing: run BOOK_MEASURE=1 cargo test",
                    path.display()
                )
            });
            // The recorded run must still be what the listing prints, figures aside.
            let body = recorded.split_once("\n\n").map_or("", |(_, body)| body);
            let now = format!("{}\n{}", self.command_line, self.text);
            assert_eq!(
                redact(&apply(&self.redactions, body)),
                redact(&apply(&self.redactions, &now)),
                "{} is out of date: run BOOK_MEASURE=1 cargo test",
                path.display()
            );
        }
    }
}

/// `BOOK_MEASURE=1`: measuring listings write their figures for the book.
fn recording() -> bool {
    std::env::var_os("BOOK_MEASURE").is_some_and(|v| v == "1")
}

/// This machine, as a measurement names it: processor, cores, memory, kernel, date.
fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "an unknown processor".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = read("/proc/sys/kernel/osrelease");
    let date = Command::new("date").args(["-u", "+%Y-%m-%d"]).output();
    let date = date.map_or(String::new(), |d| {
        String::from_utf8_lossy(&d.stdout).into_owned()
    });
    format!(
        "{cpu}, {cores} cores available, {} GiB, Linux {}, {}",
        (memory_kib + (1 << 19)) >> 20,
        kernel.trim(),
        date.trim()
    )
}

/// A test's own redactions: each value (where it stands as a whole word) or pattern
/// becomes its placeholder.
fn apply(redactions: &[(Regex, String)], text: &str) -> String {
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
fn redact_ephemeral_ports(text: &str) -> String {
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
fn shell_args(args: &[String]) -> String {
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

pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The path of a listing's binary, freshly built: the first call runs one `cargo build` of the
/// whole workspace into the target directory this test runs from, so no binary is ever stale.
fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT
        .get_or_init(build_workspace)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "no binary {} after building the workspace: is {name} a listing crate?",
        path.display()
    );
    path
}

fn build_workspace() -> Result<PathBuf, String> {
    // This test runs from <target>/<profile>/deps/; the binaries go to <target>/<profile>/.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("unexpected test location")?;
    let target_dir = profile_dir.parent().ok_or("unexpected test location")?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => return Err("unexpected test location".into()),
    };
    // Tests built for another target (`cargo test --target ...`) live one folder deeper; this
    // harness supports the host target only, where the listings run.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // --all-targets builds with the same features as `cargo test`, so nothing is rebuilt.
    let mut build = Command::new(cargo);
    // Cargo gives this test variables that describe its own package. Build scripts that
    // watch one of them (ring watches CARGO_MANIFEST_DIR) would see it change between this
    // build and the outer `cargo test`, and rebuild on every run.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let per_package = ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_BIN_EXE_"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
            ]
            .contains(&name.as_ref())
            || name == "CARGO_RUSTC_CURRENT_DIR"
            || name == "OUT_DIR";
        if per_package {
            build.env_remove(name.as_ref());
        }
    }
    let output = build
        .args([
            "build",
            "--quiet",
            "--workspace",
            // The chapters' doc-tests fail to build while a chapter shows a snapshot that
            // does not exist yet; the listings must still run, to create it.
            "--exclude",
            "book-doctests",
            "--all-targets",
            "--profile",
            profile,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build failed, so no listing can run:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(profile_dir.to_path_buf())
}

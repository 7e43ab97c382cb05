//! The one harness behind every listing's snapshot: build the workspace's binaries once, run a
//! listing as a reader would (arguments, typed answers to its prompts, a peer in the test),
//! and snapshot the terminal transcript with what varies from run to run redacted.
//!
//! A listing runs as if started from a terminal: in a process group of its own (Ctrl-C
//! reaches all of it, and a failed test kills all of it), with the default handling of
//! SIGINT and SIGQUIT, and with a small, fixed environment, so that nothing exported in the
//! reader's shell changes what it prints.

mod build;
mod redact;
mod turns;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use regex::Regex;

pub use redact::redact;
use redact::{apply, redact_ephemeral_ports, shell_args};
use turns::Turn;

/// How long one listing may run, in all, before the test kills it and fails. Generous: two
/// test suites may share this machine's 2 cores, and every wait returns as soon as it can.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The environment a listing starts with, whatever the reader's shell exports: where to
/// find programs (python3, among them), the home and temporary directories, and no colour
/// or backtrace. Nothing else: an exported `TOKIO_WORKER_THREADS` or `LANG` would change
/// what a listing (or the Python it runs) prints.
fn listing_env() -> Vec<(OsString, OsString)> {
    // BOOK_STRESS_RUN marks the processes of one `.ci/stress` run, so that it can find and
    // stop them; it changes nothing a listing does.
    let mut env: Vec<(OsString, OsString)> = ["PATH", "HOME", "TMPDIR", "BOOK_STRESS_RUN"]
        .into_iter()
        .filter_map(|name| Some((name.into(), std::env::var_os(name)?)))
        .collect();
    env.push(("NO_COLOR".into(), "1".into()));
    env.push(("RUST_BACKTRACE".into(), "0".into()));
    env
}

/// A listing's binary, ready to run with arguments.
pub struct Listing {
    name: String,
    args: Vec<String>,
    budget: Duration,
    measuring: bool,
    heavy: bool,
    file_limit: Option<u64>,
    panics: usize,
}

/// Starts describing a run of the listing crate `name` (its package and binary name).
pub fn listing(name: &str) -> Listing {
    Listing {
        name: name.to_string(),
        args: Vec::new(),
        budget: TIMEOUT,
        measuring: false,
        heavy: false,
        file_limit: None,
        panics: 0,
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

    /// Marks a run whose figures the book records (`record_measurement`): while
    /// `BOOK_MEASURE=1` records them, such a run has this test suite to itself.
    pub fn measuring(mut self) -> Self {
        self.measuring = true;
        self
    }

    /// Marks a run that holds thousands of threads, processes or connections at once. It
    /// takes turns with every other heavy run on this machine, also those of another
    /// `cargo test` at the same time (another checkout, another user): two of them at once
    /// could exhaust what the machine has, and fail for a reason that is not the listing's.
    pub fn heavy(mut self) -> Self {
        self.heavy = true;
        self
    }

    /// Starts the listing with a lower limit on open files (soft and hard), as on a machine
    /// whose limit is too low for what the listing needs.
    pub fn file_limit(mut self, limit: u64) -> Self {
        self.file_limit = Some(limit);
        self
    }

    /// Accepts exactly `n` panic messages (`panicked at`) in the output: for a listing that
    /// shows a panic on purpose (a task's, caught by its runtime), whose message is part of
    /// the lesson. Any other number fails the run, as any panic fails a listing by default.
    pub fn panics(mut self, n: usize) -> Self {
        self.panics = n;
        self
    }

    /// Starts the listing with stdin, stdout and stderr on pipes. Stdout and stderr share one
    /// pipe, so the transcript has them in the order the program wrote them, as a terminal would.
    pub fn spawn(self) -> Run {
        let binary = build::binary(&self.name);
        let turn = Turn::take(&self.name, self.heavy, self.measuring && recording());
        let (reader, writer) = std::io::pipe().expect("cannot create a pipe");
        let mut command = Command::new(&binary);
        let file_limit = self.file_limit.map(|limit| libc::rlimit {
            rlim_cur: limit as libc::rlim_t,
            rlim_max: limit as libc::rlim_t,
        });
        #[cfg(target_os = "linux")]
        let test = std::process::id();
        // SAFETY: between fork and exec only async-signal-safe calls are allowed, and
        // signal, setrlimit, prctl and getppid are; `file_limit` and `test` are plain values
        // copied into the closure.
        unsafe {
            command.pre_exec(move || {
                // In a process group of its own, a listing no longer gets the terminal's
                // Ctrl-C that ends `cargo test`: it dies with the test's thread instead,
                // however the test ends (the thread outlives its runs). If the test is gone
                // already, it does not start.
                #[cfg(target_os = "linux")]
                {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::getppid() as u32 != test {
                        return Err(std::io::Error::other("the test has ended"));
                    }
                }
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
            .env_clear()
            .envs(listing_env())
            // A group of its own, as a shell gives each job: a signal to the group reaches
            // every process the listing started, as Ctrl-C at a terminal does.
            .process_group(0)
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
            reaped: false,
            stdin,
            screen,
            reader: Some(reader),
            started: Instant::now(),
            budget: self.budget,
            _turn: turn,
            measuring: self.measuring,
            command_line,
            redactions: Vec::new(),
            typed_up_to: 0,
            panics: self.panics,
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

/// A duration as `{:?}` prints it (`43.9ms`, `8.2µs`, `1.5s`, `900ns`): what a snapshot
/// shows as [DURATION]. None for anything else.
pub fn debug_duration(shown: &str) -> Option<Duration> {
    let (number, unit) = shown.split_at(shown.find(|c: char| c.is_alphabetic())?);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "s" => 1.0,
        "ms" => 1e-3,
        "µs" => 1e-6,
        "ns" => 1e-9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(number * scale))
}

/// Whether `python3` runs here, as a listing would find it. Listings that compare with the
/// notes' Python need it; without it their tests check the rest and say what they skipped.
/// With `BOOK_REQUIRE_PYTHON=1` (`.ci/run` sets it) a missing python3 fails the test instead.
pub fn python3_present() -> bool {
    // What the listings use of Python's standard library: a minimal install may lack some.
    let present = Command::new("python3")
        .args(["-c", "import asyncio, multiprocessing, threading"])
        .env_clear()
        .envs(listing_env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let required = std::env::var_os("BOOK_REQUIRE_PYTHON").is_some_and(|v| v == "1");
    assert!(
        present || !required,
        "python3 does not run here, and BOOK_REQUIRE_PYTHON=1 requires it"
    );
    present
}

/// A bad command-line value: the listing refuses it with clap's usage error and exit status
/// 2, before it does anything else; the snapshot `<listing>__<scenario>` shows the message.
macro_rules! assert_refused {
    ($name:expr, $args:expr, $scenario:expr) => {{
        let transcript = $crate::harness::listing($name).args($args).spawn().finish();
        assert_eq!(transcript.status.code(), Some(2), "{}", transcript.text);
        $crate::harness::assert_snapshot!(transcript, $scenario);
    }};
}
pub(crate) use assert_refused;

/// `--help`: the listing describes itself and its options, and exits with status 0 before it
/// does anything else. Every listing answers it, as a real program does.
pub fn assert_answers_help(name: &str) {
    let transcript = listing(name).args(["--help"]).spawn().finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{name} --help failed:\n{text}");
    assert!(
        text.contains(&format!("Usage: {name}")) && text.contains("-h, --help"),
        "{name} --help printed no usage:\n{text}"
    );
}

/// Whether this test, and so the listing it starts, may run on one CPU only (`taskset -c 0`):
/// its affinity lists a single CPU. A CPU quota is not counted: it shares time, not CPUs.
pub fn one_cpu() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .is_some_and(|cpus| !cpus.contains(['-', ',']))
}

/// Checks a transcript against `tests/snapshots/<listing>__<scenario>.snap`. A macro, so that
/// the snapshot names the test that made it: its `source` is the test's file, and its
/// `description` the test.
macro_rules! assert_snapshot {
    ($transcript:expr, $scenario:expr) => {{
        fn here() {}
        if let Some((settings, name, shown)) =
            $transcript.snapshot($scenario, std::any::type_name_of_val(&here))
        {
            settings.bind(|| insta::assert_snapshot!(name, shown));
        }
    }};
}
pub(crate) use assert_snapshot;

/// The compiler whose messages the compiler-error snapshots hold: the workspace's
/// `rust-version`. Another one words its errors its own way (see `Transcript::snapshot`).
const SNAPSHOT_COMPILER: &str = env!("CARGO_PKG_RUST_VERSION");

/// Compiles `snippet` (a path from the workspace root, inside a listing's folder) with rustc
/// alone, as a program the book says does not compile, and returns the compiler's messages as
/// the listing's transcript: the real error that a `compile_fail` block shows.
pub fn compile_error(snippet: &str) -> Transcript {
    compile_error_with(snippet, &[])
}

/// `compile_error` for a snippet that uses crates (`&["tokio"]`): rustc gets each one as
/// `--extern`, the very `.rlib` the listings link, from the harness's one build, and the
/// folder of its dependencies. Their source, quoted in a note, is shown from
/// `[REGISTRY]/tokio-<version>/...`: the version is Cargo.lock's, the path before it the
/// machine's.
pub fn compile_error_with(snippet: &str, crates: &[&str]) -> Transcript {
    let listing = Path::new(snippet)
        .components()
        .nth(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .expect("a snippet lives in listings/<chapter>/<listing>/");
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Metadata only, written where Cargo keeps this test target's scratch files.
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("compile-error-{}-{call}", std::process::id()));
    let mut rustc = Command::new("rustc");
    rustc.args([
        "--edition",
        "2024",
        "--color",
        "never",
        "--emit=metadata",
        "-o",
    ]);
    rustc.arg(&out);
    let mut shown = String::new();
    for name in crates {
        let rlib = build::library(name);
        let deps = rlib.parent().expect("an rlib lives in a folder");
        let mut extern_arg = OsString::from(format!("{name}="));
        extern_arg.push(&rlib);
        let mut dependency = OsString::from("dependency=");
        dependency.push(deps);
        rustc
            .arg("--extern")
            .arg(extern_arg)
            .arg("-L")
            .arg(dependency);
        shown.push_str(&format!(" --extern {name}=[RLIB] -L dependency=[DEPS]"));
    }
    let started = Instant::now();
    let output = rustc
        .arg(snippet)
        .current_dir(workspace_root())
        .output()
        .expect("cannot run rustc");
    let _ = std::fs::remove_file(&out);
    assert!(
        !output.status.success(),
        "{snippet} compiled, but the book says it does not"
    );
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    let mut redactions = Vec::new();
    if !crates.is_empty() {
        // Cargo's copy of a crate's source: `~/.cargo/registry/src/index.crates.io-<hash>/`.
        let registry = Regex::new(r"\S*/registry/src/[^/\s]+/").unwrap();
        // Any other copy (vendored, a `[source]` replacement, a git checkout) would put this
        // machine's path in the snapshot: say so rather than show a confusing difference.
        let quoted = Regex::new(r"(?m)^\s*(?:-->|:::) (/\S+)").unwrap();
        for path in quoted.captures_iter(&registry.replace_all(&text, "[REGISTRY]/")) {
            assert!(
                path[1].starts_with("/rustc/"),
                "{snippet}: rustc quotes {}, a crate's source outside Cargo's registry \
                 (`~/.cargo/registry/src/`); these snapshots show a crate's source as \
                 `[REGISTRY]/<crate>-<version>/`, so run this test with the crates from \
                 crates.io's registry, not vendored or replaced sources",
                &path[1]
            );
        }
        redactions.push((registry, "[REGISTRY]/".to_string()));
    }
    Transcript {
        name: listing,
        command_line: format!("$ rustc --edition 2024{shown} {snippet}"),
        text,
        status: output.status,
        elapsed: started.elapsed(),
        redactions,
        measuring: false,
        compiler: true,
    }
}

/// A running listing.
pub struct Run {
    name: String,
    child: Child,
    /// Whether `child` has been waited for: until then its pid, which is also its process
    /// group's id, cannot be given to another process.
    reaped: bool,
    stdin: Option<ChildStdin>,
    screen: Arc<Screen>,
    reader: Option<JoinHandle<()>>,
    started: Instant,
    budget: Duration,
    /// This run's turn (see `measuring`); it ends when the run is dropped.
    _turn: Turn,
    measuring: bool,
    command_line: String,
    redactions: Vec<(Regex, String)>,
    /// Screen length after the last typed line: a prompt must appear after it.
    typed_up_to: usize,
    /// How many panic messages the output must hold (`Listing::panics`); 0 unless told.
    panics: usize,
}

impl Run {
    /// The listing's process id: to look at it in `/proc`, say.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the listing's process (not the others of its group) a signal by name, as
    /// `kill -NAME PID` would from another terminal.
    pub fn signal(&self, name: &str) -> &Self {
        let signal = signal_number(name).unwrap_or_else(|| self.fail(&format!("no signal {name}")));
        self.send(self.child.id() as libc::pid_t, signal, name);
        self
    }

    /// Ctrl-C at the terminal: SIGINT to every process of the listing's group, its children
    /// too, which is what a terminal does.
    pub fn ctrl_c(&self) -> &Self {
        self.send(
            -(self.child.id() as libc::pid_t),
            libc::SIGINT,
            "INT to the group",
        );
        self
    }

    fn send(&self, to: libc::pid_t, signal: libc::c_int, what: &str) {
        if self.reaped {
            self.fail(&format!(
                "cannot send {what}: the listing has been waited for"
            ));
        }
        // SAFETY: kill only reads its arguments. The pid is ours and not yet reaped, so it
        // still names this listing (or its zombie) and its group.
        if unsafe { libc::kill(to, signal) } != 0 {
            let error = std::io::Error::last_os_error();
            self.fail(&format!("cannot send {what}: {error}"));
        }
    }

    /// Waits for the listing to print `prompt` (and nothing after it), then types `answer`
    /// and Enter. The answer appears in the transcript just as a terminal would echo it.
    pub fn answer(&mut self, prompt: &str, answer: &str) -> &mut Self {
        self.answer_bytes(prompt, answer.as_bytes())
    }

    /// `answer` for a line that is not UTF-8 (typed on a GBK console, say): types `bytes` and
    /// Enter; the transcript shows them as a terminal that expects UTF-8 would, with U+FFFD.
    pub fn answer_bytes(&mut self, prompt: &str, bytes: &[u8]) -> &mut Self {
        let from = self.typed_up_to;
        let what = format!("the prompt {prompt:?}");
        let mut output = self.wait_until(&what, |text| text[from..].ends_with(prompt));
        output.text.push_str(&String::from_utf8_lossy(bytes));
        output.text.push('\n');
        let typed_up_to = output.text.len();
        drop(output);
        self.typed_up_to = typed_up_to;
        let stdin = self
            .stdin
            .as_mut()
            .expect("stdin is open until close_stdin");
        let mut line = bytes.to_vec();
        line.push(b'\n');
        stdin
            .write_all(&line)
            .unwrap_or_else(|e| panic!("{}: cannot type {bytes:?}: {e}", self.name));
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

    /// Closes stdin, waits for the listing to exit, and returns what it printed. Fails if the
    /// listing panicked or left a process of its group running.
    pub fn finish(mut self) -> Transcript {
        self.close_stdin();
        // The output pipe closes when the listing exits, and only then if no process it
        // started is still alive: a listing that leaves a child running fails here, or just
        // below if that child closed its output.
        drop(self.wait_until_closed());
        self.assert_nothing_left_running();
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
            compiler: false,
        };
        assert_eq!(
            transcript.text.matches("panicked at").count(),
            self.panics,
            "{} panicked (or not) other than planned; a listing reports errors in one line \
             instead:\n{}",
            self.name,
            transcript.text
        );
        transcript
    }

    /// Every process the listing started must have ended with it: any still in its process
    /// group (a child that closed its output and lives on) is killed, and the test fails. A
    /// process on its way out gets a moment to finish.
    fn assert_nothing_left_running(&self) {
        let group = self.child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut left = running_in_group(group);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            left = running_in_group(group);
        }
        if !left.is_empty() {
            // SAFETY: kill only reads its arguments; the group's leader is not reaped yet.
            unsafe { libc::kill(-(group as libc::pid_t), libc::SIGKILL) };
            self.fail(&format!("left processes running: {left:?}"));
        }
    }

    /// The output has closed, so the process is exiting: this poll ends almost at once.
    fn wait_for_exit(&mut self) -> ExitStatus {
        loop {
            match self.child.try_wait().expect("cannot wait for the listing") {
                Some(status) => {
                    self.reaped = true;
                    return status;
                }
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
    /// A test that fails half-way still leaves nothing running: the whole process group is
    /// killed, the listing's children with it, before the listing is reaped.
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: kill only reads its arguments; the leader is not reaped, so its pid
            // still names this group.
            unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

/// The signals tests send, by the names `kill -l` gives them.
fn signal_number(name: &str) -> Option<libc::c_int> {
    Some(match name {
        "INT" => libc::SIGINT,
        "TERM" => libc::SIGTERM,
        "QUIT" => libc::SIGQUIT,
        "HUP" => libc::SIGHUP,
        "KILL" => libc::SIGKILL,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "ABRT" => libc::SIGABRT,
        "SEGV" => libc::SIGSEGV,
        _ => return None,
    })
}

/// A signal's name as `kill -l` gives it, with the SIG prefix: `SIGINT`.
fn signal_name(signal: libc::c_int) -> String {
    [
        "INT", "TERM", "QUIT", "HUP", "KILL", "STOP", "CONT", "USR1", "USR2", "ABRT", "SEGV",
    ]
    .into_iter()
    .find(|&name| signal_number(name) == Some(signal))
    .map_or_else(|| format!("signal {signal}"), |name| format!("SIG{name}"))
}

/// The processes of process group `group`, other than its leader, that have not exited
/// (zombies waiting for their parent are not running). Linux's `/proc` tells; elsewhere
/// nothing is found, and only the kill when a run is dropped applies.
fn running_in_group(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // After the command name (in parentheses, and free to hold anything): the
            // state, the parent and the process group.
            let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
            let (state, pgrp) = (fields.first()?, fields.get(2)?.parse::<u32>().ok()?);
            (pgrp == group && pid != group && *state != "Z" && *state != "X").then_some(pid)
        })
        .collect()
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
    /// The messages of `rustc`, not the output of a listing.
    compiler: bool,
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

    /// What `assert_snapshot!` compares: insta's settings, the snapshot's name and the text,
    /// which holds the command line, the output with typed answers, and the exit status when
    /// it is not 0, redacted. `test` is the test's function, as `type_name` spells a function
    /// inside it.
    ///
    /// Compiler errors are worded by the compiler that prints them: on the compiler the
    /// snapshots belong to, they are compared whole; on another, this checks that the same
    /// errors (by code) were reported, says so, and returns `None`.
    pub fn snapshot(
        &self,
        scenario: &str,
        test: &str,
    ) -> Option<(insta::Settings, String, String)> {
        let name = format!("{}__{scenario}", self.name);
        let mut shown = format!("{}\n{}", self.command_line, self.text);
        if !shown.ends_with('\n') {
            shown.push('\n');
        }
        if !self.status.success() {
            use std::os::unix::process::ExitStatusExt;
            match (self.status.code(), self.status.signal()) {
                (Some(code), _) => shown.push_str(&format!("[exit status: {code}]\n")),
                (None, Some(signal)) => {
                    shown.push_str(&format!("[killed by {}]\n", signal_name(signal)))
                }
                (None, None) => shown.push_str("[exit status: unknown]\n"),
            }
        }
        let shown = redact(&apply(&self.redactions, &shown));
        let snapshots = workspace_root().join("tests/snapshots");
        if self.compiler && !on_snapshot_compiler() {
            let recorded =
                std::fs::read_to_string(snapshots.join(format!("{name}.snap"))).unwrap_or_default();
            assert_eq!(
                error_codes(&shown),
                error_codes(&recorded),
                "{name}: this compiler reports other errors than rustc {SNAPSHOT_COMPILER} did:\n{shown}"
            );
            eprintln!(
                "{name}: the snapshot holds rustc {SNAPSHOT_COMPILER}'s wording; \
                 this compiler's errors are checked by their codes only"
            );
            return None;
        }
        let test = test.strip_suffix("::here").unwrap_or(test);
        let test = test.replace("::{{closure}}", "");
        let test = test
            .split_once("::")
            .map_or(test.as_str(), |(_, path)| path);
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(snapshots);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_description(test);
        Some((settings, name, shown))
    }
}

/// The error codes (`E0373`) in compiler messages, in order.
fn error_codes(messages: &str) -> Vec<String> {
    let code = Regex::new(r"(?m)^error\[(E\d{4})\]").unwrap();
    code.captures_iter(messages)
        .map(|c| c[1].to_string())
        .collect()
}

/// Whether `rustc` here is the one the compiler-error snapshots hold (`SNAPSHOT_COMPILER`,
/// any patch release of it). Asked of `rustc --version` once per test run.
pub fn on_snapshot_compiler() -> bool {
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWER.get_or_init(|| {
        let output = Command::new("rustc").arg("--version").output();
        let said = output.map_or(String::new(), |o| {
            String::from_utf8_lossy(&o.stdout).into_owned()
        });
        said.strip_prefix("rustc ")
            .and_then(|rest| rest.strip_prefix(SNAPSHOT_COMPILER))
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with(' '))
    })
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

pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

//! The book as one PDF: mdBook's print page (`print.html`, every chapter on one page), printed
//! by headless Chromium, with an outline made from the chapters' headings.

use std::env;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::child::{self, Interrupt};

/// The names Chromium and Chrome install their command under, tried in this order on `PATH`.
const BROWSERS: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// What to tell a reader who has none of them.
pub const NO_BROWSER: &str = "cargo book pdf needs Chromium: apt-get install chromium \
     (or set BOOK_CHROMIUM to a Chromium or Chrome binary)";

/// Printing the whole book takes about 10 s here; a browser that hangs (a dialog it waits on,
/// a profile it cannot lock) must not hang the command or the test with it.
const TIMEOUT: Duration = Duration::from_secs(300);

/// The browser to print with: `BOOK_CHROMIUM` if set, else the first of [`BROWSERS`] on `PATH`.
pub fn find_browser() -> Option<PathBuf> {
    if let Some(path) = env::var_os("BOOK_CHROMIUM").filter(|path| !path.is_empty()) {
        return Some(PathBuf::from(path));
    }
    BROWSERS.iter().find_map(|name| child::on_path(name))
}

/// Prints `site`'s `print.html` (a book already rendered by [`crate::render`]) into `out`.
/// `out` is written only once the browser has produced a whole PDF; if `interrupt` is set
/// first, the browser is stopped and nothing is written.
pub fn print(site: &Path, out: &Path, browser: &Path, interrupt: &Interrupt) -> Result<()> {
    let page = site.join("print.html");
    if !page.is_file() {
        bail!("{} has no print.html to print", site.display());
    }
    let page = fs::canonicalize(&page)?;
    // The profile, the browser's log and the PDF in the making, removed whatever happens.
    let scratch = tempfile::Builder::new().prefix("book-pdf.").tempdir()?;
    let pdf = scratch.path().join("book.pdf");
    let log_path = scratch.path().join("chromium.log");
    let log = File::create(&log_path)?;

    let mut command = Command::new(browser);
    command
        .arg("--headless")
        .arg("--disable-gpu")
        .arg("--no-first-run")
        // Its crash handler would start in a session of its own, out of reach of the kill.
        .arg("--disable-crash-reporter")
        // Chromium's sandbox needs user namespaces, which containers, root and some
        // distributions' settings deny; it guards against hostile pages, and this browser
        // opens one file: the book's own print page.
        .arg("--no-sandbox")
        .arg(format!(
            "--user-data-dir={}",
            scratch.path().join("profile").display()
        ))
        .arg("--no-pdf-header-footer")
        // The PDF's outline (its bookmarks) from the headings: every chapter's title, and its
        // sections under it.
        .arg("--generate-pdf-document-outline")
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(file_url(&page))
        // Chromium leaves a folder for its singleton socket in the temporary directory, and
        // writes crash-report settings and a dconf cache under the user's configuration and
        // cache folders, whatever its profile: all of them go to the scratch folder, removed
        // with the rest. (HOME stays: fontconfig finds the user's own fonts through it.)
        .env("TMPDIR", scratch.path())
        .env("XDG_CONFIG_HOME", scratch.path())
        .env("XDG_CACHE_HOME", scratch.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let status = child::run(
        &mut command,
        &browser.display().to_string(),
        TIMEOUT,
        interrupt,
    )?;
    let printed = fs::read(&pdf).unwrap_or_default();
    if !status.success() || !printed.starts_with(b"%PDF-") {
        // One line: the log's last, where Chromium says why it stopped.
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        let last = log
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no log)");
        bail!(
            "{} printed no PDF ({status}): {}",
            browser.display(),
            last.trim()
        );
    }
    fs::write(out, printed).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

/// `path` as a `file://` URL, with the bytes a URL cannot hold as they are percent-encoded.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for &byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

/// Whether fontconfig knows a font with Chinese glyphs (`None`: no `fc-list` to ask). Without
/// one, Chromium prints the notes' Chinese as empty boxes.
pub fn chinese_font_installed() -> Option<bool> {
    let output = Command::new("fc-list")
        .args([":lang=zh", "family"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| !output.stdout.trim_ascii().is_empty())
}

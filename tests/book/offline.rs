//! The offline copies: `cargo book pdf` (the whole book, one outline entry per chapter) and
//! `cargo book archive` (every listing as a crate that builds outside the workspace).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use book_tool::child::Interrupt;
use regex::Regex;
use regex::bytes::Regex as BytesRegex;

use super::{listing_crates, rendered, root, say_skipped, scratch_dir};

/// The browser `cargo book pdf` would use. Without one the PDF test is skipped, and says so;
/// with `BOOK_REQUIRE_BROWSER=1` a missing browser fails it instead.
fn browser() -> Option<PathBuf> {
    let found = book_tool::pdf::find_browser();
    let required = std::env::var_os("BOOK_REQUIRE_BROWSER").is_some_and(|v| v == "1");
    assert!(
        found.is_some() || !required,
        "{}, and BOOK_REQUIRE_BROWSER=1 requires it",
        book_tool::pdf::NO_BROWSER
    );
    if found.is_none() {
        say_skipped(&format!(
            "the PDF's check: {}; BOOK_REQUIRE_BROWSER=1 makes a missing browser a failure",
            book_tool::pdf::NO_BROWSER
        ));
    }
    found
}

/// Every title in `SUMMARY.md`, in order: the chapters and their pages.
fn summary_titles() -> Vec<String> {
    let summary = fs::read_to_string(root().join("src/SUMMARY.md")).expect("SUMMARY.md");
    let link = Regex::new(r"\[([^\]]+)\]\([^)]+\)").unwrap();
    link.captures_iter(&summary)
        .map(|c| c[1].to_string())
        .collect()
}

/// Pages, counted as the page objects a PDF reader counts (`/Type /Page`, not `/Pages`);
/// checked by hand against poppler's `pdfinfo` on this book (371 pages, 371 objects).
fn page_count(pdf: &[u8]) -> usize {
    BytesRegex::new(r"/Type\s*/Page\b")
        .unwrap()
        .find_iter(pdf)
        .count()
}

/// The titles of the PDF's outline items: the objects with a `/Title` and a `/Parent`
/// (the document's own `/Title`, in its information dictionary, has no parent).
fn outline_titles(pdf: &[u8]) -> Vec<String> {
    let title = BytesRegex::new(r"/Title\s*").unwrap();
    let mut titles = Vec::new();
    for object in split_objects(pdf) {
        if !contains(object, b"/Parent") {
            continue;
        }
        if let Some(found) = title.find(object) {
            titles.push(pdf_string(&object[found.end()..]));
        }
    }
    titles
}

fn split_objects(pdf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = pdf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = find(rest, b"endobj").map_or(rest.len(), |at| at + b"endobj".len());
        let (object, after) = rest.split_at(end);
        rest = after;
        Some(object)
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// The PDF string at the start of `bytes`, decoded: a literal `(...)` with its escapes, or
/// hex `<...>`; text that starts with the byte-order mark FE FF is UTF-16BE (Chromium writes
/// non-ASCII titles that way), anything else is read as Latin-1.
fn pdf_string(bytes: &[u8]) -> String {
    let mut raw = Vec::new();
    match bytes.first() {
        Some(b'<') => {
            let hex: Vec<u8> = bytes[1..]
                .iter()
                .take_while(|&&b| b != b'>')
                .filter(|b| b.is_ascii_hexdigit())
                .copied()
                .collect();
            for pair in hex.chunks(2) {
                let text = std::str::from_utf8(pair).expect("hex digits");
                raw.push(u8::from_str_radix(&format!("{text:0<2}"), 16).expect("hex"));
            }
        }
        Some(b'(') => {
            let mut depth = 0;
            let mut bytes = bytes[1..].iter().copied().peekable();
            while let Some(b) = bytes.next() {
                match b {
                    b'\\' => match bytes.next() {
                        Some(b'n') => raw.push(b'\n'),
                        Some(b'r') => raw.push(b'\r'),
                        Some(b't') => raw.push(b'\t'),
                        Some(b'b') => raw.push(8),
                        Some(b'f') => raw.push(12),
                        Some(d @ b'0'..=b'7') => {
                            let mut value = u32::from(d - b'0');
                            for _ in 0..2 {
                                match bytes.peek() {
                                    Some(&d @ b'0'..=b'7') => {
                                        value = value * 8 + u32::from(d - b'0');
                                        bytes.next();
                                    }
                                    _ => break,
                                }
                            }
                            raw.push(value as u8);
                        }
                        Some(b'\r' | b'\n') => {}
                        Some(other) => raw.push(other),
                        None => break,
                    },
                    b'(' => {
                        depth += 1;
                        raw.push(b);
                    }
                    b')' if depth == 0 => break,
                    b')' => {
                        depth -= 1;
                        raw.push(b);
                    }
                    _ => raw.push(b),
                }
            }
        }
        _ => {}
    }
    match raw.strip_prefix(&[0xFE, 0xFF]) {
        Some(utf16) => {
            let units: Vec<u16> = utf16
                .chunks(2)
                .map(|pair| u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        None => raw.iter().map(|&b| char::from(b)).collect(),
    }
}

/// A title as compared with `SUMMARY.md`: mdBook's smart punctuation prints the headings'
/// `'` as `’`, and Chromium drops the space where a heading wraps onto a second line
/// ("Ten to a HundredThousand Waits").
fn comparable(title: &str) -> String {
    title
        .replace('\u{2019}', "'")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Every line of every code block of the print page, as the reader sees it: without the
/// lines mdBook hides (`boring`), tags removed, entities decoded.
fn code_lines(print_page: &str) -> Vec<String> {
    let block = Regex::new(r"(?s)<pre[^>]*>(.*?)</pre>").unwrap();
    let hidden = Regex::new(r#"(?s)<span class="boring">.*?</span>"#).unwrap();
    let tag = Regex::new(r"<[^>]*>").unwrap();
    let mut lines = Vec::new();
    for c in block.captures_iter(print_page) {
        let shown = hidden.replace_all(&c[1], "");
        let text = tag
            .replace_all(&shown, "")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&");
        lines.extend(text.lines().map(str::to_string));
    }
    lines
}

/// Text as compared between a code block and the PDF's text: where a long line wraps, the
/// PDF's text has a line break (and `pdftotext` may drop a hyphen it takes for a word's break);
/// the Chinese in code blocks is printed as glyphs without text to extract.
fn printable_ascii(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() && *c != '-')
        .collect()
}

/// The lines of `lines` that are not in `pdf_text`, in order. Code lines come in the PDF in
/// the print page's order, so each is looked for after the previous one.
fn lines_not_in(lines: &[String], pdf_text: &str) -> Vec<String> {
    let text = printable_ascii(pdf_text);
    let mut from = 0;
    let mut missing = Vec::new();
    for line in lines {
        let wanted = printable_ascii(line);
        if wanted.is_empty() {
            continue;
        }
        match text[from..].find(&wanted) {
            Some(at) => from += at + wanted.len(),
            None => missing.push(line.clone()),
        }
    }
    missing
}

/// The PDF's text, laid out as printed (`pdftotext -layout`, of poppler-utils), or `None`
/// without `pdftotext`.
fn pdf_text(pdf: &Path) -> Option<String> {
    let output = match Command::new("pdftotext")
        .arg("-layout")
        .arg(pdf)
        .arg("-")
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run pdftotext: {e}"),
    };
    assert!(
        output.status.success(),
        "pdftotext fails on {}",
        pdf.display()
    );
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn the_pdf_has_every_chapter_in_its_outline_and_every_code_line_whole() {
    let Some(browser) = browser() else { return };
    let dir = scratch_dir("pdf");
    let out = dir.join("book.pdf");
    let started = Instant::now();
    if let Err(e) = book_tool::pdf::print(rendered(), &out, &browser, &Interrupt::none()) {
        panic!("cargo book pdf fails: {e:#}");
    }
    let pdf = fs::read(&out).expect("the PDF");
    println!(
        "printed {} bytes, {} pages, in {:.1?}",
        pdf.len(),
        page_count(&pdf),
        started.elapsed()
    );
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let titles = summary_titles();
    // mdBook's print page starts every chapter on a page of its own.
    assert!(
        page_count(&pdf) >= titles.len(),
        "{} pages for {} chapters",
        page_count(&pdf),
        titles.len()
    );
    let outline: Vec<String> = outline_titles(&pdf).iter().map(|t| comparable(t)).collect();
    let missing: Vec<&String> = titles
        .iter()
        .filter(|title| !outline.contains(&comparable(title)))
        .collect();
    assert!(
        missing.is_empty(),
        "chapters missing from the PDF's outline: {missing:?}"
    );

    // On screen a long code line scrolls inside its block; paper cannot scroll, so the PDF
    // must wrap it (theme/print.css), not cut it at the page's edge.
    match pdf_text(&out) {
        Some(text) => {
            let page = fs::read_to_string(rendered().join("print.html")).expect("print.html");
            let cut = lines_not_in(&code_lines(&page), &text);
            assert!(
                cut.is_empty(),
                "{} code lines cut or missing in the PDF, the first: {:?}",
                cut.len(),
                &cut[..cut.len().min(5)]
            );
        }
        None => {
            let required = std::env::var_os("BOOK_REQUIRE_BROWSER").is_some_and(|v| v == "1");
            assert!(
                !required,
                "pdftotext (apt-get install poppler-utils) is missing, and BOOK_REQUIRE_BROWSER=1 \
                 requires it"
            );
            say_skipped(
                "the check that no code line is cut: it needs pdftotext \
                 (apt-get install poppler-utils)",
            );
        }
    }
}

/// Runs `command` to its end, or kills it after `limit`.
fn run_within(command: &mut Command, limit: Duration) -> std::process::Output {
    let what = format!("{command:?}");
    book_tool::child::output(command, &what, limit, &Interrupt::none())
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// udp-chat stands for them all: it uses another listing (decode-order) by path, and
/// dependencies inherited with the workspace's features (clap's derive, socket2's all). Built
/// alone it compiles 20 crates, about 10 s here.
const BUILT_ALONE: &str = "listings/02-udp/udp-chat";

#[test]
fn the_archive_holds_every_listing_as_a_standalone_crate_and_one_builds_offline_alone() {
    let dir = scratch_dir("archive");
    let archive = dir.join("listings.tar.gz");
    if let Err(e) = book_tool::archive::write(root(), &archive, &Interrupt::none()) {
        panic!("cargo book archive fails: {e:#}");
    }
    let unpacked = dir.join("unpacked");
    fs::create_dir(&unpacked).expect("a folder to unpack into");
    let tar = run_within(
        Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked),
        Duration::from_secs(60),
    );
    assert!(
        tar.status.success(),
        "{}",
        String::from_utf8_lossy(&tar.stderr)
    );

    for listing in listing_crates() {
        let relative = listing.strip_prefix(root()).expect("under the root");
        let manifest = fs::read_to_string(unpacked.join(relative).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{} is not in the archive: {e}", relative.display()));
        assert!(
            !manifest.contains("workspace = true"),
            "{} still inherits from the workspace:\n{manifest}",
            relative.display()
        );
        assert!(
            manifest.lines().any(|line| line == "[workspace]"),
            "{} has no [workspace] of its own",
            relative.display()
        );
        assert!(
            unpacked.join(relative).join("Cargo.lock").is_file(),
            "{} has no Cargo.lock",
            relative.display()
        );
    }
    let unwanted: Vec<PathBuf> = super::entries_under(&unpacked)
        .into_iter()
        .filter(|path| {
            let inside = path.strip_prefix(&unpacked).expect("under the folder");
            inside.components().any(|part| part.as_os_str() == "target")
        })
        .collect();
    assert!(
        unwanted.is_empty(),
        "build output in the archive: {unwanted:?}"
    );

    // Offline and locked: the versions are the archive's, the crates those the workspace's
    // own build downloaded. The scratch folder is inside this workspace's target/: the
    // listing's own [workspace] is what lets it build there. Its dependencies are built into
    // a target folder kept from run to run, so a warm `cargo test` compiles only the two
    // listings (a few megabytes left per run: their paths, and so their hashes, differ).
    let started = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let build = run_within(
        Command::new(cargo)
            .args(["build", "--offline", "--locked", "--quiet"])
            .current_dir(unpacked.join(BUILT_ALONE))
            .env(
                "CARGO_TARGET_DIR",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("standalone-listing"),
            ),
        Duration::from_secs(600),
    );
    assert!(
        build.status.success(),
        "{BUILT_ALONE} does not build alone:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let warnings = String::from_utf8_lossy(&build.stderr);
    assert!(
        !warnings.contains("warning"),
        "{BUILT_ALONE} builds alone with warnings:\n{warnings}"
    );
    println!("{BUILT_ALONE} built alone in {:.1?}", started.elapsed());
}

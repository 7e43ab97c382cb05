//! The book's own checks: it renders without a warning, no directive survives into the HTML,
//! every internal link and anchor resolves, every listing is shown with tested output, and
//! every page and listing names the notes it covers.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use book_tool::normalize;
use regex::Regex;

#[path = "book/browser.rs"]
mod browser;
#[path = "book/offline.rs"]
mod offline;
#[path = "book/search.rs"]
mod search;
#[path = "book/serve.rs"]
mod serve;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The book rendered once per test run, into a folder of this process's own, so that two
/// runs at once never share one.
fn rendered() -> &'static Path {
    static SITE: OnceLock<PathBuf> = OnceLock::new();
    SITE.get_or_init(|| {
        let dest = scratch_dir("site");
        if let Err(e) = book_tool::render(root(), &dest) {
            panic!("the book does not render cleanly: {e:#}");
        }
        dest.keep()
    })
}

/// A line for the reader, straight to stderr: libtest hides what a passing test prints
/// through `println!` and `eprintln!`.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Tells the reader a check did not run, and how to run it.
fn say_skipped(line: &str) {
    say(&format!("skipped {line}"));
}

/// A folder [`scratch_dir`] made, removed when the test is done with it, unless the test
/// failed or [`Scratch::keep`] keeps it for the rest of the run.
struct Scratch(PathBuf);

impl Scratch {
    /// For what the whole run shares (a rendered site): the next run removes it.
    fn keep(self) -> PathBuf {
        let mut kept = std::mem::ManuallyDrop::new(self);
        std::mem::take(&mut kept.0)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // A failing test's folder stays, to be looked at (its PDF, its logs), until the next
        // run removes it.
        if std::thread::panicking() {
            say(&format!(
                "kept {} for a look: the test failed",
                self.0.display()
            ));
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh folder under Cargo's temporary directory for this test target. Folders left by
/// runs that have ended (killed ones, and what a run kept) are removed first.
fn scratch_dir(purpose: &str) -> Scratch {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("book-checks");
    for entry in fs::read_dir(&base).into_iter().flatten().flatten() {
        let pid = entry
            .file_name()
            .to_string_lossy()
            .split('-')
            .next()
            .map(str::to_string);
        let alive = pid.is_some_and(|pid| Path::new("/proc").join(pid).exists());
        if !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    let dir = base.join(format!("{}-{purpose}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create a scratch folder");
    Scratch(dir)
}

fn files_under(dir: &Path, extension: &str) -> Vec<PathBuf> {
    entries_under(dir)
        .into_iter()
        .filter(|path| !path.is_dir() && path.extension().is_some_and(|e| e == extension))
        .collect()
}

/// Every file and folder below `dir`, sorted.
fn entries_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("a readable folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.push(path);
        }
    }
    found.sort();
    found
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Every `href` and `src` in the site that points inside it must name an existing file, and
/// a `#fragment` must name an `id` in that file.
fn broken_links(site: &Path) -> Vec<String> {
    let attribute = Regex::new(r#"(?:href|src)="([^"]*)""#).unwrap();
    let mut broken = Vec::new();
    for page in files_under(site, "html") {
        let html = fs::read_to_string(&page).expect("a readable page");
        for link in attribute.captures_iter(&html).map(|c| c[1].to_string()) {
            if link.contains(':') || link.starts_with("//") {
                continue; // http:, https:, mailto:, data:, javascript: leave the site
            }
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let path = path.split('?').next().unwrap_or_default();
            let target = if path.is_empty() {
                page.clone()
            } else if let Some(from_root) = path.strip_prefix('/') {
                // The 404 page links from the site's root, wherever it is served from.
                normalize(&site.join(from_root).join(if path.ends_with('/') {
                    "index.html"
                } else {
                    ""
                }))
            } else {
                let joined = normalize(&page.parent().expect("a page has a folder").join(path));
                if path.ends_with('/') {
                    joined.join("index.html")
                } else {
                    joined
                }
            };
            let page_name = page
                .strip_prefix(site)
                .unwrap_or(&page)
                .display()
                .to_string();
            if !target.is_file() {
                broken.push(format!("{page_name}: {link} (no such file)"));
            } else if !fragment.is_empty() && target.extension().is_some_and(|e| e == "html") {
                let text = fs::read_to_string(&target).unwrap_or_default();
                if !text.contains(&format!("id=\"{fragment}\"")) {
                    broken.push(format!("{page_name}: {link} (no such anchor)"));
                }
            }
        }
    }
    broken
}

#[test]
fn the_book_renders_without_a_warning() {
    assert!(rendered().join("index.html").is_file());
}

#[test]
fn no_directive_survives_into_the_html() {
    let leftovers: Vec<String> = files_under(rendered(), "html")
        .into_iter()
        .filter(|page| fs::read_to_string(page).unwrap_or_default().contains("{{#"))
        .map(|page| page.display().to_string())
        .collect();
    assert!(
        leftovers.is_empty(),
        "unexpanded {{{{#...}}}} in: {leftovers:#?}"
    );
}

#[test]
fn every_internal_link_and_anchor_resolves() {
    let broken = broken_links(rendered());
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// An `{{#include}}` or `{{#rustdoc_include}}` in a chapter: the file it names (resolved
/// from the chapter's folder) and what follows the path (an anchor or a line range).
struct Include {
    chapter: PathBuf,
    target: PathBuf,
    selector: String,
}

fn includes() -> Vec<Include> {
    includes_in(&root().join("src"))
}

fn includes_in(chapters: &Path) -> Vec<Include> {
    let directive = Regex::new(r"\{\{#(?:rustdoc_)?include\s+([^}\s]+)\s*\}\}").unwrap();
    let mut found = Vec::new();
    for chapter in files_under(chapters, "md") {
        let text = fs::read_to_string(&chapter).expect("a readable chapter");
        for c in directive.captures_iter(&text) {
            let (path, selector) = c[1].split_once(':').unwrap_or((&c[1], ""));
            found.push(Include {
                target: normalize(&chapter.parent().expect("a folder").join(path)),
                chapter: chapter.clone(),
                selector: selector.to_string(),
            });
        }
    }
    found
}

/// mdBook includes nothing, silently, for an anchor the file lacks; with `rustdoc_include`
/// the doc-test still passes, on a block the reader sees empty. Every anchor must exist.
fn missing_anchors(includes: &[Include]) -> Vec<String> {
    let line_range = Regex::new(r"^(\d*:?\d*)$").unwrap();
    let mut missing = Vec::new();
    for include in includes
        .iter()
        .filter(|i| !line_range.is_match(&i.selector))
    {
        let text = fs::read_to_string(&include.target).unwrap_or_default();
        let anchor = &include.selector;
        let opened = text
            .lines()
            .any(|l| l.trim_end().ends_with(&format!("ANCHOR: {anchor}")));
        let closed = text
            .lines()
            .any(|l| l.trim_end().ends_with(&format!("ANCHOR_END: {anchor}")));
        if !(opened && closed) {
            missing.push(format!(
                "{} includes {}:{anchor}, which has no ANCHOR: {anchor} ... ANCHOR_END: {anchor}",
                relative(&include.chapter),
                relative(&include.target),
            ));
        }
    }
    missing
}

#[test]
fn every_included_anchor_exists() {
    let missing = missing_anchors(&includes());
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

fn listing_crates() -> Vec<PathBuf> {
    let mut crates: Vec<PathBuf> = files_under(&root().join("listings"), "toml")
        .into_iter()
        .filter(|manifest| manifest.ends_with("Cargo.toml"))
        .map(|manifest| manifest.parent().expect("a folder").to_path_buf())
        .collect();
    crates.sort();
    crates
}

fn snapshots() -> Vec<PathBuf> {
    files_under(&root().join("tests/snapshots"), "snap")
}

#[test]
fn every_listing_is_shown_in_a_chapter_and_has_a_snapshot() {
    let includes = includes();
    let snapshots = snapshots();
    let mut problems = Vec::new();
    for listing in listing_crates() {
        let name = listing
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .to_string();
        if !includes.iter().any(|i| i.target.starts_with(&listing)) {
            problems.push(format!(
                "{} is not included by any chapter",
                relative(&listing)
            ));
        }
        let prefix = format!("{name}__");
        let snapshotted = snapshots.iter().any(|snap| {
            snap.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with(&prefix))
        });
        if !snapshotted {
            problems.push(format!(
                "{name} has no snapshot tests/snapshots/{prefix}*.snap"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The line where a snapshot's content starts, after insta's `---` header.
fn first_content_line(snapshot: &Path) -> usize {
    let text = fs::read_to_string(snapshot).expect("a readable snapshot");
    let closing = text
        .lines()
        .enumerate()
        .filter(|(_, line)| *line == "---")
        .nth(1)
        .map(|(index, _)| index)
        .unwrap_or_else(|| panic!("{} has no insta header", snapshot.display()));
    closing + 2
}

#[test]
fn every_snapshot_is_shown_and_every_shown_output_is_a_snapshot() {
    let includes = includes();
    let listings: BTreeSet<String> = listing_crates()
        .iter()
        .map(|l| l.file_name().expect("a name").to_string_lossy().to_string())
        .collect();
    let mut problems = Vec::new();
    for include in includes
        .iter()
        .filter(|i| i.target.extension().is_some_and(|e| e == "snap"))
    {
        let chapter = relative(&include.chapter);
        let target = relative(&include.target);
        if !include.target.is_file() {
            problems.push(format!("{chapter} shows {target}, which does not exist"));
            continue;
        }
        let start = first_content_line(&include.target);
        if include.selector != format!("{start}:") {
            problems.push(format!(
                "{chapter} shows {target} with :{}; the output starts at line {start}, so write :{start}:",
                include.selector
            ));
        }
    }
    // Recorded measurements (tests/measurements/) follow the same rules as snapshots.
    let measurements = files_under(&root().join("tests/measurements"), "txt");
    for snapshot in snapshots().into_iter().chain(measurements) {
        let file = snapshot
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .to_string();
        let listing = file.split("__").next().unwrap_or_default();
        if !listings.contains(listing) {
            problems.push(format!("{file} is not named <listing>__<scenario>"));
        }
        if !includes.iter().any(|i| i.target == snapshot) {
            problems.push(format!("{file} is not shown by any chapter"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The notes' README, beside the repository (`../shared/notes/README.md`), whose table gives
/// every note ID.
fn notes_readme() -> PathBuf {
    root().join("../shared/notes/README.md")
}

/// The book's appendix, `src/notes.md`: its own list of the notes' IDs, in every checkout.
fn appendix() -> String {
    fs::read_to_string(root().join("src/notes.md")).expect("the appendix")
}

/// The note IDs of the notes' README, in its order, with its ranges (`S4.1-S4.3`) expanded.
fn note_ids_of(readme: &str) -> Vec<String> {
    let row = Regex::new(r"(?m)^\|\s*S(\d+)\.(\d+)(?:\s*[-–]\s*S?(\d+)\.(\d+))?\s*\|").unwrap();
    let mut ids = Vec::new();
    for c in row.captures_iter(readme) {
        let section = &c[1];
        let first: u32 = c[2].parse().expect("a number");
        let last: u32 = c
            .get(4)
            .map_or(first, |m| m.as_str().parse().expect("a number"));
        ids.extend((first..=last).map(|n| format!("S{section}.{n}")));
    }
    ids
}

/// The note IDs a text names, ranges (`S3.1–S3.4`, `S9.3-S9.4`, `S1.1 to S11.1`) expanded
/// in the notes' order; and what it names that the notes do not have.
fn note_ids_in(text: &str, known: &[String]) -> (BTreeSet<String>, Vec<String>) {
    let mention = Regex::new(r"\bS(\d+\.\d+)(?:\s*(?:–|—|-|\bto\b)\s*S?(\d+\.\d+)\b)?").unwrap();
    let at = |id: &str| known.iter().position(|k| k == id);
    let mut named = BTreeSet::new();
    let mut unknown = Vec::new();
    for c in mention.captures_iter(text) {
        let first = format!("S{}", &c[1]);
        match c.get(2).map(|m| format!("S{}", m.as_str())) {
            None if at(&first).is_some() => {
                named.insert(first);
            }
            None => unknown.push(first),
            Some(last) => match (at(&first), at(&last)) {
                (Some(a), Some(b)) if a <= b => named.extend(known[a..=b].iter().cloned()),
                _ => unknown.push(format!("{first}–{last}")),
            },
        }
    }
    (named, unknown)
}

/// A page or a listing's first line, for the note-ID check.
struct NoteSource {
    name: String,
    text: String,
    /// A page of a chapter, or a listing: it must name a note, and what it names counts as
    /// covered. (The introduction only lists the IDs.)
    covers: bool,
}

/// How a page that teaches what the notes do not says so, on a line of its own near its top
/// (`> **Beyond the notes.** ...`), and how such a listing's first line begins
/// (`//! Beyond the notes: ...`). Such a source need not name a note; any ID it does name
/// must still exist.
const BEYOND_THE_NOTES: &str = "Beyond the notes";

impl NoteSource {
    fn is_beyond_the_notes(&self) -> bool {
        self.text.lines().any(|line| {
            let line = line.trim_start_matches(['>', ' ', '*']);
            line.starts_with(BEYOND_THE_NOTES)
        })
    }
}

/// Every ID a page or a listing names must be one of the notes' (`readme`), every page of a
/// chapter and every listing must name one, and every note must be covered by some page.
fn note_id_problems(readme: &str, pages: &[NoteSource], listings: &[NoteSource]) -> Vec<String> {
    let known = note_ids_of(readme);
    let mut problems = Vec::new();
    let mut covered = BTreeSet::new();
    for source in pages.iter().chain(listings) {
        let (named, unknown) = note_ids_in(&source.text, &known);
        for id in unknown {
            problems.push(format!(
                "{} names {id}, which the notes' README does not have",
                source.name
            ));
        }
        if source.covers && named.is_empty() && !source.is_beyond_the_notes() {
            problems.push(format!(
                "{} names no note ID (S2.2, ...) and does not say \"{BEYOND_THE_NOTES}\"",
                source.name
            ));
        }
    }
    for page in pages.iter().filter(|p| p.covers) {
        covered.extend(note_ids_in(&page.text, &known).0);
    }
    for id in known.iter().filter(|id| !covered.contains(*id)) {
        problems.push(format!("{id}, a section of the notes, is named by no page"));
    }
    problems
}

#[test]
fn every_page_and_listing_names_notes_that_exist_and_every_note_has_a_page() {
    let appendix = appendix();
    let pages: Vec<NoteSource> = files_under(&root().join("src"), "md")
        .into_iter()
        .filter(|page| !page.ends_with("SUMMARY.md"))
        .map(|page| NoteSource {
            name: relative(&page),
            text: fs::read_to_string(&page).unwrap_or_default(),
            // The introduction and the appendix list the IDs; they teach none.
            covers: !page.ends_with("introduction.md") && !page.ends_with("notes.md"),
        })
        .collect();
    let listings: Vec<NoteSource> = listing_crates()
        .into_iter()
        .map(|listing| {
            let main = listing.join("src/main.rs");
            let text = fs::read_to_string(&main).unwrap_or_default();
            let first_line = text.lines().next().unwrap_or_default();
            NoteSource {
                name: format!(
                    "{} (its first line: //! S<n>.<m>: ... or //! Beyond the notes: ...)",
                    relative(&main)
                ),
                // Only a doc comment counts: the IDs go in the crate's first line.
                text: first_line
                    .strip_prefix("//!")
                    .unwrap_or_default()
                    .to_string(),
                covers: true,
            }
        })
        .collect();
    let problems = note_id_problems(&appendix, &pages, &listings);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The appendix lists exactly the notes' sections, in their order. The notes live beside the
/// repository (`../shared/notes/`), not in it: a checkout without them skips this one check,
/// and says so; the check above holds every page to the appendix either way.
#[test]
fn the_appendix_lists_exactly_the_notes_ids() {
    let Ok(readme) = fs::read_to_string(notes_readme()) else {
        eprintln!(
            "skipped: the notes' README is not at {}, beside the repository",
            notes_readme().display()
        );
        return;
    };
    let appendix = appendix();
    assert_eq!(note_ids_of(&appendix), note_ids_of(&readme));
}

/// Every page the appendix links in a row's last column names that row's ID. `page` gives a
/// linked page's text by its path relative to `src/` (None: no such page, which the link
/// check reports).
fn appendix_link_problems(appendix: &str, page: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let known = note_ids_of(appendix);
    let row = Regex::new(r"(?m)^\|\s*(S\d+\.\d+)\s*\|.*\|([^|\n]*)\|\s*$").unwrap();
    let link = Regex::new(r"\]\(([^)#\s]+)(?:#[^)]*)?\)").unwrap();
    let mut problems = Vec::new();
    for r in row.captures_iter(appendix) {
        let id = &r[1];
        for l in link.captures_iter(&r[2]) {
            let target = &l[1];
            let Some(text) = page(target) else { continue };
            if !note_ids_in(&text, &known).0.contains(id) {
                problems.push(format!(
                    "src/notes.md: the row of {id} links {target}, which does not name {id}"
                ));
            }
        }
    }
    problems
}

#[test]
fn every_page_the_appendix_links_names_its_rows_id() {
    let appendix = appendix();
    let problems = appendix_link_problems(&appendix, |target| {
        fs::read_to_string(root().join("src").join(target)).ok()
    });
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_appendix_link_check_flags_a_page_that_does_not_name_its_row() {
    let appendix = "| ID | The note | What | Where |\n|---|---|---|---|\n\
                    | S9.1 | iterators | lazy | [Memory](iterators/memory.md), [Next](iterators/next.md#end) |\n\
                    | S9.2 | iterators | a list | [Memory](iterators/memory.md) |\n\
                    | S9.3 | generators | yield | [Gone](iterators/gone.md) |\n";
    let page = |target: &str| match target {
        "iterators/memory.md" => Some("The notes (S9.1) say ...".to_string()),
        "iterators/next.md" => Some("S9.1-S9.2: next".to_string()),
        _ => None,
    };
    assert_eq!(
        appendix_link_problems(appendix, page),
        ["src/notes.md: the row of S9.2 links iterators/memory.md, which does not name S9.2"]
    );
}

#[test]
fn the_note_id_check_flags_an_id_the_notes_lack_and_a_note_without_a_page() {
    let readme = "| ID | Notes section | What |\n|---|---|---|\n\
                  | S1.1 | request | HTTP |\n\
                  | S2.1-S2.3 | UDP | datagrams |\n\
                  | S3.1 | threads | definitions |\n";
    assert_eq!(
        note_ids_of(readme),
        ["S1.1", "S2.1", "S2.2", "S2.3", "S3.1"]
    );
    let source = |name: &str, text: &str, covers| NoteSource {
        name: name.to_string(),
        text: text.to_string(),
        covers,
    };
    let pages = [
        source("intro.md", "From S1.1 to S3.1, and S9.9.", false),
        source("http.md", "The note (S1.1) ...", true),
        source("udp.md", "The notes (S2.1–S2.2) ...", true),
        source("silent.md", "No ID here.", true),
        source(
            "beyond.md",
            "# Readiness\n\n> **Beyond the notes.** The notes stop...",
            true,
        ),
        source(
            "beyond-ghost.md",
            "> **Beyond the notes.** Unlike S2.7 ...",
            true,
        ),
        source(
            "mentions.md",
            "Unlike the notes, beyond the notes ...",
            true,
        ),
    ];
    let listings = [
        source("udp-demo", " S2.1: the demo", true),
        source("udp-ghost", " S2.4: no such note", true),
        source("udp-range", " S2.2-S2.9: half a range", true),
        source("mio-echo", " Beyond the notes: a readiness loop", true),
    ];
    assert_eq!(
        note_id_problems(readme, &pages, &listings),
        [
            "intro.md names S9.9, which the notes' README does not have",
            "silent.md names no note ID (S2.2, ...) and does not say \"Beyond the notes\"",
            "beyond-ghost.md names S2.7, which the notes' README does not have",
            "mentions.md names no note ID (S2.2, ...) and does not say \"Beyond the notes\"",
            "udp-ghost names S2.4, which the notes' README does not have",
            "udp-ghost names no note ID (S2.2, ...) and does not say \"Beyond the notes\"",
            "udp-range names S2.2–S2.9, which the notes' README does not have",
            "udp-range names no note ID (S2.2, ...) and does not say \"Beyond the notes\"",
            "S2.3, a section of the notes, is named by no page",
            "S3.1, a section of the notes, is named by no page",
        ]
    );
}

/// What a figure measures. Figures of the same dimension compare after conversion to a base
/// unit (seconds, bytes); a ratio (`1.92x`, `1.92×`, `37 times`) and a percentage stand alone.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dimension {
    Time,
    Size,
    Ratio,
    Percent,
}

/// A figure with a unit, as a page or a recorded run writes it.
#[derive(Debug)]
struct Figure {
    /// As written, e.g. `about 9.5 KiB`.
    text: String,
    line: usize,
    /// In the base unit of its dimension.
    value: f64,
    /// What one of the written unit is in the base unit (1024 for KiB).
    scale: f64,
    /// Digits after the point, as written: the precision the prose claims.
    decimals: i32,
    dimension: Dimension,
    /// Written after "about", "roughly", "~" ...: derived from the recorded figures.
    hedged: bool,
    /// Unhedged, a whole number with one significant digit (`200 ms`, `10 s`, `100 times`)
    /// or a power of two of bytes (`64 KiB`): a parameter of the listing, not a measurement.
    round: bool,
}

fn figures_in(text: &str) -> Vec<Figure> {
    static FIGURE: OnceLock<Regex> = OnceLock::new();
    let figure = FIGURE.get_or_init(|| {
        Regex::new(
            r"(?P<hedge>\b(?:about|roughly|around|nearly|almost|approximately|some)\s+|~\s?)?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?(?:\s?(?P<unit>ns|µs|us|ms|s|B|KiB|MiB|GiB)\b|\s?(?P<percent>%)|(?P<x>x)\b|\s?(?P<cross>×)|\s(?P<times>times)\b)",
        )
        .unwrap()
    });
    let mut found = Vec::new();
    for c in figure.captures_iter(text) {
        let int = c.name("int").expect("a number");
        let before = text[..int.start()].chars().next_back();
        if before.is_some_and(|b| b.is_alphanumeric() || "._-/,".contains(b)) {
            continue; // part of a version, a name or a longer number
        }
        let unit = ["unit", "percent", "x", "cross", "times"]
            .iter()
            .find_map(|name| c.name(name))
            .expect("a unit")
            .as_str();
        let (scale, dimension) = match unit {
            "ns" => (1e-9, Dimension::Time),
            "µs" | "us" => (1e-6, Dimension::Time),
            "ms" => (1e-3, Dimension::Time),
            "s" => (1.0, Dimension::Time),
            "B" => (1.0, Dimension::Size),
            "KiB" => (1024.0, Dimension::Size),
            "MiB" => (1024.0 * 1024.0, Dimension::Size),
            "GiB" => (1024.0 * 1024.0 * 1024.0, Dimension::Size),
            "%" => (1.0, Dimension::Percent),
            _ => (1.0, Dimension::Ratio),
        };
        let digits = int.as_str().replace(',', "");
        let frac = c.name("frac").map_or("", |f| f.as_str());
        let number: f64 = format!("{digits}.{frac}0").parse().expect("a number");
        // A whole number with one significant digit (`200 ms`, `10 s`), or a power of two of
        // bytes (`64 KiB`), is a parameter of a listing (a sleep, a count, a buffer); unless
        // it is hedged: `about 10 KiB` claims a figure derived from the run.
        let hedged = c.name("hedge").is_some();
        let round = !hedged
            && frac.is_empty()
            && (digits.trim_end_matches('0').len() <= 1
                || dimension == Dimension::Size
                    && digits.parse::<u64>().is_ok_and(u64::is_power_of_two));
        let whole = c.get(0).expect("a match");
        found.push(Figure {
            text: whole
                .as_str()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            line: text[..whole.start()].matches('\n').count() + 1,
            value: number * scale,
            scale,
            decimals: frac.len() as i32,
            dimension,
            hedged,
            round,
        });
    }
    found
}

/// The whole numbers a recorded run prints outside its figures (`10,000` tasks), by value.
fn counts_in(text: &str) -> BTreeSet<u64> {
    let number = Regex::new(r"\d{1,3}(?:,\d{3})+|\d+").unwrap();
    number
        .find_iter(text)
        .filter(|m| {
            let before = text[..m.start()].chars().next_back();
            let after = text[m.end()..].chars().next();
            !before.is_some_and(|b| b.is_alphanumeric() || b == '.')
                && !after.is_some_and(|a| a.is_alphanumeric() || a == '.')
        })
        .filter_map(|m| m.as_str().replace(',', "").parse().ok())
        .filter(|&n| n >= 2)
        .collect()
}

/// The figures in `prose` that `records` (the recorded runs the page shows) do not support,
/// each as `line: figure (why)`.
///
/// - A figure quoted as is must be a recorded figure, at the precision the prose writes it
///   (`10.1 s` for `10.1s`, `0.37 s` or `372 ms` for `371.8ms`, `4,308 times` for `4307.9x`).
/// - A figure written after "about", "roughly" or "~" is derived: it must be within 1% (or
///   half its last digit) of a value computed from the record: a recorded figure, the
///   difference of two of the same kind, either divided by a count that the page and the
///   record both name (`10,000` tasks), the ratio of two, or (a time) such a count divided by
///   a number of the record (a rate, `60,589` trips/s).
/// - A whole number with one significant digit (`200 ms`, `10 s`, `100 times`) or a power of
///   two of bytes (`64 KiB`) is a parameter of the listing, not a measurement, and is not
///   checked, unless it is hedged: `about 10 KiB` and `about 4 times` are derived figures.
fn unsupported_figures(prose: &str, records: &str) -> Vec<String> {
    let recorded = figures_in(records);
    // The record's whole numbers: counts the prose also names, and rates.
    let record_numbers = counts_in(records);
    let counts: Vec<f64> = record_numbers
        .intersection(&counts_in(prose))
        .map(|&n| n as f64)
        .collect();
    let mut problems = Vec::new();
    for figure in figures_in(prose).iter().filter(|f| !f.round) {
        let written = figure.value / figure.scale;
        let half_digit = 0.5 * 10f64.powi(-figure.decimals) * (1.0 + 1e-9);
        let same: Vec<f64> = recorded
            .iter()
            .filter(|r| r.dimension == figure.dimension)
            .map(|r| r.value)
            .collect();
        let supported = if figure.hedged {
            let mut derived = same.clone();
            for a in &same {
                for b in &same {
                    if a > b {
                        derived.push(a - b);
                    }
                }
            }
            let divided: Vec<f64> = derived
                .iter()
                .flat_map(|d| counts.iter().map(move |n| d / n))
                .collect();
            derived.extend(divided);
            if figure.dimension == Dimension::Time {
                // A count over a rate (Little's law: 10,000 in flight / 60,589 trips/s).
                for n in &counts {
                    derived.extend(record_numbers.iter().map(|&rate| n / rate as f64));
                }
            }
            if figure.dimension == Dimension::Ratio {
                for a in &recorded {
                    for b in &recorded {
                        if a.dimension == b.dimension
                            && matches!(a.dimension, Dimension::Time | Dimension::Size)
                            && b.value > 0.0
                        {
                            derived.push(a.value / b.value);
                        }
                    }
                }
            }
            let tolerance = half_digit.max(0.01 * written);
            derived
                .iter()
                .any(|d| (d / figure.scale - written).abs() <= tolerance)
        } else {
            same.iter()
                .any(|r| (r / figure.scale - written).abs() <= half_digit)
        };
        if !supported {
            let why = if figure.hedged {
                "computed from no figure of the recorded run: recompute it, or, if it \
                 comes from elsewhere, do not quote it as a figure"
            } else {
                "not in the recorded run; a derived figure says \"about\""
            };
            problems.push(format!("{}: {} ({why})", figure.line, figure.text.trim()));
        }
    }
    problems
}

/// A measured figure quoted in a page's prose (`1.92x`, `37.1 times`, `96.4 MiB`, `18.0µs`)
/// must come from a recorded run the page shows: re-recording changes the figures, and a page
/// that still quotes the old ones fails here. See `unsupported_figures` for the rules.
fn stale_figures(page: &Path) -> Vec<String> {
    let text = fs::read_to_string(page).unwrap_or_default();
    let records: String = includes_in_page(page)
        .into_iter()
        .filter(|target| target.components().any(|c| c.as_os_str() == "measurements"))
        .map(|target| fs::read_to_string(target).unwrap_or_default())
        .collect();
    if records.is_empty() {
        return Vec::new();
    }
    unsupported_figures(&prose_of(&text), &records)
        .into_iter()
        .map(|problem| format!("{}:{problem}", relative(page)))
        .collect()
}

/// A page's text with its fenced blocks blanked out, line numbers kept.
fn prose_of(page: &str) -> String {
    let fence = Regex::new(r"(?ms)^```.*?^```").unwrap();
    fence
        .replace_all(page, |c: &regex::Captures| {
            "\n".repeat(c[0].matches('\n').count())
        })
        .into_owned()
}

fn includes_in_page(page: &Path) -> Vec<PathBuf> {
    includes()
        .into_iter()
        .filter(|include| include.chapter == page)
        .map(|include| include.target)
        .collect()
}

#[test]
fn every_figure_quoted_in_prose_is_in_the_recorded_run_it_cites() {
    let stale: Vec<String> = files_under(&root().join("src"), "md")
        .iter()
        .flat_map(|page| stale_figures(page))
        .collect();
    assert!(
        stale.is_empty(),
        "figures in the prose that no recorded run on the page supports; re-read the page \
         against tests/measurements/ and quote the figures as recorded (a figure computed from \
         them says \"about\"):\n{}",
        stale.join("\n")
    );
}

#[test]
fn the_figure_check_flags_a_stale_figure_and_passes_a_current_one() {
    let record = "each task waits 100 ms\n\
                  tasks  way       time     floor  peak memory\n\
                  100    tokio   102.9ms    1.03x  3.6 MiB\n\
                  10,000 threads    2.1s   20.61x  96.6 MiB\n\
                  100,000 tokio  371.8ms    3.72x  58.4 MiB\n\
                  Python  1.71s  4307.9x\n\
                  trips/s 60,589\n";
    let current = "Each of the 100,000 tasks waits 100 ms, and 10,000 threads 200 ms.\n\
                   Tokio took 3.72 times the floor (3.72x, 3.72×), 0.37 s or 372 ms, with \
                   58.4 MiB at its peak; Python 4,308 times.\n\
                   The 10,000 threads needed about 9.5 KiB each, net of the 3.6 MiB, and \
                   roughly 0.27 s went to starting tasks; ~3.6 times the 102.9ms round.\n\
                   With 10,000 in flight, a trip takes about 165 ms; Python took about 5 times \
                   as long as tokio's 100,000, and about 1 s more.\n";
    let problems = unsupported_figures(current, record);
    assert!(problems.is_empty(), "{problems:#?}");

    let stale = "Tokio took 3.71 times the floor, 0.38 s, with 58.3 MiB at its peak.\n\
                 Python: 4,307 times and 1.8 s; 55.4% of it.\n\
                 The 10,000 threads needed about 9.1 KiB each, and roughly 0.5 s went; about 150 ms a trip.\n\
                 Each thread took about 50 KiB; tokio was about 9 times the floor.\n";
    let problems = unsupported_figures(stale, record);
    let flagged: Vec<&str> = problems
        .iter()
        .map(|p| p.split_once(": ").unwrap().1.split(" (").next().unwrap())
        .collect();
    assert_eq!(
        flagged,
        [
            "3.71 times",
            "0.38 s",
            "58.3 MiB",
            "4,307 times",
            "1.8 s",
            "55.4%",
            "about 9.1 KiB",
            "roughly 0.5 s",
            "about 150 ms",
            "about 50 KiB",
            "about 9 times"
        ],
        "{problems:#?}"
    );
    assert!(problems[0].starts_with("1: "), "{problems:#?}");
    assert!(problems[6].starts_with("3: "), "{problems:#?}");
}

/// The chapters in `SUMMARY.md` order, each with its pages (the chapter's own page first):
/// chapter `n` of this list is chapter `n` of the listings' numbers and folders
/// (`listings/02-udp`).
fn chapters_of(summary: &str) -> Vec<Vec<String>> {
    let item = Regex::new(r"^(\s*)- \[[^\]]*\]\(([^)]+)\)").unwrap();
    let mut chapters: Vec<Vec<String>> = Vec::new();
    for c in summary.lines().filter_map(|line| item.captures(line)) {
        if c[1].is_empty() {
            chapters.push(Vec::new());
        }
        if let Some(chapter) = chapters.last_mut() {
            chapter.push(c[2].to_string());
        }
    }
    chapters
}

/// Listing captions follow the chapters: in chapter C (its place in `SUMMARY.md`), captions
/// read `Listing C-1`, `Listing C-2` ... in page order, each under a block that includes a
/// file of the chapter's folder `listings/CC-*`; and every `Listing C-N` the text names
/// exists. `pages` gives a page's text by its path in `src/`.
fn caption_problems(summary: &str, page: impl Fn(&str) -> String) -> Vec<String> {
    let caption =
        Regex::new(r#"<span class="caption">Listing (\d+)-(\d+):\s*(?:`([^`]+)`)?"#).unwrap();
    let include = Regex::new(r"\{\{#(?:rustdoc_)?include\s+([^}:\s]+)").unwrap();
    let reference =
        Regex::new(r"Listings?\s+(\d+-\d+(?:\s*(?:,|,?\s+and|,?\s+or|\s+to|–)\s*\d+-\d+)*)")
            .unwrap();
    let number = Regex::new(r"(\d+)-(\d+)").unwrap();
    let mut problems = Vec::new();
    let mut captions = BTreeSet::new();
    let mut references = Vec::new();
    for (index, pages) in chapters_of(summary).iter().enumerate() {
        let chapter = index + 1;
        let folder = format!("{chapter:02}-");
        let mut next = 1;
        for name in pages {
            let text = page(name);
            let line_of = |at: usize| text[..at].matches('\n').count() + 1;
            for c in caption.captures_iter(&text) {
                let at = c.get(0).expect("a match").start();
                let (shown_chapter, shown) = (&c[1], &c[2]);
                let here = format!(
                    "src/{name}:{}: Listing {shown_chapter}-{shown}",
                    line_of(at)
                );
                if shown_chapter != chapter.to_string() || shown != next.to_string() {
                    problems.push(format!(
                        "{here} should be Listing {chapter}-{next} (chapter {chapter} in \
                         SUMMARY.md, its listing number {next} in page order)"
                    ));
                }
                captions.insert(format!("{shown_chapter}-{shown}"));
                next += 1;
                let shown_file = include
                    .captures_iter(&text[..at])
                    .last()
                    .map(|i| normalize(&Path::new("src").join(name).join("..").join(&i[1])));
                let in_folder = shown_file.as_ref().is_some_and(|file| {
                    let mut parts = file.components().map(|p| p.as_os_str().to_string_lossy());
                    parts.next().is_some_and(|p| p == "listings")
                        && parts.next().is_some_and(|p| p.starts_with(&folder))
                });
                if let Some(named) = c.get(3).map(|m| PathBuf::from(m.as_str()))
                    && shown_file.as_ref() != Some(&named)
                {
                    problems.push(format!(
                        "{here} names {}, but the block above it includes {}",
                        named.display(),
                        shown_file
                            .as_ref()
                            .map_or("nothing".to_string(), |f| f.display().to_string())
                    ));
                }
                if !in_folder {
                    problems.push(format!(
                        "{here} captions {}, not a file of listings/{folder}*, chapter \
                         {chapter}'s folder",
                        shown_file.map_or("no included file".to_string(), |f| {
                            f.display().to_string()
                        })
                    ));
                }
            }
            for r in reference.captures_iter(&text) {
                let at = r.get(0).expect("a match").start();
                for n in number.captures_iter(&r[1]) {
                    references.push((format!("src/{name}:{}", line_of(at)), n[0].to_string()));
                }
            }
        }
    }
    for (place, named) in references {
        if !captions.contains(&named) {
            problems.push(format!(
                "{place} names Listing {named}, which no caption has"
            ));
        }
    }
    problems
}

#[test]
fn listing_captions_are_numbered_by_chapter_and_page_order_and_show_their_chapters_files() {
    let src = root().join("src");
    let summary = fs::read_to_string(src.join("SUMMARY.md")).expect("a summary");
    let problems = caption_problems(&summary, |name| {
        fs::read_to_string(src.join(name)).unwrap_or_default()
    });
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_caption_check_flags_a_misnumbered_or_misplaced_listing_and_a_dangling_reference() {
    let summary = "# Summary\n\n[Introduction](introduction.md)\n\n\
                   - [HTTP](http.md)\n    - [By Hand](http/by-hand.md)\n\
                   - [UDP](udp.md)\n    - [Demo](udp/demo.md)\n    - [Chat](udp/chat.md)\n";
    let block = |path: &str, caption: &str| {
        format!(
            "```rust,no_run\n{{{{#rustdoc_include ../../listings/{path}:main}}}}\n```\n\n\
             <span class=\"caption\">{caption}</span>\n\n"
        )
    };
    let pages = |demo: String, chat: String| {
        move |name: &str| match name {
            "http/by-hand.md" => block("01-http/by-hand/src/main.rs", "Listing 1-1: by hand"),
            "udp/demo.md" => demo.clone(),
            "udp/chat.md" => chat.clone(),
            _ => "# A chapter\n\nListing 2-2 is the chat.\n".to_string(),
        }
    };
    let good = pages(
        block(
            "02-udp/udp-demo/src/main.rs",
            "Listing 2-1: `listings/02-udp/udp-demo/src/main.rs`, the demo",
        ),
        block(
            "02-udp/udp-chat/src/main.rs",
            "Listing 2-2: `listings/02-udp/udp-chat/src/main.rs`, the chat",
        ) + &block(
            "02-udp/udp-chat/src/main.rs",
            "Listing 2-2, continued: the rest",
        ) + &block(
            "../tests/snapshots/udp-chat__menu.snap",
            "Listing 2-2 asks again",
        ) + "Output of Listings 2-1 and 2-2\n",
    );
    let problems = caption_problems(summary, good);
    assert!(problems.is_empty(), "{problems:#?}");

    let bad = pages(
        block("02-udp/udp-demo/src/main.rs", "Listing 3-1: the demo"),
        block(
            "03-tcp/tcp-client/src/main.rs",
            "Listing 2-3: `listings/02-udp/udp-chat/src/main.rs`, the chat",
        ) + "Output of Listings 2-1 to 2-4\n",
    );
    let problems = caption_problems(summary, bad);
    let expected = [
        "src/udp/demo.md:5: Listing 3-1 should be Listing 2-1",
        "src/udp/chat.md:5: Listing 2-3 should be Listing 2-2",
        "src/udp/chat.md:5: Listing 2-3 names listings/02-udp/udp-chat/src/main.rs, but the \
         block above it includes listings/03-tcp/tcp-client/src/main.rs",
        "src/udp/chat.md:5: Listing 2-3 captions listings/03-tcp/tcp-client/src/main.rs, not a \
         file of listings/02-*",
        "src/http.md:3 names Listing 2-2, which no caption has",
        "src/udp.md:3 names Listing 2-2, which no caption has",
        "src/udp/chat.md:7 names Listing 2-1, which no caption has",
        "src/udp/chat.md:7 names Listing 2-4, which no caption has",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, expected) in problems.iter().zip(expected) {
        assert!(
            problem.starts_with(expected),
            "{problem}\ndoes not start with\n{expected}"
        );
    }
}

/// Code the book says does not compile must prove it: `compile_fail` fails the doc-test if
/// the block compiles after all, while `ignore` would hide any mistake.
#[test]
fn no_rust_block_is_ignored() {
    let fence = Regex::new(r"(?m)^\s*```+\s*rust[^\n]*\bignore\b").unwrap();
    let ignored: Vec<String> = files_under(&root().join("src"), "md")
        .into_iter()
        .filter(|chapter| fence.is_match(&fs::read_to_string(chapter).unwrap_or_default()))
        .map(|chapter| relative(&chapter))
        .collect();
    assert!(
        ignored.is_empty(),
        "use compile_fail (or no_run), not ignore, in: {ignored:?}"
    );
}

/// The checks above must be able to fail: a tiny book with a broken include, a missing
/// anchor and a broken link.
#[test]
fn the_checks_catch_a_broken_include_a_missing_anchor_and_a_broken_link() {
    let book = scratch_dir("broken-book");
    fs::create_dir_all(book.join("src")).unwrap();
    fs::write(book.join("book.toml"), "[book]\ntitle = \"Broken\"\n").unwrap();
    fs::write(
        book.join("src/SUMMARY.md"),
        "# Summary\n\n- [Chapter](chapter.md)\n",
    )
    .unwrap();
    fs::write(
        book.join("src/chapter.md"),
        "# Chapter\n\n[gone](gone.md#nowhere)\n\n```rust\n{{#include missing.rs}}\n```\n\n\
         ```rust\n{{#rustdoc_include code.rs:misspelt}}\n```\n",
    )
    .unwrap();
    fs::write(
        book.join("src/code.rs"),
        "// ANCHOR: main\nfn main() {}\n// ANCHOR_END: main\n",
    )
    .unwrap();
    let missing = missing_anchors(&includes_in(&book.join("src")));
    assert!(
        missing.len() == 1 && missing[0].contains("code.rs:misspelt"),
        "{missing:?}"
    );

    let error = book_tool::render(&book, &book.join("site"))
        .expect_err("a broken include must fail the render");
    assert!(format!("{error:#}").contains("missing.rs"), "{error:#}");
    let broken = broken_links(&book.join("site"));
    assert!(broken.iter().any(|b| b.contains("gone.html")), "{broken:?}");
}

/// The workflows in `.github/workflows/`, each with its text.
fn workflows() -> Vec<(String, String)> {
    files_under(&root().join(".github/workflows"), "yml")
        .into_iter()
        .map(|file| {
            (
                relative(&file),
                fs::read_to_string(&file).expect("a workflow"),
            )
        })
        .collect()
}

/// The workflows run only what a local run also runs: `.ci/run` (CI) and `cargo book build`
/// (Pages; its `build` is `book_tool::render`, which these tests call). Every action is pinned
/// to a commit; Pages may write only in its deploy job, and deploys one at a time.
#[test]
fn the_workflows_run_only_local_commands_and_pin_every_action() {
    let run = Regex::new(r"(?m)^\s*(?:-\s+)?run:\s*(.*)$").unwrap();
    let uses = Regex::new(r"(?m)^\s*(?:-\s+)?uses:\s*(\S+)").unwrap();
    let pinned = Regex::new(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$").unwrap();
    let mut problems = Vec::new();
    let found = workflows();
    let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [".github/workflows/ci.yml", ".github/workflows/pages.yml"]
    );
    for (name, text) in &found {
        for c in run.captures_iter(text) {
            if ![".ci/run", "cargo book build"].contains(&c[1].trim()) {
                problems.push(format!("{name} runs {:?}, which no local run runs", &c[1]));
            }
        }
        for c in uses.captures_iter(text) {
            if !pinned.is_match(&c[1]) {
                problems.push(format!("{name} uses {}, not pinned to a commit", &c[1]));
            }
        }
        // Read-only by default: a job that needs more says so itself.
        if !text.contains("\npermissions:\n  contents: read\n\n") {
            problems.push(format!(
                "{name}: the default permissions are not contents: read"
            ));
        }
    }
    let pages = &found[1].1;
    let deploy = &pages[pages.find("\n  deploy:\n").expect("a deploy job")..];
    for write in ["pages: write", "id-token: write"] {
        if pages.matches(write).count() != 1 || !deploy.contains(write) {
            problems.push(format!("pages.yml: {write} outside its deploy job"));
        }
    }
    if !pages.contains("concurrency:\n  group: pages\n  cancel-in-progress: false\n") {
        problems.push("pages.yml: deployments are not one at a time".to_string());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The settings the Pages workflow gives mdBook through its environment: each `MDBOOK_`
/// variable, turned into its key as mdBook does (`__` is a dot, `_` a dash, lower case).
fn pages_settings() -> Vec<String> {
    let (_, pages) = &workflows()[1];
    let variable = Regex::new(r"(?m)^\s+MDBOOK_([A-Z_]+):").unwrap();
    variable
        .captures_iter(pages)
        .map(|c| c[1].to_lowercase().replace("__", ".").replace('_', "-"))
        .collect()
}

/// The site as Pages publishes it, under a sub-path (`/rust-book/`, a project's site): the
/// 404 page finds its styles from any depth, and every page links the repository and its own
/// source. The local site carries none of the links.
#[test]
fn the_published_site_has_its_address_and_the_repositorys_links() {
    let keys = pages_settings();
    assert_eq!(
        keys,
        [
            "output.html.site-url",
            "output.html.git-repository-url",
            "output.html.edit-url-template"
        ]
    );
    let repository = "https://github.com/example/rust-book";
    let values = [
        "/rust-book/".to_string(),
        repository.to_string(),
        format!("{repository}/edit/main/{{path}}"),
    ];
    let settings: Vec<(String, String)> = keys.into_iter().zip(values).collect();
    let site = scratch_dir("published");
    if let Err(e) = book_tool::render_with(root(), &site, &settings) {
        panic!("the published site does not render cleanly: {e:#}");
    }
    let not_found = fs::read_to_string(site.join("404.html")).expect("a 404 page");
    assert!(not_found.contains(r#"<base href="/rust-book/">"#));
    let udp = fs::read_to_string(site.join("udp.html")).expect("the UDP chapter");
    assert!(udp.contains(&format!(r#"<a href="{repository}" title="Git repository""#)));
    assert!(udp.contains(&format!(
        r#"<a href="{repository}/edit/main/src/udp.md" title="Suggest an edit""#
    )));
    let local = fs::read_to_string(rendered().join("udp.html")).expect("the UDP chapter");
    assert!(!local.contains(r#"title="Git repository""#));
    assert!(!local.contains(r#"title="Suggest an edit""#));
}

/// The memory-ordering page's table names every listing that uses an atomic `Ordering`, so
/// that a new listing with an atomic gets its line there (what it orders, and why that one).
#[test]
fn the_ordering_table_names_every_listing_with_an_atomic() {
    let table = fs::read_to_string(root().join("src/thread-communication/ordering.md"))
        .expect("the memory-ordering page");
    let atomic = Regex::new(r"\bOrdering::(Relaxed|Acquire|Release|AcqRel|SeqCst)\b|atomic::\{?[^;]*\bOrdering\b|atomic::Ordering::").unwrap();
    let mut missing = BTreeSet::new();
    for file in files_under(&root().join("listings"), "rs") {
        let text = fs::read_to_string(&file).unwrap_or_default();
        if !atomic.is_match(&text) {
            continue;
        }
        let relative = file.strip_prefix(root()).expect("under the root");
        let listing = relative
            .components()
            .nth(2)
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .expect("listings/<chapter>/<listing>/...");
        if !table.contains(&format!("| `{listing}` (")) {
            missing.insert(listing);
        }
    }
    assert!(
        missing.is_empty(),
        "listings with an atomic Ordering that the table of \
         src/thread-communication/ordering.md does not name: {missing:?}"
    );
}

/// The README's `cargo book serve` is an alias (`.cargo/config.toml`). Its `--features` must
/// name book-tool's feature as `book-tool/serve`: under the workspace's resolver 1, a bare
/// `serve` means the feature of the package in the current directory, the root, which has
/// none, and the alias fails before it builds anything. `cargo tree` with the alias's own
/// arguments resolves the same features without building.
#[test]
fn the_cargo_book_alias_resolves_its_features_from_the_workspace_root() {
    let config = fs::read_to_string(root().join(".cargo/config.toml")).expect("the config");
    let alias = Regex::new(r#"(?m)^book\s*=\s*"([^"]+)""#).unwrap();
    let line = alias.captures(&config).expect("a `book` alias")[1].to_string();
    let mut words: Vec<&str> = line.split_whitespace().take_while(|w| *w != "--").collect();
    assert_eq!(
        words.first(),
        Some(&"run"),
        "the alias runs book-tool: {line}"
    );
    words[0] = "tree";
    let mut child = std::process::Command::new(env!("CARGO"))
        .args(&words)
        .args(["--depth", "0", "--offline", "--locked"])
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cargo runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("cargo tree") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("cargo {} took over 120 s", words.join(" "));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut errors = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut errors).unwrap();
    assert!(
        status.success(),
        "`cargo book` would fail from the workspace root (`cargo {}`):\n{errors}",
        words.join(" ")
    );
}

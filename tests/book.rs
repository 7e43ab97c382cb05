//! The book's own checks: it renders without a warning, no directive survives into the HTML,
//! every internal link and anchor resolves, every listing is shown with tested output, and
//! every page and listing names the notes it covers.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;

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
        dest
    })
}

/// A fresh folder under Cargo's temporary directory for this test target. Folders left by
/// runs that have ended are removed first.
fn scratch_dir(purpose: &str) -> PathBuf {
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
    dir
}

fn files_under(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("a readable folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == extension) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// `a/b/../c` becomes `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
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

#[test]
fn every_page_and_listing_names_the_notes_it_covers() {
    let note_id = Regex::new(r"\bS\d{1,2}\.\d").unwrap();
    let mut silent = Vec::new();
    for chapter in files_under(&root().join("src"), "md") {
        let name = chapter.file_name().expect("a name");
        if name == "SUMMARY.md" || name == "introduction.md" {
            continue;
        }
        if !note_id.is_match(&fs::read_to_string(&chapter).unwrap_or_default()) {
            silent.push(relative(&chapter));
        }
    }
    for listing in listing_crates() {
        let main = listing.join("src/main.rs");
        let first_line = fs::read_to_string(&main).unwrap_or_default();
        let first_line = first_line.lines().next().unwrap_or_default();
        if !(first_line.starts_with("//!") && note_id.is_match(first_line)) {
            silent.push(format!(
                "{} (its first line: //! S<n>.<m>: ...)",
                relative(&main)
            ));
        }
    }
    assert!(
        silent.is_empty(),
        "these name no note ID (S2.2, ...):\n{}",
        silent.join("\n")
    );
}

/// A measured figure quoted in a page's prose (`1.92x`, `37.1 times`, `96.4 MiB`) must be in
/// a recorded run the page shows: re-recording changes the figures, and a page that still
/// quotes the old ones fails here. Derived figures (per thread, rounded) are not checked.
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
    let fence = Regex::new(r"(?ms)^```.*?^```").unwrap();
    let prose = fence.replace_all(&text, "");
    let figure = Regex::new(r"\b(\d+\.\d+)(?:x\b| times\b| MiB\b)").unwrap();
    figure
        .captures_iter(&prose)
        .map(|c| c[1].to_string())
        .filter(|number| !stands_alone_in(&records, number))
        .map(|number| format!("{}: {number}", relative(page)))
        .collect()
}

/// Whether `number` occurs in `text` with no digit or point right before or after it.
fn stands_alone_in(text: &str, number: &str) -> bool {
    text.match_indices(number).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + number.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit() || c == '.')
            && !after.is_some_and(|c| c.is_ascii_digit())
    })
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
        "figures in the prose that no recorded run on the page shows \
         (re-read the page against tests/measurements/):\n{}",
        stale.join("\n")
    );
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

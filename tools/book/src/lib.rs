//! The book's tooling, on mdBook's own library (`mdbook-driver`).
//!
//! mdBook only *logs* most problems (a broken `{{#include}}` is an error in the log, and the
//! build still succeeds), so every entry point here collects what mdBook logs at WARN or above
//! and turns it into an error that names the cause.

use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Result, bail};
use mdbook_driver::MDBook;
use mdbook_driver::book::BookItem;
use mdbook_renderer::{RenderContext, Renderer};

pub mod archive;
pub mod child;
pub mod pdf;
pub mod search;
#[cfg(feature = "serve")]
pub mod serve;

/// `a/b/../c` becomes `a/c`, without touching the file system (a link, an include or a
/// path dependency resolved against its folder).
pub fn normalize(path: &Path) -> PathBuf {
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

/// The workspace root, where `book.toml` lives.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Renders the book as HTML into `dest`, failing on any warning or error mdBook reports. Its
/// search index also finds Chinese (see [`search`]).
/// mdBook also reads settings from `MDBOOK_` variables (the Pages workflow sets the site's
/// address and the repository's links that way).
pub fn render(root: &Path, dest: &Path) -> Result<()> {
    render_with(root, dest, &[])
}

/// `render` with `settings` (a key such as `output.html.site-url`, and its value) on top of
/// `book.toml`, as a `MDBOOK_` variable would set them: the tests render the published site
/// this way without changing their own process's environment.
pub fn render_with(root: &Path, dest: &Path, settings: &[(String, String)]) -> Result<()> {
    checked(|| {
        let mut book = MDBook::load(root)?;
        for (key, value) in settings {
            book.config.set(key, value)?;
        }
        book.config.build.build_dir = dest.to_path_buf();
        book.build()?;
        // mdBook's index cannot find a Chinese word; the book adds them to it.
        search::add_cjk(dest)
    })
}

/// A chapter after mdBook's preprocessors ran: the Markdown a reader sees, includes expanded.
pub struct Chapter {
    /// Path of the chapter's source, relative to `src/`.
    pub path: PathBuf,
    pub content: String,
}

/// Every chapter as rustdoc should test it: with `{{#include}}` and `{{#rustdoc_include}}`
/// expanded exactly as `mdbook test` would expand them. Outputs are left out: an include of a
/// file under `tests/` (a snapshot, a recorded measurement) is dropped before expansion, so the
/// code blocks never wait on a snapshot that a test has yet to write.
pub fn expanded_chapters(root: &Path) -> Result<Vec<Chapter>> {
    checked(|| {
        let mut book = MDBook::load(root)?;
        book.book.for_each_chapter_mut(|chapter| {
            chapter.content = without_outputs(&chapter.content);
        });
        let (book, _) = book.preprocess_book(&TestRenderer)?;
        Ok(book
            .iter()
            .filter_map(|item| match item {
                BookItem::Chapter(ch) => ch.path.as_ref().map(|path| Chapter {
                    path: path.clone(),
                    content: ch.content.clone(),
                }),
                _ => None,
            })
            .collect())
    })
}

/// `text` with every `{{#include}}` of a file under the workspace's `tests/` removed: what a
/// chapter shows of a run, never Rust code.
fn without_outputs(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{#include ") {
        let (before, directive) = rest.split_at(start);
        kept.push_str(before);
        let end = directive.find("}}").map_or(directive.len(), |end| end + 2);
        let path = directive["{{#include ".len()..end.saturating_sub(2)].trim();
        if !path.contains("/tests/") && !path.starts_with("tests/") {
            kept.push_str(&directive[..end]);
        }
        rest = &directive[end..];
    }
    kept.push_str(rest);
    kept
}

/// mdBook runs its preprocessors for a named renderer; "test" is the name `mdbook test` uses.
struct TestRenderer;

impl Renderer for TestRenderer {
    fn name(&self) -> &str {
        "test"
    }

    fn render(&self, _: &RenderContext) -> Result<()> {
        Ok(())
    }
}

/// Runs `work` with mdBook's log captured; any WARN or ERROR line makes the result an error.
fn checked<T>(work: impl FnOnce() -> Result<T>) -> Result<T> {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    let result = tracing::subscriber::with_default(subscriber, work);
    let reported = log.text();
    match result {
        Err(e) if reported.is_empty() => Err(e),
        Err(e) => Err(e.context(format!("mdBook reported:\n{reported}"))),
        Ok(_) if !reported.is_empty() => bail!("mdBook reported:\n{reported}"),
        Ok(value) => Ok(value),
    }
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).trim_end().to_string()
    }
}

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

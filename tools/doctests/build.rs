//! Expands every chapter with mdBook's own preprocessors (so `{{#include}}` and
//! `{{#rustdoc_include}}` give exactly what a reader sees) and writes a module per chapter
//! whose documentation is that chapter: `cargo test --doc` then compiles each Rust block.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let root = book_tool::root();
    // Outputs (tests/) are not part of the doc-tests: see `expanded_chapters`.
    for input in ["book.toml", "src", "listings"] {
        println!("cargo::rerun-if-changed={}", root.join(input).display());
    }
    let chapters = match book_tool::expanded_chapters(&root) {
        Ok(chapters) => chapters,
        Err(e) => {
            // Cargo shows each such line as an error, without a backtrace.
            println!("cargo::error=the book's chapters cannot be expanded for the doc-tests:");
            for line in format!("{e:#}").lines() {
                println!("cargo::error=  {line}");
            }
            return;
        }
    };

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut modules = String::new();
    for chapter in chapters {
        let file = out.join("chapters").join(&chapter.path);
        fs::create_dir_all(file.parent().expect("a chapter file has a folder"))
            .and_then(|()| fs::write(&file, &chapter.content))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        writeln!(
            modules,
            "#[doc = include_str!({:?})]\npub mod {} {{}}",
            file.display().to_string(),
            module_name(&chapter.path),
        )
        .expect("writing to a String cannot fail");
    }
    fs::write(out.join("chapters.rs"), modules).expect("cannot write chapters.rs");
}

/// `udp/chat.md` becomes `src_udp_chat`: the name a failing doc-test reports.
fn module_name(chapter: &Path) -> String {
    let stem = chapter.with_extension("");
    let name: String = stem
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("src_{name}")
}

//! Search that finds Chinese.
//!
//! mdBook's index splits text into words at whitespace and `-` only, and the English pipeline
//! each word then goes through, when the index is built as when the browser reads a query,
//! trims from both ends whatever is not an ASCII letter, digit or `_`: a Chinese phrase is
//! trimmed to nothing, and the book's quotes of the notes (我收到了, 输入错误请重试 …) cannot
//! be found.
//!
//! After mdBook has written its index, the book adds one rule to it, and the same rule to the
//! query in the browser: every maximal run of CJK characters (Han, kana, Hangul) gives its
//! overlapping two-character pieces and its last character alone (我收到了 gives 我收, 收到,
//! 到了, 了). Two characters, not words: the browser would need a dictionary of megabytes to
//! cut words as a segmenter like jieba does, and bigrams find any phrase of two characters or
//! more. The last character alone, with mdBook's prefix expansion, lets a one-character query
//! find every place the character appears. The pieces skip the English pipeline (trimmer, stop
//! words, stemmer), which is for English and would erase them.
//!
//! Everything else in the index is mdBook's own, untouched: its words, their postings, and each
//! section's field lengths (the pieces are not counted in them), so an English search ranks
//! exactly as it did.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use elasticlunr::inverted_index::InvertedIndex;
use serde_json::Value;

/// The characters that form runs, in the Basic Multilingual Plane only: elasticlunr.js walks
/// its index by UTF-16 code unit and Rust by `char`, which agree there.
pub const CJK_RANGES: [(char, char); 5] = [
    ('\u{3040}', '\u{30ff}'), // Hiragana, Katakana
    ('\u{3400}', '\u{4dbf}'), // CJK Unified Ideographs Extension A
    ('\u{4e00}', '\u{9fff}'), // CJK Unified Ideographs
    ('\u{ac00}', '\u{d7af}'), // Hangul Syllables
    ('\u{f900}', '\u{faff}'), // CJK Compatibility Ideographs
];

/// The query side of the rule, for the browser. `@CJK@` in it stands for the ranges above, so
/// that they are written once.
const QUERY_SIDE: &str = include_str!("search.js");

/// mdBook writes its index as this script (`searchindex-<hash>.js`), the JSON quoted in `'`.
const PREFIX: &str = "window.search = Object.assign(window.search, JSON.parse('";
const SUFFIX: &str = "'));";

/// Whether `c` is one of the characters that form runs.
pub fn is_cjk(c: char) -> bool {
    CJK_RANGES
        .iter()
        .any(|&(low, high)| (low..=high).contains(&c))
}

/// The pieces the rule makes of `text`, in order.
pub fn cjk_pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut run = Vec::new();
    // A character outside the ranges (a space, 。, a Latin letter) ends the run; so does the text.
    for c in text.chars().chain(['\0']) {
        if is_cjk(c) {
            run.push(c);
            continue;
        }
        for pair in run.windows(2) {
            pieces.push(pair.iter().collect());
        }
        if let Some(last) = run.last() {
            pieces.push(last.to_string());
        }
        run.clear();
    }
    pieces
}

/// The index file mdBook wrote into `site`, if search is on.
pub fn index_file(site: &Path) -> Result<Option<PathBuf>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(site).with_context(|| format!("reading {}", site.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("searchindex") && name.ends_with(".js") {
            found.push(path);
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => bail!(
            "more than one search index in {}: {found:?}",
            site.display()
        ),
    }
}

/// The JSON inside an index file, whether mdBook's or the book's (which has the query side
/// before it).
pub fn read_index(file: &Path) -> Result<Value> {
    let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let quoted = text
        .split_once(PREFIX)
        .and_then(|(_, rest)| rest.strip_suffix(SUFFIX))
        .with_context(|| {
            format!(
                "{} is not a search index as mdBook 0.5 writes it",
                file.display()
            )
        })?;
    // mdBook escaped `\` and then `'`: undo both in one pass.
    let mut json = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        json.push(if c == '\\' {
            chars.next().unwrap_or(c)
        } else {
            c
        });
    }
    serde_json::from_str(&json).with_context(|| format!("parsing {}", file.display()))
}

/// Adds the pieces of every section's fields to the index mdBook wrote into `site`, and puts
/// the query side in front of it. Not a theme script (`additional-js`): mdBook places those
/// after its searcher, which starts loading the index at once for a `?search=` link, so the
/// index could load and the first search run before them. This file runs just before the
/// searcher loads the index, every time. The file keeps the name mdBook gave it, which every
/// page names and which hashes mdBook's content only: after a change to the rule alone, a
/// browser may use its cached copy until that expires.
pub(crate) fn add_cjk(site: &Path) -> Result<()> {
    let Some(file) = index_file(site)? else {
        return Ok(());
    };
    let mut json = read_index(&file)?;
    let index = &mut json["index"];
    let docs = index["documentStore"]["docs"]
        .as_object()
        .context("the search index has no documents")?
        .clone();
    let fields = index["index"]
        .as_object_mut()
        .context("the search index has no fields")?;
    for (field, inverted) in fields.iter_mut() {
        let mut pieces = InvertedIndex::new();
        for (doc_ref, doc) in &docs {
            let text = doc[field].as_str().unwrap_or_default();
            let mut counts = BTreeMap::<String, u32>::new();
            for piece in cjk_pieces(text) {
                *counts.entry(piece).or_default() += 1;
            }
            for (piece, count) in counts {
                // elasticlunr's term frequency, as mdBook's words have it.
                pieces.add_token(doc_ref, &piece, f64::from(count).sqrt());
            }
        }
        // mdBook's words start with an ASCII letter, digit or `_` (its trimmer sees to it), so
        // every piece is a new branch of the tree from its first character on: the branches
        // join mdBook's root as they are. (Reading mdBook's tree into elasticlunr's own type
        // instead took most of a second.)
        let Value::Object(branches) = serde_json::to_value(pieces)?["root"].take() else {
            bail!("elasticlunr's inverted index has no root");
        };
        let root = inverted["root"]
            .as_object_mut()
            .with_context(|| format!("the search index's {field} field has no root"))?;
        for (first, branch) in branches {
            if first == "docs" || first == "df" {
                continue;
            }
            if root.insert(first.clone(), branch).is_some() {
                bail!(
                    "mdBook indexed a {field} word that starts with {first}: the pieces would hide it"
                );
            }
        }
    }
    let escaped = serde_json::to_string(&json)?
        .replace('\\', "\\\\")
        .replace('\'', "\\'");
    let class: String = CJK_RANGES
        .iter()
        .map(|&(low, high)| format!("\\u{:04x}-\\u{:04x}", u32::from(low), u32::from(high)))
        .collect();
    let query_side = QUERY_SIDE.replace("@CJK@", &class);
    fs::write(&file, format!("{query_side}{PREFIX}{escaped}{SUFFIX}"))
        .with_context(|| format!("writing {}", file.display()))
}

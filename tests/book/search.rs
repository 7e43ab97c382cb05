//! The book's search finds the Chinese it quotes, and finds English exactly as mdBook's own
//! index does. The searches run here as the browser runs them: elasticlunr.js 0.9.5's
//! `Index.search` with the options mdBook wrote, on the index file the book ships.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use book_tool::search::{cjk_pieces, index_file, is_cjk, read_index};
use regex::Regex;
use serde_json::Value;

use super::{rendered, root, scratch_dir};

/// The book as mdBook alone renders it, without the book's Chinese search: what a reader had
/// before it, and what English search must still match.
fn stock_site() -> &'static Path {
    static SITE: OnceLock<PathBuf> = OnceLock::new();
    SITE.get_or_init(|| {
        let dest = scratch_dir("stock-site");
        let mut book = mdbook_driver::MDBook::load(root()).expect("book.toml loads");
        book.config.build.build_dir = dest.to_path_buf();
        book.build().expect("mdBook renders the book");
        dest.keep()
    })
}

fn index_of(site: &Path) -> Value {
    let file = index_file(site)
        .expect("a readable site")
        .expect("the site has a search index");
    read_index(&file).expect("a search index mdBook 0.5 can load")
}

/// A node of an elasticlunr inverted index: a character of a token per level, and at the end
/// of a token its `docs` (reference → `tf`) and `df`.
fn node<'a>(root: &'a Value, token: &str) -> Option<&'a Value> {
    token
        .chars()
        .try_fold(root, |node, c| node.get(c.to_string()))
}

/// elasticlunr's `expandToken`: every token of the field that starts with `token`.
fn expanded(root: &Value, token: &str) -> Vec<String> {
    fn walk(node: &Value, token: String, found: &mut Vec<String>) {
        if node["df"].as_f64().unwrap_or(0.0) > 0.0 {
            found.push(token.clone());
        }
        for (key, child) in node.as_object().into_iter().flatten() {
            if key != "docs" && key != "df" {
                walk(child, format!("{token}{key}"), found);
            }
        }
    }
    let mut found = Vec::new();
    if let Some(start) = node(root, token).filter(|_| !token.is_empty()) {
        walk(start, token.to_string(), &mut found);
    }
    found
}

/// The page of every result the searcher shows for the query `tokens` (after the query side's
/// tokenizer and pipeline), best first: a port of elasticlunr.js 0.9.5's `Index.search` and
/// `fieldSearch` (tf-idf, field-length norm, 0.15 for a prefix match, coordination norm, field
/// boosts, `bool` and `expand`), cut at mdBook's `limit_results`.
fn shown(index: &Value, tokens: &[String]) -> Vec<String> {
    let options = &index["search_options"];
    let and = options["bool"] == "AND";
    let expand = options["expand"].as_bool().unwrap_or(false);
    let store = &index["index"]["documentStore"];
    let documents = store["length"].as_f64().expect("a document count");
    let utf16 = |s: &str| s.encode_utf16().count() as f64;
    let mut total = BTreeMap::<u64, f64>::new();
    for (field, field_options) in options["fields"].as_object().expect("search fields") {
        let boost = field_options["boost"].as_f64().unwrap_or(1.0);
        if boost == 0.0 {
            continue;
        }
        let tree = &index["index"]["index"][field]["root"];
        let mut scores: Option<BTreeMap<String, f64>> = None;
        let mut exact = BTreeMap::<String, f64>::new();
        for token in tokens {
            let candidates = if expand {
                expanded(tree, token)
            } else {
                vec![token.clone()]
            };
            let mut these = BTreeMap::<String, f64>::new();
            for candidate in &candidates {
                let Some(found) = node(tree, candidate) else {
                    continue;
                };
                let df = found["df"].as_f64().unwrap_or(0.0);
                let idf = 1.0 + (documents / (df + 1.0)).ln();
                for (doc, posting) in found["docs"].as_object().into_iter().flatten() {
                    if and && scores.as_ref().is_some_and(|s| !s.contains_key(doc)) {
                        continue;
                    }
                    if candidate == token {
                        *exact.entry(doc.clone()).or_default() += 1.0;
                    }
                    let tf = posting["tf"].as_f64().unwrap_or(0.0);
                    let length = store["docInfo"][doc][field].as_f64().unwrap_or(0.0);
                    let norm = if length == 0.0 {
                        1.0
                    } else {
                        1.0 / length.sqrt()
                    };
                    let prefix = if candidate == token {
                        1.0
                    } else {
                        0.15 * (1.0 - (utf16(candidate) - utf16(token)) / utf16(candidate))
                    };
                    *these.entry(doc.clone()).or_default() += tf * idf * norm * prefix;
                }
            }
            scores = Some(match scores {
                None => these,
                Some(before) if and => these
                    .into_iter()
                    .filter_map(|(doc, s)| before.get(&doc).map(|b| (doc, b + s)))
                    .collect(),
                Some(mut before) => {
                    for (doc, s) in these {
                        *before.entry(doc).or_default() += s;
                    }
                    before
                }
            });
        }
        for (doc, score) in scores.unwrap_or_default() {
            let coordination = exact.get(&doc).map_or(1.0, |n| n / tokens.len() as f64);
            let reference = doc.parse().expect("a numeric document reference");
            *total.entry(reference).or_default() += score * coordination * boost;
        }
    }
    // JavaScript visits numeric keys in ascending order, and its sort is stable.
    let mut ranked: Vec<(u64, f64)> = total.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let limit = index["results_options"]["limit_results"]
        .as_u64()
        .expect("limit_results") as usize;
    ranked
        .into_iter()
        .take(limit)
        .map(|(reference, _)| {
            let url = index["doc_urls"][reference as usize]
                .as_str()
                .expect("a URL");
            url.split('#').next().unwrap_or(url).to_string()
        })
        .collect()
}

/// Every Chinese phrase the book quotes, with the page that quotes it. A phrase is a maximal
/// run of CJK characters (Han, kana, Hangul: `is_cjk`) in the text of a page the search
/// covers, read as mdBook reads a page for its index: without `<script>` and `<style>`, and
/// with a word break where an element starts.
fn phrases(site: &Path, index: &Value) -> BTreeSet<(String, String)> {
    let hidden = Regex::new(r"(?s)<script\b.*?</script>|<style\b.*?</style>").unwrap();
    let closing = Regex::new(r"</[^>]*>").unwrap();
    let opening = Regex::new(r"<[^>]*>").unwrap();
    let pages: BTreeSet<&str> = index["doc_urls"]
        .as_array()
        .expect("doc_urls")
        .iter()
        .filter_map(|url| url.as_str()?.split('#').next())
        .collect();
    let mut found = BTreeSet::new();
    for page in pages {
        let html = fs::read_to_string(site.join(page)).expect("a page the index names");
        let main = html
            .split_once("<main>")
            .and_then(|(_, rest)| rest.split_once("</main>"))
            .map_or(html.as_str(), |(main, _)| main);
        let text = hidden.replace_all(main, "");
        let text = closing.replace_all(&text, "");
        let text = opening.replace_all(&text, " ");
        for phrase in text.split(|c: char| !is_cjk(c)).filter(|p| !p.is_empty()) {
            found.insert((page.to_string(), phrase.to_string()));
        }
    }
    found
}

/// The phrases of `site` whose page is not among the results shown when a reader searches
/// for the phrase there. The query side turns a phrase into its CJK pieces (its English
/// tokenizer gives nothing a phrase of CJK characters alone keeps).
fn missed(site: &Path) -> (usize, Vec<String>) {
    let index = index_of(site);
    let phrases = phrases(site, &index);
    let missed = phrases
        .iter()
        .filter(|(page, phrase)| !shown(&index, &cjk_pieces(phrase)).contains(page))
        .map(|(page, phrase)| format!("{page}: {phrase}"))
        .collect();
    (phrases.len(), missed)
}

#[test]
fn every_chinese_phrase_the_book_quotes_finds_its_page() {
    let index = index_of(rendered());
    let quoted: BTreeSet<String> = phrases(rendered(), &index)
        .into_iter()
        .map(|(_, phrase)| phrase)
        .collect();
    for quote in ["输入错误请重试", "我收到了", "信用量"] {
        assert!(quoted.contains(quote), "the check does not see {quote}");
    }
    let (_, missed) = missed(rendered());
    assert!(
        missed.is_empty(),
        "searching for these does not show their page:\n{}",
        missed.join("\n")
    );
}

#[test]
fn the_phrase_check_fails_on_mdbooks_own_index() {
    let (count, missed) = missed(stock_site());
    assert_eq!(
        missed.len(),
        count,
        "mdBook's own index found a Chinese phrase: {missed:?}"
    );
}

/// Everything in the book's index but the tokens that start with a CJK character (those are
/// the pieces: mdBook's words start with an ASCII letter, digit or `_`) is mdBook's: the same
/// words and postings, sections, field lengths and options. An English query never reaches a
/// piece, so it gets the results it got from mdBook, in the same order.
#[test]
fn english_search_finds_what_mdbooks_own_index_finds() {
    let stock = index_of(stock_site());
    let mut ours = index_of(rendered());
    let mut pieces = 0;
    for tree in ours["index"]["index"]
        .as_object_mut()
        .expect("fields")
        .values_mut()
    {
        let root = tree["root"].as_object_mut().expect("a root node");
        let before = root.len();
        root.retain(|key, _| !key.chars().all(is_cjk));
        pieces += before - root.len();
    }
    assert!(pieces > 0, "the book's index has no CJK pieces");
    let differ: Vec<&String> = stock
        .as_object()
        .expect("an index object")
        .keys()
        .filter(|key| ours[key.as_str()] != stock[key.as_str()])
        .collect();
    assert!(
        differ.is_empty() && ours == stock,
        "beyond the CJK pieces, the book's index differs from mdBook's in {differ:?}"
    );
}

#[test]
fn a_run_of_cjk_characters_gives_its_pairs_and_its_last_character() {
    assert_eq!(
        cjk_pieces("“我收到了”, GBK 编码 한국어 かな 二"),
        [
            "我收", "收到", "到了", "了", "编码", "码", "한국", "국어", "어", "かな", "な", "二"
        ]
    );
}

//! S2.2: the notes' chat decodes GBK first and falls back to UTF-8. GBK accepts
//! most UTF-8 bytes without an error, so that order turns UTF-8 text into the
//! wrong characters silently.

use std::borrow::Cow;

use encoding_rs::GBK;

fn main() {
    let text = "我收到了";
    let utf8 = text.as_bytes();
    let (gbk, _, _) = GBK.encode(text);
    println!("{text} in UTF-8: {}", hex(utf8));
    println!("{text} in GBK:   {}", hex(&gbk));

    // ANCHOR: gbk_first
    println!("GBK first, as the notes do:");
    for (name, bytes) in [("UTF-8", utf8), ("GBK", &gbk[..])] {
        match GBK.decode_without_bom_handling_and_without_replacement(bytes) {
            Some(decoded) => println!(
                "  {name} bytes -> {decoded} (decoded as GBK, no error)"
            ),
            None => println!("  {name} bytes -> not GBK"),
        }
    }
    // ANCHOR_END: gbk_first

    println!("UTF-8 first, as this book does:");
    for (name, bytes) in [("UTF-8", utf8), ("GBK", &gbk[..])] {
        let (decoded, encoding) = decode(bytes);
        println!("  {name} bytes -> {decoded} (decoded as {encoding})");
    }
}

// ANCHOR: decode
/// Strict UTF-8 first: valid UTF-8 almost never happens by accident in GBK
/// text, while GBK accepts most UTF-8 byte sequences (as the first loop shows),
/// so only this order is safe.
fn decode(bytes: &[u8]) -> (Cow<'_, str>, &'static str) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (Cow::Borrowed(text), "UTF-8");
    }
    match GBK.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(text) => (text, "GBK"),
        None => (String::from_utf8_lossy(bytes), "not UTF-8 or GBK"),
    }
}
// ANCHOR_END: decode

fn hex(bytes: &[u8]) -> String {
    let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    pairs.join(" ")
}

//! S2.2: the notes' chat decodes GBK first and falls back to UTF-8. GBK accepts
//! most UTF-8 bytes without an error, so that order turns UTF-8 text into the
//! wrong characters silently. UTF-8 first is better, and still a guess: short
//! GBK text can be valid UTF-8.

use std::process::ExitCode;

use clap::Parser;
use decode_order::decode;
use encoding_rs::GBK;

/// Encode Chinese text in UTF-8 and in GBK, then decode the bytes in both
/// orders (GBK first, as the notes do, and UTF-8 first, as this book does).
#[derive(Parser)]
struct Args {}

fn main() -> ExitCode {
    Args::parse();
    for text in ["我收到了", "谢谢"] {
        show(text);
    }
    ExitCode::SUCCESS
}

fn show(text: &str) {
    let utf8 = text.as_bytes();
    let (gbk, _, _) = GBK.encode(text);
    println!("{text} in UTF-8: {}", hex(utf8));
    println!("{text} in GBK:   {}", hex(&gbk));

    // ANCHOR: gbk_first
    println!("  GBK first, as the notes do:");
    for (name, bytes) in [("UTF-8", utf8), ("GBK", &gbk[..])] {
        match GBK.decode_without_bom_handling_and_without_replacement(bytes) {
            Some(decoded) => println!(
                "    {name} bytes -> {decoded} (decoded as GBK, no error)"
            ),
            None => println!("    {name} bytes -> not GBK"),
        }
    }
    // ANCHOR_END: gbk_first

    println!("  UTF-8 first, as this book does:");
    for (name, bytes) in [("UTF-8", utf8), ("GBK", &gbk[..])] {
        let (decoded, encoding) = decode(bytes);
        let verdict = if decoded == text { "right" } else { "WRONG" };
        println!(
            "    {name} bytes -> {decoded} (decoded as {encoding}: {verdict})"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    pairs.join(" ")
}

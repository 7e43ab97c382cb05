//! S2.2: the decode order the book's UDP listings share (udp-chat, udp-broadcast):
//! strict UTF-8 first, then GBK. A heuristic, not a proof: see `decode`.

use std::borrow::Cow;

use encoding_rs::GBK;

// ANCHOR: decode
/// Strict UTF-8 first, then strict GBK. A guess, since the bytes do not say
/// which encoding made them: GBK accepts most UTF-8 byte sequences, so the
/// other order misreads UTF-8 often; UTF-8 rejects most GBK text, but not all
/// of it (short text can happen to be valid UTF-8, and is then misread).
pub fn decode(bytes: &[u8]) -> (Cow<'_, str>, &'static str) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (Cow::Borrowed(text), "UTF-8");
    }
    match GBK.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(text) => (text, "GBK"),
        None => (String::from_utf8_lossy(bytes), "not UTF-8 or GBK"),
    }
}
// ANCHOR_END: decode

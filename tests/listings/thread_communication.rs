//! Chapter 7, communication between threads (S8.1).

use crate::harness::{assert_snapshot, compile_error, listing};

#[test]
fn move_through_channel_moves_the_buffer_without_copying() {
    let transcript = listing("move-through-channel").spawn().finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    assert!(
        text.contains(r#"the worker changed the batch it owned: ["GET /", "GET /ABOUT"]"#),
        "{text}"
    );
    assert!(
        text.contains("the Vec's heap buffer all the way, never copied: true"),
        "{text}"
    );
    assert_snapshot!(transcript, "run");
}

#[test]
fn move_through_channel_use_after_send_does_not_compile() {
    let transcript = compile_error(
        "listings/07-thread-communication/move-through-channel/does-not-compile/use-after-send.rs",
    );
    assert!(
        transcript.text.contains("error[E0382]"),
        "{}",
        transcript.text
    );
    assert_snapshot!(transcript, "does-not-compile");
}

#[test]
fn share_or_borrow_counts_owners_and_lends() {
    let transcript = listing("share-or-borrow").spawn().finish();
    let text = &transcript.text;
    assert!(transcript.status.success(), "{text}");
    for line in [
        "owners before the threads: 1",
        "owners while 3 threads run: 4",
        "owners after join: 1",
        "scoped threads summed 2560 + 4224",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    assert_snapshot!(transcript, "run");
}

#[test]
fn share_or_borrow_rc_cannot_be_sent() {
    let transcript =
        compile_error("listings/07-thread-communication/share-or-borrow/does-not-compile/rc.rs");
    let text = &transcript.text;
    assert!(text.contains("error[E0277]"), "{text}");
    assert!(
        text.contains("cannot be sent between threads safely"),
        "{text}"
    );
    assert_snapshot!(transcript, "rc-does-not-compile");
}

#[test]
fn share_or_borrow_refcell_cannot_be_shared() {
    let transcript = compile_error(
        "listings/07-thread-communication/share-or-borrow/does-not-compile/refcell.rs",
    );
    let text = &transcript.text;
    assert!(text.contains("error[E0277]"), "{text}");
    assert!(
        text.contains("cannot be shared between threads safely"),
        "{text}"
    );
    assert_snapshot!(transcript, "refcell-does-not-compile");
}

//! `cargo book serve`, as an author uses it: a page open in the browser reloads when its
//! chapter is saved, the site never answers 404 while it renders again, an editor's swap file
//! changes nothing, and a broken chapter leaves the last good render served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use book_tool::serve::{Event, LIVE_RELOAD_ENDPOINT, is_editors_own};

use super::{Scratch, root, scratch_dir};

/// Long enough for a render on a loaded machine; a working server answers in seconds.
const PATIENCE: Duration = Duration::from_secs(120);

/// The files a render reads, copied so that the test can edit them.
fn copy_of_the_book() -> Scratch {
    let copy = scratch_dir("serve");
    for part in [
        "book.toml",
        "Cargo.toml",
        "src",
        "theme",
        "listings",
        "tests/snapshots",
        "tests/measurements",
    ] {
        copy_tree(&root().join(part), &copy.join(part));
    }
    copy
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("create a folder of the copy");
        for entry in std::fs::read_dir(from).expect("read a folder of the book") {
            let entry = entry.expect("a folder entry");
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).expect("copy a file of the book");
    }
}

/// `GET path`, as a browser would ask; the status and the body.
fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&address, PATIENCE).expect("connect to the server");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("a read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:.200}"));
    (status, response)
}

/// The next event the server reports, or a failure naming what was awaited.
fn next_event(events: &mpsc::Receiver<Event>, server: &Server, awaited: &str) -> Event {
    match events.recv_timeout(PATIENCE) {
        Ok(event) => event,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("no event within {PATIENCE:?} while waiting for {awaited}")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let ended = server.take().map(|server| server.join());
            panic!("the server ended while waiting for {awaited}: {ended:?}")
        }
    }
}

type Server = std::cell::Cell<Option<thread::JoinHandle<anyhow::Result<()>>>>;

#[test]
fn a_saved_chapter_reloads_its_open_page_and_a_broken_one_keeps_the_last_render() {
    let book = copy_of_the_book();
    let chapter = book.join("src/introduction.md");
    let page = "/introduction.html";

    let (report, events) = mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server: Server = {
        let book = book.to_path_buf();
        Some(thread::spawn(move || {
            book_tool::serve::serve(
                &book,
                "127.0.0.1:0".parse().expect("an address"),
                move |event| {
                    let _ = report.send(event);
                },
                async {
                    let _ = stopped.await;
                },
            )
        }))
        .into()
    };
    let address = match next_event(&events, &server, "the server to start") {
        Event::Serving(address) => address,
        other => panic!("expected the server to start, got {other:?}"),
    };

    let (status, before) = get(address, page);
    assert_eq!(status, 200, "{before:.300}");
    assert!(
        before.contains(LIVE_RELOAD_ENDPOINT),
        "a served page carries the live-reload script"
    );

    // The page's end of the socket, as its script opens it.
    let socket = TcpStream::connect_timeout(&address, PATIENCE).expect("connect the socket");
    socket
        .set_read_timeout(Some(PATIENCE))
        .expect("a read timeout");
    let (mut socket, _) =
        tungstenite::client(format!("ws://{address}/{LIVE_RELOAD_ENDPOINT}"), socket)
            .expect("the live-reload endpoint accepts a websocket");

    // A reader keeps asking for the page while it renders again: mdBook empties its output
    // folder before it writes, so rendering in place would answer some of these with a 404.
    let rendered = Arc::new(AtomicBool::new(false));
    let asking = {
        let rendered = rendered.clone();
        thread::spawn(move || {
            let mut statuses = Vec::new();
            while !rendered.load(Ordering::Relaxed) {
                statuses.push(get(address, page).0);
                // Paced, not hurried: a few hundred requests span a render.
                thread::sleep(Duration::from_millis(5));
            }
            statuses
        })
    };

    // An editor writes its swap file first, then saves the chapter.
    std::fs::write(book.join("src/.introduction.md.swp"), "swap").expect("write a swap file");
    let marker = "A sentence added while the book was served.";
    let mut text = std::fs::read_to_string(&chapter).expect("read the chapter");
    text.push_str(&format!("\n{marker}\n"));
    std::fs::write(&chapter, &text).expect("save the chapter");

    let message = socket.read().expect("a message on the live-reload socket");
    assert_eq!(message, tungstenite::Message::text("reload"));
    match next_event(&events, &server, "the render after the save") {
        Event::Rendered {
            changed, reloaded, ..
        } => {
            assert_eq!(
                changed,
                std::slice::from_ref(&chapter),
                "only the chapter counts as a change, never the swap file"
            );
            assert_eq!(reloaded, 1, "the one open page was told to reload");
        }
        other => panic!("expected a render after the save, got {other:?}"),
    }
    rendered.store(true, Ordering::Relaxed);
    let statuses = asking.join().expect("the asking thread");
    assert!(
        statuses.iter().all(|&status| status == 200),
        "every request during the render was answered with the page: {statuses:?}"
    );
    let (status, after) = get(address, page);
    assert_eq!(status, 200);
    assert!(after.contains(marker), "the page served now has the edit");

    // A broken include fails the render: it is reported, and the last good one stays.
    std::fs::write(&chapter, format!("{text}\n{{{{#include missing.rs}}}}\n"))
        .expect("save a broken chapter");
    match next_event(&events, &server, "the failed render") {
        Event::RenderFailed(error) => assert!(error.contains("missing.rs"), "{error}"),
        other => panic!("expected a failed render, got {other:?}"),
    }
    let (status, still) = get(address, page);
    assert_eq!(status, 200);
    assert!(
        still.contains(marker),
        "the last good render is still served"
    );

    let (status, missing) = get(address, "/no/such/page.html");
    assert_eq!(status, 404);
    assert!(
        missing.contains(r#"<base href="/">"#),
        "the 404 page finds its styles from any depth"
    );

    stop.send(()).expect("the server is still running");
    let served = server.take().expect("the server thread").join();
    assert!(matches!(served, Ok(Ok(()))), "{served:?}");
}

#[test]
fn editors_swap_lock_and_backup_files_are_not_changes() {
    for own in [
        "src/.introduction.md.swp",
        "src/.introduction.md.swx",
        "src/4913",
        "src/.#introduction.md",
        "src/#introduction.md#",
        "src/introduction.md~",
        "src/introduction.md___jb_tmp___",
    ] {
        assert!(
            is_editors_own(Path::new(own)),
            "{own} is an editor's own file"
        );
    }
    for source in [
        "src/introduction.md",
        "src/swp.md",
        "listings/03-tcp/x/src/main.rs",
        "book.toml",
    ] {
        assert!(!is_editors_own(Path::new(source)), "{source} is the book's");
    }
}

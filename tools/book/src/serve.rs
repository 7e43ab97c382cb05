//! `cargo book serve`: the rendered book on 127.0.0.1, rendered again on every change.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use notify::event::{EventKind, ModifyKind};
use notify::{Event, RecursiveMode, Watcher};
use tower_http::services::{ServeDir, ServeFile};

pub fn serve(root: &Path, bind: SocketAddr) -> Result<()> {
    let site = root.join("book");
    rebuild(root, &site);
    let (changed, changes) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(changed)?;
    for watched in ["book.toml", "src", "listings", "tests/snapshots"] {
        watcher
            .watch(&root.join(watched), RecursiveMode::Recursive)
            .with_context(|| format!("cannot watch {watched}"))?;
    }
    let root_for_watch = root.to_path_buf();
    let site_for_watch = site.clone();
    std::thread::spawn(move || {
        while let Ok(event) = changes.recv() {
            if !is_edit(&event) {
                continue;
            }
            // An editor's save is often several events: let them settle, then render once.
            while changes.recv_timeout(Duration::from_millis(200)).is_ok() {}
            rebuild(&root_for_watch, &site_for_watch);
        }
    });

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        println!(
            "serving the book at http://{}/ (Ctrl-C stops)",
            listener.local_addr()?
        );
        let pages = ServeDir::new(&site).not_found_service(ServeFile::new(site.join("404.html")));
        let app = axum::Router::new().fallback_service(pages);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        anyhow::Ok(())
    })
}

/// Renders into the served folder; a broken chapter is reported, and serving goes on.
fn rebuild(root: &Path, site: &Path) {
    let started = Instant::now();
    match book_tool::render(root, site) {
        Ok(()) => println!("rendered in {:.1} s", started.elapsed().as_secs_f64()),
        Err(e) => eprintln!("book-tool: {e:#}"),
    }
}

/// Rendering reads every source file, and reads are events too: only a change counts, or
/// each render would trigger the next.
fn is_edit(event: &notify::Result<Event>) -> bool {
    match event {
        Ok(event) => match event.kind {
            EventKind::Modify(ModifyKind::Metadata(_)) => false,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
            _ => false,
        },
        Err(_) => false,
    }
}

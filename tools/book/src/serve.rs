//! `cargo book serve`: the rendered book on 127.0.0.1, rendered again on every change, and
//! every open page told to reload, the way `mdbook serve` does it: the HTML renderer puts a
//! small script in each page when `output.html.live-reload-endpoint` is set, and the script
//! reloads the page when the server sends "reload" over a websocket on that endpoint.
//!
//! Unlike `mdbook serve`, a render goes to a fresh folder and replaces the served one only
//! when it is complete: mdBook empties its destination first, so a page asked for mid-render
//! would be a 404. A render that fails is reported and the last good one stays served.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use notify::event::{EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::{broadcast, watch};
use tower_http::services::{ServeDir, ServeFile};

/// Where the pages' script connects; mdBook's own serve uses the same name.
pub const LIVE_RELOAD_ENDPOINT: &str = "__livereload";

/// What the server has done, for whoever runs it to report (the command prints it; the
/// tests assert on it).
#[derive(Debug)]
pub enum Event {
    /// Listening, with the book rendered once.
    Serving(SocketAddr),
    /// Rendered again after `changed` changed, now served, and `reloaded` pages told so.
    Rendered {
        changed: Vec<PathBuf>,
        took: Duration,
        reloaded: usize,
    },
    /// A render failed: the previous one is still served, and no page reloads.
    RenderFailed(String),
    /// The watcher reported a problem: a change may have been missed.
    WatchFailed(String),
}

/// Renders the book at `root`, serves it on `bind` until `stop` completes, and renders it
/// again whenever a file the book is made of changes. Blocks; `report` hears every [`Event`].
pub fn serve(
    root: &Path,
    bind: SocketAddr,
    report: impl Fn(Event) + Send + Sync + 'static,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let report = Arc::new(report);
    // Each render gets a folder of its own in here; all go when serving ends.
    let renders = tempfile::Builder::new().prefix("book-serve.").tempdir()?;
    let site = Arc::new(Site {
        renders: renders.path().to_path_buf(),
        generation: Mutex::new(0),
    });
    site.render(root).context("the book does not render")?;

    let watched = watched_paths(root)?;
    let (changes_tx, changes) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(changes_tx)?;
    for path in &watched {
        watcher
            .watch(path, RecursiveMode::Recursive)
            .with_context(|| format!("cannot watch {}", path.display()))?;
    }

    let (reload, _) = broadcast::channel(1);
    let rebuilder = {
        let (root, site, reload, report) = (
            root.to_path_buf(),
            site.clone(),
            reload.clone(),
            report.clone(),
        );
        std::thread::spawn(move || {
            rebuild_on_change(&root, &site, &changes, &|event| {
                if let Event::Rendered { .. } = event {
                    // A page that is not connected at this moment loads the new render anyway.
                    let reloaded = reload.send(()).unwrap_or(0);
                    report(with_reloaded(event, reloaded));
                } else {
                    report(event);
                }
            })
        })
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        report(Event::Serving(listener.local_addr()?));

        // Open websockets would keep a graceful shutdown waiting forever: they end on `stopped`.
        let (stopping, stopped) = watch::channel(false);
        let app = Router::new()
            .route(&format!("/{LIVE_RELOAD_ENDPOINT}"), get(live_reload))
            .fallback(page)
            .with_state(Shared {
                site: site.clone(),
                reload,
                stopped: stopped.clone(),
            });
        let mut stopped_server = stopped;
        tokio::spawn(async move {
            stop.await;
            let _ = stopping.send(true);
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped_server.wait_for(|stopped| *stopped).await;
            })
            .await?;
        anyhow::Ok(())
    });

    // The rebuilder ends when the watcher, its only sender, is gone; wait for a render in
    // progress to finish before its folder is removed.
    drop(watcher);
    let _ = rebuilder.join();
    served
}

fn with_reloaded(event: Event, clients: usize) -> Event {
    match event {
        Event::Rendered { changed, took, .. } => Event::Rendered {
            changed,
            took,
            reloaded: clients,
        },
        other => other,
    }
}

/// The book's sources as mdBook's serve watches them: `book.toml`, the chapters, the theme
/// and `build.extra-watch-dirs` (the listings and their recorded outputs).
fn watched_paths(root: &Path) -> Result<Vec<PathBuf>> {
    let book = mdbook_driver::MDBook::load(root)?;
    let mut paths = vec![root.join("book.toml"), book.source_dir()];
    paths.push(book.theme_dir());
    paths.extend(
        book.config
            .build
            .extra_watch_dirs
            .iter()
            .map(|dir| root.join(dir)),
    );
    Ok(paths.into_iter().filter(|path| path.exists()).collect())
}

/// The served renders: `renders/<generation>`, the highest complete one served.
struct Site {
    renders: PathBuf,
    generation: Mutex<u64>,
}

impl Site {
    /// Renders into a new folder and serves it once complete. The folder before the one it
    /// replaces is removed: the one it replaces may still be answering a request.
    fn render(&self, root: &Path) -> Result<()> {
        let next = *self.generation.lock().unwrap_or_else(|e| e.into_inner()) + 1;
        let dest = self.renders.join(next.to_string());
        let settings = [
            ("output.html.live-reload-endpoint", LIVE_RELOAD_ENDPOINT),
            // The 404 page links its styles from the site's root, wherever the miss was.
            ("output.html.site-url", "/"),
        ]
        .map(|(key, value)| (key.to_string(), value.to_string()));
        if let Err(e) = crate::render_with(root, &dest, &settings) {
            let _ = std::fs::remove_dir_all(&dest);
            return Err(e);
        }
        *self.generation.lock().unwrap_or_else(|e| e.into_inner()) = next;
        if next > 2 {
            let _ = std::fs::remove_dir_all(self.renders.join((next - 2).to_string()));
        }
        Ok(())
    }

    fn current(&self) -> PathBuf {
        let generation = *self.generation.lock().unwrap_or_else(|e| e.into_inner());
        self.renders.join(generation.to_string())
    }
}

#[derive(Clone)]
struct Shared {
    site: Arc<Site>,
    reload: broadcast::Sender<()>,
    stopped: watch::Receiver<bool>,
}

/// A file of the current render, or its 404 page with status 404.
async fn page(State(shared): State<Shared>, request: Request) -> Response {
    let site = shared.site.current();
    let mut files = ServeDir::new(&site).not_found_service(ServeFile::new(site.join("404.html")));
    match files.try_call(request).await {
        Ok(response) => response.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A page's live-reload socket: "reload" after the next render, then closed.
async fn live_reload(State(shared): State<Shared>, upgrade: WebSocketUpgrade) -> Response {
    // Subscribed before the upgrade: a render that ends while it completes is not missed.
    let mut reloads = shared.reload.subscribe();
    let mut stopped = shared.stopped;
    upgrade.on_upgrade(move |mut socket: WebSocket| async move {
        let reload = tokio::select! {
            received = reloads.recv() => received.is_ok()
                || matches!(received, Err(broadcast::error::RecvError::Lagged(_))),
            () = closed_by_page(&mut socket) => false,
            _ = stopped.wait_for(|stopped| *stopped) => false,
        };
        if reload {
            let _ = socket.send(Message::text("reload")).await;
        }
        let _ = socket.send(Message::Close(None)).await;
    })
}

/// Completes when the page closes its socket (it sends nothing else).
async fn closed_by_page(socket: &mut WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        if let Message::Close(_) = message {
            break;
        }
    }
}

/// Renders again after each change, until the watcher goes away.
fn rebuild_on_change(
    root: &Path,
    site: &Site,
    changes: &mpsc::Receiver<notify::Result<notify::Event>>,
    report: &dyn Fn(Event),
) {
    while let Ok(first) = changes.recv() {
        let mut changed = Vec::new();
        note_change(first, &mut changed, report);
        // An editor's save is often several events: let them settle, then render once.
        while let Ok(more) = changes.recv_timeout(Duration::from_millis(200)) {
            note_change(more, &mut changed, report);
        }
        if changed.is_empty() {
            continue;
        }
        let started = Instant::now();
        match site.render(root) {
            Ok(()) => report(Event::Rendered {
                changed,
                took: started.elapsed(),
                reloaded: 0,
            }),
            Err(e) => report(Event::RenderFailed(format!("{e:#}"))),
        }
    }
}

/// Adds the paths an event changed to `changed`, unless they are an editor's own files or
/// the event is not a change (rendering reads every source, and reads are events too).
fn note_change(
    event: notify::Result<notify::Event>,
    changed: &mut Vec<PathBuf>,
    report: &dyn Fn(Event),
) {
    let event = match event {
        Ok(event) => event,
        Err(e) => return report(Event::WatchFailed(e.to_string())),
    };
    let is_change = match event.kind {
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        _ => false,
    };
    if !is_change {
        return;
    }
    for path in event.paths {
        if !is_editors_own(&path) && !changed.contains(&path) {
            changed.push(path);
        }
    }
}

/// Files an editor writes beside the one being edited: swap, lock, backup and probe files.
/// Changing one changes nothing in the book.
pub fn is_editors_own(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return false;
    };
    let vim_swap = name.starts_with('.')
        && [".swp", ".swo", ".swx"]
            .iter()
            .any(|suffix| name.ends_with(suffix));
    // Vim checks it may write in a folder by creating and deleting a file named 4913.
    let vim_probe = name == "4913";
    let emacs = name.starts_with(".#") || (name.starts_with('#') && name.ends_with('#'));
    let backup = name.ends_with('~');
    let jetbrains = name.ends_with("___jb_tmp___") || name.ends_with("___jb_old___");
    vim_swap || vim_probe || emacs || backup || jetbrains
}

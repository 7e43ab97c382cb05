//! `cargo book build` renders the book into `book/`; `cargo book serve` also serves it on
//! 127.0.0.1 and renders it again whenever a chapter, a listing or a snapshot changes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use book_tool::serve::Event;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Render or serve the book")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render the book as a static site.
    Build {
        /// Where to write the site.
        #[arg(long, default_value = "book")]
        dest: PathBuf,
    },
    /// Render the book, serve it, and render it again on every change.
    Serve {
        /// Address to serve on. The default is reachable from this machine only.
        #[arg(long, default_value = "127.0.0.1:3000")]
        bind: SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = book_tool::root();
    let result = match cli.command {
        Command::Build { dest } => build(&root, &dest),
        Command::Serve { bind } => serve(&root, bind),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("book-tool: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn build(root: &Path, dest: &Path) -> Result<()> {
    // A relative destination is relative to where the reader typed the command.
    let dest = std::env::current_dir()?.join(dest);
    book_tool::render(root, &dest)?;
    println!("rendered the book into {}", dest.display());
    Ok(())
}

fn serve(root: &Path, bind: SocketAddr) -> Result<()> {
    // Changed paths are printed from the book's folder.
    let root = root.canonicalize()?;
    let shown = root.clone();
    book_tool::serve::serve(&root, bind, move |event| print(&shown, event), stopped())
}

fn print(root: &Path, event: Event) {
    match event {
        Event::Serving(address) => {
            println!("serving the book at http://{address}/ (Ctrl-C stops)");
        }
        Event::Rendered {
            changed,
            took,
            reloaded,
        } => {
            let changed: Vec<_> = changed
                .iter()
                .map(|path| {
                    path.strip_prefix(root)
                        .unwrap_or(path)
                        .display()
                        .to_string()
                })
                .collect();
            println!(
                "{} changed: rendered in {:.1} s, {reloaded} open page(s) reloaded",
                changed.join(", "),
                took.as_secs_f64()
            );
        }
        Event::RenderFailed(e) => eprintln!("book-tool: still serving the last good render: {e}"),
        Event::WatchFailed(e) => eprintln!("book-tool: watching for changes: {e}"),
    }
}

/// Ctrl-C, or `kill`: the server ends and removes its renders either way.
async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

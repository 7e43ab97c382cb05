//! `cargo book build` renders the book into `book/`; `cargo book serve` also serves it on
//! 127.0.0.1 and renders it again whenever a chapter, a listing or a snapshot changes.
//! `cargo book pdf` and `cargo book archive` make the offline copies: the whole book as a PDF,
//! and every listing as a crate that builds on its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use book_tool::child::{Interrupt, Interrupted};
use book_tool::serve::Event;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Render, serve, print or pack the book")]
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
    /// Print the whole book into one PDF, through headless Chromium.
    Pdf {
        /// Where to write the PDF.
        #[arg(long, default_value = "book.pdf")]
        out: PathBuf,
    },
    /// Pack every listing as a crate that builds outside this workspace.
    Archive {
        /// Where to write the archive.
        #[arg(long, default_value = "listings.tar.gz")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = book_tool::root();
    let result = match cli.command {
        Command::Build { dest } => build(&root, &dest),
        Command::Serve { bind } => serve(&root, bind),
        Command::Pdf { out } => pdf(&root, &out),
        Command::Archive { out } => archive(&root, &out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // As a shell reports a program the signal ended: 128 + its number.
        Err(ref e) if let Some(Interrupted(signal)) = e.downcast_ref() => {
            eprintln!("book-tool: interrupted");
            ExitCode::from(u8::try_from(128 + signal).unwrap_or(1))
        }
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
    let interrupt = Interrupt::catch()?;
    // Changed paths are printed from the book's folder.
    let root = root.canonicalize()?;
    let shown = root.clone();
    book_tool::serve::serve(
        &root,
        bind,
        move |event| print(&shown, event),
        stopped(interrupt),
    )
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

/// Ctrl-C, or `kill`: the server ends and removes its renders either way, also when the
/// signal comes during the first render (caught from the start, it is seen once that render
/// is done).
async fn stopped(interrupt: Interrupt) {
    while !interrupt.is_set() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn pdf(root: &Path, out: &Path) -> Result<()> {
    // Before rendering: a reader without a browser learns it at once.
    let Some(browser) = book_tool::pdf::find_browser() else {
        anyhow::bail!(book_tool::pdf::NO_BROWSER);
    };
    if book_tool::pdf::chinese_font_installed() == Some(false) {
        eprintln!(
            "book-tool: no font with Chinese glyphs is installed: the notes' Chinese will print \
             as boxes (apt-get install fonts-noto-cjk)"
        );
    }
    let interrupt = Interrupt::catch()?;
    let out = std::env::current_dir()?.join(out);
    let site = tempfile::Builder::new().prefix("book-site.").tempdir()?;
    book_tool::render(root, site.path())?;
    interrupt.check()?;
    book_tool::pdf::print(site.path(), &out, &browser, &interrupt)?;
    println!("printed the book into {}", out.display());
    Ok(())
}

fn archive(root: &Path, out: &Path) -> Result<()> {
    let interrupt = Interrupt::catch()?;
    let out = std::env::current_dir()?.join(out);
    book_tool::archive::write(root, &out, &interrupt)?;
    println!("packed every listing into {}", out.display());
    Ok(())
}

//! `cargo book build` renders the book into `book/`; `cargo book serve` also serves it on
//! 127.0.0.1 and renders it again whenever a chapter, a listing or a snapshot changes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod serve;

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
        Command::Serve { bind } => serve::serve(&root, bind),
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

//! S11.1: the async counterpart of chapter 3's threaded server. Every
//! connection is a task, not a thread; each line a client sends comes back to
//! it. SKELETON: to be completed (timeouts, resets, half-close, shutdown).

use std::io;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Parser;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Echo every line each client sends, many clients at once, on tokio.
#[derive(Parser)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7777")]
    bind: SocketAddr,
    /// Connections the kernel may queue before `accept` takes them.
    #[arg(long, default_value_t = 1024)]
    backlog: i32,
    /// Print only the address, not a line per connection (for load tests).
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: Args) -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(serve(args))
}

async fn serve(args: Args) -> Result<()> {
    let listener = listen(args.bind, args.backlog)
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(connection) => connection,
                    Err(e) => {
                        println!("accept failed: {e}");
                        continue;
                    }
                };
                let quiet = args.quiet;
                tokio::spawn(async move {
                    match echo(stream).await {
                        Ok(()) if quiet => {}
                        Ok(()) => println!("{peer} closed the connection"),
                        Err(e) => println!("{peer}: {e}"),
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    println!("shutting down");
    Ok(())
}

fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    TcpListener::from_std(socket.into())
}

async fn echo(stream: TcpStream) -> io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        writer.write_all(&line).await?;
    }
}

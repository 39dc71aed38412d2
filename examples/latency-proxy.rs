//! A TCP proxy that adds latency, for measuring SMTP clients as they are
//! used across a real network (this machine's kernel has no netem): every
//! chunk read from one side is written to the other DELAY_MS later, in
//! order, in each direction, so a round trip costs 2 x DELAY_MS. Both
//! sockets use `TCP_NODELAY`, so the proxy adds no Nagle delay of its own.
//!
//!     cargo run --release --example latency-proxy -- LISTEN_PORT TARGET_HOST:PORT DELAY_MS
//!
//! Runs until killed; `scripts/bench-latency` starts and stops it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, target, delay] = args.as_slice() else {
        return Err("usage: latency-proxy LISTEN_PORT TARGET_HOST:PORT DELAY_MS".into());
    };
    let delay = Duration::from_millis(delay.parse()?);
    let listener = TcpListener::bind(("127.0.0.1", listen.parse::<u16>()?)).await?;
    loop {
        let (client, _) = listener.accept().await?;
        let target = target.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&target).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::join!(
                forward(client_read, server_write, delay),
                forward(server_read, client_write, delay)
            );
        });
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read; a close is
/// passed on after the same delay.
async fn forward(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (chunks, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = from.read(&mut buffer).await.unwrap_or(0);
            // An empty chunk stands for the close.
            if chunks.send((Instant::now() + delay, buffer[..n].to_vec())).is_err() || n == 0 {
                return;
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if chunk.is_empty() || to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

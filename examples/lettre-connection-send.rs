//! The benchmark's best-case lettre client: CONCURRENCY tasks, each with one
//! lettre `AsyncSmtpConnection` on its own `TCP_NODELAY` socket (opened by
//! this program, so Nagle's delay never waits on a delayed ACK), sending one
//! message file to its share of COUNT recipients, one transaction after
//! another on the same connection. This is the most lettre's connection can
//! do; lettre sends MAIL, RCPT and DATA one at a time, waiting for each reply.
//! Plaintext only: `scripts/bench-latency` compares Herald over TLS with
//! Herald in plaintext.
//!
//!     cargo run --release --example lettre-connection-send -- HOST:PORT COUNT CONCURRENCY MESSAGE.eml

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, count, concurrency, message] = args.as_slice() else {
        return Err("usage: lettre-connection-send HOST:PORT COUNT CONCURRENCY MESSAGE.eml".into());
    };
    let count: usize = count.parse()?;
    let concurrency: usize = concurrency.parse()?;
    let body = Arc::new(std::fs::read(message)?);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (server, body, next) = (server.clone(), body.clone(), next.clone());
        tasks.spawn(async move {
            let tcp = TcpStream::connect(&server).await?;
            tcp.set_nodelay(true)?;
            let hello = ClientId::Domain("bench.example.org".into());
            let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello).await?;
            let mut failed = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    break;
                }
                let envelope = Envelope::new(
                    Some("news@bench.example.org".parse()?),
                    vec![format!("reader{i}@example.org").parse()?],
                )?;
                if conn.send(&envelope, &body).await.is_err() {
                    failed += 1;
                }
            }
            let _ = conn.quit().await;
            Ok::<usize, Box<dyn std::error::Error + Send + Sync>>(failed)
        });
    }
    let mut failed = 0;
    while let Some(done) = tasks.join_next().await {
        failed += done?.map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("{count} {elapsed:.3} {failed}");
    if failed > 0 {
        return Err(format!("{failed} sends failed").into());
    }
    Ok(())
}

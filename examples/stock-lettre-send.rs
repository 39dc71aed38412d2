//! The benchmark's reference client: sends one message file to COUNT
//! recipients through lettre's stock `AsyncSmtpTransport` pool, CONCURRENCY
//! sends at once, and prints the elapsed time. `scripts/bench-send` compares
//! Herald's pool with it in the same run.
//!
//!     cargo run --release --example stock-lettre-send -- HOST:PORT COUNT CONCURRENCY MESSAGE.eml

use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, count, concurrency, message] = args.as_slice() else {
        return Err("usage: stock-lettre-send HOST:PORT COUNT CONCURRENCY MESSAGE.eml".into());
    };
    let (host, port) = server.rsplit_once(':').ok_or("HOST:PORT")?;
    let count: usize = count.parse()?;
    let concurrency: usize = concurrency.parse()?;
    let body = Arc::new(std::fs::read(message)?);
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port.parse()?)
        .timeout(Some(Duration::from_secs(60)))
        .pool_config(PoolConfig::new().max_size(concurrency as u32))
        .build();
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let permit = gate.clone().acquire_owned().await?;
        let transport = transport.clone();
        let body = body.clone();
        tasks.spawn(async move {
            let envelope = Envelope::new(
                Some("news@bench.example.org".parse().expect("valid")),
                vec![format!("reader{i}@example.org").parse().expect("valid")],
            )
            .expect("an envelope");
            let sent = transport.send_raw(&envelope, &body).await;
            drop(permit);
            sent.map(|_| ())
        });
    }
    let mut failed = 0;
    while let Some(done) = tasks.join_next().await {
        if done?.is_err() {
            failed += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("{count} {elapsed:.3} {failed}");
    if failed > 0 {
        return Err(format!("{failed} sends failed").into());
    }
    Ok(())
}

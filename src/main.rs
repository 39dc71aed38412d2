//! The `herald` binary: reads `.env`, parses the command line and hands over
//! to the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

// One thread runs every task: sending is I/O-bound, and cross-thread wake-ups
// cost more than they give on small machines (measured: 6,250 vs 7,500
// messages/s on 2 cores). CPU-heavy steps (DKIM signing, folder walks) run
// on the blocking pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    if let Err(e) = herald::config::dotenv::read() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let cli = herald::cli::Cli::parse();
    herald::install_crypto();
    match herald::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

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
    if let Err(e) = read_dotenv() {
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

/// Reads `.env` from the working folder (or the nearest parent that has
/// one) into the environment, if there is one. A line that cannot be read
/// refuses the start, naming the file and the line: a file read halfway
/// would drop every setting below the bad line without a word.
fn read_dotenv() -> Result<(), String> {
    let Some(path) = std::env::current_dir()
        .ok()
        .and_then(|dir| dir.ancestors().map(|d| d.join(".env")).find(|p| p.is_file()))
    else {
        return Ok(());
    };
    dotenvy::from_path(&path).map_err(|e| match e {
        dotenvy::Error::LineParse(snippet, _) => {
            // dotenvy names the part of the line it could not read: find the whole line.
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let found = text.lines().enumerate().find(|(_, l)| {
                let l = l.trim();
                !l.starts_with('#') && l.contains(snippet.trim())
            });
            let (number, line) = found.map_or((0, snippet.as_str()), |(n, l)| (n + 1, l));
            format!(
                "{} line {number}: cannot read `{}`: quote a value that has spaces or special characters, \
                 e.g. KEY=\"two words\"",
                path.display(),
                line.trim_end()
            )
        }
        other => format!("{}: {other}", path.display()),
    })
}

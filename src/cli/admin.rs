//! The store itself: `herald migrate` (and copying one store into another), `herald backup`.

use std::process::ExitCode;

use anyhow::Context;

use crate::app::App;
use crate::store;
use crate::store::Store;

pub(super) async fn cmd_migrate(app: &App) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    let store = migrated(&settings.store_url).await?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Opens the store at `url` with its pending migrations applied, saying which.
pub(super) async fn migrated(url: &str) -> anyhow::Result<Store> {
    let shown = store::display_url(url);
    let (store, applied) = Store::migrate(url)
        .await
        .with_context(|| format!("migrating the store {shown}"))?;
    if applied.is_empty() {
        say!("{shown}: the schema is up to date");
    }
    for m in &applied {
        say!("{shown}: applied migration {:04} ({})", m.version, m.description);
    }
    Ok(store)
}

pub(super) async fn cmd_copy_store(from: &str, to: &str) -> anyhow::Result<ExitCode> {
    let (from_shown, to_shown) = (store::display_url(from), store::display_url(to));
    let source = Store::open(from)
        .await
        .with_context(|| format!("opening the store {from_shown}"))?;
    let target = migrated(to).await?;
    let copies = source
        .copy_into(&target)
        .await
        .with_context(|| format!("copying {from_shown} into {to_shown}"))?;
    let mut mismatched = 0;
    for c in &copies {
        let verdict = if c.source == c.target {
            "ok"
        } else {
            mismatched += 1;
            "MISMATCH"
        };
        say!(
            "  {:<18} {:>10} rows in the source, {:>10} in the target  {verdict}",
            c.table,
            c.source,
            c.target
        );
    }
    source.close().await;
    target.close().await;
    if mismatched > 0 {
        say!("{mismatched} table(s) differ: do not switch store.url to {to_shown}");
        return Ok(ExitCode::FAILURE);
    }
    say!("copied {from_shown} into {to_shown}: every count matches; point store.url at it");
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn cmd_backup(app: &App, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let _settings = &app.settings;
    let store = app.open_store().await?;
    let started = std::time::Instant::now();
    let done = store.backup(file).await;
    store.close().await;
    done?;
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    say!(
        "backed up to {} ({:.1} MiB in {:.1} s); restore by stopping Herald and putting it in place of the store file",
        file.display(),
        size as f64 / 1_048_576.0,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

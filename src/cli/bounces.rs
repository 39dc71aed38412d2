//! `herald bounces`: the bounce ledger listed, and reports read in.

use std::process::ExitCode;

use crate::app::App;
use crate::bounce::Intake;
use crate::bounce::mailbox::{Item, Messages};
use crate::clock;

use super::{BounceKindArg, BouncesAction};

pub(super) async fn cmd_bounces(
    app: &App,
    action: Option<BouncesAction>,
    kind: Option<BounceKindArg>,
    limit: i64,
) -> anyhow::Result<ExitCode> {
    let store = app.open_store().await?;
    match action {
        Some(BouncesAction::Ingest { paths, recipient }) => ingest(app, &store, &paths, recipient.as_deref()).await,
        Some(BouncesAction::Poll) => poll(app, &store).await,
        None => list(&store, kind, limit).await,
    }
}

/// `herald bounces`: the counts by kind and the latest records.
async fn list(store: &crate::store::Store, kind: Option<BounceKindArg>, limit: i64) -> anyhow::Result<ExitCode> {
    let rows = store.bounces(kind.map(Into::into), limit).await?;
    let counts = store.bounce_counts().await?;
    let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    say!(
        "bounces: {}",
        if counts.is_empty() {
            "none recorded".to_string()
        } else {
            counts.join(", ")
        }
    );
    for b in rows {
        let about = match (b.edition_id, b.delivery_id) {
            (Some(e), Some(d)) => format!("edition {e} delivery {d}"),
            _ => "no delivery".to_string(),
        };
        say!(
            "  {}  {:<9} {:<7} {:<36} {:<10} {:<12} {} via {}: {}",
            b.received_at.format("%Y-%m-%d %H:%M UTC"),
            b.kind,
            if b.status.is_empty() { "-" } else { &b.status },
            if b.address.is_empty() {
                "(no address)"
            } else {
                &b.address
            },
            b.matched_by,
            b.action,
            about,
            b.source,
            crate::clean::one_line(&b.diagnostic)
                .chars()
                .take(100)
                .collect::<String>()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `herald bounces ingest`: reports read from files, folders or stdin.
async fn ingest(
    app: &App,
    store: &crate::store::Store,
    paths: &[std::path::PathBuf],
    recipient: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let keys = store.token_keys(&app.tokens).await?;
    let settings = &app.settings;
    let mut intake = Intake::new(store, &keys, &settings.bounces, &settings.site.domain);
    for item in Messages::at(paths, settings.bounces.max_message_bytes)? {
        match item {
            Item::Message { raw, .. } => intake.take(&raw, "file", recipient, clock::now()).await?,
            Item::TooLarge { from } => {
                tracing::warn!(%from, cap_kb = settings.bounces.max_message_bytes / 1024, "skipped: larger than bounces.max_message_kb");
                intake.skipped();
            }
            Item::Unreadable { from, error } => {
                tracing::warn!(%from, %error, "skipped: cannot be read");
                intake.skipped();
            }
        }
    }
    say!("{}", intake.finish(clock::now()).await?);
    Ok(ExitCode::SUCCESS)
}

/// `herald bounces poll`: one poll of the IMAP mailbox.
async fn poll(app: &App, store: &crate::store::Store) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    let Some(imap) = &settings.bounces.imap else {
        anyhow::bail!("no mailbox to poll: set bounces.imap.host (and username, password) in the configuration");
    };
    let keys = store.token_keys(&app.tokens).await?;
    let intake = Intake::new(store, &keys, &settings.bounces, &settings.site.domain);
    let polled = crate::bounce::imap::poll(imap, intake, clock::now()).await?;
    let after = match &imap.move_to {
        Some(folder) => format!("moved to {folder}"),
        None => "flagged seen".to_string(),
    };
    say!("{}; {} message(s) {after}", polled.tally, polled.done);
    Ok(ExitCode::SUCCESS)
}

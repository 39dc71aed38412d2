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
    let Some(BouncesAction::Ingest { paths, recipient }) = action else {
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
        return Ok(ExitCode::SUCCESS);
    };
    let keys = store.token_keys(&app.tokens).await?;
    let settings = &app.settings;
    let mut intake = Intake::new(&store, &keys, &settings.bounces, &settings.site.domain);
    for item in Messages::at(&paths, settings.bounces.max_message_bytes)? {
        match item {
            Item::Message { raw, .. } => intake.take(&raw, "file", recipient.as_deref(), clock::now()).await?,
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
    let t = &intake.finish(clock::now()).await?;
    say!(
        "{} report(s): {} hard, {} soft, {} complaint(s); {} suppressed, {} unsubscribed, {} unmatched; \
         {} auto-repl(ies) and {} not failures ignored, {} unrecognised, {} seen before, {} skipped",
        t.reports,
        t.hard,
        t.soft,
        t.complaints,
        t.suppressed,
        t.unsubscribed,
        t.unmatched,
        t.auto_replies,
        t.not_failures,
        t.unrecognised,
        t.seen_before,
        t.skipped
    );
    Ok(ExitCode::SUCCESS)
}

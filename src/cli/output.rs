//! How commands print: one line at a time to stdout (a closed pipe ends the
//! command quietly), and the reports of ingest, digest and post runs.

use std::io::Write;

use crate::digest;
use crate::ingest;
use crate::mail::message::{self};
use crate::sender::Pause;
use crate::social;
use crate::store::Store;

pub(super) fn emit(line: std::fmt::Arguments<'_>) {
    if let Err(e) = writeln!(std::io::stdout(), "{line}")
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

pub(super) fn print_sources(reports: &[ingest::SourceReport]) {
    for r in reports {
        match &r.error {
            Some(e) => say!("source {}: FAILED: {e} (stored articles kept)", r.source),
            None if r.not_modified => {
                say!("source {}: not modified since the last poll", r.source)
            }
            None => say!(
                "source {}: {} new, {} updated, {} unchanged, {} skipped",
                r.source,
                r.new.len(),
                r.updated,
                r.unchanged,
                r.skipped.len()
            ),
        }
        for a in &r.new {
            say!(
                "  + {} <{}> ({})",
                a.title,
                a.url,
                a.published_at.format("%Y-%m-%d %H:%M UTC")
            );
        }
        for s in &r.skipped {
            say!("  ! skipped {s}");
        }
    }
}

/// Why `count` new articles make no edition of a digest job.
pub(super) fn no_edition_reason(d: &crate::config::DigestJob, count: usize) -> String {
    if count == 0 {
        "no new articles since the last edition (send_when_empty = false)".to_string()
    } else {
        format!(
            "{count} new article(s), fewer than min_articles ({}): no edition, they wait for the next run",
            d.min_articles
        )
    }
}

/// Prints what a digest run did (an edition paused over its error budget
/// as an error); returns why the channel paused, if it did.
pub(super) async fn print_digest(
    store: &Store,
    (job, d): (&crate::config::JobSettings, &crate::config::DigestJob),
    report: &digest::DigestReport,
) -> anyhow::Result<Option<Pause>> {
    let name = &job.name;
    print_sources(&report.sources);
    if let Some(seeded) = &report.seeded {
        say!(
            "list {}: seeded {} subscriber(s) from its seed file",
            d.list,
            seeded.added
        );
    }
    match &report.edition {
        Some(e) => say!(
            "edition #{}: {} article(s) for {} recipient(s), subject {:?} (created in {:.2} s)",
            e.id,
            e.article_count,
            e.recipient_count,
            message::subject_preview(&e.subject),
            report.edition_time.as_secs_f64()
        ),
        None => say!("{}: nothing to send", no_edition_reason(d, report.planned)),
    }
    let s = &report.send;
    if s.recovered_in_doubt > 0 {
        say!(
            "recovered {} delivery(ies) left mid-send by an interrupted run (flagged in doubt)",
            s.recovered_in_doubt
        );
    }
    say!(
        "deliveries: {} sent, {} to retry, {} failed, {} suppressed, {} expired",
        s.sent,
        s.retrying,
        s.failed,
        s.suppressed,
        s.expired
    );
    let secs = report.send_time.as_secs_f64();
    if s.sent > 0 && secs > 0.0 {
        say!("sent in {secs:.2} s ({:.0} messages/s)", s.sent as f64 / secs);
    }
    if s.retrying > 0
        && let Some(at) = store.next_retry_at(name).await?
    {
        say!(
            "next retry at {} (run `herald digest {name}` again, or let the daemon do it)",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    for (edition, reason) in &s.paused_editions {
        eprintln!("ERROR: edition #{edition} PAUSED: {reason}");
        eprintln!(
            "ERROR: its other rows stay queued; check the list and the server's replies (`herald deliveries --state failed`), then `herald resume {edition}`"
        );
    }
    Ok(s.paused.clone())
}

/// Prints what a social run did; returns whether anything failed.
pub(super) fn print_social(report: &social::SocialReport) -> bool {
    print_sources(&report.sources);
    for a in &report.accounts {
        say!(
            "account {}: {} queued, {} skipped, {} posted, {} to retry, {} failed",
            a.account,
            a.queued,
            a.skipped,
            a.posted,
            a.retrying,
            a.failed
        );
        if let Some(at) = a.waiting_until.filter(|_| a.blocked.is_none()) {
            say!(
                "  the rest waits until {} (spacing, daily cap or rate limit)",
                at.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
        if let Some(why) = &a.blocked {
            say!("  WAITING: {why}");
        }
    }
    report.accounts.iter().any(|a| a.failed > 0) || report.sources.iter().any(|s| s.error.is_some())
}

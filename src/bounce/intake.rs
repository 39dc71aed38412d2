//! One report in, the ledger and the list changed: the report is read
//! ([`classify`]), each failed address is tied to the delivery it is about,
//! and the finding is recorded and acted on by the store.
//!
//! A report changes a subscriber only when it names a delivery Herald made:
//! by a VERP token that verifies, by the returned message's Message-ID
//! (edition, delivery and the edition's random nonce must all agree), or by
//! the failed address having been sent to within `match_window_days`.
//! Anything else is kept as `unmatched`: listed, never acted on, so a forged
//! bounce or complaint cannot unsubscribe a reader.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::classify::{Finding, Report, Verdict, classify};
use super::verp;
use super::webhook::Event;
use crate::config::BounceSettings;
use crate::store::{BounceAction, BounceKind, BounceTarget, NewBounce, SoftLimit, Store, StoreError};
use crate::token::TokenKeys;

/// Findings recorded per transaction: one commit for many reports keeps
/// a Maildir of 100,000 from writing the log 100,000 times.
const BATCH: usize = 500;

/// A run of reports: matched as they come, recorded in batches. Call
/// [`Intake::finish`] at the end: it records what is pending.
pub struct Intake<'a> {
    store: &'a Store,
    /// The keys VERP tokens are verified with.
    keys: &'a TokenKeys,
    settings: &'a BounceSettings,
    /// The site's domain: Herald's Message-IDs end in it.
    domain: &'a str,
    soft: SoftLimit,
    /// Findings matched and not yet recorded, each with its report's number in the run.
    pending: Vec<(u64, NewBounce)>,
    tally: Tally,
}

/// What a run of reports did, counted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Editions that drew a new complaint: their rate is checked once, at the end.
    pub complained: std::collections::BTreeSet<i64>,
    pub reports: u64,
    pub hard: u64,
    pub soft: u64,
    pub complaints: u64,
    /// Addresses suppressed (hard bounces and soft streaks).
    pub suppressed: u64,
    /// Subscribers unsubscribed and suppressed for a complaint.
    pub unsubscribed: u64,
    /// Findings tied to no delivery Herald made.
    pub unmatched: u64,
    pub auto_replies: u64,
    pub not_failures: u64,
    pub unrecognised: u64,
    /// Reports recorded before (read again, acted on once).
    pub seen_before: u64,
    /// Messages over `max_message_kb`, or unreadable: skipped.
    pub skipped: u64,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self;
        write!(
            f,
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
        )
    }
}

impl<'a> Intake<'a> {
    pub fn new(store: &'a Store, keys: &'a TokenKeys, settings: &'a BounceSettings, domain: &'a str) -> Intake<'a> {
        Intake {
            store,
            keys,
            settings,
            domain,
            soft: SoftLimit {
                count: settings.soft_limit,
                window: chrono::Duration::from_std(settings.soft_window).expect("a checked window fits"),
            },
            pending: Vec::new(),
            tally: Tally::default(),
        }
    }

    /// The largest report read (`bounces.max_message_kb`).
    pub fn max_message_bytes(&self) -> usize {
        self.settings.max_message_bytes
    }

    /// Counts a message that could not be read (too large, unreadable).
    pub fn skipped(&mut self) {
        self.tally.reports += 1;
        self.tally.skipped += 1;
    }

    /// Reads one report from `source` (`file`, `imap`, ...) and records what
    /// it says. `recipient` is the envelope recipient when the caller knows it
    /// (a pipe transport's `${original_recipient}`): where a VERP token shows.
    pub async fn take(
        &mut self,
        raw: &[u8],
        source: &str,
        recipient: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if raw.len() > self.settings.max_message_bytes {
            warn!(
                source,
                bytes = raw.len(),
                "report skipped: larger than bounces.max_message_kb"
            );
            self.skipped();
            return Ok(());
        }
        let mut report = classify(raw);
        report.sent_to.extend(recipient.map(str::to_string));
        self.record(report, source, now).await
    }

    /// Records one provider event (already authenticated): its finding is
    /// matched by the Message-ID it carries, else by address, like a report's.
    pub async fn take_event(&mut self, event: Event, source: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let report = Report {
            id: event.id,
            verdict: Verdict::Failures(vec![event.finding]),
            sent_to: Vec::new(),
            returned_ids: event.message_id.into_iter().collect(),
        };
        self.record(report, source, now).await
    }

    /// Matches what a report says, each finding to its delivery, and queues
    /// the findings for the next batch.
    async fn record(&mut self, report: Report, source: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.tally.reports += 1;
        let seq = self.tally.reports;
        let findings = match &report.verdict {
            Verdict::Failures(findings) => findings,
            Verdict::AutoReply => {
                self.tally.auto_replies += 1;
                return Ok(());
            }
            Verdict::NoFailure => {
                self.tally.not_failures += 1;
                return Ok(());
            }
            Verdict::Unrecognised => {
                info!(source, report = %report.id, "not a bounce or complaint Herald can read: ignored");
                self.tally.unrecognised += 1;
                return Ok(());
            }
        };
        for finding in findings {
            let (matched_by, target) = self.target(&report, finding, findings.len(), now).await?;
            self.pending.push((
                seq,
                NewBounce {
                    report_id: report.id.clone(),
                    address: finding.address.clone().unwrap_or_default(),
                    kind: finding.kind,
                    status: finding.status.clone(),
                    diagnostic: finding.diagnostic.clone(),
                    source: source.to_string(),
                    matched_by,
                    target,
                },
            ));
        }
        if self.pending.len() >= BATCH {
            self.flush(now).await?;
        }
        Ok(())
    }

    /// Records the pending findings in one transaction and counts what they did.
    async fn flush(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (seqs, batch): (Vec<u64>, Vec<NewBounce>) = self.pending.drain(..).unzip();
        let actions = self.store.record_bounces(&batch, self.soft, now).await?;
        let tally = &mut self.tally;
        let mut recorded_reports = std::collections::BTreeSet::new();
        let mut reports = std::collections::BTreeSet::new();
        for ((seq, b), action) in seqs.into_iter().zip(batch).zip(actions) {
            reports.insert(seq);
            let Some(action) = action else { continue };
            recorded_reports.insert(seq);
            match b.kind {
                BounceKind::Hard => tally.hard += 1,
                BounceKind::Soft => tally.soft += 1,
                BounceKind::Complaint => tally.complaints += 1,
            }
            match action {
                BounceAction::Suppressed => tally.suppressed += 1,
                BounceAction::Unsubscribed => tally.unsubscribed += 1,
                BounceAction::Counted | BounceAction::None => {}
            }
            match &b.target {
                None => {
                    tally.unmatched += 1;
                    info!(source = %b.source, report = %b.report_id, address = %b.address, kind = %b.kind, "unmatched: names no delivery Herald made; kept, not acted on");
                }
                Some(t) => {
                    info!(source = %b.source, report = %b.report_id, address = %t.email, kind = %b.kind, status = %b.status, %action, matched_by = b.matched_by, delivery = t.delivery_id, "bounce recorded");
                    if b.kind == BounceKind::Complaint {
                        tally.complained.insert(t.edition_id);
                    }
                }
            }
        }
        tally.seen_before += reports.difference(&recorded_reports).count() as u64;
        Ok(())
    }

    /// The delivery a finding is about, and how it was found.
    async fn target(
        &self,
        report: &Report,
        finding: &Finding,
        findings: usize,
        now: DateTime<Utc>,
    ) -> Result<(&'static str, Option<BounceTarget>), StoreError> {
        // A token or Message-ID names one delivery, so one recipient: it is
        // this finding's when the report has no other, or the addresses agree.
        let fits = |t: &BounceTarget| {
            findings == 1
                || finding
                    .address
                    .as_deref()
                    .is_none_or(|a| a.eq_ignore_ascii_case(&t.email))
        };
        if let Some(base) = &self.settings.address {
            for to in &report.sent_to {
                if let Some(id) = verp::delivery_of(to, base, self.keys)
                    && let Some(t) = self.store.bounce_target(id).await?
                    && fits(&t)
                {
                    return Ok(("verp", Some(t)));
                }
            }
        }
        for id in &report.returned_ids {
            if let Some((edition, delivery, nonce)) = herald_message_id(id, self.domain)
                && let Some(t) = self.store.bounce_target_by_message(edition, delivery, nonce).await?
                && fits(&t)
            {
                return Ok(("message-id", Some(t)));
            }
        }
        if let Some(address) = &finding.address {
            let since = now - chrono::Duration::from_std(self.settings.match_window).expect("a checked window fits");
            if let Some(t) = self.store.bounce_target_by_address(address, since).await? {
                return Ok(("address", Some(t)));
            }
        }
        Ok(("unmatched", None))
    }

    /// Ends a run of reports: records what is pending, warns about each
    /// edition that drew complaints in it whose complaint rate passes
    /// `complaint_alert_percent`, and says what the run did.
    pub async fn finish(mut self, now: DateTime<Utc>) -> Result<Tally, StoreError> {
        self.flush(now).await?;
        for &edition in &self.tally.complained {
            self.alert_on_complaints(edition).await?;
        }
        Ok(self.tally)
    }

    /// Warns when an edition's complaints pass `complaint_alert_percent` of its sent messages.
    async fn alert_on_complaints(&self, edition: i64) -> Result<(), StoreError> {
        let (complaints, sent) = self.store.edition_complaints(edition).await?;
        let percent = if sent == 0 {
            0.0
        } else {
            complaints as f64 * 100.0 / sent as f64
        };
        if percent > self.settings.complaint_alert_percent {
            warn!(
                edition,
                complaints,
                sent,
                percent = format!("{percent:.2}"),
                threshold = self.settings.complaint_alert_percent,
                "complaint rate above bounces.complaint_alert_percent: mailbox providers start filtering near 0.3%"
            );
        }
        Ok(())
    }
}

/// The edition, delivery and nonce of one of Herald's Message-IDs
/// (`herald.{edition}.{delivery}.{nonce}@{domain}`, brackets taken off).
fn herald_message_id<'a>(id: &'a str, domain: &str) -> Option<(i64, i64, &'a str)> {
    let (local, at) = id.rsplit_once('@')?;
    if !at.eq_ignore_ascii_case(domain) {
        return None;
    }
    let mut parts = local.strip_prefix("herald.")?.split('.');
    let (Some(edition), Some(delivery), Some(nonce), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some((edition.parse().ok()?, delivery.parse().ok()?, nonce))
}

#[cfg(test)]
mod tests {
    use super::herald_message_id;

    #[test]
    fn only_heralds_own_message_ids_on_its_domain_are_read() {
        assert_eq!(
            herald_message_id("herald.12.3456.abc123@news.example.org", "news.example.org"),
            Some((12, 3456, "abc123"))
        );
        assert_eq!(
            herald_message_id("herald.12.3456.abc123@example.net", "news.example.org"),
            None
        );
        assert_eq!(
            herald_message_id("herald.notice.abc@news.example.org", "news.example.org"),
            None
        );
        assert_eq!(herald_message_id("CAF=12@mail.gmail.com", "news.example.org"), None);
    }
}

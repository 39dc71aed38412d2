//! `/metrics`: Prometheus text exposition. Counts come from the store at
//! scrape time (so one-shot commands sharing the store are counted too); job
//! run times come from this process's health record.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::WebState;
use crate::social::credentials;
use crate::store::{Sample, Stats};

/// The window the send rate is averaged over.
const RATE_WINDOW_SECS: i64 = 300;

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One metric family: its help, type and samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[Sample]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for s in samples {
        let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {}", s.value);
        } else {
            let _ = writeln!(out, "{name}{{{}}} {}", labels.join(","), s.value);
        }
    }
}

fn single(value: f64) -> Vec<Sample> {
    vec![Sample {
        labels: Vec::new(),
        value,
    }]
}

/// Per OAuth account: seconds until its access token expires (negative
/// once it has; only where the expiry is known), and whether the platform
/// refused it (its posts wait).
#[derive(Default)]
pub struct Tokens {
    pub expires_in: Vec<Sample>,
    pub refused: Vec<Sample>,
}

async fn tokens(state: &WebState) -> Result<Tokens, crate::store::StoreError> {
    let now = state.clock.now();
    let mut out = Tokens::default();
    for account in &state.app().settings.accounts {
        let Some(token) = credentials::current(&state.store, account).await? else {
            continue;
        };
        let labels = vec![("account", account.name.clone())];
        if let Some(at) = token.expires_at {
            out.expires_in.push(Sample {
                labels: labels.clone(),
                value: (at - now).num_seconds() as f64,
            });
        }
        out.refused.push(Sample {
            labels,
            value: if token.refused().is_some() { 1.0 } else { 0.0 },
        });
    }
    Ok(out)
}

/// The exposition text for `stats`, the accounts' `tokens` and the process's job records.
pub fn render(stats: &Stats, tokens: &Tokens, state: &WebState) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "herald_articles_ingested_total",
        "counter",
        "Articles stored, by source.",
        &stats.articles_by_source,
    );
    family(
        &mut out,
        "herald_editions_total",
        "counter",
        "Digest editions created, by job.",
        &stats.editions_by_job,
    );
    family(
        &mut out,
        "herald_last_edition_timestamp_seconds",
        "gauge",
        "When each job's latest edition was created.",
        &stats.last_edition_by_job,
    );
    family(
        &mut out,
        "herald_deliveries",
        "gauge",
        "Per-recipient deliveries, by job and state.",
        &stats.deliveries_by_state,
    );
    family(
        &mut out,
        "herald_smtp_replies",
        "gauge",
        "Deliveries by the class of the mail server's last reply (2xx, 4xx, 5xx, other).",
        &stats.replies_by_class,
    );
    family(
        &mut out,
        "herald_queue_depth",
        "gauge",
        "Deliveries waiting to be sent or being sent, by job.",
        &stats.queue_depth,
    );
    family(
        &mut out,
        "herald_edition_paused",
        "gauge",
        "Editions paused over the mail error budget (until `herald resume`): their queued deliveries, with why.",
        &stats.paused_editions,
    );
    let pause: Vec<Sample> = state
        .health
        .mail_pause()
        .filter(|p| p.until > state.clock.now())
        .map(|p| Sample {
            labels: vec![("reason", p.reason)],
            value: p.until.timestamp_millis() as f64 / 1000.0,
        })
        .into_iter()
        .collect();
    family(
        &mut out,
        "herald_mail_paused_until_timestamp_seconds",
        "gauge",
        "While this daemon's mail channel is paused (policy refusal or open circuit): until when, with why.",
        &pause,
    );
    family(
        &mut out,
        "herald_fires_taken_over_total",
        "counter",
        "Scheduled fires taken over from an instance whose claim ran out (it died), by job.",
        &stats.fires_taken_over,
    );
    family(
        &mut out,
        "herald_fires_unfinished",
        "gauge",
        "Scheduled fires claimed and not finished (running, or waiting to be taken over), by job.",
        &stats.fires_unfinished,
    );
    family(
        &mut out,
        "herald_job_held",
        "gauge",
        "Jobs held by an operator (`herald hold`): 1, with why.",
        &stats.jobs_held,
    );
    family(
        &mut out,
        "herald_bounces_total",
        "counter",
        "Bounce and complaint records read back from relays, by kind (hard, soft, complaint) and whether they matched a delivery.",
        &stats.bounces_by_kind,
    );
    family(
        &mut out,
        "herald_edition_complaint_ratio",
        "gauge",
        "Complaints per message sent, for each edition that drew any (mailbox providers filter near 0.003).",
        &stats.complaint_rate_by_edition,
    );
    family(
        &mut out,
        "herald_suppressions",
        "gauge",
        "Suppressed addresses, by why (hard_bounce, soft_bounces, complaint, refused_at_send, erasure, operator).",
        &stats.suppressions_by_reason,
    );
    family(
        &mut out,
        "herald_send_rate_per_second",
        "gauge",
        "Deliveries accepted per second over the last five minutes.",
        &single(stats.send_rate),
    );
    family(
        &mut out,
        "herald_posts",
        "gauge",
        "Social posts, by account and state.",
        &stats.posts_by_outcome,
    );
    family(
        &mut out,
        "herald_subscribers",
        "gauge",
        "Subscribers, by list and status.",
        &stats.subscribers_by_status,
    );
    let jobs = state.health.jobs();
    let times = |pick: fn(&crate::health::JobHealth) -> Option<chrono::DateTime<chrono::Utc>>| -> Vec<Sample> {
        jobs.iter()
            .filter_map(|(job, h)| {
                pick(h).map(|t| Sample {
                    labels: vec![("job", job.clone())],
                    value: t.timestamp_millis() as f64 / 1000.0,
                })
            })
            .collect()
    };
    family(
        &mut out,
        "herald_job_last_success_timestamp_seconds",
        "gauge",
        "When each job last ran without error (this daemon).",
        &times(|h| h.last_success_at),
    );
    family(
        &mut out,
        "herald_job_last_run_timestamp_seconds",
        "gauge",
        "When each job last ran (this daemon).",
        &times(|h| h.last_run_at),
    );
    family(
        &mut out,
        "herald_account_token_expires_seconds",
        "gauge",
        "Seconds until each OAuth account's access token expires (negative once it has), where known.",
        &tokens.expires_in,
    );
    family(
        &mut out,
        "herald_account_token_refused",
        "gauge",
        "1 when the platform refused the account's access token: its posts wait until the secret is replaced.",
        &tokens.refused,
    );
    out
}

/// `/metrics` on the public listener: only with `Authorization: Bearer
/// <web.metrics_token>` (compared in constant time); 401 otherwise.
pub(super) async fn with_token(State(state): State<WebState>, headers: axum::http::HeaderMap) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let allowed = state
        .app()
        .settings
        .web
        .metrics_token
        .as_ref()
        .is_some_and(|token| constant_time_eq(token.expose().as_bytes(), given.as_bytes()));
    if !allowed {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token (web.metrics_token) is required\n",
        )
            .into_response();
    }
    metrics(State(state)).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(super) async fn metrics(State(state): State<WebState>) -> Response {
    let now = state.clock.now().timestamp_millis();
    let read = async {
        Ok::<_, crate::store::StoreError>((state.store.stats(now, RATE_WINDOW_SECS).await?, tokens(&state).await?))
    };
    match read.await {
        Ok((stats, tokens)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            render(&stats, &tokens, &state),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the store did not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "the store did not answer").into_response()
        }
    }
}

//! Bounce and complaint webhooks of mail providers (`/webhooks/ses` through
//! Amazon SNS, `/webhooks/mailgun`, `/webhooks/postmark`,
//! `/webhooks/sendgrid` under `site.base_url`), each
//! served only when its credentials are configured. A request that is not
//! authenticated the provider's way, is stale, or replays an event the
//! ledger has is refused with a 4xx and changes nothing; the rest go into
//! the same matching and ledger as mailed reports.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::WebState;
use super::sns::Verified;
use crate::bounce::Intake;
use crate::bounce::webhook::{Event, Refusal, mailgun, postmark, sendgrid};

/// The largest webhook body read (SendGrid batches events).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// `POST /webhooks/{provider}`.
pub(super) async fn receive(
    State(state): State<WebState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let app = state.app();
    let hooks = &app.settings.bounces.webhooks;
    let now = state.clock.now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let read: Result<Vec<Event>, Refusal> = match provider.as_str() {
        "mailgun" => match &hooks.mailgun_signing_key {
            Some(key) => mailgun::read(key.expose(), &body, now),
            None => return super::not_found_page(&state),
        },
        "postmark" => match &hooks.postmark {
            Some((user, password)) => {
                postmark::authenticate(header(header::AUTHORIZATION.as_str()), user, password.expose())
                    .and_then(|()| postmark::read(&body))
            }
            None => return super::not_found_page(&state),
        },
        "sendgrid" => match &hooks.sendgrid_key {
            Some(point) => sendgrid::read(
                point,
                header("x-twilio-email-event-webhook-signature"),
                header("x-twilio-email-event-webhook-timestamp"),
                &body,
                now,
            ),
            None => return super::not_found_page(&state),
        },
        "ses" if !hooks.sns_topic_arns.is_empty() => match state.sns.receive(hooks, &body, now).await {
            Ok(Ok(Verified::Events(events))) => Ok(events),
            Ok(Ok(Verified::Handled(answer))) => return (StatusCode::OK, answer).into_response(),
            Ok(Err(unreachable)) => {
                tracing::warn!(%provider, error = %unreachable, "bounce webhook not handled; SNS will retry");
                return (StatusCode::SERVICE_UNAVAILABLE, format!("{unreachable}\n")).into_response();
            }
            Err(refusal) => Err(refusal),
        },
        _ => return super::not_found_page(&state),
    };
    let events = match read {
        Ok(events) => events,
        Err(refusal) => {
            tracing::warn!(%provider, %refusal, "bounce webhook refused");
            let status = match refusal {
                Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
                Refusal::UnknownTopic(_) => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            };
            return (status, format!("{refusal}\n")).into_response();
        }
    };
    let keys = state.keys.clone();
    let mut intake = Intake::new(&state.store, &keys, &app.settings.bounces, &app.settings.site.domain);
    let read_count = events.len();
    let mut fresh = Vec::new();
    for event in events {
        match state.store.bounce_report_seen(&event.id).await {
            Ok(true) => {}
            Ok(false) => fresh.push(event),
            Err(e) => return unavailable(&e),
        }
    }
    if read_count > 0 && fresh.is_empty() {
        tracing::warn!(%provider, events = read_count, "bounce webhook refused: every event is in the ledger already (a replay)");
        return (
            StatusCode::CONFLICT,
            "already recorded: a replayed event changes nothing\n",
        )
            .into_response();
    }
    let source = format!("webhook:{provider}");
    let recorded = fresh.len();
    for event in fresh {
        if let Err(e) = intake.take_event(event, &source, now).await {
            return unavailable(&e);
        }
    }
    if let Err(e) = intake.finish(now).await {
        return unavailable(&e);
    }
    (StatusCode::OK, format!("{recorded} event(s) recorded\n")).into_response()
}

fn unavailable(e: &crate::store::StoreError) -> Response {
    tracing::warn!(error = %e, "bounce webhook: the store did not answer");
    (StatusCode::SERVICE_UNAVAILABLE, "the store did not answer; try again\n").into_response()
}

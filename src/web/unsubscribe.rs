//! Unsubscribing: the RFC 8058 one-click POST a mailbox provider sends (no
//! cookies, no auth: the signed token is the authority) and the page a person
//! reaches from the footer link, whose button sends the same POST.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::info;

use super::extract::{Linked, ToManage};
use super::{Visitor, WebState, list_title, page, unavailable, with_token};
use crate::store::{Subscriber, SubscriberStatus};

fn unsubscribed(state: &WebState, subscriber: &Subscriber) -> Response {
    page(
        state,
        StatusCode::OK,
        "pages/unsubscribed",
        serde_json::json!({
            "email": subscriber.email,
            "list_title": list_title(&state.app().settings, &subscriber.list_name),
        }),
    )
}

/// GET: a page with a button; following the link changes nothing (mail scanners follow links).
pub(super) async fn show(State(state): State<WebState>, link: Linked<ToManage>) -> Response {
    let Linked { subscriber, token, .. } = link;
    if subscriber.status != SubscriberStatus::Active {
        return unsubscribed(&state, &subscriber);
    }
    let token = token.as_str();
    let action = with_token(state.app().settings.site.unsubscribe_url.path(), token);
    let preferences = with_token(&super::page_path(&state.app().settings, "preferences"), token);
    page(
        &state,
        StatusCode::OK,
        "pages/unsubscribe",
        serde_json::json!({
            "email": subscriber.email,
            "list_title": list_title(&state.app().settings, &subscriber.list_name),
            "action": action,
            "preferences_url": preferences,
        }),
    )
}

/// Whether a POST body carries `List-Unsubscribe=One-Click`, as
/// `application/x-www-form-urlencoded` or `multipart/form-data` (RFC 8058).
fn is_one_click(headers: &HeaderMap, body: &[u8]) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return url::form_urlencoded::parse(body).any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click");
    }
    if let Some(boundary) = content_type.split("boundary=").nth(1) {
        let boundary = format!("--{}", boundary.trim_matches('"').split(';').next().unwrap_or(""));
        let body = String::from_utf8_lossy(body);
        return body.split(boundary.as_str()).any(|part| {
            let Some((head, value)) = part.split_once("\r\n\r\n") else {
                return false;
            };
            head.to_ascii_lowercase().contains("name=\"list-unsubscribe\"")
                && value.trim_end_matches(['\r', '\n', '-']).trim() == "One-Click"
        });
    }
    false
}

/// POST: the RFC 8058 one-click unsubscribe, also what the page's button
/// sends. Answers 200 with a page, never a redirect.
pub(super) async fn post(
    State(state): State<WebState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Linked { subscriber, .. }: Linked<ToManage>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_one_click(&headers, &body) {
        return (StatusCode::BAD_REQUEST, "expected List-Unsubscribe=One-Click").into_response();
    }
    let now = state.clock.now();
    match state.store.unsubscribe_uid(&subscriber.uid, now).await {
        Ok(true) => {
            info!(list = %subscriber.list_name, subscriber = subscriber.id, "unsubscribed");
            let visitor = Visitor::of(&state, &headers, addr);
            let consent = visitor.consent("unsubscribe", state.app().settings.site.unsubscribe_url.path(), None);
            if let Err(e) = state.store.record_consent(subscriber.id, &consent, now).await {
                tracing::warn!(error = %e, "could not record the unsubscribe");
            }
            unsubscribed(&state, &subscriber)
        }
        Ok(false) => unsubscribed(&state, &subscriber),
        Err(e) => unavailable(&state, e),
    }
}

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
/// The media type is matched case-insensitively; a multipart boundary is
/// taken as written (boundaries are case-sensitive) and the parts read by
/// multer.
async fn is_one_click(headers: &HeaderMap, body: Bytes) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media_type.as_str() {
        "application/x-www-form-urlencoded" => {
            url::form_urlencoded::parse(&body).any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click")
        }
        "multipart/form-data" => {
            let Ok(boundary) = multer::parse_boundary(content_type) else {
                return false;
            };
            let whole = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
            let mut parts = multer::Multipart::new(whole, boundary);
            while let Ok(Some(part)) = parts.next_field().await {
                if part.name() == Some("List-Unsubscribe") {
                    return part.text().await.is_ok_and(|value| value == "One-Click");
                }
            }
            false
        }
        _ => false,
    }
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
    if !is_one_click(&headers, body).await {
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

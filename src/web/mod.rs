//! The HTTP interface (axum): one-click unsubscribe (RFC 8058) and `/healthz`.
//! Pages are server-rendered Handlebars templates from `templates/pages/`;
//! no GET ever changes state.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tracing::{info, warn};

use crate::clock;
use crate::config::Settings;
use crate::health::Health;
use crate::shutdown::Shutdown;
use crate::store::{Store, Subscriber};
use crate::token::{Purpose, TokenKeys};

/// What every request handler shares.
#[derive(Clone)]
pub struct WebState {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub keys: TokenKeys,
    pub health: Arc<Health>,
    /// Whether a daemon loop beats (so a stale heartbeat means trouble).
    pub expects_heartbeat: bool,
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The routes; the unsubscribe path is the one `site.unsubscribe_url` names.
pub fn router(state: WebState) -> Router {
    let unsubscribe = state.settings.site.unsubscribe_url.path().to_string();
    Router::new()
        .route(&unsubscribe, get(unsubscribe_page).post(unsubscribe_post))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Serves until shutdown.
pub async fn serve(listener: tokio::net::TcpListener, state: WebState, mut shutdown: Shutdown) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    info!(%addr, "web interface listening");
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.wait().await })
    .await
}

fn page(state: &WebState, status: StatusCode, name: &str, extra: serde_json::Value) -> Response {
    let site = &state.settings.site;
    let mut data = serde_json::json!({ "site": { "name": site.name, "postal_address": site.postal_address } });
    if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
        data.extend(extra.clone());
    }
    match state.settings.templates.render_page(name, &data) {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            warn!(page = name, error = %e, "page template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page template failed").into_response()
        }
    }
}

/// The one answer to any token that does not verify or names nobody: forged,
/// truncated, signed with a retired key, or voided by a resubscribe.
fn invalid(state: &WebState) -> Response {
    page(
        state,
        StatusCode::BAD_REQUEST,
        "pages/invalid-link",
        serde_json::json!({}),
    )
}

async fn subscriber_for(state: &WebState, token: Option<&str>) -> Option<Subscriber> {
    let uid = state.keys.verify(Purpose::Unsubscribe, token?).ok()?;
    state.store.subscriber_by_uid(&uid).await.ok().flatten()
}

fn list_title(state: &WebState, subscriber: &Subscriber) -> String {
    state
        .settings
        .list(&subscriber.list_name)
        .map_or(subscriber.list_name.clone(), |l| l.title.clone())
}

/// GET: a page with a button; following the link changes nothing (mail scanners follow links).
async fn unsubscribe_page(State(state): State<WebState>, Query(q): Query<TokenQuery>) -> Response {
    let Some(subscriber) = subscriber_for(&state, q.token.as_deref()).await else {
        return invalid(&state);
    };
    let title = list_title(&state, &subscriber);
    if subscriber.status != "active" {
        return page(
            &state,
            StatusCode::OK,
            "pages/unsubscribed",
            serde_json::json!({ "email": subscriber.email, "list_title": title }),
        );
    }
    let mut action = state.settings.site.unsubscribe_url.clone();
    action
        .query_pairs_mut()
        .append_pair("token", q.token.as_deref().unwrap_or_default());
    let action = format!("{}?{}", action.path(), action.query().unwrap_or_default());
    page(
        &state,
        StatusCode::OK,
        "pages/unsubscribe",
        serde_json::json!({ "email": subscriber.email, "list_title": title, "action": action }),
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

/// POST: the RFC 8058 one-click unsubscribe (no cookies, no auth: the signed
/// token is the authority), also what the page's button sends. 200, no redirect.
async fn unsubscribe_post(
    State(state): State<WebState>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_one_click(&headers, &body) {
        return (StatusCode::BAD_REQUEST, "expected List-Unsubscribe=One-Click").into_response();
    }
    let Some(subscriber) = subscriber_for(&state, q.token.as_deref()).await else {
        return invalid(&state);
    };
    match state.store.unsubscribe_uid(&subscriber.uid, clock::now()).await {
        Ok(changed) => {
            if changed {
                info!(list = %subscriber.list_name, subscriber = subscriber.id, "unsubscribed");
            }
            let title = list_title(&state, &subscriber);
            page(
                &state,
                StatusCode::OK,
                "pages/unsubscribed",
                serde_json::json!({ "email": subscriber.email, "list_title": title }),
            )
        }
        Err(e) => {
            warn!(error = %e, "unsubscribe failed");
            (StatusCode::SERVICE_UNAVAILABLE, "try again in a moment").into_response()
        }
    }
}

/// The store answers, and (under `herald run`) the daemon's loops beat within the last two minutes.
async fn healthz(State(state): State<WebState>) -> Response {
    let store_ok = state.store.ping().await;
    let beat = state.health.last_beat();
    let beat_age = beat.map(|b| (clock::now() - b).num_seconds());
    let beating = !state.expects_heartbeat || beat_age.is_some_and(|age| age < 120);
    let status = if store_ok && beating {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let jobs: serde_json::Map<String, serde_json::Value> = state
        .health
        .jobs()
        .into_iter()
        .map(|(job, h)| {
            (
                job,
                serde_json::json!({
                    "last_run_at": h.last_run_at.map(|t| t.to_rfc3339()),
                    "last_success_at": h.last_success_at.map(|t| t.to_rfc3339()),
                    "last_error": h.last_error,
                }),
            )
        })
        .collect();
    let body = serde_json::json!({
        "status": if status == StatusCode::OK { "ok" } else { "unhealthy" },
        "store": if store_ok { "ok" } else { "unreachable" },
        "heartbeat_age_secs": beat_age,
        "jobs": jobs,
    });
    (status, axum::Json(body)).into_response()
}

//! The HTTP interface (axum): sign-up with double opt-in, one-click
//! unsubscribe (RFC 8058), preferences, `/healthz` and `/metrics`.
//! Pages are server-rendered Handlebars templates from `templates/pages/`.
//! No GET ever changes state (mail scanners follow links); every form but the
//! RFC 8058 one carries a CSRF field; the pages are rate limited per client IP.

mod archive;
mod csrf;
mod extract;
mod headers;
mod limit;
mod metrics;
mod preferences;
mod signup;
mod sns;
mod unsubscribe;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::app::App;
use crate::clock::Clock;
use crate::config::{ListSettings, Settings};
use crate::health::Health;
use crate::shutdown::Shutdown;
use crate::store::{Consent, Store};
use crate::token::TokenKeys;

pub use headers::CONTENT_SECURITY_POLICY;
pub use limit::RateLimiter;

/// What every request handler shares.
#[derive(Clone)]
pub struct WebState {
    pub store: Store,
    /// The current configuration: a reload of the daemon's reaches every page.
    app: watch::Receiver<Arc<App>>,
    pub keys: TokenKeys,
    pub health: Arc<Health>,
    /// Whether a daemon loop beats (so a stale heartbeat means trouble).
    pub expects_heartbeat: bool,
    pub limiter: Arc<RateLimiter>,
    /// The time every page reads: sign-ups, confirmations, rate limits, metrics.
    pub clock: Arc<dyn Clock>,
    /// Amazon SNS signing certificates, fetched once each.
    sns: Arc<sns::Certificates>,
}

impl WebState {
    /// The state for the configuration `app` carries, with a fresh per-IP
    /// rate limiter (its rate and the routes are set at start).
    pub fn new(
        store: Store,
        app: watch::Receiver<Arc<App>>,
        keys: TokenKeys,
        health: Arc<Health>,
        expects_heartbeat: bool,
        clock: Arc<dyn Clock>,
    ) -> WebState {
        let limiter = Arc::new(RateLimiter::new(app.borrow().settings.web.rate_limit_per_minute));
        WebState {
            store,
            app,
            keys,
            health,
            expects_heartbeat,
            limiter,
            clock,
            sns: Arc::default(),
        }
    }

    /// The configuration as of now.
    pub fn app(&self) -> Arc<App> {
        self.app.borrow().clone()
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The path of a page under `site.base_url`.
fn page_path(settings: &Settings, page: &str) -> String {
    settings.site.page_url(page).path().to_string()
}

/// The routes. The unsubscribe path is the one `site.unsubscribe_url` names;
/// the others are under `site.base_url`.
pub fn router(state: WebState) -> Router {
    let app = state.app();
    let settings = &app.settings;
    let pages = Router::new()
        .route(
            settings.site.unsubscribe_url.path(),
            get(unsubscribe::show).post(unsubscribe::post),
        )
        .route(
            &format!("{}{{list}}", page_path(settings, "subscribe/")),
            get(signup::show).post(signup::submit),
        )
        .route(
            &page_path(settings, "confirm"),
            get(signup::confirm_page).post(signup::confirm),
        )
        .route(
            &page_path(settings, "preferences"),
            get(preferences::show).post(preferences::save),
        )
        .route(
            &format!("{}{{list}}", page_path(settings, "archive/")),
            get(archive::index),
        )
        .route(
            &format!("{}{{list}}/feed.atom", page_path(settings, "archive/")),
            get(archive::feed),
        )
        .route(
            &format!("{}{{list}}/{{edition}}", page_path(settings, "archive/")),
            get(archive::edition),
        )
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), limit::per_ip));
    let public = Router::new().merge(pages).route("/healthz", get(healthz)).route(
        &format!("{}{{provider}}", page_path(settings, "webhooks/")),
        axum::routing::post(webhooks::receive).layer(axum::extract::DefaultBodyLimit::max(webhooks::MAX_BODY)),
    );
    // `/metrics` tells subscriber counts: on the public listener only behind a
    // token, and not at all when it has a listener of its own.
    let public = match (&settings.web.metrics_listen, &settings.web.metrics_token) {
        (None, Some(_)) => public.route("/metrics", get(metrics::with_token)),
        _ => public,
    };
    let public = public
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    headers::secured(public, settings.web.hsts)
}

/// The routes of `web.metrics_listen`: `/metrics` and `/healthz`, nothing else.
pub fn metrics_router(state: WebState) -> Router {
    let hsts = state.app().settings.web.hsts;
    let metrics = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    headers::secured(metrics, hsts)
}

/// Any path Herald does not serve: a small page, not an empty 404.
async fn not_found(State(state): State<WebState>) -> Response {
    not_found_page(&state)
}

fn not_found_page(state: &WebState) -> Response {
    message(
        state,
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address.",
    )
}

/// A method a path does not take: a small page, not an empty 405.
async fn method_not_allowed(State(state): State<WebState>) -> Response {
    message(
        &state,
        StatusCode::METHOD_NOT_ALLOWED,
        "Not allowed here",
        "This page cannot be used that way.",
    )
}

/// Serves until shutdown: the pages on `listener`, and `/metrics` on
/// `web.metrics_listen` when it is set.
pub async fn serve(listener: tokio::net::TcpListener, state: WebState, shutdown: Shutdown) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    info!(%addr, "web interface listening");
    let app = state.app();
    let web = &app.settings.web;
    let metrics_listener = match web.metrics_listen {
        Some(metrics_addr) => {
            let listener = tokio::net::TcpListener::bind(metrics_addr).await?;
            info!(addr = %metrics_addr, "metrics listening");
            Some(listener)
        }
        None => {
            if web.metrics_token.is_none() {
                info!("/metrics is not served: set web.metrics_listen (a private address) or web.metrics_token");
            }
            None
        }
    };
    let pages = serve_router(listener, router(state.clone()), shutdown.clone());
    match metrics_listener {
        Some(metrics) => {
            tokio::try_join!(pages, serve_router(metrics, metrics_router(state), shutdown))?;
            Ok(())
        }
        None => pages.await,
    }
}

async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}

/// Renders `templates/pages/<name>.html.hbs` with the site's name and address added to `extra`.
fn page(state: &WebState, status: StatusCode, name: &str, extra: serde_json::Value) -> Response {
    let app = state.app();
    let site = &app.settings.site;
    let mut data = serde_json::json!({ "site": { "name": site.name, "postal_address": site.postal_address } });
    if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
        data.extend(extra.clone());
    }
    match app.templates.render_page(name, &data) {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            warn!(page = name, error = %e, "page template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page template failed").into_response()
        }
    }
}

/// A page that only says something: an expired form, too many requests, a failure.
fn message(state: &WebState, status: StatusCode, heading: &str, text: &str) -> Response {
    page(
        state,
        status,
        "pages/message",
        serde_json::json!({ "heading": heading, "text": text }),
    )
}

/// A form whose CSRF field does not match the visitor's cookie.
fn expired(state: &WebState) -> Response {
    message(
        state,
        StatusCode::FORBIDDEN,
        "This form has expired",
        "Go back, reload the page and try again.",
    )
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

/// The store failed: nothing was changed, so the visitor may simply retry.
fn unavailable(state: &WebState, error: impl std::fmt::Display) -> Response {
    warn!(%error, "web request failed");
    message(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        "Something went wrong on our side",
        "Nothing was changed. Please try again in a few minutes.",
    )
}

fn list_title(settings: &Settings, list: &str) -> String {
    settings.list(list).map_or(list.to_string(), |l| l.title.clone())
}

/// A URL path with `?token=...`, for a form's `action`.
fn with_token(path: &str, token: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .finish();
    format!("{path}?{query}")
}

/// The cadences a list offers (its digest jobs' cadences, default first),
/// each marked checked when it is `chosen` (or, when nothing valid is chosen, the default).
fn cadence_options(settings: &Settings, list: &str, chosen: &str) -> Vec<serde_json::Value> {
    let cadences: Vec<&str> = settings.digest_jobs_of(list).map(|(_, d)| d.cadence.as_str()).collect();
    let chosen = if cadences.contains(&chosen) {
        chosen
    } else {
        cadences.first().copied().unwrap_or_default()
    };
    cadences
        .iter()
        .map(|c| serde_json::json!({ "value": c, "label": capitalised(c), "checked": *c == chosen }))
        .collect()
}

/// The cadence to store for a choice: one the list offers, else none (the list's default).
fn valid_cadence(settings: &Settings, list: &str, chosen: Option<&str>) -> String {
    let chosen = chosen.unwrap_or_default();
    settings
        .digest_jobs_of(list)
        .find(|(_, d)| d.cadence == chosen)
        .map(|(_, d)| d.cadence.clone())
        .unwrap_or_default()
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Who made a request: kept in consent records and used for rate limits.
struct Visitor {
    ip: String,
    user_agent: String,
}

impl Visitor {
    fn of(state: &WebState, headers: &HeaderMap, addr: SocketAddr) -> Visitor {
        Visitor {
            ip: limit::client_ip(&state.app().settings, headers, addr).to_string(),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .chars()
                .take(500)
                .collect(),
        }
    }

    fn consent(&self, action: &str, page: &str, list: Option<&ListSettings>) -> Consent {
        Consent {
            action: action.to_string(),
            page: page.to_string(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            wording_version: list.map(ListSettings::consent_version).unwrap_or_default(),
            wording: list.map(|l| l.consent.clone()).unwrap_or_default(),
        }
    }
}

/// An `application/x-www-form-urlencoded` body.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The store answers, and (under `herald run`) the daemon's loops beat within the last two minutes.
async fn healthz(axum::extract::State(state): axum::extract::State<WebState>) -> Response {
    let store_ok = state.store.ping().await;
    let beat = state.health.last_beat();
    let beat_age = beat.map(|b| (state.clock.now() - b).num_seconds());
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

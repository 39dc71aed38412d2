//! The public archive of a list whose `archive = true`: its editions newest
//! first (paged), each edition as it was sent but filled for no one (no
//! name, no address, no token: the readers' own links lead to the sign-up
//! page), and an Atom feed of editions. Answers carry an ETag and a
//! Last-Modified date and are 304 when the reader has them already.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{WebState, not_found_page, page, unavailable};
use crate::clean::escape_html;
use crate::config::ListSettings;
use crate::mail::message::{public_copy, public_subject};
use crate::store::ArchivedEdition;

/// Editions on one page of the archive.
const PER_PAGE: i64 = 20;
/// Editions in the Atom feed.
const IN_FEED: i64 = 50;
/// How long a reader's cache may keep an answer without asking again.
const CACHE_CONTROL: &str = "public, max-age=300";
/// An edition page shows the pictures the digest had, from https only.
const EDITION_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Deserialize)]
pub(super) struct PageQuery {
    page: Option<i64>,
}

/// The list `name` when it is archived.
fn archived(state: &WebState, name: &str) -> Option<ListSettings> {
    state.app().settings.list(name).filter(|l| l.archive).cloned()
}

/// Where a reader of the archive may sign up, when the list has a form.
fn subscribe_url(state: &WebState, list: &ListSettings) -> Option<String> {
    list.signup.then(|| {
        state
            .app()
            .settings
            .site
            .page_url(&format!("subscribe/{}", list.name))
            .to_string()
    })
}

/// `GET /archive/LIST?page=N`
pub(super) async fn index(
    State(state): State<WebState>,
    Path(name): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(list) = archived(&state, &name) else {
        return not_found_page(&state);
    };
    let number = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let editions = match state
        .store
        .archived_editions(&list.name, (number - 1) * PER_PAGE, PER_PAGE + 1)
        .await
    {
        Ok(editions) => editions,
        Err(e) => return unavailable(&state, e),
    };
    let older = editions.len() as i64 > PER_PAGE;
    let shown = &editions[..editions.len().min(PER_PAGE as usize)];
    let app = state.app();
    let site = &app.settings.site;
    let at = |page: i64| format!("{}?page={page}", site.archive_url(&list.name, None));
    let rows: Vec<serde_json::Value> = shown
        .iter()
        .map(|e| {
            serde_json::json!({
                "subject": public_subject(&e.subject),
                "date": e.created_at.format("%-d %B %Y").to_string(),
                "url": site.archive_url(&list.name, Some(&e.nonce)).to_string(),
                "count": e.article_count,
            })
        })
        .collect();
    let response = page(
        &state,
        StatusCode::OK,
        "pages/archive",
        serde_json::json!({
            "list_title": list.title,
            "editions": rows,
            "newer_url": (number > 1).then(|| at(number - 1)),
            "older_url": older.then(|| at(number + 1)),
            "subscribe_url": subscribe_url(&state, &list),
            "feed_url": format!("{}/feed.atom", site.archive_url(&list.name, None)),
        }),
    );
    cached(&headers, response, shown.first().map(|e| e.created_at), None).await
}

/// `GET /archive/LIST/EDITION`: the edition as sent, filled for no one.
pub(super) async fn edition(
    State(state): State<WebState>,
    Path((name, nonce)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(list) = archived(&state, &name) else {
        return not_found_page(&state);
    };
    let edition = match state.store.archived_edition(&list.name, &nonce).await {
        Ok(Some(edition)) => edition,
        Ok(None) => return not_found_page(&state),
        Err(e) => return unavailable(&state, e),
    };
    let link = subscribe_url(&state, &list).unwrap_or_else(|| state.app().settings.site.base_url.to_string());
    let html = public_copy(&edition.html, &link);
    let response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    cached(&headers, response, Some(edition.created_at), Some(EDITION_POLICY)).await
}

/// `GET /archive/LIST/feed.atom`: the latest editions as an Atom feed (RFC 4287).
pub(super) async fn feed(State(state): State<WebState>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(list) = archived(&state, &name) else {
        return not_found_page(&state);
    };
    let editions = match state.store.archived_editions(&list.name, 0, IN_FEED).await {
        Ok(editions) => editions,
        Err(e) => return unavailable(&state, e),
    };
    let app = state.app();
    let atom = atom(&app.settings.site, &list, &editions);
    let response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        atom,
    )
        .into_response();
    cached(&headers, response, editions.first().map(|e| e.created_at), None).await
}

/// The Atom document of `editions` (newest first).
fn atom(site: &crate::config::Site, list: &ListSettings, editions: &[ArchivedEdition]) -> String {
    let home = site.archive_url(&list.name, None).to_string();
    let updated = editions
        .first()
        .map_or(DateTime::<Utc>::UNIX_EPOCH, |e| e.created_at)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <title>{}</title>\n<id>{}</id>\n<link rel=\"self\" type=\"application/atom+xml\" href=\"{}/feed.atom\"/>\n\
         <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n<updated>{updated}</updated>\n\
         <author><name>{}</name></author>\n",
        escape_html(&list.title),
        escape_html(&home),
        escape_html(&home),
        escape_html(&home),
        escape_html(&site.name),
    );
    for e in editions {
        let url = site.archive_url(&list.name, Some(&e.nonce)).to_string();
        out.push_str(&format!(
            "<entry>\n<title>{}</title>\n<id>{}</id>\n<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n\
             <updated>{}</updated>\n<summary>{} {}</summary>\n</entry>\n",
            escape_html(&public_subject(&e.subject)),
            escape_html(&url),
            escape_html(&url),
            e.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            e.article_count,
            if e.article_count == 1 { "story" } else { "stories" },
        ));
    }
    out.push_str("</feed>\n");
    out
}

/// `response` with an ETag (a hash of its body), a Last-Modified date and
/// caching allowed, or a bodiless 304 when the request's `If-None-Match`
/// (or, without one, `If-Modified-Since`) shows the reader has it.
async fn cached(
    request: &HeaderMap,
    response: Response,
    modified: Option<DateTime<Utc>>,
    policy: Option<&'static str>,
) -> Response {
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let digest = Sha256::digest(&bytes);
    let etag = format!(
        "\"{}\"",
        digest[..16].iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let last_modified = modified.map(|at| at.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
    let asked = |name: header::HeaderName| request.get(name).and_then(|v| v.to_str().ok());
    let fresh = match asked(header::IF_NONE_MATCH) {
        Some(tags) => tags.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"),
        None => asked(header::IF_MODIFIED_SINCE)
            .and_then(|since| DateTime::parse_from_rfc2822(since).ok())
            .zip(modified)
            .is_some_and(|(since, modified)| modified.timestamp() <= since.timestamp()),
    };
    let headers = &mut parts.headers;
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex is a header value"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    if let Some(date) = last_modified.and_then(|d| HeaderValue::from_str(&d).ok()) {
        headers.insert(header::LAST_MODIFIED, date);
    }
    if let Some(policy) = policy {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    }
    if fresh {
        parts.status = StatusCode::NOT_MODIFIED;
        headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

//! The preferences page: the token from any digest's footer (the same one
//! the unsubscribe link carries) opens a form to change one's name, which
//! lists one gets and at which cadence, or to leave them all.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tracing::info;

use super::csrf::Csrf;
use super::extract::{Linked, LinkedForm, ToManage};
use super::{Form, Visitor, WebState, cadence_options, page, page_path, unavailable, valid_cadence};
use crate::app::App;
use crate::config::ListSettings;
use crate::store::{StoreError, Subscriber, SubscriberStatus};
use crate::token::Purpose;

/// The lists the page offers: those open for sign-up and any the address is on.
fn offered<'a>(app: &'a App, rows: &[Subscriber]) -> Vec<&'a ListSettings> {
    app.settings
        .lists
        .iter()
        .filter(|l| l.signup || rows.iter().any(|r| r.list_name == l.name))
        .collect()
}

fn row_of<'a>(rows: &'a [Subscriber], list: &str) -> Option<&'a Subscriber> {
    rows.iter().find(|r| r.list_name == list)
}

/// The form for the address `me` holds, showing its rows as they are now.
fn form_page(state: &WebState, headers: &HeaderMap, me: &Subscriber, rows: &[Subscriber], saved: bool) -> Response {
    let csrf = Csrf::issue(state, headers);
    let token = state.keys.sign(Purpose::Unsubscribe, &me.uid);
    let app = state.app();
    let lists: Vec<serde_json::Value> = offered(&app, rows)
        .into_iter()
        .map(|l| {
            let row = row_of(rows, &l.name);
            let cadences = cadence_options(&app.settings, &l.name, row.map_or("", |r| r.cadence.as_str()));
            serde_json::json!({
                "name": l.name,
                "title": l.title,
                "subscribed": row.is_some_and(|r| r.status == SubscriberStatus::Active),
                "choose_cadence": cadences.len() > 1,
                "cadences": cadences,
            })
        })
        .collect();
    let response = page(
        state,
        StatusCode::OK,
        "pages/preferences",
        serde_json::json!({
            "email": me.email,
            "name": me.name.clone().unwrap_or_default(),
            "action": super::with_token(&page_path(&state.app().settings, "preferences"), &token),
            "csrf": csrf.field,
            "lists": lists,
            "saved": saved,
        }),
    );
    csrf.attach(response)
}

/// GET /preferences?token=...: the form; the GET changes nothing.
pub(super) async fn show(
    State(state): State<WebState>,
    Linked { subscriber: me, .. }: Linked<ToManage>,
    headers: HeaderMap,
) -> Response {
    match state.store.subscriptions_of(&me.email).await {
        Ok(rows) => form_page(&state, &headers, &me, &rows, false),
        Err(e) => unavailable(&state, e),
    }
}

/// POST /preferences?token=...: applies the form to every list it offered.
pub(super) async fn save(
    State(state): State<WebState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    LinkedForm { link, form }: LinkedForm<ToManage>,
) -> Response {
    let me = link.subscriber;
    let visitor = Visitor::of(&state, &headers, addr);
    match apply(&state, &me, &form, &visitor).await {
        Ok(()) => {}
        Err(e) => return unavailable(&state, e),
    }
    // The holder's own row may have a new uid (left, then rejoined here).
    let rows = match state.store.subscriptions_of(&me.email).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(&state, e),
    };
    let me = row_of(&rows, &me.list_name).cloned().unwrap_or(me);
    form_page(&state, &headers, &me, &rows, true)
}

async fn apply(state: &WebState, me: &Subscriber, form: &Form, visitor: &Visitor) -> Result<(), StoreError> {
    let store = &state.store;
    let now = state.clock.now();
    let app = state.app();
    let path = page_path(&app.settings, "preferences");
    let name = form.get("name").map(str::trim).filter(|n| !n.is_empty());
    let wanted: Vec<&str> = form.all("list").collect();
    let rows = store.subscriptions_of(&me.email).await?;
    for list in offered(&app, &rows) {
        let row = row_of(&rows, &list.name);
        let active = row.is_some_and(|r| r.status == SubscriberStatus::Active);
        let cadence = valid_cadence(&app.settings, &list.name, form.get(&format!("cadence.{}", list.name)));
        match (wanted.contains(&list.name.as_str()), row) {
            (true, Some(row)) if active => {
                if row.cadence != cadence || row.name.as_deref() != name {
                    store.update_preferences(&row.uid, name, &cadence, now).await?;
                    store
                        .record_consent(row.id, &visitor.consent("preferences", &path, Some(list)), now)
                        .await?;
                    info!(list = %list.name, subscriber = row.id, "preferences changed");
                }
            }
            (true, _) => {
                let joined = store.join_confirmed(&list.name, &me.email, name, &cadence, now).await?;
                store
                    .record_consent(joined.id, &visitor.consent("join", &path, Some(list)), now)
                    .await?;
                info!(list = %list.name, subscriber = joined.id, "joined from the preferences page");
            }
            (false, Some(row)) if active => {
                store.unsubscribe(&list.name, &me.email, now).await?;
                store
                    .record_consent(row.id, &visitor.consent("unsubscribe", &path, None), now)
                    .await?;
                info!(list = %list.name, subscriber = row.id, "left from the preferences page");
            }
            (false, _) => {}
        }
    }
    Ok(())
}

//! Sign-up with double opt-in: a form per list creates a pending subscriber
//! and mails a confirmation link; the link opens a page whose button (a POST)
//! confirms. Both steps are kept as consent records.

use std::net::SocketAddr;
use std::time::SystemTime;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tracing::{error, info, warn};

use super::csrf::Csrf;
use super::extract::{CheckedForm, Linked, LinkedForm, ToConfirm};
use super::{
    Visitor, WebState, cadence_options, invalid, list_title, message, page, page_path, unavailable, valid_cadence,
    with_token,
};
use crate::app::App;
use crate::config::ListSettings;
use crate::mail::message::{Notice, build_notice, preferences_url};
use crate::mail::{Delivery, MailTransport, TransportError};
use crate::store::{SignupOutcome, Subscriber, SubscriberStatus};
use crate::token::Purpose;
use crate::welcome;

fn signup_list<'a>(app: &'a App, list: &str) -> Option<&'a ListSettings> {
    app.settings.list(list).filter(|l| l.signup)
}

/// What the sign-up form shows: empty, or as submitted with an error.
struct Filled<'a> {
    email: &'a str,
    name: &'a str,
    cadence: &'a str,
    error: Option<String>,
}

fn form_page(
    state: &WebState,
    headers: &HeaderMap,
    list: &ListSettings,
    status: StatusCode,
    filled: Filled,
) -> Response {
    let csrf = Csrf::issue(state, headers);
    let cadences = cadence_options(&state.app().settings, &list.name, filled.cadence);
    let response = page(
        state,
        status,
        "pages/subscribe",
        serde_json::json!({
            "list_title": list.title,
            "action": format!("{}{}", page_path(&state.app().settings, "subscribe/"), list.name),
            "csrf": csrf.field,
            "email": filled.email,
            "name": filled.name,
            "consent": list.consent,
            "choose_cadence": cadences.len() > 1,
            "cadences": cadences,
            "error": filled.error,
        }),
    );
    csrf.attach(response)
}

/// GET /subscribe/{list}: the form.
pub(super) async fn show(State(state): State<WebState>, Path(list): Path<String>, headers: HeaderMap) -> Response {
    let app = state.app();
    let Some(list) = signup_list(&app, &list) else {
        return message(
            &state,
            StatusCode::NOT_FOUND,
            "No such list",
            "There is no list to join here.",
        );
    };
    let empty = Filled {
        email: "",
        name: "",
        cadence: "",
        error: None,
    };
    form_page(&state, &headers, list, StatusCode::OK, empty)
}

/// POST /subscribe/{list}: a pending subscriber and a confirmation mail.
pub(super) async fn submit(
    State(state): State<WebState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(list): Path<String>,
    headers: HeaderMap,
    CheckedForm(form): CheckedForm,
) -> Response {
    let app = state.app();
    let Some(list) = signup_list(&app, &list) else {
        return message(
            &state,
            StatusCode::NOT_FOUND,
            "No such list",
            "There is no list to join here.",
        );
    };
    let raw_email = form.get("email").unwrap_or_default();
    let name = form.get("name").map(str::trim).filter(|n| !n.is_empty());
    let cadence = valid_cadence(&state.app().settings, &list.name, form.get("cadence"));
    let email = match crate::import::validate_email(raw_email) {
        Ok(email) => email,
        Err(_) => {
            let filled = Filled {
                email: raw_email,
                name: name.unwrap_or_default(),
                cadence: &cadence,
                error: Some("That does not look like an email address we can deliver to.".into()),
            };
            return form_page(&state, &headers, list, StatusCode::UNPROCESSABLE_ENTITY, filled);
        }
    };
    let now = state.clock.now();
    let subscriber = match state.store.signup(&list.name, &email, name, &cadence, now).await {
        Ok(SignupOutcome::Pending(subscriber)) => subscriber,
        Ok(SignupOutcome::AlreadyActive(_)) => {
            // The same answer as for a new address, so the form tells no one who is subscribed.
            info!(list = %list.name, "sign-up for an address already subscribed; nothing sent");
            return check_inbox(&state, list, &email);
        }
        Err(e) => return unavailable(&state, e),
    };
    let visitor = Visitor::of(&state, &headers, addr);
    let path = format!("{}{}", page_path(&state.app().settings, "subscribe/"), list.name);
    if let Err(e) = state
        .store
        .record_consent(subscriber.id, &visitor.consent("signup", &path, Some(list)), now)
        .await
    {
        return unavailable(&state, e);
    }
    match send_confirmation(&state, list, &subscriber).await {
        Ok(()) => {
            info!(list = %list.name, subscriber = subscriber.id, "sign-up pending confirmation");
            check_inbox(&state, list, &email)
        }
        Err(reply) => {
            warn!(list = %list.name, subscriber = subscriber.id, %reply, "confirmation mail not sent");
            message(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                "We could not send your confirmation email",
                "Please try again in a few minutes.",
            )
        }
    }
}

fn check_inbox(state: &WebState, list: &ListSettings, email: &str) -> Response {
    page(
        state,
        StatusCode::OK,
        "pages/check-inbox",
        serde_json::json!({ "email": email, "list_title": list.title }),
    )
}

/// The link a confirmation mail carries.
fn confirm_url(state: &WebState, uid: &str) -> String {
    let mut url = state.app().settings.site.page_url("confirm");
    url.query_pairs_mut()
        .append_pair("token", &state.keys.sign(Purpose::Confirm, uid));
    url.to_string()
}

/// Why a confirmation mail did not go out.
#[derive(Debug, thiserror::Error)]
enum ConfirmationError {
    #[error("the confirmation template failed: {0}")]
    Template(#[from] handlebars::RenderError),
    #[error("cannot set up the mail transport: {}", crate::error_chain(.0))]
    Transport(#[from] TransportError),
    /// The server's reply, or what went wrong on the way.
    #[error("{0}")]
    Refused(String),
}

/// Renders and sends the confirmation mail through the transport of the
/// configuration as of now (sign-ups are rare; a reload reaches them).
async fn send_confirmation(
    state: &WebState,
    list: &ListSettings,
    subscriber: &Subscriber,
) -> Result<(), ConfirmationError> {
    let app = state.app();
    let settings = &app.settings;
    let data = serde_json::json!({
        "site": { "name": settings.site.name, "postal_address": settings.site.postal_address },
        "list_title": list.title,
        "email": subscriber.email,
        "confirm_url": confirm_url(state, &subscriber.uid),
    });
    let (html, text) = app.templates.render_notice("emails/confirm", &data)?;
    let subject = format!("Confirm your subscription to {}", list.title);
    let notice = Notice {
        to_email: &subscriber.email,
        to_name: subscriber.name.as_deref(),
        subject: &subject,
        text,
        html,
    };
    let date = SystemTime::from(state.clock.now());
    let build = |encoding| build_notice(&settings.site, notice.clone(), date, encoding);
    let label = format!("confirm-{}-{}", list.name, subscriber.email);
    let mailer = MailTransport::build(&settings.mail, app.dkim.clone())?;
    let sent = mailer.send(&build, &label, settings.mail.send_timeout, None).await;
    mailer.close().await;
    match sent {
        Delivery::Accepted(_) => Ok(()),
        refused => Err(ConfirmationError::Refused(refused.reply().to_string())),
    }
}

fn confirmed(state: &WebState, subscriber: &Subscriber) -> Response {
    page(
        state,
        StatusCode::OK,
        "pages/confirmed",
        serde_json::json!({
            "email": subscriber.email,
            "list_title": list_title(&state.app().settings, &subscriber.list_name),
            "preferences_url": preferences_url(&state.app().settings.site, &state.keys, &subscriber.uid),
        }),
    )
}

/// GET /confirm?token=...: a page with a button; the GET itself changes nothing.
pub(super) async fn confirm_page(
    State(state): State<WebState>,
    Linked { subscriber, token, .. }: Linked<ToConfirm>,
    headers: HeaderMap,
) -> Response {
    match subscriber.status {
        SubscriberStatus::Active => confirmed(&state, &subscriber),
        SubscriberStatus::Pending => {
            let csrf = Csrf::issue(&state, &headers);
            let action = with_token(&page_path(&state.app().settings, "confirm"), &token);
            let response = page(
                &state,
                StatusCode::OK,
                "pages/confirm",
                serde_json::json!({
                    "email": subscriber.email,
                    "list_title": list_title(&state.app().settings, &subscriber.list_name),
                    "action": action,
                    "csrf": csrf.field,
                }),
            );
            csrf.attach(response)
        }
        // Left since: the link does not bring them back (a new sign-up does).
        _ => invalid(&state),
    }
}

/// Sends the list's queued welcome mails in the background: the page does
/// not wait for the mail server. A row this cannot send stays queued for
/// the daemon's drainer.
fn send_welcome(state: &WebState, list: &str) {
    let (store, app, clock, list) = (state.store.clone(), state.app(), state.clock.clone(), list.to_string());
    tokio::spawn(async move {
        match welcome::send(store, app, clock, &list).await {
            Ok(report) if report.sent > 0 => info!(list = %list, sent = report.sent, "welcome mail sent"),
            Ok(report) => warn!(
                list = %list,
                retrying = report.retrying,
                failed = report.failed,
                "welcome mail not sent yet"
            ),
            Err(e) => error!(list = %list, error = %e, "sending the welcome mail failed"),
        }
    });
}

/// POST /confirm?token=...: the button on the confirmation page.
pub(super) async fn confirm(
    State(state): State<WebState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    LinkedForm { link, .. }: LinkedForm<ToConfirm>,
) -> Response {
    let subscriber = link.subscriber;
    let now = state.clock.now();
    let app = state.app();
    let list = app.settings.list(&subscriber.list_name);
    let consent = Visitor::of(&state, &headers, addr).consent("confirm", &page_path(&app.settings, "confirm"), list);
    // A welcome mail that cannot be made must not cost the reader their
    // subscription: they are confirmed without one, and the log says why.
    let welcome = match list {
        Some(list) => welcome::prepare(&state.store, &app, list).await.unwrap_or_else(|e| {
            error!(list = %list.name, error = %e, "no welcome mail for this confirmation");
            None
        }),
        None => None,
    };
    match welcome::confirm(&state.store, &subscriber, &consent, welcome.as_ref(), now).await {
        Ok(true) => {
            info!(list = %subscriber.list_name, subscriber = subscriber.id, "subscription confirmed");
            if welcome.is_some() {
                send_welcome(&state, &subscriber.list_name);
            }
            confirmed(&state, &subscriber)
        }
        Ok(false) if subscriber.status == SubscriberStatus::Active => confirmed(&state, &subscriber),
        Ok(false) => invalid(&state),
        Err(e) => unavailable(&state, e),
    }
}

//! Welcome mails: when a sign-up is confirmed, a list with a welcome
//! template (see [`crate::render::welcome`]) sends the new subscriber one
//! mail through the same ledger as its digests. The mail is an edition of the
//! list's welcome queue ([`welcome_queue`]) with one delivery row, written
//! in the confirmation's own transaction, so a confirmed subscriber has their
//! welcome queued whatever happens next; the web interface sends it at once,
//! and the daemon's drainer retries it like any digest's row.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::app::App;
use crate::clock::Clock;
use crate::config::ListSettings;
use crate::render::SharedParts;
use crate::render::welcome::{LatestEdition, WelcomeData};
use crate::sender::{self, ContextError, DrainOptions, SendContext, SendReport};
use crate::shutdown::Shutdown;
use crate::store::{Consent, NewEdition, Recipients, Store, StoreError, Subscriber, welcome_queue};

#[derive(Debug, thiserror::Error)]
pub enum WelcomeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the welcome mail of list {list:?} does not render: {error}")]
    Render {
        list: String,
        error: handlebars::RenderError,
    },
    #[error(transparent)]
    Context(#[from] ContextError),
}

/// A list's welcome mail, rendered for its next confirmed subscriber.
pub struct Welcome {
    queue: String,
    nonce: String,
    parts: SharedParts,
}

/// The welcome mail of `list` as of now (its latest archived edition, if
/// any), or none when the list has no welcome template.
pub async fn prepare(store: &Store, app: &App, list: &ListSettings) -> Result<Option<Welcome>, WelcomeError> {
    let Some(template) = app.templates.welcome_template(&list.name) else {
        return Ok(None);
    };
    let site = &app.settings.site;
    let (archive_url, latest) = if list.archive {
        let latest = store.archived_editions(&list.name, 0, 1).await?.into_iter().next();
        (
            Some(site.archive_url(&list.name, None).to_string()),
            latest.map(|e| LatestEdition {
                url: site.archive_url(&list.name, Some(&e.nonce)).to_string(),
                date: e.created_at.format("%-d %B %Y").to_string(),
                count: e.article_count,
                subject: e.subject,
            }),
        )
    } else {
        (None, None)
    };
    let data = WelcomeData::new(site, list, archive_url, latest);
    let parts = app
        .templates
        .render_welcome(&template, &data)
        .map_err(|error| WelcomeError::Render {
            list: list.name.clone(),
            error,
        })?;
    let nonce = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    Ok(Some(Welcome {
        queue: welcome_queue(&list.name),
        nonce,
        parts,
    }))
}

/// Confirms `subscriber`'s pending sign-up, with `welcome` (if any) queued
/// for them in the same transaction. Returns whether they were pending.
pub async fn confirm(
    store: &Store,
    subscriber: &Subscriber,
    consent: &Consent,
    welcome: Option<&Welcome>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let edition = welcome.map(|w| NewEdition {
        job: &w.queue,
        list: &subscriber.list_name,
        nonce: &w.nonce,
        subject: &w.parts.subject,
        html: &w.parts.html,
        text: &w.parts.text,
        article_ids: &[],
        recipients: Recipients::Uid(&subscriber.uid),
        fire: None,
    });
    store.confirm_uid(&subscriber.uid, consent, edition.as_ref(), now).await
}

/// Sends the welcome mails of `list` that are due, now. Rows another run
/// holds are left to it; what fails for a while is retried by the daemon.
pub async fn send(store: Store, app: Arc<App>, clock: Arc<dyn Clock>, list: &str) -> Result<SendReport, WelcomeError> {
    let ctx = Arc::new(SendContext::new(store, app, clock).await?);
    let options = DrainOptions {
        wait_for_leases: false,
        shutdown: Shutdown::never(),
        grace: std::time::Duration::ZERO,
    };
    Ok(sender::drain(ctx, &welcome_queue(list), &options).await?)
}

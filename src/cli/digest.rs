//! `herald ingest`, `digest`, `preview` and `run --once`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::args::*;
use super::digest_job;
use super::output::{no_edition_reason, print_digest, print_social, print_sources};
use super::queue::refuse_if_held;
use crate::app::App;
use crate::clock::SystemClock;
use crate::config::{DigestJob, JobKind, JobSettings};
use crate::digest;
use crate::import;
use crate::mail::message::{self, Addressee, EditionParts};
use crate::mail::{Delivery, MailTransport};
use crate::sender::{self, DrainOptions, Pause, SendContext, SendReport};
use crate::shutdown::Shutdown;
use crate::social;
use crate::store::{Store, StoredArticle, SubscriberStatus, welcome_queue};
use crate::{clock, ingest, source};

pub(super) async fn cmd_ingest(app: &App) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    let store = app.open_store().await?;
    let reports = ingest::ingest(&store, settings, None, &source::http_client(), clock::now()).await?;
    print_sources(&reports);
    store.close().await;
    let failed = reports.iter().any(|r| r.error.is_some());
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Plans and renders the next edition without storing anything new.
pub(super) async fn next_edition(
    app: &App,
    store: &Store,
    job: &JobSettings,
    digest: &DigestJob,
) -> anyhow::Result<(Vec<StoredArticle>, EditionParts)> {
    let settings = &app.settings;
    let now = clock::now();
    let mut fetched = Vec::new();
    for (name, result) in ingest::fetch(settings, Some(&job.sources), &source::http_client(), now).await {
        match result {
            Ok(polled) => fetched.extend(polled.articles),
            Err(e) => eprintln!("warning: source {name}: {e}"),
        }
    }
    let articles = digest::plan(store, job, digest, now, &fetched).await?;
    let parts = digest::render(app, job, digest, &articles, now, None)?;
    let list = settings.list(&digest.list).expect("checked");
    Ok((
        articles,
        EditionParts::new(
            0,
            "preview",
            &list.name,
            &list.title,
            &parts.subject,
            &parts.html,
            &parts.text,
        ),
    ))
}

pub(super) async fn cmd_digest(
    app: Arc<App>,
    name: &str,
    dry_run: bool,
    to: Option<String>,
) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    let (job, d) = digest_job(settings, name)?;
    let store = app.open_store().await?;
    if !dry_run && to.is_none() {
        refuse_if_held(&store, name).await?;
    }
    let keys = store.token_keys(&app.tokens).await?;
    if dry_run || to.is_some() {
        let (articles, parts) = next_edition(&app, &store, job, d).await?;
        let recipients = store.recipient_count(&d.list, digest::recipients(d)).await?;
        say!(
            "job {name}: the next edition would hold {} article(s) for {recipients} recipient(s) \
             (active, not suppressed, of the job's cadence)",
            articles.len()
        );
        for a in &articles {
            say!("  - {} <{}>", a.title, a.url);
        }
        if let Some(address) = to {
            let address = import::validate_email(&address)?;
            let transport = MailTransport::build(&settings.mail, app.dkim.clone())?;
            let addressee = Addressee::new(&settings.site, &keys, &address, None, "test", Default::default());
            let id = message::one_off_message_id(&settings.site, "test");
            let date = clock::now().into();
            let build = |encoding| {
                message::build(
                    &settings.site,
                    &parts,
                    &addressee,
                    id.clone(),
                    "[Test] ",
                    date,
                    encoding,
                )
            };
            let sent = transport
                .send(&build, &format!("test-{address}"), settings.mail.send_timeout, None)
                .await;
            transport.close().await;
            match sent {
                Delivery::Accepted(reply) => {
                    say!("test copy sent to {address} via {}: {reply}", transport.describe())
                }
                other => bail!("the test copy to {address} was not accepted: {}", other.reply()),
            }
        } else if !d.makes_edition(articles.len()) {
            say!(
                "dry run: {}, so no edition would be sent",
                no_edition_reason(d, articles.len())
            );
        } else {
            say!(
                "dry run: subject {:?}; nothing sent, nothing recorded",
                parts.subject_preview()
            );
        }
        store.close().await;
        return Ok(ExitCode::SUCCESS);
    }

    let ctx = Arc::new(SendContext::new(store.clone(), app.clone(), Arc::new(SystemClock)).await?);
    say!("job {name}: list {} via {}", d.list, ctx.transport.describe());
    let report = digest::run(
        ctx,
        job,
        d,
        &source::http_client(),
        clock::now(),
        &DrainOptions::to_completion(),
        None,
    )
    .await?;
    let paused = print_digest(&store, (job, d), &report).await?;
    store.close().await;
    if let Some(pause) = &paused {
        eprintln!("ERROR: mail channel PAUSED: {pause}");
        match pause {
            Pause::Session(_) => eprintln!(
                "ERROR: fix the sending setup (relay address, TLS, credentials, sender address, SPF/DKIM; \
                 `herald check --smtp` tries it), then run `herald digest {name}` again; unsent rows stay queued, untouched"
            ),
            Pause::RelayDown { .. } => eprintln!(
                "ERROR: the mail server is down or throttling us; unsent rows stay queued: run `herald digest {name}` again later (the daemon retries on its own)"
            ),
        }
    }
    if paused.is_some() || !report.send.paused_editions.is_empty() {
        return Ok(ExitCode::from(3));
    }
    let failed: Vec<&str> = report
        .sources
        .iter()
        .filter(|s| s.error.is_some())
        .map(|s| s.source.as_str())
        .collect();
    if !failed.is_empty() {
        eprintln!(
            "ERROR: source(s) failed: {} (the edition holds what the other sources and earlier polls stored)",
            failed.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn cmd_preview(
    app: &App,
    name: &str,
    format: PreviewFormat,
    out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    let (job, d) = digest_job(settings, name)?;
    let store = app.open_store().await?;
    let keys = store.token_keys(&app.tokens).await?;
    let (_, parts) = next_edition(app, &store, job, d).await?;
    let sample = store
        .subscribers(&d.list, Some(SubscriberStatus::Active), 1)
        .await?
        .into_iter()
        .next();
    let (email, name_value, uid) = match &sample {
        Some(s) => (s.email.clone(), s.name.clone(), s.uid.clone()),
        None => (
            "reader@example.org".to_string(),
            Some("Sample Reader".to_string()),
            "preview".to_string(),
        ),
    };
    let attributes = sample.as_ref().map(|s| s.attributes.0.clone()).unwrap_or_default();
    let addressee = Addressee::new(&settings.site, &keys, &email, name_value.as_deref(), &uid, attributes);
    let bytes = match format {
        PreviewFormat::Html => parts.html_for(&addressee).into_bytes(),
        PreviewFormat::Text => parts.text_for(&addressee).into_bytes(),
        PreviewFormat::Eml => message::build(
            &settings.site,
            &parts,
            &addressee,
            message::one_off_message_id(&settings.site, "preview"),
            "",
            clock::now().into(),
            message::BodyEncoding::EightBit,
        )?
        .formatted(),
    };
    match out {
        Some(path) => {
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("preview of job {name} written to {}", path.display());
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn cmd_run_once(app: Arc<App>) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    let store = app.open_store().await?;
    let ctx = Arc::new(SendContext::new(store.clone(), app.clone(), Arc::new(SystemClock)).await?);
    let client = source::http_client();
    let mut failed = false;
    for job in &settings.jobs {
        if let Some(hold) = store.hold_of(&job.name).await? {
            say!("== job {}: HELD ({}): skipped", job.name, hold.reason);
            continue;
        }
        let d = match &job.kind {
            JobKind::Social(s) => {
                say!("== job {} (accounts {})", job.name, s.accounts.join(", "));
                let report = social::run(&store, settings, job, s, &client, &SystemClock, &Shutdown::never()).await?;
                failed |= print_social(&report);
                continue;
            }
            JobKind::Digest(d) => d,
        };
        say!(
            "== job {} (list {}, via {})",
            job.name,
            d.list,
            ctx.transport.describe()
        );
        match digest::run(
            ctx.clone(),
            job,
            d,
            &client,
            clock::now(),
            &DrainOptions::to_completion(),
            None,
        )
        .await
        {
            Ok(report) => {
                let paused = print_digest(&store, (job, d), &report).await?;
                failed |= paused.is_some()
                    || !report.send.paused_editions.is_empty()
                    || report.send.failed > 0
                    || report.send.expired > 0
                    || report.sources.iter().any(|s| s.error.is_some());
                if let Some(reason) = paused {
                    eprintln!("ERROR: job {}: mail channel PAUSED: {reason}", job.name);
                }
            }
            Err(e) => {
                eprintln!("ERROR: job {}: {e}", job.name);
                failed = true;
            }
        }
    }
    // Welcome mails left queued (the web interface could not send them at once).
    for list in &settings.lists {
        let report = sender::drain(ctx.clone(), &welcome_queue(&list.name), &DrainOptions::to_completion()).await?;
        if report != SendReport::default() {
            say!(
                "== welcome mails of list {}: {} sent, {} retrying, {} failed",
                list.name,
                report.sent,
                report.retrying,
                report.failed
            );
            failed |= report.failed > 0 || report.paused.is_some();
        }
    }
    store.close().await;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

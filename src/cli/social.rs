//! `herald post` and `herald posts`.

use std::process::ExitCode;

use anyhow::bail;
use chrono::{DateTime, Utc};

use super::output::print_social;
use super::queue::refuse_if_held;
use super::social_job;
use crate::app::App;
use crate::clock::SystemClock;
use crate::shutdown::Shutdown;
use crate::social;
use crate::social::post::Plan;
use crate::{clock, ingest, source};

pub(super) async fn cmd_post(app: &App, name: &str, dry_run: bool) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    let (job, social_job) = social_job(settings, name)?;
    let store = app.open_store().await?;
    let client = source::http_client();
    let now = clock::now();
    if !dry_run {
        refuse_if_held(&store, name).await?;
        let report = social::run(
            &store,
            settings,
            job,
            social_job,
            &client,
            &SystemClock,
            &Shutdown::never(),
        )
        .await?;
        let failed = print_social(&report);
        store.close().await;
        return Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS });
    }
    // Dry run: read the sources without storing, and show each account's teasers.
    let mut fresh = Vec::new();
    for (source, result) in ingest::fetch(settings, Some(&job.sources), &client, now).await {
        match result {
            Ok(polled) => fresh.extend(polled.articles),
            Err(e) => eprintln!("warning: source {source}: {e}"),
        }
    }
    for account_name in &social_job.accounts {
        let account = settings.account(account_name).expect("checked");
        let rule = social::post::rule(&store, account, &client, now).await?;
        let template = social::teaser::compile(social::teaser::template_of(account))?;
        say!(
            "account {} ({}, limit {} {}):",
            account.name,
            account.kind.name(),
            rule.max,
            rule.counting.describe()
        );
        let first_run = !store.account_initialized(&account.name).await?;
        if first_run && !account.backfill {
            say!("  first run: the articles that exist now are recorded without posting (backfill = false)");
        }
        let stored = store.unposted_articles(&account.name, &job.sources).await?;
        let identities: Vec<String> = fresh.iter().map(|a| a.identity.clone()).collect();
        let known = store.known_identities(&identities).await?;
        let mut inputs: Vec<(String, social::teaser::TeaserInput, DateTime<Utc>)> = stored
            .iter()
            .map(|a| (a.url.clone(), social::post::teaser_input(a), a.published_at))
            .collect();
        for a in fresh.iter().filter(|a| !known.contains(&a.identity)) {
            let input = social::teaser::TeaserInput {
                title: a.title.clone(),
                excerpt: a.excerpt.clone(),
                url: a.url.clone(),
                author: a.author.clone(),
                tags: a.tags.clone(),
            };
            inputs.push((a.url.clone(), input, a.published_at));
        }
        let mut shown = 0;
        for (url, input, published) in inputs {
            match social::post::plan(account, first_run, published, &input, &template, &rule, now) {
                Plan::Skip(_) => continue,
                Plan::Post(text) => {
                    say!("  --- {url} [{}]", rule.describe(&text));
                    for line in text.lines() {
                        say!("  | {line}");
                    }
                }
                Plan::CannotPost(e) => say!("  --- {url}: CANNOT POST: {e}"),
            }
            shown += 1;
        }
        if shown == 0 {
            say!("  nothing new to post");
        }
    }
    say!("dry run: nothing posted, nothing recorded");
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn cmd_posts(app: &App, account: Option<String>, limit: i64) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    if let Some(name) = &account
        && settings.account(name).is_none()
    {
        bail!("no account named {name:?} in {}", settings.file.display());
    }
    let store = app.open_store().await?;
    let counts = store.post_counts(account.as_deref()).await?;
    say!(
        "{}: {} post record(s)",
        account
            .as_deref()
            .map_or("all accounts".to_string(), |a| format!("account {a}")),
        counts.iter().map(|c| c.count).sum::<i64>()
    );
    for c in &counts {
        let doubt = if c.in_doubt > 0 {
            format!(" ({} in doubt)", c.in_doubt)
        } else {
            String::new()
        };
        say!("  {:<11} {:>8}{doubt}", c.state, c.count);
    }
    let rows = if limit > 0 {
        store.posts(account.as_deref(), limit).await?
    } else {
        Vec::new()
    };
    if !rows.is_empty() {
        say!();
        for r in &rows {
            say!(
                "  #{:<6} {:<14} article {:<5} {:<8} tries {:<2} {} {}",
                r.id,
                r.account,
                r.article_id,
                r.state,
                r.attempts,
                r.remote_url.as_deref().or(r.remote_id.as_deref()).unwrap_or(""),
                r.last_reply.as_deref().unwrap_or("")
            );
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

//! `herald check --smtp | --live` and `herald dkim keygen`.

use std::io::Write;
use std::process::ExitCode;

use crate::app::App;
use chrono::{DateTime, Utc};

use crate::config::{AccountKind, AccountSettings, Settings, secret_var};
use crate::digest;
use crate::mail::MailTransport;
use crate::social::{self, credentials};
use crate::store::Store;
use crate::{clock, source, store};

/// `herald dkim keygen`: a new key on disk and the record to publish.
pub(super) fn cmd_dkim_keygen(selector: &str, domain: &str, out: &std::path::Path) -> anyhow::Result<ExitCode> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let (pem, record) = crate::mail::generate_dkim_key(selector, domain).map_err(anyhow::Error::msg)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    file.write_all(pem.as_bytes())?;
    say!("wrote {} (keep it secret; readable by its owner only)", out.display());
    say!("publish this DNS record:");
    say!("{record}");
    say!("then set in config/herald.toml:");
    say!(
        "[mail.dkim]\nselector = \"{selector}\"\ndomain = \"{domain}\"\nprivate_key_file = \"{}\"",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Each OAuth account's token as the configuration gives it (`herald check`;
/// `--live` adds what the store knows: a refresh, a refusal).
pub(super) fn print_tokens(settings: &Settings) {
    for account in settings.accounts.iter().filter(|a| a.kind.oauth_token().is_some()) {
        if let Some(line) = token_line(account, account.token_expires_at, None, clock::now()) {
            say!("{line}");
        }
    }
}

/// One line about an account's access token: when it expires, or why its
/// posts wait; a warning within a week of the expiry. Nothing for a
/// Mastodon token of no known expiry (they normally do not expire).
fn token_line(
    account: &AccountSettings,
    expires_at: Option<DateTime<Utc>>,
    blocked: Option<String>,
    now: DateTime<Utc>,
) -> Option<String> {
    let name = &account.name;
    if let Some(why) = blocked {
        return Some(format!("WARNING: account {name}: {why}"));
    }
    let Some(at) = expires_at else {
        return match account.kind {
            AccountKind::Threads { .. } => Some(format!(
                "account {name}: access token expiry unknown (set token_expires_at, or let the first refresh tell it)"
            )),
            AccountKind::LinkedIn { .. } => Some(format!(
                "account {name}: access token expiry unknown (set token_expires_at to be warned before it)"
            )),
            _ => None,
        };
    };
    let days = (at - now).num_hours() as f64 / 24.0;
    let when = at.format("%Y-%m-%d %H:%M UTC");
    Some(if at <= now {
        format!(
            "WARNING: account {name}: the access token expired on {when}; posts wait until {} is replaced",
            secret_var(name, "access_token")
        )
    } else if at - now <= credentials::WARN_BEFORE {
        format!(
            "WARNING: account {name}: the access token expires on {when} (in {days:.1} days); replace {} before then",
            secret_var(name, "access_token")
        )
    } else {
        format!("account {name}: access token expires on {when} (in {days:.0} days)")
    })
}

/// `herald check --live`: the store and what it knows of the configuration's
/// past (jobs and lists renamed away), then each source, one request each.
/// Exit 2 when the store or a source cannot be reached.
pub(super) async fn cmd_check_live(app: &App) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    let mut failed = false;
    let shown = store::display_url(&settings.store_url);
    match app.open_store().await {
        Ok(store) => {
            say!("store {shown}: ok, schema up to date");
            for warning in history_warnings(settings, &store).await? {
                say!("WARNING: {warning}");
            }
            let client = source::http_client();
            for account in &settings.accounts {
                match social::verify(&store, account, &client, clock::now()).await {
                    Some(Ok(said)) => say!("account {}: ok, {said}", account.name),
                    Some(Err(e)) => {
                        failed = true;
                        eprintln!("ERROR: account {}: {e}", account.name);
                    }
                    None => say!(
                        "account {}: not tried (the platform has no call that checks without posting)",
                        account.name
                    ),
                }
                if let Some(token) = credentials::current(&store, account).await? {
                    let blocked = token.blocked(account, clock::now());
                    failed |= blocked.is_some();
                    if let Some(line) = token_line(account, token.expires_at, blocked, clock::now()) {
                        say!("{line}");
                    }
                }
            }
            store.close().await;
        }
        Err(e) => {
            failed = true;
            eprintln!("ERROR: store {shown}: {e:#}");
        }
    }
    let client = source::http_client();
    for s in &settings.sources {
        match source::poll(s, &client, &Default::default(), clock::now()).await {
            Ok(polled) => say!(
                "source {}: ok, {} article(s){}",
                s.name,
                polled.articles.len(),
                if polled.skipped.is_empty() {
                    String::new()
                } else {
                    format!(", {} unreadable item(s)", polled.skipped.len())
                }
            ),
            Err(e) => {
                failed = true;
                eprintln!("ERROR: source {}: {e}", s.name);
            }
        }
    }
    Ok(if failed { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// What the store's history says an operator may not expect: subscribers
/// under a list name no longer configured (a renamed list leaves them
/// behind), and a job that never sent on a list other jobs sent to (a
/// renamed job: what its first edition would hold).
pub(super) async fn history_warnings(settings: &Settings, store: &Store) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    for (list, count) in store.subscribers_by_list().await? {
        if settings.list(&list).is_none() && count > 0 {
            warnings.push(format!(
                "the store has {count} active subscriber(s) on list {list:?}, which the configuration no longer has: \
                 if the list was renamed, its subscribers stayed under the old name (rename it back)"
            ));
        }
    }
    let now = clock::now();
    for (job, d) in settings.digest_jobs() {
        if store.last_edition_at(&job.name).await?.is_some() {
            continue;
        }
        let mut configured = d.siblings.clone();
        configured.push(job.name.clone());
        let Some(list_last) = store.last_list_edition_at(&d.list, &configured).await? else {
            continue;
        };
        let articles = digest::plan(store, job, d, now, &[]).await?;
        warnings.push(format!(
            "job {} has never made an edition, but list {} had one at {} by a job no longer configured \
             (was this job renamed?); its first edition starts there and would now hold {} of the articles stored so far",
            job.name,
            d.list,
            list_last.format("%Y-%m-%d %H:%M UTC"),
            articles.len()
        ));
    }
    Ok(warnings)
}

/// `herald check --smtp`: opens a session as a send would and says QUIT.
/// Exit 2 when the server refuses it or cannot be reached.
pub(super) async fn cmd_check_smtp(app: &App) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    let transport = MailTransport::build(&settings.mail, app.dkim.clone())?;
    match transport.probe().await {
        None => {
            say!("mail.transport is \"file\": no SMTP server to check");
            Ok(ExitCode::SUCCESS)
        }
        Some(Ok(said)) => {
            say!("{}: {said}; QUIT", transport.describe());
            Ok(ExitCode::SUCCESS)
        }
        Some(Err(e)) => {
            eprintln!("ERROR: {}: {e}", transport.describe());
            Ok(ExitCode::from(2))
        }
    }
}

//! `herald subscribers` and `herald suppressions`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::args::*;
use super::list_name;
use crate::app::App;
use crate::import;
use crate::store::{AddOutcome, NewSubscriber};
use crate::{clock, store};

pub(super) async fn cmd_subscribers(app: &App, action: SubscribersAction) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    let store = app.open_store().await?;
    let now = clock::now();
    let code = match action {
        SubscribersAction::Add { email, name, list } => {
            let list = list_name(settings, list)?;
            let email = import::validate_email(&email)?;
            if store.is_suppressed(&email).await? {
                eprintln!(
                    "ERROR: {email} is suppressed (a hard bounce, a complaint, an erasure or an operator's choice): \
                     `herald suppressions remove {email}` first if they asked to come back"
                );
                store.close().await;
                return Ok(ExitCode::FAILURE);
            }
            let name = name.map(|n| crate::clean::one_line(&n)).filter(|n| !n.is_empty());
            let outcome = store
                .add_subscriber(
                    &list,
                    &NewSubscriber {
                        email: email.clone(),
                        name,
                        ..Default::default()
                    },
                    now,
                )
                .await?;
            match outcome {
                AddOutcome::Added => say!("{email} subscribed to {list}"),
                AddOutcome::Resubscribed => say!("{email} subscribed to {list} again"),
                AddOutcome::AlreadySubscribed => {
                    say!("{email} is already subscribed to {list}")
                }
            }
            ExitCode::SUCCESS
        }
        SubscribersAction::Remove { email, list } => {
            let list = list_name(settings, list)?;
            if store.unsubscribe(&list, &email, now).await? {
                say!("{email} unsubscribed from {list}");
                ExitCode::SUCCESS
            } else {
                say!("{email} is not an active subscriber of {list}");
                ExitCode::FAILURE
            }
        }
        SubscribersAction::List { list, status, limit } => {
            let list = list_name(settings, list)?;
            let rows = store.subscribers(&list, status, limit).await?;
            let total = store.subscriber_count(&list, status).await?;
            say!(
                "list {list}: {total} subscriber(s){}",
                status.map(|s| format!(" with status {s}")).unwrap_or_default()
            );
            for s in rows {
                say!("  {:<40} {:<14} {}", s.email, s.status, s.name.unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        SubscribersAction::Export { list, status, format } => {
            let lists: Vec<String> = match list {
                Some(name) => vec![list_name(settings, Some(name))?],
                None => settings.lists.iter().map(|l| l.name.clone()).collect(),
            };
            let mut rows = Vec::new();
            for list in &lists {
                rows.extend(store.subscribers(list, status, i64::MAX).await?);
            }
            export(&rows, format)?;
            ExitCode::SUCCESS
        }
        SubscribersAction::Erase { email } => {
            let erased = store.erase(&email, now).await?;
            say!(
                "{email} erased: {} subscription(s) scrubbed, {} consent record(s) and {} delivery record(s)' address removed; \
                 a hashed suppression keeps it from coming back",
                erased.subscriptions,
                erased.consents,
                erased.deliveries
            );
            ExitCode::SUCCESS
        }
        SubscribersAction::Show { email, list } => {
            let list = list_name(settings, list)?;
            let Some(s) = store.subscriber_by_address(&list, &email).await? else {
                say!("{email} is not on {list}");
                store.close().await;
                return Ok(ExitCode::FAILURE);
            };
            let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
            say!("{} on {list}: {}", s.email, s.status);
            say!("  name:    {}", s.name.as_deref().unwrap_or("-"));
            let cadence = if s.cadence.is_empty() {
                "(the list's default)"
            } else {
                s.cadence.as_str()
            };
            say!("  cadence: {cadence}");
            say!("  since:   {}", at(s.created_at));
            let history = store.consent_history(s.id).await?;
            if history.is_empty() {
                say!("  consent: none recorded on the web (added by an operator or an import)");
            }
            for r in history {
                let c = r.consent;
                say!(
                    "  {} {:<12} page {} ip {} agent {:?}",
                    at(r.created_at),
                    c.action,
                    c.page,
                    c.ip,
                    c.user_agent
                );
                if !c.wording.is_empty() {
                    say!("      wording {}: {:?}", c.wording_version, c.wording);
                }
            }
            ExitCode::SUCCESS
        }
        SubscribersAction::Import { file, list, status } => {
            let list = list_name(settings, list)?;
            let input = std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?;
            let size = input.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = indicatif::ProgressBar::with_draw_target(Some(size), indicatif::ProgressDrawTarget::stderr());
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {elapsed} {msg}")
                    .expect("the template is valid"),
            );
            let report = import::import_csv(&store, &list, std::io::BufReader::new(input), status, now, |bytes| {
                bar.set_position(bytes)
            })
            .await?;
            bar.finish_and_clear();
            say!(
                "{}: {} row(s), {} added to {list}, {} duplicate(s) skipped, {} suppressed skipped, {} invalid",
                file.display(),
                report.rows,
                report.added,
                report.duplicates,
                report.suppressed,
                report.invalid.len()
            );
            for (line, reason) in &report.invalid {
                say!("  line {line}: {reason}");
            }
            if report.invalid.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    };
    store.close().await;
    Ok(code)
}

/// Writes subscribers to stdout: CSV with the columns `import` reads and
/// one column per attribute, or a JSON array.
pub(super) fn export(rows: &[store::Subscriber], format: ExportFormat) -> anyhow::Result<()> {
    let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
    let attributes: Vec<serde_json::Map<String, serde_json::Value>> =
        rows.iter().map(|s| s.attributes.0.clone()).collect();
    let stdout = std::io::stdout();
    match format {
        ExportFormat::Json => {
            let out: Vec<serde_json::Value> = rows
                .iter()
                .zip(&attributes)
                .map(|(s, a)| {
                    serde_json::json!({
                        "email": s.email, "name": s.name, "list": s.list_name, "status": s.status.as_str(),
                        "cadence": s.cadence, "created_at": at(s.created_at), "attributes": a,
                    })
                })
                .collect();
            serde_json::to_writer_pretty(stdout.lock(), &out)?;
            writeln!(stdout.lock())?;
        }
        ExportFormat::Csv => {
            let mut keys: Vec<&String> = attributes.iter().flat_map(|a| a.keys()).collect();
            keys.sort();
            keys.dedup();
            let mut csv = csv::Writer::from_writer(stdout.lock());
            let mut header = vec!["email", "name", "list", "status", "cadence", "created_at"];
            header.extend(keys.iter().map(|k| k.as_str()));
            csv.write_record(&header)?;
            for (s, a) in rows.iter().zip(&attributes) {
                let mut record = vec![
                    s.email.clone(),
                    s.name.clone().unwrap_or_default(),
                    s.list_name.clone(),
                    s.status.to_string(),
                    s.cadence.clone(),
                    at(s.created_at),
                ];
                record.extend(keys.iter().map(|k| match a.get(*k) {
                    Some(serde_json::Value::String(v)) => v.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                }));
                csv.write_record(&record)?;
            }
            csv.flush()?;
        }
    }
    Ok(())
}

pub(super) async fn cmd_suppressions(app: &App, action: SuppressionsAction) -> anyhow::Result<ExitCode> {
    let _settings = &app.settings;
    let store = app.open_store().await?;
    let now = clock::now();
    let code = match action {
        SuppressionsAction::List => {
            let all = store.suppressions().await?;
            say!("{} suppressed address(es)", all.len());
            for s in all {
                let shown = if s.key.starts_with("sha256:") {
                    format!("(erased) {}", &s.key[..19])
                } else {
                    s.key
                };
                say!(
                    "  {:<40} {}  {}",
                    shown,
                    s.created_at.format("%Y-%m-%d %H:%M UTC"),
                    s.reason
                );
            }
            ExitCode::SUCCESS
        }
        SuppressionsAction::Add { email, reason } => {
            let email = import::validate_email(&email)?;
            store.suppress(&email, &reason, now).await?;
            say!("{email} suppressed: never sent to, imported or signed up again");
            ExitCode::SUCCESS
        }
        SuppressionsAction::Remove { email } => {
            if store.unsuppress(&email).await? {
                say!("{email} is no longer suppressed (its subscriptions keep their status)");
                ExitCode::SUCCESS
            } else if store.is_suppressed(&email).await? {
                eprintln!("ERROR: {email} was erased on request: it stays suppressed");
                ExitCode::FAILURE
            } else {
                eprintln!("ERROR: {email} is not suppressed");
                ExitCode::FAILURE
            }
        }
        SuppressionsAction::Import { file, reason } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let mut lines = text.lines();
            let header: Vec<String> = lines
                .next()
                .unwrap_or("")
                .split(',')
                .map(|h| h.trim().to_lowercase())
                .collect();
            let column = header.iter().position(|h| h == "email");
            let first = if column.is_some() { None } else { text.lines().next() };
            let (mut added, mut invalid) = (0, Vec::new());
            for (n, line) in first.into_iter().chain(lines).enumerate() {
                let value = line.split(',').nth(column.unwrap_or(0)).unwrap_or("").trim();
                if value.is_empty() {
                    continue;
                }
                match import::validate_email(value) {
                    Ok(email) => {
                        store.suppress(&email, &reason, now).await?;
                        added += 1;
                    }
                    Err(e) => invalid.push(format!("line {}: {e}", n + 1 + usize::from(column.is_some()))),
                }
            }
            say!(
                "{}: {added} address(es) suppressed, {} invalid",
                file.display(),
                invalid.len()
            );
            for i in &invalid {
                say!("  {i}");
            }
            if invalid.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    };
    store.close().await;
    Ok(code)
}

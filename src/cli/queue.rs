//! The queue and the schedule: `herald deliveries`, `resume`, `cancel`, `hold`, `release`, `schedule`.

use std::process::ExitCode;

use anyhow::bail;

use super::{digest_job, known_job};
use crate::app::App;
use crate::clock;
use crate::store::{DeliveryState, Store, welcome_queue};

pub(super) async fn cmd_deliveries(
    app: &App,
    job: Option<String>,
    state: Option<DeliveryState>,
    limit: i64,
) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    // A list's welcome mails are a queue of their own.
    if let Some(name) = &job
        && !settings.lists.iter().any(|l| welcome_queue(&l.name) == *name)
    {
        digest_job(settings, name)?;
    }
    let store = app.open_store().await?;
    let counts = store.delivery_counts(job.as_deref()).await?;
    let total: i64 = counts.iter().map(|c| c.count).sum();
    say!(
        "{}: {total} delivery record(s)",
        job.as_deref().map_or("all jobs".to_string(), |j| format!("job {j}"))
    );
    for c in &counts {
        let doubt = if c.in_doubt > 0 {
            format!(" ({} in doubt)", c.in_doubt)
        } else {
            String::new()
        };
        say!("  {:<11} {:>8}{doubt}", c.state.as_str(), c.count);
    }
    for e in store.paused_editions().await? {
        if job.as_ref().is_some_and(|j| *j != e.job) {
            continue;
        }
        let at = e.paused_at;
        say!(
            "  edition #{} (job {}) PAUSED since {}: {}; {} queued; `herald resume {}` continues it",
            e.id,
            e.job,
            at.format("%Y-%m-%d %H:%M:%S UTC"),
            e.reason,
            e.queued,
            e.id
        );
    }
    for e in store.edition_bounces(job.as_deref()).await? {
        say!(
            "  edition #{} (job {}): {} hard, {} soft bounce(s), {} complaint(s) of {} sent (complaint rate {:.2}%)",
            e.edition_id,
            e.job,
            e.hard,
            e.soft,
            e.complaints,
            e.sent,
            e.complaints as f64 * 100.0 / e.sent.max(1) as f64
        );
    }
    let rows = store.deliveries(job.as_deref(), state, limit).await?;
    if !rows.is_empty() {
        say!();
        for r in rows {
            say!(
                "  #{:<7} {:<10} edition {:<4} {:<10} tries {:<2}{} {:<36} {}{}",
                r.id,
                r.job,
                r.edition_id,
                r.state.as_str(),
                r.attempts,
                if r.in_doubt { " in-doubt" } else { "" },
                r.email,
                r.last_reply.as_deref().unwrap_or_default(),
                r.claimed_by
                    .as_ref()
                    .map(|by| format!("  (by {by})"))
                    .unwrap_or_default()
            );
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn cmd_resume(app: &App, editions: &[i64]) -> anyhow::Result<ExitCode> {
    let _settings = &app.settings;
    let store = app.open_store().await?;
    let resumed = store.resume_editions(editions).await?;
    store.close().await;
    for e in &resumed {
        say!(
            "edition #{} (job {}, list {}) resumed: {} queued delivery(ies) go out on the next send round",
            e.id,
            e.job,
            e.list_name,
            e.queued
        );
    }
    let missing: Vec<String> = editions
        .iter()
        .filter(|id| !resumed.iter().any(|e| e.id == **id))
        .map(|id| format!("#{id}"))
        .collect();
    if !missing.is_empty() {
        eprintln!("ERROR: not paused (or no such edition): {}", missing.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    if resumed.is_empty() {
        say!("no edition is paused");
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn cmd_cancel(app: &App, edition: i64) -> anyhow::Result<ExitCode> {
    let _settings = &app.settings;
    let store = app.open_store().await?;
    let cancelled = store.cancel_edition(edition, clock::now()).await?;
    store.close().await;
    let Some(c) = cancelled else {
        eprintln!("ERROR: no edition #{edition}");
        return Ok(ExitCode::FAILURE);
    };
    say!(
        "edition #{edition} cancelled: {} queued delivery(ies) will never be sent; {} were already sent; \
         {} being sent now finish",
        c.cancelled,
        c.sent,
        c.sending
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn cmd_hold(app: &App, name: &str, reason: &str) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    known_job(settings, name)?;
    let store = app.open_store().await?;
    let held = store.hold_job(name, reason, clock::now()).await?;
    store.close().await;
    if held {
        say!("job {name} held: its fires build nothing and none of its rows is sent until `herald release {name}`");
    } else {
        say!("job {name} was already held");
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn cmd_release(app: &App, name: &str) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    known_job(settings, name)?;
    let store = app.open_store().await?;
    let released = store.release_job(name).await?;
    store.close().await;
    if released {
        say!("job {name} released: it fires again, and its queued rows go out on the next send round");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("ERROR: job {name} is not held");
        Ok(ExitCode::FAILURE)
    }
}

/// Refuses to run a held job by hand.
pub(super) async fn refuse_if_held(store: &Store, name: &str) -> anyhow::Result<()> {
    if let Some(hold) = store.hold_of(name).await? {
        bail!(
            "job {name} is held since {} ({}): `herald release {name}` first",
            hold.held_at.format("%Y-%m-%d %H:%M:%S UTC"),
            hold.reason
        );
    }
    Ok(())
}

pub(super) async fn cmd_schedule(app: &App, count: usize) -> anyhow::Result<ExitCode> {
    let settings = &app.settings;
    let now = clock::now();
    for job in &settings.jobs {
        say!(
            "job {}: {:?} in {} ({})",
            job.name,
            job.schedule,
            job.timezone,
            job.cron.describe()
        );
        for at in crate::schedule::upcoming(&job.cron, job.timezone, now, count) {
            let local = at.with_timezone(&job.timezone);
            say!(
                "  {}   = {}",
                local.format("%a %Y-%m-%d %H:%M:%S %Z"),
                at.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
    }
    let holds;
    let unfinished = match app.open_store().await {
        Ok(store) => {
            let fires = store.unfinished_fires().await;
            let found = store.holds().await;
            store.close().await;
            holds = found?;
            fires?
        }
        Err(e) => {
            say!("(unfinished fires not shown: {e})");
            return Ok(ExitCode::SUCCESS);
        }
    };
    if unfinished.is_empty() {
        say!("no unfinished fires");
    }
    for hold in holds {
        say!(
            "job {} HELD since {} ({}): its fires build nothing until `herald release {}`",
            hold.job,
            hold.held_at.format("%Y-%m-%d %H:%M:%S UTC"),
            hold.reason,
            hold.job
        );
    }
    for fire in unfinished {
        let state = if fire.lease_until >= now {
            format!("running on {}", fire.claimed_by)
        } else {
            format!(
                "its claimer {} stopped renewing at {}: a live daemon takes it over (or closes it, if a later fire ran)",
                fire.claimed_by,
                fire.lease_until.format("%Y-%m-%d %H:%M:%S UTC")
            )
        };
        say!(
            "unfinished fire: job {} scheduled {}, {}; edition {}{}",
            fire.job,
            fire.scheduled_at.format("%Y-%m-%d %H:%M:%S UTC"),
            state,
            fire.edition.map_or("not made yet".to_string(), |id| format!("#{id}")),
            if fire.takeovers > 0 {
                format!(" (taken over {} time(s))", fire.takeovers)
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

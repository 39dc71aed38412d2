//! The dispatcher: records outcomes as they arrive and, in the same store
//! transaction, claims the rows that take their place; keeps each edition's
//! error budget.

use super::*;

impl Budget {
    /// Counts `done`; returns why its edition must pause when this outcome
    /// takes it over `budget` (once: its counts start again afterwards).
    pub(super) fn count(&mut self, budget: crate::config::ErrorBudget, done: &Done) -> Option<String> {
        let refusal = match &done.outcome {
            Outcome::Sent { .. } => None,
            Outcome::Failed { reply, .. } => Some(reply),
            _ => return None,
        };
        let (attempts, failures) = self.0.entry(done.edition_id).or_default();
        *attempts += 1;
        *failures += u64::from(refusal.is_some());
        let reply = refusal.filter(|_| budget.exceeded(*attempts, *failures))?;
        let reason = format!(
            "{failures} of {attempts} messages refused for good, over the {}% error budget (last: {reply})",
            budget.percent
        );
        self.0.remove(&done.edition_id);
        Some(reason)
    }
}

impl Editions {
    pub(super) async fn get(&mut self, ctx: &SendContext, id: i64) -> Result<Arc<EditionParts>, StoreError> {
        if let Some(parts) = self.0.get(&id) {
            return Ok(parts.clone());
        }
        let e = ctx.store.edition(id).await?;
        let title = ctx
            .app
            .settings
            .list(&e.list_name)
            .map_or(e.list_name.clone(), |l| l.title.clone());
        let parts = Arc::new(EditionParts::new(
            e.id,
            &e.nonce,
            &e.list_name,
            &title,
            &e.subject,
            &e.html,
            &e.text,
        ));
        self.0.insert(id, parts.clone());
        Ok(parts)
    }
}

/// Records outcomes as they come and claims a due row for every slot they
/// free, in one transaction per round (as many outcomes as have arrived),
/// and hands the claimed rows to the workers. Stops claiming once the queue is
/// empty (after waiting out other runs' leases, when asked to), the channel
/// pauses or shutdown is triggered, and returns once every claimed row is
/// recorded. If the store fails, the run stops: rows left `sending` come back
/// in doubt when their leases run out.
pub(super) async fn run(
    run: Arc<Run>,
    job: String,
    options: DrainOptions,
    slots: usize,
    work: mpsc::Sender<Work>,
    mut done: mpsc::Receiver<Done>,
) -> Result<SendReport, StoreError> {
    let ctx = &run.ctx;
    let mut shutdown = options.shutdown.clone();
    let mut report = SendReport::default();
    let mut editions = Editions::default();
    let mut budget = Budget::default();
    // Counts claim rounds, so a row can be told to have been claimed before its edition paused.
    let mut round = 0u64;
    let mut finished: Vec<Done> = Vec::with_capacity(slots);
    // Rows claimed and not yet recorded.
    let mut claimed = 0usize;
    // The last claim came back short: claim again only once nothing is in flight.
    let mut drained = false;
    // Progress is logged every PROGRESS_EVERY while rows go out.
    let started = Instant::now();
    let mut progress_at = started + PROGRESS_EVERY;
    loop {
        let stopping = run.paused.load(Ordering::SeqCst) || shutdown.is_triggered();
        let in_flight_after = claimed - finished.len();
        let want = if stopping || (drained && in_flight_after > 0) {
            0
        } else {
            slots - in_flight_after
        };
        for d in &finished {
            if run.claimed_before_pause(d.edition_id, d.round) {
                continue;
            }
            let Some(reason) = budget.count(ctx.app.settings.mail.error_budget, d) else {
                continue;
            };
            run.paused_editions
                .lock()
                .expect("not poisoned")
                .insert(d.edition_id, round);
            if let Err(e) = ctx.store.pause_edition(d.edition_id, &reason, ctx.clock.now()).await {
                error!(error = %e, "cannot pause an edition over its error budget; stopping this run");
                run.paused.store(true, Ordering::SeqCst);
                return Err(e);
            }
            error!(
                job,
                edition = d.edition_id,
                %reason,
                "edition PAUSED over its error budget: its rows stay queued until `herald resume`"
            );
            report.paused_editions.push((d.edition_id, reason));
        }
        if !finished.is_empty() || want > 0 {
            let outcomes: Vec<Attempt> = finished
                .iter()
                .map(|d| Attempt {
                    id: d.id,
                    lease_until: d.lease_until,
                    outcome: &d.outcome,
                    email: d.email.as_str(),
                })
                .collect();
            let now = ctx.clock.now();
            let lease = Lease {
                by: crate::instance::id(),
                now,
                until: now + lease_for(&ctx.app.settings.mail),
            };
            round += 1;
            let rows = match ctx.store.record_and_claim(&outcomes, &job, want, &lease).await {
                Ok((rows, written)) => {
                    let lost = outcomes.len() as u64 - written;
                    if lost > 0 {
                        warn!(
                            job,
                            rows = lost,
                            "outcomes not recorded: the rows' leases ran out and were taken back (they are in doubt)"
                        );
                    }
                    rows
                }
                Err(e) => {
                    error!(error = %e, "cannot record delivery outcomes or claim deliveries; stopping this run");
                    run.paused.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            };
            for d in finished.drain(..) {
                report.count(d.outcome);
            }
            if Instant::now() >= progress_at {
                progress_at = Instant::now() + PROGRESS_EVERY;
                info!(
                    job,
                    sent = report.sent,
                    retrying = report.retrying,
                    failed = report.failed,
                    suppressed = report.suppressed,
                    per_second = (report.sent as f64 / started.elapsed().as_secs_f64()).round() as u64,
                    "sending"
                );
            }
            claimed = in_flight_after + rows.len();
            if want > 0 {
                drained = rows.len() < want;
            }
            for row in rows {
                let parts = editions.get(ctx, row.edition_id).await?;
                // The channel holds as many rows as there are slots: this never waits.
                if work.send(Work { row, parts, round }).await.is_err() {
                    break;
                }
            }
        }
        if claimed == 0 {
            if stopping {
                break;
            }
            // Nothing due and nothing in flight. Rows still leased belong to
            // a run that died (or is finishing elsewhere): wait out the
            // lease, then take back what is left.
            if !options.wait_for_leases {
                break;
            }
            let Some(until) = ctx.store.earliest_lease(&job).await? else {
                break;
            };
            let wait = (until - ctx.clock.now()).to_std().unwrap_or_default() + Duration::from_millis(10);
            info!(
                job,
                wait_ms = wait.as_millis() as u64,
                "waiting for leased deliveries of an interrupted run"
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.wait() => break,
            }
            let taken = ctx.store.recover_expired_leases(&job, ctx.clock.now()).await?;
            if taken > 0 {
                warn!(
                    job,
                    rows = taken,
                    "requeued deliveries left sending by an interrupted run; flagged in doubt"
                );
            }
            report.recovered_in_doubt += taken;
            drained = false;
            continue;
        }
        if done.recv_many(&mut finished, slots).await == 0 {
            break; // every worker is gone
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_pauses_an_edition_once_its_failures_pass_the_share_after_the_minimum() {
        let budget = crate::config::ErrorBudget {
            percent: 20,
            min_attempts: 10,
        };
        let done = |edition_id, failed: bool| Done {
            id: 1,
            lease_until: DateTime::UNIX_EPOCH,
            edition_id,
            round: 1,
            email: "a@example.org".into(),
            outcome: if failed {
                Outcome::Failed {
                    reply: "550 5.1.1 no such user".into(),
                    suppress: true,
                }
            } else {
                Outcome::Sent { reply: "250 ok".into() }
            },
        };
        let mut counts = Budget::default();
        // 8 sent, 2 failed: 20% is within the budget.
        for i in 0..10 {
            assert_eq!(counts.count(budget, &done(1, i % 5 == 0)), None);
        }
        // A third failure: 3 of 11 is over 20%.
        let reason = counts.count(budget, &done(1, true)).expect("over the budget");
        assert!(reason.starts_with("3 of 11 messages refused for good, over the 20% error budget (last: 550 5.1.1"));
        // Other editions keep their own counts; retries and releases do not count.
        assert_eq!(counts.count(budget, &done(2, true)), None, "below the minimum");
        let retry = Done {
            outcome: Outcome::Released,
            ..done(2, true)
        };
        assert_eq!(counts.count(budget, &retry), None);
        assert_eq!(counts.0[&2], (1, 1));
    }
}

//! The send workers: each takes claimed rows one at a time, sends each
//! through the transport (within the rate limit) and turns the classified
//! [`Delivery`] into the [`Outcome`] the dispatcher records: sent, retried
//! with backoff, suppressed, failed, or released when the channel pauses.

use super::*;

impl RateLimit {
    pub(super) fn new(per_second: f64) -> RateLimit {
        RateLimit {
            period: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(Instant::now()),
        }
    }

    pub(super) async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().expect("the rate limit lock is never poisoned");
            let slot = (*next).max(Instant::now());
            *next = slot + self.period;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// One of `max_connections` workers: takes claimed rows one at a time and
/// sends each (or releases it, once the run pauses or shuts down).
pub(super) async fn run(run: Arc<Run>, work: Arc<tokio::sync::Mutex<mpsc::Receiver<Work>>>, done: mpsc::Sender<Done>) {
    loop {
        let next = work.lock().await.recv().await;
        let Some(Work { row, parts, round }) = next else {
            return;
        };
        run.in_flight
            .lock()
            .expect("not poisoned")
            .insert((row.id, row.lease_until));
        let outcome = if run.claimed_before_pause(row.edition_id, round) {
            Outcome::Released
        } else {
            run.send_one(&row, &parts).await
        };
        let finished = Done {
            id: row.id,
            lease_until: row.lease_until,
            edition_id: row.edition_id,
            round,
            email: row.email,
            outcome,
        };
        // The dispatcher records it from here; if the dispatcher is gone the
        // row stays `sending` and comes back, in doubt, when its lease runs out.
        let _ = done.send(finished).await;
        run.in_flight
            .lock()
            .expect("not poisoned")
            .remove(&(row.id, row.lease_until));
    }
}

impl Run {
    /// True when a row of `edition` claimed in `round` was claimed before
    /// this run paused the edition: it is not sent (nor counted again).
    pub(super) fn claimed_before_pause(&self, edition: i64, round: u64) -> bool {
        self.paused_editions
            .lock()
            .expect("not poisoned")
            .get(&edition)
            .is_some_and(|paused_at| round <= *paused_at)
    }

    /// Stops this run's sends on the whole channel; the first reason is kept.
    pub(super) fn pause(&self, why: Pause) {
        let mut reason = self.pause_reason.lock().expect("not poisoned");
        if reason.is_none() {
            error!(reason = %why, "mail channel PAUSED; unsent rows stay queued");
            *reason = Some(why);
        }
        self.paused.store(true, Ordering::SeqCst);
    }

    pub(super) async fn send_one(&self, row: &Claimed, parts: &EditionParts) -> Outcome {
        let ctx = &self.ctx;
        let mail = &ctx.app.settings.mail;
        if self.paused.load(Ordering::SeqCst) || self.shutdown.is_triggered() {
            return Outcome::Released;
        }
        if row.suppressed {
            return Outcome::Suppressed {
                reason: "the address is on the suppression list".into(),
            };
        }
        if row.status != SubscriberStatus::Active {
            return Outcome::Suppressed {
                reason: format!("the subscriber is {}", row.status),
            };
        }
        if let Some(rate) = &self.rate {
            rate.wait().await;
            if self.shutdown.is_triggered() {
                return Outcome::Released;
            }
        }
        let site = &ctx.app.settings.site;
        let attributes = row.attributes.0.clone();
        let mut to = Addressee::new(site, &ctx.keys, &row.email, row.name.as_deref(), &row.uid, attributes);
        to.return_path =
            (ctx.app.settings.bounces.address.as_ref()).map(|base| verp::return_path(base, &ctx.keys, row.id));
        let message_id = message::message_id(site, parts, row.id);
        let date = SystemTime::from(ctx.clock.now());
        let build = |encoding| message::build(site, parts, &to, message_id.clone(), "", date, encoding);
        let label = format!("{}-e{}-d{}-{}", parts.list_name, parts.edition_id, row.id, row.email);
        // Nothing goes out once the lease is nearly over: another instance may take the row then.
        let lease_left = row.lease_until - ctx.clock.now();
        let deadline = Some(Instant::now() + lease_left.to_std().unwrap_or_default());
        let delivery = ctx.transport.send(&build, &label, mail.send_timeout, deadline).await;
        let now = ctx.clock.now();
        let failing_in_row = match &delivery {
            Delivery::Transient { .. } => self.failing_in_row.fetch_add(1, Ordering::SeqCst) + 1,
            Delivery::Abandoned => self.failing_in_row.load(Ordering::SeqCst),
            _ => {
                self.failing_in_row.store(0, Ordering::SeqCst);
                0
            }
        };
        if failing_in_row >= mail.breaker_after
            && let Delivery::Transient { reply, .. } = &delivery
        {
            self.pause(Pause::RelayDown {
                failures: failing_in_row,
                reply: reply.clone(),
            });
        }
        match delivery {
            Delivery::Accepted(reply) => {
                debug!(job = %self.job, edition = row.edition_id, delivery = row.id, to = %row.email, %reply, "sent");
                Outcome::Sent { reply }
            }
            Delivery::Transient { reply, in_doubt } => {
                let age = now - row.created_at;
                if age.to_std().unwrap_or_default() > mail.retry_max_age {
                    warn!(job = %self.job, edition = row.edition_id, delivery = row.id, to = %row.email, %reply, "gave up: older than retry_max_age");
                    return Outcome::Expired { reply };
                }
                let at = now
                    + chrono::Duration::from_std(retry::backoff(mail.retry_initial, row.attempts, row.id))
                        .expect("backoff fits");
                warn!(job = %self.job, edition = row.edition_id, delivery = row.id, to = %row.email, %reply, in_doubt, retry_at = %at, "deferred");
                Outcome::Retry { reply, at, in_doubt }
            }
            Delivery::BadAddress(reply) => {
                warn!(job = %self.job, edition = row.edition_id, delivery = row.id, to = %row.email, %reply, "address rejected; suppressed");
                Outcome::Failed { reply, suppress: true }
            }
            Delivery::Rejected(reply) => {
                warn!(job = %self.job, edition = row.edition_id, delivery = row.id, to = %row.email, %reply, "message rejected");
                Outcome::Failed { reply, suppress: false }
            }
            Delivery::SessionRefused(reply) => {
                self.pause(Pause::Session(reply));
                Outcome::Released
            }
            Delivery::Abandoned => {
                warn!(job = %self.job, edition = row.edition_id, delivery = row.id, to = %row.email, "not sent: its lease ran out before DATA; back to the queue");
                Outcome::Released
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_spaces_sends_evenly() {
        let limit = RateLimit::new(10.0);
        let start = Instant::now();
        for _ in 0..5 {
            limit.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }
}

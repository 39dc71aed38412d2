//! A scheduled fire survives the death of the instance that claimed it. The
//! claimer is killed at a failpoint of Herald's own (held just after its
//! claim, inside the edition's transaction, or just after the edition
//! committed) or at a random moment after the claim; then a live instance
//! (a survivor on PostgreSQL, the restarted daemon on either store) takes
//! the fire over, and every recipient gets the edition once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Timelike;

use crate::daemon::stop;
use crate::support::{
    KillOnDrop, SmtpSink, Workspace, Xorshift, article_txt, base_config, env_number, free_port, random_seed, smtp_mail,
    state_count, stdout,
};

const RECIPIENTS: usize = 20;
/// `daemon.fire_lease_secs` in these tests: a dead claimer's fire is taken over within about this.
const LEASE_SECS: u64 = 3;

/// Where a cycle kills the instance that claimed the fire.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// Held at this failpoint, then killed.
    At(&'static str),
    /// This many milliseconds after the claim, the run not held.
    After(u64),
}

impl KillPoint {
    /// The three failpoints in turn, and every fourth cycle a random moment.
    fn pick(cycle: u64, random: &mut Xorshift) -> KillPoint {
        match cycle % 4 {
            1 => KillPoint::At("fire-claimed"),
            2 => KillPoint::At("edition-uncommitted"),
            3 => KillPoint::At("edition-committed"),
            _ => KillPoint::After(random.below(80)),
        }
    }

    /// The failpoint whose marker tells the test who claimed the fire.
    fn failpoint(self) -> &'static str {
        match self {
            KillPoint::At(name) => name,
            KillPoint::After(_) => "fire-claimed",
        }
    }
}

/// `config` with its job firing once, `ahead` from now (a daily time in
/// UTC, so it does not come again during the test), and short fire leases.
fn firing_in(config: &str, ahead: Duration) -> (String, chrono::DateTime<chrono::Utc>) {
    let at = (chrono::Utc::now() + chrono::Duration::from_std(ahead).unwrap())
        .with_nanosecond(0)
        .unwrap();
    let config = config
        .replace(
            "schedule = \"0 7 * * *\"",
            &format!("schedule = \"{} {} {} * * *\"", at.second(), at.minute(), at.hour()),
        )
        .replace("timezone = \"Europe/London\"", "timezone = \"UTC\"")
        + &format!("\n[daemon]\nfire_lease_secs = {LEASE_SECS}\nshutdown_grace_secs = 5\n");
    (config, at)
}

/// `herald run` logging JSON to `log`, with `failpoint` held under `dir` when given.
fn start(ws: &Workspace, log: &str, failpoint: Option<(&str, &Path)>) -> KillOnDrop {
    let file = std::fs::File::create(ws.path().join(log)).unwrap();
    let mut command = ws.command(&["run", "--log-format", "json"]);
    command.env("HERALD_LOG", "info").stdout(Stdio::null()).stderr(file);
    if let Some((name, dir)) = failpoint {
        command.env("HERALD_FAILPOINTS", name).env("HERALD_FAILPOINT_DIR", dir);
    }
    KillOnDrop(command.spawn().unwrap())
}

fn logs(ws: &Workspace, names: &[String]) -> String {
    names
        .iter()
        .map(|n| {
            format!(
                "== {n}\n{}",
                std::fs::read_to_string(ws.path().join(n)).unwrap_or_default()
            )
        })
        .collect()
}

fn wait(what: &str, timeout: Duration, explain: impl Fn() -> String, done: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", explain());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The process id in the marker a process left at `failpoint` under `dir`.
fn reached(dir: &Path, failpoint: &str) -> Option<u32> {
    let prefix = format!("{failpoint}.reached.");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find_map(|name| name.strip_prefix(&prefix)?.parse().ok())
}

fn kill(child: &mut KillOnDrop) {
    child.0.kill().unwrap();
    child.0.wait().unwrap();
}

/// Counts from the store: editions, and the fires' takeovers and unfinished ones.
fn store_counts(url: &str) -> (i64, i64, i64) {
    let url = url.to_string();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async move {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            let one = |sql: &'static str| {
                let pool = pool.clone();
                async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
            };
            let counts = (
                one("SELECT COUNT(*) FROM editions").await,
                one("SELECT CAST(COALESCE(SUM(takeovers), 0) AS BIGINT) FROM job_fires").await,
                one("SELECT COUNT(*) FROM job_fires WHERE finished_at IS NULL").await,
            );
            pool.close().await;
            counts
        })
    })
    .join()
    .unwrap()
}

/// Lines of a JSON log whose message starts with `message`.
fn count(log: &str, message: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(&format!("\"message\":\"{message}")))
        .count()
}

/// Every recipient got each cycle's story exactly once, but for rows in doubt.
fn assert_each_story_once(ws: &Workspace, sink: &SmtpSink, stories: u64) {
    let rows = stdout(&ws.herald(&["deliveries"]));
    let (sent, in_doubt) = state_count(&rows, "sent");
    assert_eq!(sent, stories * RECIPIENTS as u64, "every row ends sent: {rows}");
    let mut copies: HashMap<(String, u64), usize> = HashMap::new();
    let messages = sink.messages();
    for raw in &messages {
        let m = mail_parser::MessageParser::default().parse(raw).unwrap();
        let to = m.to().unwrap().first().unwrap().address().unwrap().to_string();
        let body = m.body_text(0).unwrap().to_string();
        for story in 1..=stories {
            if body.contains(&format!("Story {story} ")) {
                *copies.entry((to.clone(), story)).or_default() += 1;
            }
        }
    }
    assert_eq!(
        copies.len() as u64,
        stories * RECIPIENTS as u64,
        "every recipient got every cycle's story"
    );
    let doubled = copies.values().filter(|n| **n > 1).count() as u64;
    assert!(
        doubled <= in_doubt,
        "only rows in doubt may be doubled: {doubled} doubled, {in_doubt} in doubt"
    );
}

#[test]
fn a_fire_whose_claimer_is_killed_is_built_and_sent_once_by_a_survivor() {
    let db = crate::postgres::PgDatabase::create();
    let sink = SmtpSink::start(&[]);
    let template = base_config(&smtp_mail(sink.port, "max_connections = 2\nsend_timeout_secs = 2"));
    let ws = db.workspace(&template);
    ws.subscribers(RECIPIENTS);
    let cycles = env_number("FIRE_KILL_CYCLES", 10);
    let seed = env_number("KILL_SEED", random_seed());
    eprintln!("three daemons, {cycles} fires, KILL_SEED={seed}");
    let mut random = Xorshift(seed);

    for cycle in 1..=cycles {
        let point = KillPoint::pick(cycle, &mut random);
        let dir: PathBuf = ws.path().join(format!("failpoints{cycle}"));
        std::fs::create_dir_all(&dir).unwrap();
        if let KillPoint::After(_) = point {
            std::fs::write(dir.join("fire-claimed.release"), b"").unwrap();
        }
        ws.write(
            &format!("articles/story{cycle}.txt"),
            &article_txt(&format!("Story {cycle} of the harbour"), "harbour"),
        );
        let (config, at) = firing_in(
            &template.replace(crate::support::SQLITE_STORE, &format!("url = \"{}\"", db.url)),
            Duration::from_secs(4),
        );
        ws.write("config/herald.toml", &config);
        let names: Vec<String> = (0..3).map(|i| format!("cycle{cycle}-daemon{i}.log")).collect();
        let mut daemons: Vec<KillOnDrop> = names
            .iter()
            .map(|log| start(&ws, log, Some((point.failpoint(), &dir))))
            .collect();
        let explain = || logs(&ws, &names);
        wait("the fire to be claimed", Duration::from_secs(30), explain, || {
            reached(&dir, point.failpoint()).is_some()
        });
        let pid = reached(&dir, point.failpoint()).unwrap();
        if let KillPoint::After(ms) = point {
            std::thread::sleep(Duration::from_millis(ms));
        }
        let claimer = daemons
            .iter()
            .position(|d| d.0.id() == pid)
            .expect("a daemon claimed it");
        let mut killed = daemons.remove(claimer);
        kill(&mut killed);
        std::fs::write(dir.join(format!("{}.release", point.failpoint())), b"").unwrap();
        eprintln!("cycle {cycle}: fire at {at}, claimer killed at {point:?}");

        wait("the edition to go out", Duration::from_secs(60), explain, || {
            sink.recipients().len() >= cycle as usize * RECIPIENTS && store_counts(&db.url).2 == 0
        });
        for daemon in daemons {
            stop(&ws, daemon);
        }
        let log = logs(&ws, &names);
        let taken = count(&log, "fire taken over");
        let (editions, takeovers, unfinished) = store_counts(&db.url);
        assert_eq!(editions, cycle as i64, "one edition per fire (cycle {cycle}):\n{log}");
        assert_eq!(unfinished, 0);
        match point {
            KillPoint::At(_) => assert_eq!(taken, 1, "one survivor took the fire over:\n{log}"),
            KillPoint::After(_) => assert!(taken <= 1, "{log}"),
        }
        if taken == 1 {
            let line = log.lines().find(|l| l.contains("fire taken over")).unwrap();
            assert!(line.contains("\"level\":\"WARN\""), "{line}");
            assert!(line.contains(&format!(".{pid}.")), "names the dead instance: {line}");
            assert!(line.contains("\"late_secs\":"), "says how late: {line}");
        }
        assert!(count(&log, "edition created") <= 1, "one edition made: {log}");
        match point {
            KillPoint::At("edition-committed") => assert_eq!(
                count(&log, "the edition was made before the takeover"),
                1,
                "made by the killed claimer, sent by the survivor:\n{log}"
            ),
            KillPoint::At(_) => assert_eq!(count(&log, "edition created"), 1, "made by the survivor:\n{log}"),
            KillPoint::After(_) => {}
        }
        eprintln!("cycle {cycle}: {taken} takeover(s), {takeovers} in all; {editions} edition(s)");
    }
    assert_each_story_once(&ws, &sink, cycles);
}

#[test]
fn a_lone_daemon_killed_after_its_claim_sends_the_edition_once_after_restart() {
    let sink = SmtpSink::start(&[]);
    let template = base_config(&smtp_mail(sink.port, "max_connections = 2\nsend_timeout_secs = 2"));
    let ws = Workspace::new(&template);
    let store_line = std::fs::read_to_string(ws.path().join("config/herald.toml"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("url = "))
        .unwrap()
        .to_string();
    ws.subscribers(RECIPIENTS);
    let cycles = env_number("FIRE_KILL_CYCLES", 10);
    let seed = env_number("KILL_SEED", random_seed());
    eprintln!("one daemon, {cycles} fires, KILL_SEED={seed}");
    let mut random = Xorshift(seed);
    let mut takeovers_seen = 0;

    for cycle in 1..=cycles {
        let point = KillPoint::pick(cycle, &mut random);
        let dir: PathBuf = ws.path().join(format!("failpoints{cycle}"));
        std::fs::create_dir_all(&dir).unwrap();
        if let KillPoint::After(_) = point {
            std::fs::write(dir.join("fire-claimed.release"), b"").unwrap();
        }
        ws.write(
            &format!("articles/story{cycle}.txt"),
            &article_txt(&format!("Story {cycle} of the harbour"), "harbour"),
        );
        let (config, at) = firing_in(
            &template.replace(crate::support::SQLITE_STORE, &store_line),
            Duration::from_secs(3),
        );
        ws.write("config/herald.toml", &config);
        let names = vec![
            format!("cycle{cycle}-killed.log"),
            format!("cycle{cycle}-restarted.log"),
        ];
        let explain = || logs(&ws, &names);
        let mut first = start(&ws, &names[0], Some((point.failpoint(), &dir)));
        wait("the fire to be claimed", Duration::from_secs(30), explain, || {
            reached(&dir, point.failpoint()).is_some()
        });
        if let KillPoint::After(ms) = point {
            std::thread::sleep(Duration::from_millis(ms));
        }
        kill(&mut first);
        eprintln!("cycle {cycle}: fire at {at}, daemon killed at {point:?}");

        if let KillPoint::At(name) = point {
            let schedule = stdout(&ws.herald(&["schedule"]));
            let line = schedule
                .lines()
                .find(|l| l.starts_with("unfinished fire: job daily"))
                .unwrap_or_else(|| panic!("`herald schedule` shows the unfinished fire:\n{schedule}"));
            assert_eq!(
                name == "edition-committed",
                line.contains("edition #"),
                "and whether it made its edition: {line}"
            );
        }

        let restarted = start(&ws, &names[1], None);
        wait("the edition to go out", Duration::from_secs(60), explain, || {
            sink.recipients().len() >= cycle as usize * RECIPIENTS && store_counts(&ws.store_url()).2 == 0
        });
        stop(&ws, restarted);
        let log = logs(&ws, &names);
        let taken = count(&log, "fire taken over");
        takeovers_seen += taken;
        let (editions, takeovers, _) = store_counts(&ws.store_url());
        assert_eq!(editions, cycle as i64, "one edition per fire (cycle {cycle}):\n{log}");
        assert_eq!(takeovers, takeovers_seen as i64, "the store counts each takeover");
        if let KillPoint::At(_) = point {
            assert_eq!(taken, 1, "the restarted daemon took the fire over:\n{log}");
        }
        eprintln!("cycle {cycle}: {taken} takeover(s); {editions} edition(s)");
    }
    assert_each_story_once(&ws, &sink, cycles);

    // `/metrics` counts the takeovers.
    herald::install_crypto();
    let port = free_port();
    let _serve = KillOnDrop(
        ws.command(&["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("HERALD_WEB__METRICS_TOKEN", "metrics-token-for-tests-0123")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let client = reqwest::blocking::Client::new();
        let asked = client
            .get(&url)
            .header("Authorization", "Bearer metrics-token-for-tests-0123")
            .send();
        if let Ok(response) = asked {
            break response.text().unwrap();
        }
        assert!(Instant::now() < deadline, "herald serve did not answer");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        metrics.contains(&format!(
            "herald_fires_taken_over_total{{job=\"daily\"}} {takeovers_seen}"
        )),
        "{metrics}"
    );
}

#[test]
fn of_instances_racing_for_a_dead_claimers_fire_exactly_one_takes_it_and_its_edition_is_made_once() {
    use herald::store::{FireRef, NewEdition, Recipients, StoreError};

    fn edition(instance: &str, scheduled_at: chrono::DateTime<chrono::Utc>) -> NewEdition<'_> {
        NewEdition {
            job: "daily",
            list: "readers",
            nonce: "0123456789abcdef",
            subject: "s",
            html: "h",
            text: "t",
            article_ids: &[],
            recipients: Recipients::AllBut(&[]),
            fire: Some(FireRef { scheduled_at, instance }),
        }
    }

    let ws = Workspace::new(&base_config(&crate::support::file_mail()));
    ws.subscribers(3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = ws.store().await;
        let t0 = chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis()).unwrap();
        let at = t0 - chrono::Duration::seconds(60);
        let lease = chrono::Duration::seconds(3);
        let fire = store
            .claim_fire("daily", at, "dead", t0, t0 + lease)
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .claim_fire("daily", at, "other", t0, t0 + lease)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            !store.take_over_fire(&fire, "early", t0, t0 + lease).await.unwrap(),
            "not while the lease holds"
        );

        let later = t0 + chrono::Duration::seconds(4);
        let racers = (0..8).map(|i| {
            let (store, fire) = (store.clone(), fire.clone());
            tokio::spawn(async move {
                let me = format!("racer{i}");
                store
                    .take_over_fire(&fire, &me, later, later + lease)
                    .await
                    .unwrap()
                    .then_some(me)
            })
        });
        let winners: Vec<String> = futures::future::join_all(racers)
            .await
            .into_iter()
            .filter_map(|r| r.unwrap())
            .collect();
        assert_eq!(winners.len(), 1, "{winners:?}");
        let held = store.fire("daily", at).await.unwrap().unwrap();
        assert_eq!((held.claimed_by.as_str(), held.takeovers), (winners[0].as_str(), 1));
        assert!(
            !store.renew_fire("daily", at, "dead", later + lease).await.unwrap(),
            "the dead claimer lost it"
        );

        let stale = store.create_edition(&edition("dead", at), later).await;
        assert!(matches!(stale, Err(StoreError::FireLost { .. })), "{stale:?}");
        let winner = winners[0].as_str();
        let made = store.create_edition(&edition(winner, at), later).await.unwrap();
        assert_eq!(made.recipient_count, 3);
        let again = store.create_edition(&edition(winner, at), later).await;
        assert!(
            matches!(again, Err(StoreError::FireLost { .. })),
            "once per fire: {again:?}"
        );
        assert_eq!(store.fire("daily", at).await.unwrap().unwrap().edition, Some(made.id));
        assert!(!store.finish_fire("daily", at, "dead", "late", later).await.unwrap());
        assert!(store.finish_fire("daily", at, winner, "done", later).await.unwrap());
        assert_eq!(store.last_fire("daily").await.unwrap(), Some(at));
        store.close().await;
    });
}

//! The scheduler core under paused tokio time: fires land on their instants,
//! reloads take effect, a bad reload is rejected and the old schedule keeps
//! firing, a job never runs over itself, and a missed fire is caught up once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use herald::clock::TokioClock;
use herald::config::JobSettings;
use herald::daemon::reload::{Reloaded, Reloader};
use herald::daemon::scheduler::{self, FireHandler};
use herald::health::Health;
use tokio::sync::watch;

use crate::support::{Workspace, base_config, file_mail, job_toml, settings_with};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// One recorded fire: the job, its scheduled time, and when its run started.
type Fire = (String, DateTime<Utc>, DateTime<Utc>);

/// Records each fire; each run takes `busy`.
#[derive(Clone, Default)]
struct Recorder {
    fires: Arc<Mutex<Vec<Fire>>>,
    clock: Option<Arc<TokioClock>>,
    busy: Duration,
}

impl FireHandler for Recorder {
    fn fire(&self, job: JobSettings, at: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move {
            let started = herald::clock::Clock::now(this.clock.as_deref().unwrap());
            this.fires.lock().unwrap().push((job.name, at, started));
            tokio::time::sleep(this.busy).await;
        })
    }
}

impl Recorder {
    fn fired(&self) -> Vec<(String, DateTime<Utc>)> {
        self.fires
            .lock()
            .unwrap()
            .iter()
            .map(|(job, at, _)| (job.clone(), *at))
            .collect()
    }
}

struct Running {
    recorder: Recorder,
    trigger: herald::shutdown::ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

fn start(
    config: watch::Receiver<Arc<herald::app::App>>,
    busy: Duration,
    catch_up: HashMap<String, DateTime<Utc>>,
) -> Running {
    let clock = TokioClock::starting_at(utc("2026-01-01T00:00:03Z"));
    let recorder = Recorder {
        clock: Some(clock.clone()),
        busy,
        ..Recorder::default()
    };
    let (trigger, shutdown) = herald::shutdown::channel();
    let task = tokio::spawn(scheduler::run(
        config,
        clock,
        Arc::new(recorder.clone()),
        shutdown,
        Arc::new(Health::default()),
        catch_up,
    ));
    Running {
        recorder,
        trigger,
        task,
    }
}

impl Running {
    async fn stop(self) -> Recorder {
        self.trigger.trigger();
        self.task.await.unwrap();
        self.recorder
    }
}

#[tokio::test(start_paused = true)]
async fn fires_land_exactly_on_their_instants() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let slow = job_toml("slow", "0 * * * * *").replace("list = \"readers\"", "list = \"others\"");
    let jobs = job_toml("fast", "*/10 * * * * *") + &slow + "\n[[lists]]\nname = \"others\"\n";
    let settings = settings_with(&ws, &jobs);
    let (_tx, rx) = watch::channel(Arc::new(settings));
    let running = start(rx, Duration::ZERO, HashMap::new());
    tokio::time::sleep(Duration::from_secs(65)).await;
    let recorder = running.stop().await;
    let fires = recorder.fires.lock().unwrap().clone();
    let expected = [
        ("fast", "2026-01-01T00:00:10Z"),
        ("fast", "2026-01-01T00:00:20Z"),
        ("fast", "2026-01-01T00:00:30Z"),
        ("fast", "2026-01-01T00:00:40Z"),
        ("fast", "2026-01-01T00:00:50Z"),
        ("fast", "2026-01-01T00:01:00Z"),
        ("slow", "2026-01-01T00:01:00Z"),
    ];
    let mut got: Vec<(String, DateTime<Utc>)> = fires.iter().map(|(j, at, _)| (j.clone(), *at)).collect();
    got.sort();
    let mut want: Vec<(String, DateTime<Utc>)> = expected.iter().map(|(j, at)| (j.to_string(), utc(at))).collect();
    want.sort();
    assert_eq!(got, want);
    for (job, at, started) in fires {
        assert_eq!(at, started, "{job} started at its scheduled instant");
    }
}

#[tokio::test(start_paused = true)]
async fn a_reload_takes_effect_and_a_bad_one_keeps_the_old_schedule() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let settings = settings_with(&ws, &job_toml("daily", "*/10 * * * * *"));
    let (tx, rx) = watch::channel(Arc::new(settings));
    let reloader = Reloader::new(&ws.path().join("config/herald.toml"), tx);
    let running = start(rx, Duration::ZERO, HashMap::new());

    tokio::time::sleep(Duration::from_secs(15)).await; // fired at :10
    let good = std::fs::read_to_string(ws.path().join("config/herald.toml")).unwrap();
    ws.write("config/herald.toml", &good.replace("*/10 * * * * *", "*/25 * * * * *"));
    match reloader.reload() {
        Reloaded::Changed(changes) => {
            assert_eq!(
                changes,
                vec!["job daily rescheduled: \"*/10 * * * * *\" in UTC -> \"*/25 * * * * *\" in UTC"]
            )
        }
        other => panic!("expected a change, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_secs(20)).await; // t = 00:00:38: fired at :25 only

    ws.write(
        "config/herald.toml",
        &good
            .replace("*/10 * * * * *", "every tuesday")
            .replace("UTC", "Mars/Olympus"),
    );
    match reloader.reload() {
        Reloaded::Rejected(e) => {
            let text = e.to_string();
            assert!(
                text.contains("jobs.\"daily\".schedule") && text.contains("jobs.\"daily\".timezone"),
                "{text}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_secs(30)).await; // t = 00:01:08: the */25 schedule goes on
    let fired = running.stop().await.fired();
    let times: Vec<DateTime<Utc>> = fired.iter().map(|(_, at)| *at).collect();
    assert_eq!(
        times,
        vec![
            utc("2026-01-01T00:00:10Z"),
            utc("2026-01-01T00:00:25Z"),
            utc("2026-01-01T00:00:50Z"),
            utc("2026-01-01T00:01:00Z")
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_fire_while_the_previous_run_works_is_skipped() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let settings = settings_with(&ws, &job_toml("daily", "*/10 * * * * *"));
    let (_tx, rx) = watch::channel(Arc::new(settings));
    let running = start(rx, Duration::from_secs(25), HashMap::new());
    tokio::time::sleep(Duration::from_secs(45)).await;
    let fired = running.stop().await.fired();
    let times: Vec<DateTime<Utc>> = fired.iter().map(|(_, at)| *at).collect();
    assert_eq!(
        times,
        vec![utc("2026-01-01T00:00:10Z"), utc("2026-01-01T00:00:40Z")],
        ":20 and :30 came while :10 ran"
    );
}

#[tokio::test(start_paused = true)]
async fn a_missed_fire_is_caught_up_once_at_start() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let settings = settings_with(&ws, &job_toml("daily", "0 0 * * *"));
    let (_tx, rx) = watch::channel(Arc::new(settings));
    let missed = utc("2026-01-01T00:00:00Z");
    let running = start(rx, Duration::ZERO, HashMap::from([("daily".to_string(), missed)]));
    tokio::time::sleep(Duration::from_secs(120)).await;
    let fires = running.stop().await.fires.lock().unwrap().clone();
    assert_eq!(fires.len(), 1);
    assert_eq!(fires[0].1, missed);
    assert_eq!(
        fires[0].2,
        utc("2026-01-01T00:00:03Z"),
        "run as soon as the daemon starts"
    );
}

#[test]
fn a_reload_names_every_edited_job_setting() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let settings = settings_with(&ws, &job_toml("daily", "0 7 * * *"));
    let (tx, _rx) = watch::channel(Arc::new(settings));
    let reloader = Reloader::new(&ws.path().join("config/herald.toml"), tx);
    let config = std::fs::read_to_string(ws.path().join("config/herald.toml")).unwrap();
    ws.write(
        "config/herald.toml",
        &config.replace(
            "timezone = \"UTC\"\n",
            "timezone = \"UTC\"\nsubject = \"Morning news\"\nmax_articles = 5\n",
        ),
    );
    match reloader.reload() {
        Reloaded::Changed(changes) => {
            assert_eq!(changes.len(), 1, "{changes:?}");
            assert!(
                changes[0].starts_with("job daily changed: subject \"")
                    && changes[0].contains("-> \"Morning news\"; max_articles ")
                    && changes[0].ends_with("-> 5"),
                "{changes:?}"
            );
        }
        other => panic!("expected a change, got {other:?}"),
    }
}

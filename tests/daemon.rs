//! `herald run` as a process: a config edit takes effect while it runs,
//! SIGTERM mid-send stops it cleanly, and a restart completes the edition.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{KillOnDrop, SmtpSink, Workspace, article_txt, base_config, show, smtp_mail, state_count, stdout};

pub fn log_text(ws: &Workspace) -> String {
    std::fs::read_to_string(ws.path().join("daemon.log")).unwrap_or_default()
}

pub fn wait_for(ws: &Workspace, what: &str, timeout: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; daemon log:\n{}",
            log_text(ws)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_daemon(ws: &Workspace) -> KillOnDrop {
    start_daemon_logging_to(ws, "daemon.log")
}

pub fn start_daemon_logging_to(ws: &Workspace, log: &str) -> KillOnDrop {
    let log = std::fs::File::create(ws.path().join(log)).unwrap();
    ws.command(&["run", "--log-format", "json"])
        .env("HERALD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(KillOnDrop)
        .unwrap()
}

fn signal(child: &KillOnDrop, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn an_edited_schedule_takes_effect_and_sigterm_then_restart_completes_the_edition() {
    let sink = SmtpSink::start(&[]);
    let mail = smtp_mail(
        sink.port,
        "max_connections = 4\nrate_limit = 100\n[daemon]\nshutdown_grace_secs = 5\n",
    );
    let config = base_config(&mail).replace("schedule = \"0 7 * * *\"", "schedule = \"0 0 1 1 *\"");
    let ws = Workspace::new(&config);
    ws.subscribers(400);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));

    let mut daemon = start_daemon(&ws);
    wait_for(&ws, "the daemon to start", Duration::from_secs(20), || {
        log_text(&ws).contains("herald daemon started")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !log_text(&ws).contains("job fired"),
        "the yearly schedule does not fire"
    );

    // The operator edits the schedule: every two seconds.
    let edited = std::fs::read_to_string(ws.path().join("config/herald.toml"))
        .unwrap()
        .replace("0 0 1 1 *", "*/2 * * * * *");
    ws.write("config/herald.toml", &edited);
    wait_for(&ws, "the reload", Duration::from_secs(20), || {
        log_text(&ws).contains("job daily rescheduled")
    });
    wait_for(&ws, "a fire on the new schedule", Duration::from_secs(20), || {
        log_text(&ws).contains("job fired")
    });

    // A broken edit is rejected and the daemon keeps going.
    ws.write("config/herald.toml", &edited.replace("*/2 * * * * *", "*/2 * * *"));
    wait_for(&ws, "the rejection", Duration::from_secs(20), || {
        log_text(&ws).contains("configuration rejected")
    });
    assert!(log_text(&ws).contains("is not a valid cron line"), "{}", log_text(&ws));
    ws.write("config/herald.toml", &edited);

    // SIGTERM mid-send.
    wait_for(&ws, "the send to get going", Duration::from_secs(30), || {
        sink.recipients().len() >= 60
    });
    signal(&daemon, "TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not stop after SIGTERM:\n{}",
            log_text(&ws)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "a graceful stop exits 0:\n{}", log_text(&ws));
    let log = log_text(&ws);
    assert!(
        log.contains("shutting down") && log.contains("herald daemon stopped"),
        "{log}"
    );
    let before = sink.recipients().len();
    assert!(before < 400, "stopped mid-send ({before} sent)");
    let rows = stdout(&ws.herald(&["deliveries"]));
    assert_eq!(
        state_count(&rows, "sending"),
        (0, 0),
        "nothing is left mid-send: {rows}"
    );

    // The restart finishes the edition.
    let once = ws.herald(&["run", "--once"]);
    assert!(once.status.success(), "{}", show(&once));
    let rows = stdout(&ws.herald(&["deliveries"]));
    assert_eq!(state_count(&rows, "sent").0, 400, "{rows}");
    let mut copies: HashMap<String, usize> = HashMap::new();
    for r in sink.recipients() {
        *copies.entry(r).or_default() += 1;
    }
    assert_eq!(copies.len(), 400, "no recipient skipped");
    assert!(copies.values().all(|n| *n == 1), "a graceful stop doubles nobody");
    assert!(
        stdout(&ws.herald(&["deliveries"])).contains("all jobs: 400 delivery record(s)"),
        "one edition only"
    );
}

#[test]
fn schedule_lists_the_next_fires_in_local_and_utc_time() {
    let ws = Workspace::new(
        &base_config(&crate::support::file_mail()).replace("schedule = \"0 7 * * *\"", "schedule = \"30 6 * * 1-5\""),
    );
    let out = ws.herald(&["schedule"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("job daily: \"30 6 * * 1-5\" in Europe/London"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().skip(1).take_while(|l| l.starts_with("  ")).collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(text.lines().nth(6), Some("no unfinished fires"), "{text}");
    for line in lines {
        assert!(line.contains(" 06:30:00 ") && line.contains("UTC"), "{line}");
        assert!(!line.contains("Sat") && !line.contains("Sun"), "weekdays only: {line}");
    }
}

#[test]
fn run_once_exits_non_zero_when_something_failed() {
    let sink = SmtpSink::start(&["-f", "RCPT", "-B", "550 5.1.1 no such user"]);
    let ws = Workspace::new(&base_config(&smtp_mail(sink.port, "")));
    ws.subscribers(2);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    let out = ws.herald(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(stdout(&out).contains("2 failed"), "{}", show(&out));
    let again = ws.herald(&["run", "--once"]);
    assert!(
        again.status.success(),
        "nothing new and nothing failed this time: {}",
        show(&again)
    );
}

pub fn stop(ws: &Workspace, mut daemon: KillOnDrop) {
    signal(&daemon, "TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    while daemon.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the daemon did not stop:\n{}", log_text(ws));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_fire_missed_while_down_is_caught_up_once_or_skipped_by_policy() {
    let ws = Workspace::new(
        &base_config(&crate::support::file_mail()).replace("schedule = \"0 7 * * *\"", "schedule = \"*/2 * * * * *\""),
    );
    ws.subscribers(1);
    let daemon = start_daemon(&ws);
    wait_for(&ws, "a first fire", Duration::from_secs(20), || {
        log_text(&ws).contains("job fired")
    });
    stop(&ws, daemon);
    // A fire passes while the daemon is down.
    std::thread::sleep(crate::support::until_past(crate::support::next_fire_every(2)));

    let daemon = start_daemon(&ws);
    wait_for(&ws, "the catch-up", Duration::from_secs(20), || {
        log_text(&ws).contains("catching up the latest missed fire")
    });
    let log = log_text(&ws);
    assert_eq!(
        log.matches("catching up").count(),
        1,
        "one catch-up, not one per missed fire:\n{log}"
    );
    stop(&ws, daemon);

    let config = std::fs::read_to_string(ws.path().join("config/herald.toml")).unwrap();
    ws.write("config/herald.toml", &(config + "catch_up = \"skip\"\n"));
    std::thread::sleep(crate::support::until_past(crate::support::next_fire_every(2)));
    let daemon = start_daemon(&ws);
    wait_for(&ws, "the skip", Duration::from_secs(20), || {
        log_text(&ws).contains("missed fires are skipped")
    });
    assert!(!log_text(&ws).contains("catching up"), "{}", log_text(&ws));
    stop(&ws, daemon);
}

#[test]
fn two_daemons_on_one_store_never_run_the_same_fire() {
    let sink = SmtpSink::start(&[]);
    let ws = Workspace::new(
        &base_config(&smtp_mail(sink.port, "")).replace("schedule = \"0 7 * * *\"", "schedule = \"*/2 * * * * *\""),
    );
    ws.subscribers(20);
    let first = start_daemon(&ws);
    wait_for(&ws, "the first daemon", Duration::from_secs(20), || {
        log_text(&ws).contains("herald daemon started")
    });
    let second = start_daemon_logging_to(&ws, "second.log");
    // Three editions, each on a fire that both daemons see.
    for n in 0..3 {
        ws.write(
            &format!("articles/story{n}.txt"),
            &article_txt(&format!("Story {n}"), "harbour"),
        );
        let want = 20 * (n + 1);
        wait_for(&ws, "the edition to go out", Duration::from_secs(30), || {
            sink.recipients().len() >= want
        });
        // The next story goes into the next fire's edition.
        std::thread::sleep(crate::support::until_past(crate::support::next_fire_every(2)));
    }
    stop(&ws, first);
    stop(&ws, second);
    let second_log = std::fs::read_to_string(ws.path().join("second.log")).unwrap();
    let claimed_elsewhere =
        log_text(&ws).matches("fire already claimed").count() + second_log.matches("fire already claimed").count();
    assert!(claimed_elsewhere > 0, "both daemons saw the same fires");
    let mut copies: HashMap<(String, String), usize> = HashMap::new();
    for raw in sink.messages() {
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let to = m.to().unwrap().first().unwrap().address().unwrap().to_string();
        let body = m.body_text(0).unwrap().to_string();
        let story = ["Story 0", "Story 1", "Story 2"]
            .iter()
            .filter(|s| body.contains(*s))
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("+");
        *copies.entry((to, story)).or_default() += 1;
    }
    assert!(
        copies.values().all(|n| *n == 1),
        "nobody got an edition twice: {copies:?}"
    );
    assert_eq!(sink.recipients().len(), 60);
}

#[test]
fn the_daemon_serves_healthz_with_its_heartbeat() {
    let port = crate::support::free_port();
    let config = base_config(&crate::support::file_mail()) + &format!("\n[web]\nlisten = \"127.0.0.1:{port}\"\n");
    let ws = Workspace::new(&config);
    let daemon = start_daemon(&ws);
    wait_for(&ws, "the daemon to start", Duration::from_secs(20), || {
        log_text(&ws).contains("web interface listening")
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body: serde_json::Value = rt.block_on(async {
        herald::install_crypto();
        let response = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    });
    assert_eq!(body["status"], "ok", "{body}");
    assert!(
        body["heartbeat_age_secs"].as_i64().is_some_and(|age| age < 60),
        "{body}"
    );
    stop(&ws, daemon);
    assert!(log_text(&ws).contains("herald daemon stopped"));
}

//! Emergency stops: `herald cancel EDITION` stops a retracted edition part
//! way through its send for good; `herald hold JOB` stops a job's fires and
//! sends until `herald release JOB`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::daemon::{log_text, start_daemon_logging_to, stop, wait_for};
use crate::support::{
    KillOnDrop, SmtpSink, Workspace, article_txt, base_config, file_mail, show, smtp_mail, state_count, stdout,
};

#[test]
fn a_cancelled_edition_sends_nothing_more_even_when_resent() {
    let sink = SmtpSink::start(&[]);
    let ws = Workspace::new(&base_config(&smtp_mail(
        sink.port,
        "max_connections = 2\nrate_limit = 20",
    )));
    ws.subscribers(300);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    let mut digest = KillOnDrop(
        ws.command(&["digest", "daily"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.recipients().len() < 40 {
        assert!(Instant::now() < deadline, "the send did not get going");
        std::thread::sleep(Duration::from_millis(20));
    }
    let cancel = ws.herald(&["cancel", "1"]);
    assert!(cancel.status.success(), "{}", show(&cancel));
    assert!(
        stdout(&cancel).starts_with("edition #1 cancelled: "),
        "{}",
        stdout(&cancel)
    );
    // The send under way stops after the rows it holds.
    let deadline = Instant::now() + Duration::from_secs(30);
    while digest.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the digest did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let rows = stdout(&ws.herald(&["deliveries"]));
    let (sent, _) = state_count(&rows, "sent");
    let (cancelled, _) = state_count(&rows, "cancelled");
    assert!(sent < 300 && cancelled > 0, "{rows}");
    assert_eq!(sent + cancelled, 300, "{rows}");

    // Nothing sends the rest: not a rerun, not the daemon's round.
    let again = ws.herald(&["run", "--once"]);
    assert!(again.status.success(), "{}", show(&again));
    let rows = stdout(&ws.herald(&["deliveries"]));
    assert_eq!(state_count(&rows, "sent").0, sent, "{rows}");
    assert_eq!(sink.recipients_at_least(sent as usize).len() as u64, sent);

    let missing = ws.herald(&["cancel", "9"]);
    assert_eq!(missing.status.code(), Some(1), "{}", show(&missing));
    assert!(show(&missing).contains("no edition #9"));
}

#[test]
fn a_held_job_fires_without_building_and_sends_once_released() {
    let ws =
        Workspace::new(&base_config(&file_mail()).replace("schedule = \"0 7 * * *\"", "schedule = \"*/2 * * * * *\""));
    ws.subscribers(3);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    let hold = ws.herald(&["hold", "daily", "--reason", "story retracted"]);
    assert!(hold.status.success(), "{}", show(&hold));

    let refused = ws.herald(&["digest", "daily"]);
    assert!(!refused.status.success());
    assert!(
        show(&refused).contains("job daily is held since") && show(&refused).contains("(story retracted)"),
        "{}",
        show(&refused)
    );
    let schedule = stdout(&ws.herald(&["schedule"]));
    assert!(schedule.contains("job daily HELD since"), "{schedule}");

    let daemon = start_daemon_logging_to(&ws, "daemon.log");
    wait_for(&ws, "two held fires", Duration::from_secs(20), || {
        log_text(&ws).matches("job is held").count() >= 2
    });
    assert!(ws.outbox().is_empty(), "nothing built or sent while held");
    let release = ws.herald(&["release", "daily"]);
    assert!(release.status.success(), "{}", show(&release));
    wait_for(&ws, "the edition after release", Duration::from_secs(20), || {
        ws.outbox().len() == 3
    });
    stop(&ws, daemon);
    let again = ws.herald(&["release", "daily"]);
    assert_eq!(again.status.code(), Some(1), "not held any more: {}", show(&again));
}

#[test]
fn a_backup_taken_while_the_store_is_in_use_is_a_complete_store() {
    let ws = crate::support::Workspace::sqlite(&base_config(&file_mail()));
    ws.subscribers(25);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    let daemon = start_daemon_logging_to(&ws, "daemon.log");
    let backup = ws.herald(&["backup", "backup.db"]);
    assert!(backup.status.success(), "{}", show(&backup));
    assert!(
        stdout(&backup).starts_with("backed up to backup.db"),
        "{}",
        stdout(&backup)
    );
    stop(&ws, daemon);
    let again = ws.herald(&["backup", "backup.db"]);
    assert!(!again.status.success(), "an existing file is never overwritten");
    // The copy is a store Herald opens, with everything in it.
    let copy = Workspace::sqlite(&base_config(&file_mail()).replace(
        "url = \"sqlite://data/herald.db\"",
        &format!("url = \"sqlite://{}\"", ws.path().join("backup.db").display()),
    ));
    let rows = stdout(&copy.herald(&["deliveries"]));
    assert_eq!(state_count(&rows, "sent").0, 25, "{rows}");
}

//! A process killed mid-send and started again finishes the edition: every
//! recipient gets the digest, and only rows that were mid-send at the kill
//! (flagged in doubt) may get it twice. Killed again and again at random
//! points (`KILL_CYCLES` times, 3 by default; `scripts/reliability` runs 20),
//! it still loses nobody and doubles only in-doubt rows.

use std::time::{Duration, Instant};

use crate::support::{
    SmtpSink, Workspace, Xorshift, article_txt, assert_once_except_in_doubt, base_config, env_number, random_seed,
    show, smtp_mail, stdout,
};

/// `herald digest daily` in the background, its output discarded, killed if the test fails.
fn start_digest(ws: &Workspace) -> crate::support::KillOnDrop {
    crate::support::KillOnDrop(
        ws.command(&["digest", "daily"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn a_killed_send_finishes_after_restart_with_only_in_doubt_rows_doubled() {
    let sink = SmtpSink::start(&[]);
    let ws = Workspace::new(&base_config(&smtp_mail(
        sink.port,
        "max_connections = 4\nrate_limit = 150\nsend_timeout_secs = 1",
    )));
    ws.subscribers(600);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));

    let mut child = start_digest(&ws);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.recipients().len() < 150 {
        assert!(Instant::now() < deadline, "the send did not get going");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let before = sink.recipients().len();
    assert!(before < 600, "killed mid-send ({before} delivered)");

    let restart = ws.herald(&["digest", "daily"]);
    assert!(restart.status.success(), "{}", show(&restart));
    let text = stdout(&restart);
    assert!(
        text.contains("no new articles"),
        "the restart makes no second edition: {text}"
    );

    let (in_doubt, _) = assert_once_except_in_doubt(&ws, &sink, 600);
    assert!(in_doubt <= 4 + 1, "at most the rows in flight at the kill are in doubt");
}

#[test]
fn repeated_kills_at_random_points_lose_nobody_and_double_only_in_doubt_rows() {
    let cycles = env_number("KILL_CYCLES", 3);
    let recipients = env_number("KILL_RECIPIENTS", 2_000) as usize;
    let seed = env_number("KILL_SEED", random_seed());
    eprintln!("kill loop: {cycles} cycles, {recipients} recipients, KILL_SEED={seed}");
    let mut random = Xorshift(seed);
    let sink = SmtpSink::start(&[]);
    let ws = Workspace::new(&base_config(&smtp_mail(
        sink.port,
        "max_connections = 4\nrate_limit = 500\nsend_timeout_secs = 1",
    )));
    ws.subscribers(recipients);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));

    for cycle in 1..=cycles {
        let mut child = start_digest(&ws);
        // Anywhere from start-up (config, store, edition) to well into the send.
        let after = Duration::from_millis(30 + random.below(700));
        std::thread::sleep(after);
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        eprintln!(
            "cycle {cycle}: SIGKILL after {} ms; {} message(s) at the sink",
            after.as_millis(),
            sink.recipients().len()
        );
    }
    let last = ws.herald(&["digest", "daily"]);
    assert!(last.status.success(), "{}", show(&last));
    let editions = stdout(&ws.herald(&["deliveries"]));
    assert!(!editions.contains("PAUSED"), "{editions}");
    let (in_doubt, doubled) = assert_once_except_in_doubt(&ws, &sink, recipients);
    eprintln!("after {cycles} kills: {recipients} recipients, {in_doubt} row(s) in doubt, {doubled} got two copies");
    assert!(
        in_doubt <= cycles * (4 + 1),
        "at most the rows in flight at each kill are in doubt: {in_doubt}"
    );
}

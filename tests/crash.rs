//! A process killed mid-send and started again finishes the edition: every
//! recipient gets the digest, and only rows that were mid-send at the kill
//! (flagged in doubt) may get it twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::util::{SmtpSink, Workspace, article_txt, base_config, show, smtp_mail, state_count, stdout};

#[test]
fn a_killed_send_finishes_after_restart_with_only_in_doubt_rows_doubled() {
    let sink = SmtpSink::start(&[]);
    let ws = Workspace::new(&base_config(&smtp_mail(
        sink.port,
        "max_connections = 4\nrate_limit = 150\nsend_timeout_secs = 1",
    )));
    ws.subscribers(600);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));

    let mut child = crate::util::KillOnDrop(
        ws.command(&["digest", "daily"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
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

    let rows = stdout(&ws.herald(&["deliveries"]));
    let (sent, in_doubt) = state_count(&rows, "sent");
    assert_eq!(sent, 600, "every row ends sent: {rows}");
    assert!(
        in_doubt <= 4 + 1,
        "at most the rows in flight at the kill are in doubt: {rows}"
    );

    let mut copies: HashMap<String, usize> = HashMap::new();
    for r in sink.recipients() {
        *copies.entry(r).or_default() += 1;
    }
    assert_eq!(copies.len(), 600, "no recipient is skipped");
    let doubled: Vec<&String> = copies.iter().filter(|(_, n)| **n > 1).map(|(r, _)| r).collect();
    assert!(
        doubled.len() as u64 <= in_doubt,
        "only in-doubt rows may be doubled: {doubled:?} vs {in_doubt} in doubt"
    );
    let listed = stdout(&ws.herald(&["deliveries", "--limit", "1000"]));
    for r in doubled {
        let line = listed.lines().find(|l| l.contains(&format!(" {r} "))).unwrap();
        assert!(line.contains("in-doubt"), "{r} was doubled but not flagged: {line}");
    }
}

//! SMTP fault paths against smtp-sink's fault modes: 4xx retries with
//! backoff, 5.1.x suppresses, 5.7.x pauses the channel, a dropped connection
//! or a timeout after the data leaves the row in doubt, and nothing is lost.

use std::time::Duration;

use crate::util::{SmtpSink, Workspace, article_txt, base_config, free_port, show, smtp_mail, state_count, stdout};

fn workspace(port: u16, readers: usize) -> Workspace {
    let ws = Workspace::new(&base_config(&smtp_mail(
        port,
        "retry_initial_secs = 2\nsend_timeout_secs = 2",
    )));
    ws.subscribers(readers);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    ws
}

fn sql(ws: &Workspace, statement: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = ws.store_url();
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(statement.to_string()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
}

#[test]
fn a_4xx_defers_with_backoff_and_the_retry_delivers() {
    let port = free_port();
    let sink = SmtpSink::start_on(port, &["-r", "RCPT"]);
    let ws = workspace(port, 4);
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("0 sent, 4 to retry"), "{}", show(&out));
    assert!(stdout(&out).contains("next retry at"), "{}", show(&out));
    assert!(sink.recipients().is_empty());
    let rows = stdout(&ws.herald(&["deliveries", "--state", "queued"]));
    assert_eq!(state_count(&rows, "queued"), (4, 0), "{rows}");
    assert!(rows.contains("450 4.3.0"), "{rows}");
    sink.stop();

    let good = SmtpSink::start_on(port, &[]);
    let early = ws.herald(&["digest", "daily"]);
    assert!(
        stdout(&early).contains("0 sent"),
        "nothing is due before the backoff: {}",
        show(&early)
    );
    std::thread::sleep(Duration::from_millis(2400));
    let retry = ws.herald(&["digest", "daily"]);
    assert!(
        stdout(&retry).contains("no new articles") && stdout(&retry).contains("4 sent"),
        "{}",
        show(&retry)
    );
    assert_eq!(good.recipients().len(), 4);
}

#[test]
fn a_5_1_1_fails_the_row_and_suppresses_the_address_for_good() {
    let port = free_port();
    let sink = SmtpSink::start_on(
        port,
        &["-f", "RCPT", "-B", "550 5.1.1 Recipient address rejected: User unknown"],
    );
    let ws = workspace(port, 2);
    let out = ws.herald(&["digest", "daily"]);
    assert!(stdout(&out).contains("0 sent, 0 to retry, 2 failed"), "{}", show(&out));
    let rows = stdout(&ws.herald(&["deliveries"]));
    assert!(
        rows.contains("failed") && rows.contains("5.1.1 Recipient address rejected"),
        "{rows}"
    );
    sink.stop();

    let good = SmtpSink::start_on(port, &[]);
    ws.write("articles/market.txt", &article_txt("Market moves", "market"));
    ws.herald(&["subscribers", "add", "fresh@example.org"]);
    let next = ws.herald(&["digest", "daily"]);
    assert!(
        stdout(&next).contains("for 1 recipient(s)"),
        "suppressed addresses get no row: {}",
        show(&next)
    );
    assert_eq!(good.recipients(), vec!["fresh@example.org"]);
}

#[test]
fn a_5_7_x_pauses_the_channel_loudly_and_keeps_the_rows_queued() {
    let port = free_port();
    let sink = SmtpSink::start_on(
        port,
        &[
            "-f",
            "MAIL",
            "-B",
            "550 5.7.26 Unauthenticated email is not accepted from this domain",
        ],
    );
    let ws = workspace(port, 40);
    let out = ws.herald(&["digest", "daily"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PAUSED") && err.contains("5.7.26"), "{err}");
    let rows = stdout(&ws.herald(&["deliveries"]));
    assert_eq!(state_count(&rows, "queued"), (40, 0), "{rows}");
    assert_eq!(state_count(&rows, "failed"), (0, 0), "nothing failed: {rows}");
    assert_eq!(state_count(&rows, "suppressed"), (0, 0), "nothing suppressed: {rows}");
    sink.stop();

    let good = SmtpSink::start_on(port, &[]);
    let fixed = ws.herald(&["digest", "daily"]);
    assert!(stdout(&fixed).contains("40 sent"), "{}", show(&fixed));
    assert_eq!(good.recipients().len(), 40);
}

#[test]
fn a_connection_dropped_after_the_data_leaves_the_row_in_doubt() {
    let port = free_port();
    let sink = SmtpSink::start_on(port, &["-q", "."]);
    let ws = workspace(port, 2);
    let out = ws.herald(&["digest", "daily"]);
    assert!(stdout(&out).contains("0 sent, 2 to retry"), "{}", show(&out));
    let rows = stdout(&ws.herald(&["deliveries"]));
    assert_eq!(state_count(&rows, "queued"), (2, 2), "{rows}");
    sink.stop();
}

#[test]
fn a_server_that_is_down_defers_without_doubt() {
    let port = free_port();
    let ws = workspace(port, 2);
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("0 sent, 2 to retry"), "{}", show(&out));
    let rows = stdout(&ws.herald(&["deliveries"]));
    assert_eq!(
        state_count(&rows, "queued"),
        (2, 0),
        "refused connections delivered nothing: {rows}"
    );
}

#[test]
fn a_server_that_never_answers_the_data_times_out_in_doubt() {
    let port = free_port();
    let _sink = SmtpSink::start_on(port, &["-W", ".:30"]);
    let ws = workspace(port, 1);
    let started = std::time::Instant::now();
    let out = ws.herald(&["digest", "daily"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the send timeout bounds the wait"
    );
    assert!(stdout(&out).contains("0 sent, 1 to retry"), "{}", show(&out));
    let rows = stdout(&ws.herald(&["deliveries"]));
    assert!(
        rows.contains("(1 in doubt)") && rows.contains("no answer within 2s"),
        "{rows}"
    );
}

#[test]
fn a_row_retried_past_the_maximum_age_expires() {
    let port = free_port();
    let _sink = SmtpSink::start_on(port, &["-r", "RCPT"]);
    let ws = workspace(port, 1);
    ws.herald(&["digest", "daily"]);
    sql(
        &ws,
        "UPDATE deliveries SET created_at = created_at - 4 * 86400000, next_attempt_at = 0",
    );
    let out = ws.herald(&["digest", "daily"]);
    assert!(stdout(&out).contains("1 expired"), "{}", show(&out));
    let rows = stdout(&ws.herald(&["deliveries", "--state", "expired"]));
    assert!(rows.contains("expired") && rows.contains("450 4.3.0"), "{rows}");
}

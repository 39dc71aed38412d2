//! SMTP fault paths against smtp-sink's fault modes: 4xx retries with
//! backoff, 5.1.x suppresses, 5.7.x pauses the channel, a dropped connection
//! or a timeout after the data leaves the row in doubt, and nothing is lost.

use std::time::Duration;

use crate::support::{SmtpSink, Workspace, article_txt, base_config, free_port, show, smtp_mail, state_count, stdout};

fn workspace(port: u16, readers: usize) -> Workspace {
    workspace_with(port, readers, "")
}

/// `readers` subscribers and one new article, with short retries and timeouts and `mail` keys added.
fn workspace_with(port: u16, readers: usize, mail: &str) -> Workspace {
    let ws = Workspace::new(&base_config(&smtp_mail(
        port,
        &format!("retry_initial_secs = 2\nsend_timeout_secs = 2\n{mail}"),
    )));
    ws.subscribers(readers);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    ws
}

pub fn sql(ws: &Workspace, statement: &str) {
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
    crate::support::wait_for_retry(&ws, "daily");
    let retry = ws.herald(&["digest", "daily"]);
    assert!(
        stdout(&retry).contains("no new articles") && stdout(&retry).contains("4 sent"),
        "{}",
        show(&retry)
    );
    assert_eq!(good.recipients_at_least(4).len(), 4);
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
    assert_eq!(good.recipients_at_least(40).len(), 40);
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

/// How many listed rows have each number of tries.
fn rows_with_tries(deliveries: &str, tries: u32) -> usize {
    let mark = format!("tries {tries:<2}");
    deliveries.lines().filter(|l| l.contains(&mark)).count()
}

#[test]
fn a_relay_that_keeps_failing_opens_the_circuit_and_the_rest_stay_untried() {
    let port = free_port();
    let ws = workspace_with(port, 60, "max_connections = 2\nbreaker_after_failures = 5");
    // Nothing listens: every connection is refused.
    let out = ws.herald(&["digest", "daily"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PAUSED") && err.contains("circuit open"), "{err}");
    let rows = stdout(&ws.herald(&["deliveries", "--limit", "100"]));
    assert_eq!(
        state_count(&rows, "queued"),
        (60, 0),
        "all stay queued, none in doubt: {rows}"
    );
    let tried = rows_with_tries(&rows, 1);
    assert!(
        (5..=6).contains(&tried),
        "the circuit opens after 5 failures (one more may be in flight): {tried} tried\n{rows}"
    );
    assert_eq!(
        rows_with_tries(&rows, 0),
        60 - tried,
        "the rest were never tried: {rows}"
    );

    // The relay comes back; once the backoff is over everyone gets exactly one copy.
    let sink = SmtpSink::start_on(port, &[]);
    crate::support::wait_for_retry(&ws, "daily");
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("60 sent"), "{}", show(&out));
    sink.assert_one_copy_each(60);
}

#[test]
fn a_send_over_its_error_budget_pauses_the_edition_until_resumed() {
    let port = free_port();
    let sink = SmtpSink::start_on(
        port,
        &["-f", "RCPT", "-B", "550 5.1.1 Recipient address rejected: User unknown"],
    );
    let ws = workspace_with(
        port,
        60,
        "max_connections = 2\nerror_budget_percent = 20\nerror_budget_min_attempts = 10",
    );
    let out = ws.herald(&["digest", "daily"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("edition #1 PAUSED: 10 of 10 messages refused for good, over the 20% error budget")
            && err.contains("5.1.1")
            && err.contains("herald resume 1"),
        "{err}"
    );
    let rows = stdout(&ws.herald(&["deliveries", "--limit", "100"]));
    let (failed, _) = state_count(&rows, "failed");
    assert!(
        (10..=11).contains(&failed),
        "at most the in-flight row after the 10th: {rows}"
    );
    assert_eq!(state_count(&rows, "queued"), (60 - failed, 0), "{rows}");
    assert!(rows.contains("edition #1 (job daily) PAUSED since"), "{rows}");
    assert!(rows.contains("herald resume 1"), "{rows}");

    // A paused edition is not sent by later runs, and says so.
    let again = ws.herald(&["digest", "daily"]);
    assert!(stdout(&again).contains("0 sent"), "{}", show(&again));
    assert_eq!(
        state_count(&stdout(&ws.herald(&["deliveries"])), "queued").0,
        60 - failed
    );
    sink.stop();

    let resume = ws.herald(&["resume", "1"]);
    assert!(resume.status.success(), "{}", show(&resume));
    assert!(
        stdout(&resume).contains(&format!(
            "edition #1 (job daily, list readers) resumed: {} queued",
            60 - failed
        )),
        "{}",
        show(&resume)
    );
    let twice = ws.herald(&["resume", "1"]);
    assert_eq!(twice.status.code(), Some(1), "{}", show(&twice));
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("not paused"),
        "{}",
        show(&twice)
    );

    let good = SmtpSink::start_on(port, &[]);
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stdout(&out).contains(&format!("{} sent", 60 - failed)),
        "{}",
        show(&out)
    );
    assert_eq!(good.recipients_at_least(60 - failed as usize).len() as u64, 60 - failed);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_show_a_paused_edition_and_why() {
    let port = free_port();
    let _sink = SmtpSink::start_on(port, &["-f", "RCPT", "-B", "554 5.6.0 Message content rejected"]);
    let ws = workspace_with(
        port,
        8,
        "max_connections = 1\nerror_budget_percent = 50\nerror_budget_min_attempts = 4",
    );
    let out = tokio::task::block_in_place(|| ws.herald(&["digest", "daily"]));
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let site = crate::web::start_with(crate::support::settings_with(
        &ws,
        &(crate::support::job_toml("daily", "0 7 * * *") + crate::web::METRICS_WEB),
    ))
    .await;
    let text = crate::web::metrics(&site).await;
    assert!(
        text.lines().any(|l| l.starts_with("herald_edition_paused{job=\"daily\",edition=\"1\",reason=\"4 of 4 messages refused for good, over the 50% error budget (last: 554 5.6.0")
            && l.ends_with("} 4")),
        "{text}"
    );
}

/// `tests/support/scripted_smtp_server.py`: answers each recipient by its local part.
struct ScriptedSmtp {
    port: u16,
    inbox: tempfile::TempDir,
    _process: crate::support::KillOnDrop,
}

impl ScriptedSmtp {
    fn start() -> ScriptedSmtp {
        let port = free_port();
        let inbox = tempfile::tempdir().unwrap();
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/scripted_smtp_server.py");
        let process = std::process::Command::new("python3")
            .arg(script)
            .args([&port.to_string(), &inbox.path().display().to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs");
        let process = crate::support::KillOnDrop(process);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the scripted SMTP server did not start (scripts/test installs aiosmtpd)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ScriptedSmtp {
            port,
            inbox,
            _process: process,
        }
    }

    /// How many copies each recipient was given.
    fn copies(&self) -> std::collections::BTreeMap<String, usize> {
        let mut copies = std::collections::BTreeMap::new();
        for entry in std::fs::read_dir(self.inbox.path()).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            let rcpt = name.rsplitn(3, '.').nth(2).unwrap().to_string();
            *copies.entry(rcpt).or_insert(0) += 1;
        }
        copies
    }
}

#[test]
fn per_recipient_answers_each_end_in_their_own_state_and_show_in_deliveries() {
    let server = ScriptedSmtp::start();
    let ws = Workspace::new(&base_config(&smtp_mail(
        server.port,
        "retry_initial_secs = 1\nsend_timeout_secs = 5\nmax_connections = 2",
    )));
    let people = [
        "ok1",
        "greylist1",
        "ok2",
        "full1",
        "throttle1",
        "unknown1",
        "spam1",
        "lost1",
        "ok3",
    ];
    let mut csv = String::from("email\n");
    for p in people {
        csv.push_str(&format!("{p}@example.org\n"));
    }
    ws.write("people.csv", &csv);
    assert!(ws.herald(&["subscribers", "import", "people.csv"]).status.success());
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));

    let out = ws.herald(&["digest", "daily"]);
    assert!(
        stdout(&out).contains("3 sent, 4 to retry, 2 failed, 0 suppressed"),
        "{}",
        show(&out)
    );
    let rows = stdout(&ws.herald(&["deliveries", "--limit", "20"]));
    assert_eq!(state_count(&rows, "sent"), (3, 0), "{rows}");
    assert_eq!(
        state_count(&rows, "queued"),
        (4, 1),
        "only the lost reply is in doubt: {rows}"
    );
    assert_eq!(state_count(&rows, "failed"), (2, 0), "{rows}");
    for reply in ["451 4.7.1", "452 4.2.2", "454 4.7.0", "550 5.1.1", "554 5.6.0"] {
        assert!(rows.contains(reply), "{reply} is shown: {rows}");
    }
    let row = |who: &str| {
        rows.lines()
            .find(|l| l.contains(&format!("{who}@example.org")))
            .unwrap()
            .to_string()
    };
    assert!(row("lost1").contains("in-doubt"), "{rows}");
    assert!(row("spam1").contains("failed"), "{rows}");

    // The retries: still refused (and the lost reply's row sent again, its one
    // permitted second copy); nobody else gets anything more.
    crate::support::wait_for_retry(&ws, "daily");
    let again = ws.herald(&["digest", "daily"]);
    assert!(stdout(&again).contains("no new articles"), "{}", show(&again));
    let copies = server.copies();
    for p in ["ok1", "ok2", "ok3"] {
        assert_eq!(copies.get(&format!("{p}@example.org")), Some(&1), "{copies:?}");
    }
    for p in ["greylist1", "full1", "throttle1", "unknown1", "spam1"] {
        assert_eq!(copies.get(&format!("{p}@example.org")), None, "{copies:?}");
    }
    assert_eq!(
        copies.get("lost1@example.org"),
        Some(&2),
        "kept twice: the first reply was lost"
    );

    // 5.1.1 put the address on the suppression list: the next edition skips it.
    ws.write("articles/bridge.txt", &article_txt("Bridge opens", "bridge"));
    let next = ws.herald(&["digest", "daily"]);
    assert!(stdout(&next).contains("for 8 recipient(s)"), "{}", show(&next));
}

#[test]
fn the_daemon_pauses_on_an_open_circuit_and_resumes_on_its_own_when_the_relay_is_back() {
    use crate::daemon::{log_text, start_daemon_logging_to, stop, wait_for};
    let port = free_port();
    let (public, web) = (free_port(), free_port());
    let config = base_config(&smtp_mail(
        port,
        "retry_initial_secs = 1\nsend_timeout_secs = 2\nmax_connections = 1\nbreaker_after_failures = 3",
    )) + &format!("\n[web]\nlisten = \"127.0.0.1:{public}\"\nmetrics_listen = \"127.0.0.1:{web}\"\n");
    let ws = Workspace::new(&config);
    ws.subscribers(60);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    // The edition is made while the relay is down: the circuit opens at once.
    let out = ws.herald(&["digest", "daily"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));

    let daemon = start_daemon_logging_to(&ws, "daemon.log");
    wait_for(&ws, "the daemon to pause the channel", Duration::from_secs(30), || {
        log_text(&ws).contains("sending resumes on its own after the pause")
    });
    assert!(log_text(&ws).contains("circuit open: 3 sends in a row failed temporarily"));
    let metrics = || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            herald::install_crypto();
            reqwest::get(format!("http://127.0.0.1:{web}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    wait_for(&ws, "the pause in /metrics", Duration::from_secs(10), || {
        metrics()
            .lines()
            .any(|l| l.starts_with("herald_mail_paused_until_timestamp_seconds{reason=\"circuit open"))
    });

    // The relay comes back; the daemon finds it after a pause, with nobody's help.
    let sink = SmtpSink::start_on(port, &[]);
    wait_for(
        &ws,
        "every recipient to get the edition",
        Duration::from_secs(60),
        || sink.recipients().len() >= 60,
    );
    wait_for(&ws, "the pause to leave /metrics", Duration::from_secs(10), || {
        !metrics().contains("herald_mail_paused_until_timestamp_seconds{")
    });
    let on_the_pages = tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::get(format!("http://127.0.0.1:{public}/metrics"))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(on_the_pages, 404, "/metrics has its own listener");
    stop(&ws, daemon);
    sink.assert_one_copy_each(60);
    let rows = stdout(&ws.herald(&["deliveries"]));
    assert_eq!(state_count(&rows, "sent"), (60, 0), "{rows}");
}

/// A one-trick SMTP server on a free port: every connection is handed to `serve`.
fn raw_smtp(serve: fn(std::net::TcpStream)) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    port
}

#[test]
fn a_421_greeting_defers_without_doubt() {
    let port = raw_smtp(|mut stream| {
        use std::io::Write;
        let _ = stream.write_all(b"421 4.3.2 Service shutting down, try later\r\n");
    });
    let ws = workspace(port, 3);
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("0 sent, 3 to retry"), "{}", show(&out));
    let rows = stdout(&ws.herald(&["deliveries"]));
    assert_eq!(state_count(&rows, "queued"), (3, 0), "{rows}");
    assert!(rows.contains("421 4.3.2"), "{rows}");
}

#[test]
fn a_connection_dropped_in_the_middle_of_the_data_leaves_the_row_in_doubt() {
    let port = raw_smtp(|stream| {
        use std::io::{BufRead, Read, Write};
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut out = stream;
        let _ = out.write_all(b"220 raw.example ESMTP\r\n");
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            let reply: &[u8] = match line.get(..4).map(str::to_ascii_uppercase).as_deref() {
                Some("EHLO") | Some("HELO") => b"250 raw.example\r\n",
                Some("DATA") => {
                    let _ = out.write_all(b"354 go ahead\r\n");
                    // Take part of the message, then hang up.
                    let mut some = [0u8; 200];
                    let _ = reader.read(&mut some);
                    return;
                }
                Some("QUIT") => return,
                _ => b"250 ok\r\n",
            };
            let _ = out.write_all(reply);
            line.clear();
        }
    });
    let ws = workspace(port, 2);
    let out = ws.herald(&["digest", "daily"]);
    assert!(stdout(&out).contains("0 sent, 2 to retry"), "{}", show(&out));
    let rows = stdout(&ws.herald(&["deliveries"]));
    // The message may have left in full before the hang-up was seen: in doubt is the safe answer.
    assert_eq!(state_count(&rows, "queued"), (2, 2), "{rows}");
}

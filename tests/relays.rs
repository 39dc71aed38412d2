//! Herald against relays that refuse, stall or misbehave at each step of the
//! session (the scripted relay of `relay.rs`): what happens to each row and
//! to the channel, as docs/reliability.md's stage x reply table says.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::relay::{Act, Relay, Script, always, say};
use crate::support::{Workspace, article_txt, base_config, show, smtp_mail, state_count, stdout};

const CREDENTIALS: &str = "username = \"herald\"\npassword = \"relay-pass-7731\"\n";

/// `readers` subscribers and one new article, sending to `relay` with 2 s
/// timeouts; `smtp` adds keys to `[mail.smtp]`.
fn workspace(relay: &Relay, readers: usize, smtp: &str) -> Workspace {
    let mail = smtp_mail(
        relay.port,
        "retry_initial_secs = 2\nsend_timeout_secs = 2\nmax_connections = 1",
    ) + smtp;
    let ws = Workspace::new(&base_config(&mail));
    ws.subscribers(readers);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    ws
}

fn deliveries(ws: &Workspace) -> String {
    stdout(&ws.herald(&["deliveries"]))
}

/// Every row is queued as it was before the run: not tried, not in doubt.
fn assert_untouched(ws: &Workspace, readers: u64) {
    let rows = deliveries(ws);
    assert_eq!(state_count(&rows, "queued"), (readers, 0), "{rows}");
    assert_eq!(
        rows.lines().filter(|l| l.contains("tries 0 ")).count() as u64,
        readers,
        "no attempt counted: {rows}"
    );
}

#[test]
fn plaintext_injected_after_starttls_drops_the_session_before_anything_is_sent() {
    let relay = Relay::start(Script {
        extensions: Arc::new(|_| vec!["PIPELINING", "STARTTLS", "AUTH PLAIN LOGIN"]),
        // The 220 and, in the same packet, a forged EHLO reply.
        starttls: always(Act::Say(
            b"220 2.0.0 Ready to start TLS\r\n250-relay.test\r\n250 AUTH PLAIN\r\n".to_vec(),
        )),
        ..Script::default()
    });
    let ws = workspace(&relay, 3, CREDENTIALS);
    std::fs::write(
        ws.path().join("config/herald.toml"),
        std::fs::read_to_string(ws.path().join("config/herald.toml"))
            .unwrap()
            .replace("tls = \"none\"", "tls = \"starttls\""),
    )
    .unwrap();
    let out = ws.herald(&["digest", "daily"]);
    assert_eq!(out.status.code(), Some(3), "the channel pauses: {}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("STARTTLS") && err.contains("injected"), "{err}");
    assert!(
        relay.heard("AUTH").is_empty(),
        "no password went out: {:?}",
        relay.commands()
    );
    assert!(relay.heard("MAIL").is_empty(), "{:?}", relay.commands());
    assert_untouched(&ws, 3);
}

#[test]
fn a_refused_session_pauses_the_channel_names_the_stage_and_touches_no_row() {
    let cases: Vec<(&str, Script, &str)> = vec![
        (
            "at greeting: 554 5.7.1",
            Script {
                greeting: always(say("554 5.7.1 No SMTP service here")),
                ..Script::default()
            },
            "",
        ),
        (
            "at EHLO: 550 5.7.1",
            Script {
                ehlo: Some(always(say("550 5.7.1 Your host is not welcome"))),
                ..Script::default()
            },
            "",
        ),
        (
            "at AUTH: 535 5.7.8",
            Script {
                extensions: Arc::new(|_| vec!["PIPELINING", "AUTH PLAIN"]),
                auth: always(say("535 5.7.8 Authentication credentials invalid")),
                ..Script::default()
            },
            CREDENTIALS,
        ),
        (
            "at AUTH: 504 5.5.4",
            Script {
                extensions: Arc::new(|_| vec!["AUTH PLAIN"]),
                auth: always(say("504 5.5.4 Unrecognized authentication type")),
                ..Script::default()
            },
            CREDENTIALS,
        ),
        (
            "at MAIL FROM: 553 5.7.1",
            Script {
                mail: always(say("553 5.7.1 Sender address rejected: not owned by user")),
                ..Script::default()
            },
            "",
        ),
    ];
    for (named, script, smtp) in cases {
        let relay = Relay::start(script);
        let ws = workspace(&relay, 3, smtp);
        let out = ws.herald(&["digest", "daily"]);
        assert_eq!(out.status.code(), Some(3), "{named}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("PAUSED") && err.contains(named), "{named}: {err}");
        assert_untouched(&ws, 3);
        assert!(relay.kept().is_empty());

        // `herald check --smtp` reports the same refusal, naming the stage.
        let check = ws.herald(&["check", "--smtp"]);
        if named.contains("MAIL FROM") {
            // The session itself opens: the refusal comes only with a sender.
            assert!(check.status.success(), "{}", show(&check));
        } else {
            assert_eq!(check.status.code(), Some(2), "{named}: {}", show(&check));
            let err = String::from_utf8_lossy(&check.stderr);
            assert!(err.contains(named), "{named}: {err}");
        }
    }
}

#[test]
fn check_smtp_connects_authenticates_and_quits() {
    let relay = Relay::start(Script {
        extensions: Arc::new(|_| vec!["PIPELINING", "8BITMIME", "AUTH LOGIN PLAIN"]),
        ..Script::default()
    });
    let ws = workspace(&relay, 1, CREDENTIALS);
    let out = ws.herald(&["check", "--smtp"]);
    assert!(out.status.success(), "{}", show(&out));
    let said = stdout(&out);
    assert!(
        said.contains("connected") && said.contains("authenticated") && said.contains("PIPELINING 8BITMIME"),
        "{said}"
    );
    assert_eq!(relay.heard("AUTH PLAIN").len(), 1, "{:?}", relay.commands());
    assert_eq!(relay.heard("QUIT").len(), 1, "{:?}", relay.commands());
    assert!(!said.contains("relay-pass-7731") && !String::from_utf8_lossy(&out.stderr).contains("relay-pass-7731"));
}

#[test]
fn credentials_are_never_sent_unauthenticated_or_in_cleartext() {
    // The server offers no AUTH: nothing goes out, the channel pauses saying so.
    let relay = Relay::start(Script::default());
    let ws = workspace(&relay, 2, CREDENTIALS);
    let out = ws.herald(&["digest", "daily"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("offers no AUTH"), "{err}");
    assert!(
        relay.heard("AUTH").is_empty() && relay.heard("MAIL").is_empty(),
        "{:?}",
        relay.commands()
    );
    assert_untouched(&ws, 2);

    // tls = "none" with a password to another host is refused at load.
    let mail = smtp_mail(25, "").replace("host = \"127.0.0.1\"", "host = \"smtp.example.org\"") + CREDENTIALS;
    let remote = Workspace::new(&base_config(&mail));
    let check = remote.herald(&["check"]);
    assert_eq!(check.status.code(), Some(2), "{}", show(&check));
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(err.contains("mail.smtp.tls") && err.contains("cleartext"), "{err}");
}

#[test]
fn a_server_that_never_greets_times_out_without_doubt() {
    let relay = Relay::start(Script {
        greeting: always(Act::Hang),
        ..Script::default()
    });
    let ws = workspace(&relay, 2, "");
    let started = Instant::now();
    let out = ws.herald(&["digest", "daily"]);
    assert!(started.elapsed() < Duration::from_secs(30), "every wait is bounded");
    assert!(stdout(&out).contains("0 sent, 2 to retry"), "{}", show(&out));
    let rows = deliveries(&ws);
    assert_eq!(state_count(&rows, "queued"), (2, 0), "nothing was sent: {rows}");
    assert!(rows.contains("no answer within 2s (at greeting)"), "{rows}");
}

#[test]
fn an_endless_reply_line_drops_the_session_without_doubt() {
    let relay = Relay::start(Script {
        greeting: always(Act::Flood),
        ..Script::default()
    });
    let ws = workspace(&relay, 2, "");
    let out = ws.herald(&["digest", "daily"]);
    assert!(stdout(&out).contains("0 sent, 2 to retry"), "{}", show(&out));
    let rows = deliveries(&ws);
    assert_eq!(state_count(&rows, "queued"), (2, 0), "{rows}");
    assert!(rows.contains("longer than 1000 bytes"), "{rows}");
}

#[test]
fn replies_that_break_the_protocol_are_retried_never_failed() {
    let cases = [
        // 250 where DATA needs 354; a reply whose lines change code.
        Script {
            data: always(say("250 2.0.0 Ok")),
            ..Script::default()
        },
        Script {
            ehlo: Some(always(Act::Say(b"250-relay.test\r\n550 5.0.0 oops\r\n".to_vec()))),
            ..Script::default()
        },
    ];
    for script in cases {
        let relay = Relay::start(script);
        let ws = workspace(&relay, 2, "");
        let out = ws.herald(&["digest", "daily"]);
        assert!(stdout(&out).contains("0 sent, 2 to retry, 0 failed"), "{}", show(&out));
        let rows = deliveries(&ws);
        assert_eq!(state_count(&rows, "queued"), (2, 0), "{rows}");
    }
}

#[test]
fn a_policy_refusal_of_one_recipient_fails_only_that_row() {
    let relay = Relay::start(Script {
        rcpt: Arc::new(|_, to| {
            if to.starts_with("reader1@") {
                say("550 5.7.1 <reader1@example.org>: Recipient address rejected: Access denied")
            } else {
                say("250 2.1.5 Ok")
            }
        }),
        ..Script::default()
    });
    let ws = workspace(&relay, 4, "");
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "the channel does not pause: {}", show(&out));
    assert!(stdout(&out).contains("3 sent, 0 to retry, 1 failed"), "{}", show(&out));
    let rows = deliveries(&ws);
    assert_eq!(state_count(&rows, "failed"), (1, 0), "{rows}");
    assert!(rows.contains("Access denied"), "{rows}");
    // The refused row is done: the next run has nothing due.
    let again = ws.herald(&["digest", "daily"]);
    assert!(
        stdout(&again).contains("0 sent, 0 to retry, 0 failed"),
        "{}",
        show(&again)
    );
    assert_eq!(relay.kept().len(), 3);
}

#[test]
fn a_421_at_the_final_dot_closes_the_session_and_8bitmime_is_asked_again() {
    // The first connection offers 8BITMIME and says 421 at the first message's
    // dot; the next connection does not offer 8BITMIME.
    let relay = Relay::start(Script {
        extensions: Arc::new(|n| {
            if n == 1 {
                vec!["PIPELINING", "8BITMIME"]
            } else {
                vec!["PIPELINING"]
            }
        }),
        end_of_data: Arc::new(|n, _| {
            if n == 1 {
                say("421 4.3.2 Shutting down, try again later")
            } else {
                say("250 2.0.0 Ok: queued")
            }
        }),
        ..Script::default()
    });
    let ws = workspace(&relay, 3, "");
    ws.write(
        "articles/ferry.txt",
        &article_txt("Caf\u{e9} ferry returns \u{2014} na\u{ef}ve plans", "caf\u{e9}"),
    );
    let out = ws.herald(&["digest", "daily"]);
    assert!(stdout(&out).contains("2 sent, 1 to retry"), "{}", show(&out));
    let rows = deliveries(&ws);
    assert_eq!(
        state_count(&rows, "queued"),
        (1, 0),
        "the 421 row is retried, not in doubt: {rows}"
    );
    assert!(rows.contains("421 4.3.2") && !rows.contains("reset"), "{rows}");
    assert_eq!(
        relay.connections(),
        2,
        "one new session after the 421: {:?}",
        relay.commands()
    );
    let first_mail = relay.heard("MAIL");
    assert!(
        first_mail[0].starts_with("1 ") && first_mail[0].contains("BODY=8BITMIME"),
        "{first_mail:?}"
    );
    for mail in first_mail.iter().filter(|m| m.starts_with("2 ")) {
        assert!(!mail.contains("BODY=8BITMIME"), "{mail}");
    }
    for (to, message) in relay.kept() {
        assert!(message.is_ascii(), "{to} got 8-bit text from a server without 8BITMIME");
    }
    assert_eq!(
        relay.heard("QUIT").len(),
        1,
        "the second session ends with QUIT: {:?}",
        relay.commands()
    );
}

#[test]
fn a_reply_that_is_not_utf8_still_suppresses_the_address() {
    let relay = Relay::start(Script {
        rcpt: Arc::new(|_, to| {
            if to.starts_with("reader0@") {
                Act::Say(b"550 5.1.1 <reader0@example.org>: Empf\xe4nger unbekannt\r\n".to_vec())
            } else {
                say("250 2.1.5 Ok")
            }
        }),
        ..Script::default()
    });
    let ws = workspace(&relay, 2, "");
    let out = ws.herald(&["digest", "daily"]);
    assert!(stdout(&out).contains("1 sent, 0 to retry, 1 failed"), "{}", show(&out));
    let rows = deliveries(&ws);
    assert!(rows.contains("5.1.1") && rows.contains("nger unbekannt"), "{rows}");
    let shown = stdout(&ws.herald(&["subscribers", "list"]));
    assert!(shown.contains("reader0@example.org"), "{shown}");
    ws.herald(&["subscribers", "add", "fresh@example.org"]);
    ws.write("articles/market.txt", &article_txt("Market moves", "market"));
    let next = ws.herald(&["digest", "daily"]);
    assert!(
        stdout(&next).contains("for 2 recipient(s)"),
        "the suppressed address gets no row: {}",
        show(&next)
    );
}

#[test]
fn every_session_ends_with_quit() {
    let relay = Relay::start(Script::default());
    let mail = smtp_mail(relay.port, "max_connections = 3");
    let ws = Workspace::new(&base_config(&mail));
    ws.subscribers(9);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    let out = ws.herald(&["digest", "daily"]);
    assert!(stdout(&out).contains("9 sent"), "{}", show(&out));
    assert!(relay.connections() >= 1);
    assert_eq!(relay.heard("QUIT").len(), relay.connections(), "{:?}", relay.commands());
}

#[test]
fn an_outcome_from_an_instance_that_lost_its_lease_is_not_recorded() {
    use chrono::Utc;
    use herald::store::{Attempt, Lease, Outcome};

    // Two rows queued (the server is down), then made due.
    let down = crate::support::free_port();
    let ws = Workspace::new(&base_config(&smtp_mail(down, "")));
    ws.subscribers(2);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    ws.herald(&["digest", "daily"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = ws.store().await;
        // Instance A claims both rows with a lease that runs out at once.
        let due = Utc::now() + chrono::Duration::hours(1);
        let a = Lease {
            by: "instance-a",
            now: due,
            until: due + chrono::Duration::milliseconds(1),
        };
        let claimed_a = store.claim_deliveries("daily", 10, &a).await.unwrap();
        assert_eq!(claimed_a.len(), 2);
        // Instance B finds the lease expired, takes the rows back and claims them.
        let later = due + chrono::Duration::hours(1);
        assert_eq!(store.recover_expired_leases("daily", later).await.unwrap(), 2);
        let b = Lease {
            by: "instance-b",
            now: later,
            until: later + chrono::Duration::minutes(5),
        };
        let claimed_b = store.claim_deliveries("daily", 10, &b).await.unwrap();
        assert_eq!(claimed_b.len(), 2);
        // A's late outcomes land nowhere; B's are recorded.
        let sent = Outcome::Sent {
            reply: "250 late".into(),
        };
        let late: Vec<Attempt> = claimed_a
            .iter()
            .map(|r| Attempt {
                id: r.id,
                lease_until: r.lease_until,
                outcome: &sent,
                email: &r.email,
            })
            .collect();
        assert_eq!(store.record_outcomes("instance-a", &late, later).await.unwrap(), 0);
        let failed = Outcome::Failed {
            reply: "550 5.1.1 late".into(),
            suppress: true,
        };
        let late_failures: Vec<Attempt> = late.iter().map(|a| Attempt { outcome: &failed, ..*a }).collect();
        assert_eq!(
            store
                .record_outcomes("instance-a", &late_failures, later)
                .await
                .unwrap(),
            0
        );
        let sent_by_b = Outcome::Sent {
            reply: "250 2.0.0 Ok: from b".into(),
        };
        let own: Vec<Attempt> = claimed_b
            .iter()
            .map(|r| Attempt {
                id: r.id,
                lease_until: r.lease_until,
                outcome: &sent_by_b,
                email: &r.email,
            })
            .collect();
        assert_eq!(store.record_outcomes("instance-b", &own, later).await.unwrap(), 2);
        store.close().await;
    });
    let rows = deliveries(&ws);
    assert_eq!(
        state_count(&rows, "sent"),
        (2, 2),
        "sent, flagged in doubt by the takeover: {rows}"
    );
    assert!(rows.contains("from b") && !rows.contains("late"), "{rows}");
    // A's late refusal suppressed nobody.
    ws.herald(&["subscribers", "add", "fresh@example.org"]);
    ws.write("articles/market.txt", &article_txt("Market moves", "market"));
    let next = ws.herald(&["digest", "daily"]);
    assert!(stdout(&next).contains("for 3 recipient(s)"), "{}", show(&next));
}

#[test]
fn two_instances_on_a_slow_relay_send_no_row_twice_outside_in_doubt() {
    // Every message's final dot is answered after 100 ms; two recipients'
    // after 2.5 s, past the 2 s step timeout, though the relay keeps them.
    let relay = Relay::start(Script {
        end_of_data: Arc::new(|_, to| {
            let wait = if to.starts_with("reader3@") || to.starts_with("reader7@") {
                Duration::from_millis(2500)
            } else {
                Duration::from_millis(100)
            };
            Act::Later(wait, b"250 2.0.0 Ok: queued\r\n".to_vec())
        }),
        ..Script::default()
    });
    let down = crate::support::free_port();
    let mail = smtp_mail(
        down,
        "retry_initial_secs = 2\nsend_timeout_secs = 2\nmax_connections = 4",
    );
    let ws = Workspace::new(&base_config(&mail));
    ws.subscribers(30);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    // The edition is built while the relay is down, its rows made due, then
    // two instances drain the one queue at once.
    ws.herald(&["digest", "daily"]);
    crate::faults::sql(&ws, "UPDATE deliveries SET next_attempt_at = 0");
    let config = ws.path().join("config/herald.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(&format!("port = {down}"), &format!("port = {}", relay.port)),
    )
    .unwrap();
    let instances: Vec<_> = (0..2)
        .map(|_| {
            ws.command(&["digest", "daily"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in instances {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
    }
    let rows = deliveries(&ws);
    let in_doubt: Vec<&str> = rows.lines().filter(|l| l.contains("in-doubt")).collect();
    let mut counts = std::collections::BTreeMap::new();
    for (to, _) in relay.kept() {
        *counts.entry(to).or_insert(0) += 1;
    }
    for i in 0..30 {
        let to = format!("reader{i}@example.org");
        let copies = counts.get(&to).copied().unwrap_or(0);
        let doubtful = in_doubt.iter().any(|l| l.contains(&format!(" {to} ")));
        assert!(
            copies <= 1 || doubtful,
            "{to} got {copies} copies without doubt: {rows}"
        );
        assert!(
            copies >= 1 || rows.contains("queued"),
            "{to} got nothing and nothing waits: {rows}"
        );
    }
    let claimers: std::collections::BTreeSet<&str> = rows.lines().filter_map(|l| l.split("(by ").nth(1)).collect();
    assert_eq!(claimers.len(), 2, "both instances sent: {rows}");
}

#[test]
fn a_non_ascii_local_part_goes_out_with_smtputf8_where_the_server_offers_it() {
    let relay = Relay::start(Script {
        extensions: Arc::new(|_| vec!["PIPELINING", "8BITMIME", "SMTPUTF8"]),
        ..Script::default()
    });
    let ws = workspace(&relay, 0, "");
    ws.write("subs.csv", "email,name\njosé@exämple.net,José\n");
    let import = ws.herald(&["subscribers", "import", "subs.csv"]);
    assert!(import.status.success(), "{}", show(&import));
    let out = ws.herald(&["digest", "daily"]);
    assert!(stdout(&out).contains("1 sent"), "{}", show(&out));
    let mail = relay.heard("MAIL");
    assert!(mail[0].ends_with(" SMTPUTF8"), "{mail:?}");
    let rcpt = relay.heard("RCPT");
    assert!(rcpt[0].ends_with("RCPT TO:<josé@xn--exmple-cua.net>"), "{rcpt:?}");
    let (_, message) = &relay.kept()[0];
    assert!(
        String::from_utf8_lossy(message).contains("josé@xn--exmple-cua.net"),
        "the header carries the address as sent"
    );
}

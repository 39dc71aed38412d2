//! Bounce and complaint reports: the corpus under `tests/bounces/` (written
//! for Herald in the shapes Postfix, Exim, Sendmail, qmail, Microsoft 365,
//! Gmail, Yahoo, Amazon SES and feedback loops produce) classified against
//! `tests/bounces/expected.txt`, and the accuracy reported.

use std::path::PathBuf;

use herald::bounce::{Kind, Verdict, classify};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bounces")
}

/// What the classifier said about a file, in the manifest's terms.
fn said(file: &str) -> Vec<(String, String)> {
    let raw = std::fs::read(corpus().join(file)).unwrap();
    match classify(&raw).verdict {
        Verdict::Failures(findings) => findings
            .into_iter()
            .map(|f| (f.kind.as_str().to_string(), f.address.unwrap_or_default()))
            .collect(),
        Verdict::AutoReply => vec![("auto-reply".into(), "-".into())],
        Verdict::NoFailure => vec![("none".into(), "-".into())],
        Verdict::Unrecognised => vec![("unrecognised".into(), "-".into())],
    }
}

/// A manifest's lines: `(file, kind, address)`.
fn manifest(path: &std::path::Path) -> Vec<(String, String, String)> {
    let manifest = std::fs::read_to_string(path).unwrap();
    manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let mut words = line.split_whitespace();
            let mut word = || words.next().unwrap().to_string();
            (word(), word(), word())
        })
        .collect()
}

/// Checks every file of a corpus directory against its manifest with
/// `said`; returns how many files were read right, and all.
fn score(dir: &std::path::Path, extension: &str, said: impl Fn(&str) -> Vec<(String, String)>) -> (usize, usize) {
    let expected = manifest(&dir.join("expected.txt"));
    let files: std::collections::BTreeSet<&str> = expected.iter().map(|(f, ..)| f.as_str()).collect();
    let on_disk = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == extension))
        .count();
    assert_eq!(
        files.len(),
        on_disk,
        "every .{extension} file has a line in expected.txt"
    );
    let mut right = 0;
    let mut wrong = Vec::new();
    for file in &files {
        let want: Vec<(String, String)> = expected
            .iter()
            .filter(|(f, ..)| f == file)
            .map(|(_, k, a)| (k.clone(), a.clone()))
            .collect();
        let got = said(file);
        if got == want {
            right += 1;
        } else {
            wrong.push(format!("{file}: expected {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    (right, files.len())
}

#[test]
fn the_corpus_is_classified_as_written_down() {
    let (right, all) = score(&corpus(), "eml", said);
    println!("bounce corpus: {right}/{all} reports classified right");
}

/// What a provider's reader made of a corpus file, each body authenticated
/// as its provider would (signed here with keys made for the test).
fn events_said(file: &str) -> Vec<(String, String)> {
    use herald::bounce::webhook::{mailgun, postmark, sendgrid};
    let raw = std::fs::read(corpus().join("events").join(file)).unwrap();
    let now = chrono::Utc::now();
    let events = if file.starts_with("ses_") {
        herald::bounce::sns::ses_events(&serde_json::from_slice(&raw).unwrap())
    } else if file.starts_with("mailgun_") {
        use hmac::{KeyInit, Mac};
        let key = "mailgun-corpus-signing-key";
        let (timestamp, token) = (now.timestamp().to_string(), "corpus-token");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{timestamp}{token}").as_bytes());
        let signature: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let data: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let body = serde_json::json!({
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": data,
        });
        mailgun::read(key, body.to_string().as_bytes(), now).unwrap()
    } else if file.starts_with("postmark_") {
        postmark::read(&raw).unwrap()
    } else if file.starts_with("sendgrid_") {
        use base64::Engine as _;
        use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let timestamp = now.timestamp().to_string();
        let signed = [timestamp.as_bytes(), &raw].concat();
        let signature = base64::engine::general_purpose::STANDARD.encode(pair.sign(&rng, &signed).unwrap());
        sendgrid::read(
            pair.public_key().as_ref(),
            Some(&signature),
            Some(&timestamp),
            &raw,
            now,
        )
        .unwrap()
    } else {
        panic!("{file}: no provider of that name")
    };
    if events.is_empty() {
        return vec![("none".into(), "-".into())];
    }
    events
        .into_iter()
        .map(|e| {
            (
                e.finding.kind.as_str().to_string(),
                e.finding.address.unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn provider_events_are_read_as_written_down() {
    let (right, all) = score(&corpus().join("events"), "json", events_said);
    println!("provider event corpus: {right}/{all} bodies read right");
}

#[test]
fn returned_message_ids_and_the_report_address_are_kept_for_matching() {
    let raw = std::fs::read(corpus().join("postfix_user_unknown.eml")).unwrap();
    let report = classify(&raw);
    assert_eq!(report.id, "<postfix_user_unknown.report@mta.example>");
    assert_eq!(
        report.returned_ids,
        ["herald.41.9001.abcdef0123456789@news.example.org"]
    );
    assert!(report.sent_to.iter().any(|a| a == "bounces@news.example.org"));
    let qmail = classify(&std::fs::read(corpus().join("qmail_user_unknown.eml")).unwrap());
    assert_eq!(
        qmail.returned_ids,
        ["herald.41.9002.abcdef0123456789@news.example.org"],
        "a text bounce's copy counts too"
    );
    let arf = classify(&std::fs::read(corpus().join("arf_abuse.eml")).unwrap());
    assert!(matches!(&arf.verdict, Verdict::Failures(f) if f[0].kind == Kind::Complaint));
}

#[test]
fn junk_is_unrecognised_never_a_panic() {
    for junk in [
        &b""[..],
        b"\0\0\0",
        b"Subject: hello\n\nnot a report",
        b"From: MAILER-DAEMON@x.example\nSubject: Undelivered\n\nno address at all",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822;\nAction: failed\n",
    ] {
        let report = classify(junk);
        assert!(
            !matches!(report.verdict, Verdict::Failures(ref f) if f.iter().any(|f| f.address.is_some() && f.kind == Kind::Hard)),
            "{report:?}"
        );
    }
}

mod ledger {
    //! Reports read back into the ledger: a digest goes out through a relay
    //! that accepts every message with 250, the relay's later bounces and a
    //! feedback loop's complaint are ingested, and the list sheds exactly
    //! the addresses they are about.

    use std::collections::HashMap;
    use std::io::Write;
    use std::process::Stdio;

    use crate::support::postfix::{BOUNCE_DOMAIN, Postfix};
    use crate::support::relay::{Relay, Script, say};
    use crate::support::{Workspace, article_txt, base_config, show, smtp_mail, state_count, stdout};

    /// A delivery-status report, as a relay sends it, to `to` about `rcpt`.
    fn dsn(id: &str, to: &str, rcpt: &str, status: &str, words: &str, returned_id: &str) -> String {
        format!(
            "Delivered-To: {to}\r\nFrom: MAILER-DAEMON@relay.example.net\r\nTo: {to}\r\n\
             Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{id}@relay.example.net>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"BB\"\r\n\r\n\
             --BB\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n\
             --BB\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example.net\r\n\r\n\
             Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: {status}\r\n\
             Diagnostic-Code: smtp; {words}\r\n\r\n\
             --BB\r\nContent-Type: text/rfc822-headers\r\n\r\nTo: {rcpt}\r\nMessage-ID: <{returned_id}>\r\n\r\n--BB--\r\n"
        )
    }

    /// A feedback-loop complaint (ARF) about `rcpt`'s copy `returned_id`.
    fn arf(id: &str, rcpt: &str, returned_id: &str) -> String {
        format!(
            "From: fbl@mailbox.example.net\r\nTo: abuse@gazette.example.org\r\nSubject: complaint\r\n\
             Message-ID: <{id}@mailbox.example.net>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=feedback-report; boundary=\"FF\"\r\n\r\n\
             --FF\r\nContent-Type: text/plain\r\n\r\nA reader marked this message as spam.\r\n\r\n\
             --FF\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n\
             Original-Rcpt-To: {rcpt}\r\n\r\n\
             --FF\r\nContent-Type: text/rfc822-headers\r\n\r\nTo: {rcpt}\r\nMessage-ID: <{returned_id}>\r\n\r\n--FF--\r\n"
        )
    }

    /// Each recipient's envelope sender and Message-ID, as the relay heard them.
    fn sent(relay: &Relay) -> HashMap<String, (String, String)> {
        let mut from_of_connection: HashMap<String, String> = HashMap::new();
        let mut return_paths = HashMap::new();
        for command in relay.commands() {
            let (conn, rest) = command.split_once(' ').unwrap();
            let address = |verb: &str| {
                let arg = rest.strip_prefix(verb)?.split_whitespace().next()?;
                Some(arg.trim_matches(['<', '>']).to_string())
            };
            if let Some(from) = address("MAIL FROM:") {
                from_of_connection.insert(conn.to_string(), from);
            } else if let Some(to) = address("RCPT TO:") {
                return_paths.insert(to, from_of_connection[conn].clone());
            }
        }
        relay
            .kept()
            .into_iter()
            .map(|(to, raw)| {
                let text = String::from_utf8_lossy(&raw).into_owned();
                let id = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Message-ID: "))
                    .unwrap()
                    .trim_matches(['<', '>'])
                    .to_string();
                let to = to.trim_matches(['<', '>']).to_string();
                (to.clone(), (return_paths[&to].clone(), id))
            })
            .collect()
    }

    fn ingest(ws: &Workspace, args: &[&str], stdin: Option<&str>) -> String {
        let mut command = ws.command(&[&["bounces", "ingest"], args].concat());
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
        drop(input);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
        stdout(&out)
    }

    #[test]
    fn later_bounces_and_complaints_shed_the_addresses_they_name_and_forgeries_change_nothing() {
        let relay = Relay::start(Script::default());
        let ws = Workspace::new(&format!(
            "{}\n[bounces]\naddress = \"bounces@gazette.example.org\"\nsoft_limit = 2\n",
            base_config(&smtp_mail(relay.port, ""))
        ));
        ws.subscribers(5);
        ws.write("articles/one.txt", &article_txt("Tide tables change", "harbour"));
        let out = ws.herald(&["digest", "daily"]);
        assert!(out.status.success(), "{}", show(&out));
        let first = sent(&relay);
        assert_eq!(first.len(), 5, "{first:?}");
        for (to, (return_path, _)) in &first {
            assert!(
                return_path.starts_with("bounces+") && return_path.ends_with("@gazette.example.org"),
                "{to}: the envelope sender is a VERP address: {return_path}"
            );
        }
        let paths: std::collections::HashSet<_> = first.values().map(|(p, _)| p).collect();
        assert_eq!(paths.len(), 5, "one return path per delivery");

        // A hard bounce to reader1's VERP address, naming a forwarding address.
        let (verp1, _) = &first["reader1@example.org"];
        ws.write(
            "in/hard.eml",
            &dsn(
                "h1",
                verp1,
                "old.box@forward.example.net",
                "5.1.1",
                "550 5.1.1 user unknown",
                "x@y",
            ),
        );
        // A soft bounce found by the returned Message-ID alone (no VERP).
        let (_, id0) = &first["reader0@example.org"];
        ws.write(
            "in/soft.eml",
            &dsn(
                "s1",
                "bounces@gazette.example.org",
                "reader0@example.org",
                "4.2.2",
                "452 4.2.2 mailbox full",
                id0,
            ),
        );
        // A forged token for reader2, and a report about an address never sent to.
        let forged = verp1.replacen(&verp1[8..verp1.find('.').unwrap()], "999", 1);
        ws.write(
            "in/forged.eml",
            &dsn(
                "f1",
                &forged,
                "stranger@example.net",
                "5.1.1",
                "550 5.1.1 no such user",
                "x@y",
            ),
        );
        let text = ingest(&ws, &["in"], None);
        assert!(
            text.contains("3 report(s): 2 hard, 1 soft, 0 complaint(s); 1 suppressed, 0 unsubscribed, 1 unmatched"),
            "{text}"
        );

        // A complaint on standard input, tied by its Message-ID.
        let (_, id3) = &first["reader3@example.org"];
        let text = ingest(&ws, &["-"], Some(&arf("c1", "reader3@example.org", id3)));
        assert!(text.contains("1 complaint(s); 0 suppressed, 1 unsubscribed"), "{text}");

        // Read again: nothing counts twice.
        let text = ingest(&ws, &["in"], None);
        assert!(text.contains("3 report(s): 0 hard, 0 soft"), "{text}");
        assert!(text.contains("3 seen before"), "{text}");

        let list = stdout(&ws.herald(&["suppressions", "list"]));
        assert!(
            list.contains("reader1@example.org") && list.contains("hard bounce (5.1.1)"),
            "{list}"
        );
        assert!(
            list.contains("reader3@example.org") && list.contains("complaint"),
            "{list}"
        );
        assert!(!list.contains("reader0@") && !list.contains("stranger@"), "{list}");
        let consents = ws.on_store(async |store| {
            let reader3 = store
                .subscriber_by_address("readers", "reader3@example.org")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(reader3.status, herald::store::SubscriberStatus::Unsubscribed);
            store.consents(reader3.id).await.unwrap()
        });
        assert!(consents.iter().any(|c| c.action == "complaint"), "{consents:?}");

        let ledger = stdout(&ws.herald(&["bounces"]));
        assert!(ledger.starts_with("bounces: 1 complaint, 2 hard, 1 soft"), "{ledger}");
        assert!(
            ledger.contains("stranger@example.net") && ledger.contains("unmatched"),
            "{ledger}"
        );
        let complaints = stdout(&ws.herald(&["bounces", "--kind", "complaint"]));
        assert_eq!(complaints.lines().count(), 2, "{complaints}");
        let deliveries = stdout(&ws.herald(&["deliveries"]));
        assert!(
            deliveries.contains(
                "edition #1 (job daily): 1 hard, 1 soft bounce(s), 1 complaint(s) of 5 sent (complaint rate 20.00%)"
            ),
            "{deliveries}"
        );
        let stats = ws.on_store(async |store| store.stats(0, 300).await.unwrap());
        let value = |samples: &[herald::store::Sample], labels: &[&str]| {
            samples
                .iter()
                .find(|s| s.labels.iter().map(|(_, v)| v.as_str()).eq(labels.iter().copied()))
                .map(|s| s.value)
        };
        assert_eq!(value(&stats.bounces_by_kind, &["hard", "yes"]), Some(1.0));
        assert_eq!(value(&stats.bounces_by_kind, &["hard", "no"]), Some(1.0));
        assert_eq!(value(&stats.complaint_rate_by_edition, &["daily", "1"]), Some(0.2));
        assert_eq!(value(&stats.suppressions_by_reason, &["complaint"]), Some(1.0));
        assert_eq!(value(&stats.suppressions_by_reason, &["hard_bounce"]), Some(1.0));

        // The next edition skips the suppressed; a second soft bounce in a
        // row for reader0 reaches soft_limit = 2.
        ws.write("articles/two.txt", &article_txt("Ferry timetable", "ferry"));
        let out = ws.herald(&["digest", "daily"]);
        assert!(out.status.success(), "{}", show(&out));
        let all = relay.kept();
        let second: Vec<_> = all[5..]
            .iter()
            .map(|(to, _)| to.trim_matches(['<', '>']).to_string())
            .collect();
        assert_eq!(second.len(), 3, "{second:?}");
        assert!(!second.contains(&"reader1@example.org".to_string()), "{second:?}");
        assert!(!second.contains(&"reader3@example.org".to_string()), "{second:?}");
        let now = sent(&relay);
        let (verp0, _) = &now["reader0@example.org"];
        let text = ingest(
            &ws,
            &["-"],
            Some(&dsn(
                "s2",
                verp0,
                "reader0@example.org",
                "4.2.2",
                "452 4.2.2 over quota",
                "x@y",
            )),
        );
        assert!(text.contains("1 soft, 0 complaint(s); 1 suppressed"), "{text}");
        let list = stdout(&ws.herald(&["suppressions", "list"]));
        assert!(
            list.contains("reader0@example.org") && list.contains("2 soft bounces in a row"),
            "{list}"
        );
    }

    #[test]
    fn a_real_postfix_relay_reports_refused_recipients_and_the_next_edition_skips_them() {
        // The mailbox server behind the relay: reader1 and reader3 are gone.
        let mailbox_server = Relay::start(Script {
            rcpt: std::sync::Arc::new(|_, to| {
                if to.starts_with("reader1@") || to.starts_with("reader3@") {
                    say(&format!("550 5.1.1 <{to}>: Recipient address rejected: User unknown"))
                } else {
                    say("250 2.1.5 Ok")
                }
            }),
            ..Script::default()
        });
        let postfix = Postfix::start(mailbox_server.port).unwrap_or_else(|why| panic!("{why}"));
        let ws = Workspace::new(&format!(
            "{}\n[bounces]\naddress = \"bounces@{BOUNCE_DOMAIN}\"\n",
            base_config(&smtp_mail(postfix.port, ""))
        ));
        ws.subscribers(5);
        ws.write("articles/one.txt", &article_txt("Tide tables change", "harbour"));
        let out = ws.herald(&["digest", "daily"]);
        assert!(out.status.success(), "{}", show(&out));
        let sent = stdout(&ws.herald(&["deliveries"]));
        assert_eq!(state_count(&sent, "sent").0, 5, "the relay took all five: {sent}");

        // Postfix relays, meets the refusals, and mails its own DSNs to the VERP addresses.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while postfix.delivered() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "Postfix delivered {} DSN(s)",
                postfix.delivered()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let maildir = postfix.maildir();
        let text = ingest(&ws, &[maildir.to_str().unwrap()], None);
        assert!(
            text.contains("2 report(s): 2 hard, 0 soft, 0 complaint(s); 2 suppressed, 0 unsubscribed, 0 unmatched"),
            "{text}"
        );
        let ledger = stdout(&ws.herald(&["bounces"]));
        assert_eq!(
            ledger.matches(" verp ").count(),
            2,
            "both tied by their VERP token: {ledger}"
        );
        assert!(
            ledger.contains("reader1@example.org") && ledger.contains("reader3@example.org"),
            "{ledger}"
        );

        ws.write("articles/two.txt", &article_txt("Ferry timetable", "ferry"));
        let out = ws.herald(&["digest", "daily"]);
        assert!(out.status.success(), "{}", show(&out));
        let deliveries = stdout(&ws.herald(&["deliveries", "--state", "sent", "--limit", "100"]));
        let second: Vec<&str> = deliveries.lines().filter(|l| l.contains("edition 2 ")).collect();
        assert_eq!(second.len(), 3, "{deliveries}");
        assert!(
            !second.iter().any(|l| l.contains("reader1@") || l.contains("reader3@")),
            "{deliveries}"
        );
    }

    /// The DER prefix of a P-256 public key, as SendGrid shows its verification key.
    const P256_SPKI_PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
        0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];

    fn mailgun_body(key: &str, timestamp: i64, token: &str, event: &str, severity: &str, rcpt: &str) -> String {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{timestamp}{token}").as_bytes());
        let sig: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        serde_json::json!({
            "signature": {"timestamp": timestamp.to_string(), "token": token, "signature": sig},
            "event-data": {"id": format!("ev-{token}"), "event": event, "severity": severity, "recipient": rcpt,
                "delivery-status": {"code": 550, "enhanced-code": "5.1.1", "message": "5.1.1 no such mailbox"}}
        })
        .to_string()
    }

    #[tokio::test]
    async fn provider_webhooks_act_only_on_signed_fresh_events_and_refuse_replays() {
        use base64::Engine as _;
        use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
        let b64 = base64::engine::general_purpose::STANDARD;
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let verification_key = b64.encode([&P256_SPKI_PREFIX[..], pair.public_key().as_ref()].concat());

        let ws = Workspace::new(&base_config(&crate::support::file_mail()));
        ws.subscribers(3);
        ws.write("articles/one.txt", &article_txt("Tide tables change", "harbour"));
        let out = ws.herald(&["digest", "daily"]);
        assert!(out.status.success(), "{}", show(&out));
        let key = "mailgun-signing-key-0123";
        let app = crate::support::settings_with(
            &ws,
            &(crate::support::job_toml("daily", "0 7 * * *")
                + &format!(
                    "\n[bounces]\nmailgun_signing_key = \"{key}\"\npostmark_username = \"herald\"\n\
                     postmark_password = \"postmark-hook-pass\"\nsendgrid_verification_key = \"{verification_key}\"\n"
                )),
        );
        let site = crate::web::start_with(app).await;
        let client = crate::web::client();
        let hook = |provider: &str| format!("{}/webhooks/{provider}", site.base);
        let now = chrono::Utc::now().timestamp();
        let suppressed = async |email: &str| site.store.is_suppressed(email).await.unwrap();

        // Mailgun: signed and fresh acts; the same event again, a forged
        // signature, or a stale timestamp is refused and changes nothing.
        let body = mailgun_body(key, now, "tok1", "failed", "permanent", "reader0@example.org");
        let post = |url: String, body: String| client.post(url).header("content-type", "application/json").body(body);
        let res = post(hook("mailgun"), body.clone()).send().await.unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        assert!(suppressed("reader0@example.org").await);
        assert_eq!(
            post(hook("mailgun"), body).send().await.unwrap().status(),
            409,
            "a replay"
        );
        let forged = mailgun_body(
            "not-the-key-at-all",
            now,
            "tok2",
            "failed",
            "permanent",
            "reader1@example.org",
        );
        assert_eq!(post(hook("mailgun"), forged).send().await.unwrap().status(), 401);
        let stale = mailgun_body(key, now - 3600, "tok3", "failed", "permanent", "reader1@example.org");
        assert_eq!(post(hook("mailgun"), stale).send().await.unwrap().status(), 401);
        assert!(
            !suppressed("reader1@example.org").await,
            "refused requests changed nothing"
        );

        // Postmark: basic auth, a spam complaint unsubscribes.
        let complaint =
            r#"{"RecordType":"SpamComplaint","ID":7001,"Type":"SpamComplaint","Email":"reader1@example.org"}"#;
        let res = post(hook("postmark"), complaint.into()).send().await.unwrap();
        assert_eq!(res.status(), 401, "no credentials");
        let res = post(hook("postmark"), complaint.into())
            .basic_auth("herald", Some("postmark-hook-pass"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let reader1 = site
            .store
            .subscriber_by_address("readers", "reader1@example.org")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reader1.status, herald::store::SubscriberStatus::Unsubscribed);

        // SendGrid: the ECDSA signature over timestamp and body.
        let events = r#"[{"email":"reader2@example.org","event":"bounce","type":"bounce","status":"5.1.1","reason":"550 5.1.1 unknown user","sg_event_id":"sg-1","smtp-id":"<x@y>"}]"#;
        let timestamp = now.to_string();
        let signature = b64.encode(
            pair.sign(&rng, format!("{timestamp}{events}").as_bytes())
                .unwrap()
                .as_ref(),
        );
        let signed = |body: &str| {
            post(hook("sendgrid"), body.to_string())
                .header("X-Twilio-Email-Event-Webhook-Signature", signature.clone())
                .header("X-Twilio-Email-Event-Webhook-Timestamp", timestamp.clone())
        };
        let tampered = events.replace("reader2", "reader9");
        assert_eq!(signed(&tampered).send().await.unwrap().status(), 401);
        assert!(!suppressed("reader2@example.org").await);
        assert_eq!(signed(events).send().await.unwrap().status(), 200);
        assert!(suppressed("reader2@example.org").await);

        // A provider with no credentials configured is not served.
        assert_eq!(post(hook("ses"), "{}".into()).send().await.unwrap().status(), 404);
        // A body over 4 MiB is refused unread.
        let huge = format!("[{}]", " ".repeat(4 * 1024 * 1024 + 1));
        assert_eq!(signed(&huge).send().await.unwrap().status(), 413);
        let rows = site.store.bounces(None, 10).await.unwrap();
        let sources: std::collections::BTreeSet<_> = rows.iter().map(|r| r.source.as_str()).collect();
        assert_eq!(
            sources.into_iter().collect::<Vec<_>>(),
            ["webhook:mailgun", "webhook:postmark", "webhook:sendgrid"]
        );
        assert!(
            rows.iter().all(|r| r.matched_by == "address"),
            "matched by the address sent to"
        );
    }

    /// SNS's canonical string of an envelope's fields, written here apart
    /// from Herald's: `name\nvalue\n` for each field SNS signs, in order.
    fn sns_canonical(fields: &serde_json::Value) -> String {
        let order: &[&str] = if fields["Type"] == "Notification" {
            &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        } else {
            &[
                "Message",
                "MessageId",
                "SubscribeURL",
                "Timestamp",
                "Token",
                "TopicArn",
                "Type",
            ]
        };
        order
            .iter()
            .filter_map(|name| fields[*name].as_str().map(|v| format!("{name}\n{v}\n")))
            .collect()
    }

    /// An SNS envelope signed by `openssl` with `key` (SHA-1 for version 1,
    /// SHA-256 for 2), as SNS signs them.
    fn sns_signed(dir: &std::path::Path, mut fields: serde_json::Value, version: u8) -> String {
        use base64::Engine as _;
        let text = dir.join("canonical.txt");
        std::fs::write(&text, sns_canonical(&fields)).unwrap();
        let digest = if version == 1 { "-sha1" } else { "-sha256" };
        let out = std::process::Command::new("openssl")
            .args(["dgst", digest, "-sign"])
            .arg(dir.join("key.pem"))
            .arg(&text)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        fields["SignatureVersion"] = version.to_string().into();
        fields["Signature"] = base64::engine::general_purpose::STANDARD.encode(&out.stdout).into();
        fields.to_string()
    }

    #[tokio::test]
    async fn amazon_ses_reports_arrive_through_signed_sns_messages_of_the_configured_topic_only() {
        use wiremock::matchers::{method, path, query_param};
        use wiremock::{Mock, MockServer, ResponseTemplate};

        let keys = tempfile::tempdir().unwrap();
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=sns.test",
            ])
            .arg("-keyout")
            .arg(keys.path().join("key.pem"))
            .arg("-out")
            .arg(keys.path().join("cert.pem"))
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let sns = MockServer::start().await;
        // The certificate is fetched once, then kept; the subscription confirmed once.
        Mock::given(method("GET"))
            .and(path("/sns/SimpleNotificationService-test.pem"))
            .respond_with(
                ResponseTemplate::new(200).set_body_bytes(std::fs::read(keys.path().join("cert.pem")).unwrap()),
            )
            .expect(1)
            .mount(&sns)
            .await;
        Mock::given(method("GET"))
            .and(path("/sns/"))
            .and(query_param("Action", "ConfirmSubscription"))
            .and(query_param("Token", "confirm-token-1"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<ConfirmSubscriptionResponse/>"))
            .expect(1)
            .mount(&sns)
            .await;

        let ws = Workspace::new(&base_config(&crate::support::file_mail()));
        ws.subscribers(3);
        ws.write("articles/one.txt", &article_txt("Tide tables change", "harbour"));
        let out = ws.herald(&["digest", "daily"]);
        assert!(out.status.success(), "{}", show(&out));
        let topic = "arn:aws:sns:eu-west-1:123456789012:herald-bounces";
        let app = crate::support::settings_with(
            &ws,
            &(crate::support::job_toml("daily", "0 7 * * *")
                + &format!(
                    "\n[bounces]\nsns_topic_arns = [\"{topic}\"]\nsns_certificate_base = \"{}/sns/\"\n",
                    sns.uri()
                )),
        );
        let site = crate::web::start_with(app).await;
        let client = crate::web::client();
        let hook = format!("{}/webhooks/ses", site.base);
        let post = |body: String| {
            client
                .post(&hook)
                .header("content-type", "text/plain; charset=UTF-8")
                .body(body)
        };
        let corpus = |file: &str| std::fs::read_to_string(super::corpus().join("events").join(file)).unwrap();
        let cert_url = format!("{}/sns/SimpleNotificationService-test.pem", sns.uri());
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let notification = |id: &str, message: &str, at: &str| {
            serde_json::json!({
                "Type": "Notification", "MessageId": id, "TopicArn": topic, "Message": message,
                "Timestamp": at, "SigningCertURL": cert_url,
                "UnsubscribeURL": format!("{}/sns/?Action=Unsubscribe", sns.uri()),
            })
        };
        let subscribed = async |email: &str| {
            site.store
                .subscriber_by_address("readers", email)
                .await
                .unwrap()
                .unwrap()
                .status
                == herald::store::SubscriberStatus::Active
        };

        // The subscription is confirmed by fetching its SubscribeURL.
        let confirmation = serde_json::json!({
            "Type": "SubscriptionConfirmation", "MessageId": "sub-1", "Token": "confirm-token-1", "TopicArn": topic,
            "Message": "You have chosen to subscribe to the topic. To confirm, visit the SubscribeURL.",
            "SubscribeURL": format!("{}/sns/?Action=ConfirmSubscription&TopicArn={topic}&Token=confirm-token-1", sns.uri()),
            "Timestamp": now, "SigningCertURL": cert_url,
        });
        let res = post(sns_signed(keys.path(), confirmation, 1)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

        // A hard bounce (signature version 1) suppresses; sent again it is a replay.
        let bounce = sns_signed(
            keys.path(),
            notification("n-1", &corpus("ses_bounce_permanent.json"), &now),
            1,
        );
        let res = post(bounce.clone()).send().await.unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        assert!(site.store.is_suppressed("reader0@example.org").await.unwrap());
        assert_eq!(post(bounce).send().await.unwrap().status(), 409, "a replay");

        // Refused, changing nothing: a message altered after signing, another
        // topic, a certificate from elsewhere, a stale timestamp.
        let complaint = corpus("ses_complaint_abuse.json");
        let signed: serde_json::Value =
            serde_json::from_str(&sns_signed(keys.path(), notification("n-2", "{}", &now), 2)).unwrap();
        let mut altered = signed.clone();
        altered["Message"] = complaint.clone().into();
        assert_eq!(post(altered.to_string()).send().await.unwrap().status(), 401);
        let mut other_topic = notification("n-3", &complaint, &now);
        other_topic["TopicArn"] = "arn:aws:sns:eu-west-1:999999999999:someone-elses".into();
        assert_eq!(
            post(sns_signed(keys.path(), other_topic, 2))
                .send()
                .await
                .unwrap()
                .status(),
            403
        );
        let mut elsewhere = notification("n-4", &complaint, &now);
        elsewhere["SigningCertURL"] = "http://127.0.0.1:9/SimpleNotificationService-test.pem".into();
        assert_eq!(
            post(sns_signed(keys.path(), elsewhere, 2))
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
        let old =
            (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let stale = sns_signed(keys.path(), notification("n-5", &complaint, &old), 2);
        assert_eq!(post(stale).send().await.unwrap().status(), 401);
        assert!(
            subscribed("reader1@example.org").await,
            "refused requests changed nothing"
        );

        // A complaint (signature version 2) unsubscribes; a transient bounce is counted only.
        let res = post(sns_signed(keys.path(), notification("n-6", &complaint, &now), 2))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        assert!(!subscribed("reader1@example.org").await);
        let transient = corpus("ses_bounce_transient_mailbox_full.json");
        let res = post(sns_signed(keys.path(), notification("n-7", &transient, &now), 2))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(subscribed("reader2@example.org").await);
        assert!(!site.store.is_suppressed("reader2@example.org").await.unwrap());

        let rows = site.store.bounces(None, 10).await.unwrap();
        let mut seen: Vec<(String, String)> = rows
            .iter()
            .map(|r| (r.kind.as_str().to_string(), r.source.clone()))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("complaint", "webhook:ses"),
                ("hard", "webhook:ses"),
                ("soft", "webhook:ses")
            ]
            .map(|(k, s)| (k.to_string(), s.to_string()))
        );
        drop(site);
        sns.verify().await;
    }

    #[test]
    fn reports_in_an_imap_mailbox_are_read_recorded_and_moved_once() {
        use crate::support::dovecot::Dovecot;
        let relay = Relay::start(Script::default());
        let dovecot = Dovecot::start();
        let mail = smtp_mail(relay.port, "");
        let ws = Workspace::new(&format!(
            "{}\n[bounces]\naddress = \"bounces@gazette.example.org\"\nmax_message_kb = 1024\n{}",
            base_config(&mail),
            dovecot.config("poll_seconds = 1\n")
        ));
        ws.subscribers(4);
        ws.write("articles/one.txt", &article_txt("Tide tables change", "harbour"));
        let out = ws.herald(&["digest", "daily"]);
        assert!(out.status.success(), "{}", show(&out));
        let first = sent(&relay);
        let (verp0, _) = &first["reader0@example.org"];
        let (_, id1) = &first["reader1@example.org"];
        dovecot.deliver(
            "1.hard",
            &dsn(
                "i1",
                verp0,
                "reader0@example.org",
                "5.1.1",
                "550 5.1.1 no such user",
                "unrelated@x",
            ),
        );
        dovecot.deliver("2.complaint", &arf("i2", "reader1@example.org", id1));
        dovecot.deliver(
            "3.auto",
            "From: reader3@example.org\r\nTo: bounces@gazette.example.org\r\nSubject: Out of office\r\n\
             Auto-Submitted: auto-replied\r\nMessage-ID: <ooo@example.org>\r\n\r\nAway until Monday.\r\n",
        );
        // A report over bounces.max_message_kb is skipped unread, and moved all the same.
        dovecot.deliver(
            "4.large",
            &format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(1100 * 1024)),
        );

        // A wrong password: a clear error, nothing read, nothing moved.
        let wrong = ws
            .command(&["bounces", "poll"])
            .env("HERALD_BOUNCES__IMAP__PASSWORD", "not-the-password")
            .output()
            .unwrap();
        assert!(!wrong.status.success());
        assert!(
            show(&wrong).contains("refused the login of \"bounces\""),
            "{}",
            show(&wrong)
        );
        assert!(
            !show(&wrong).contains("not-the-password"),
            "the password is never shown"
        );
        assert_eq!(dovecot.count(""), 4);

        let out = ws.herald(&["bounces", "poll"]);
        assert!(out.status.success(), "{}\n{}", show(&out), dovecot.log());
        let said = stdout(&out);
        assert!(
            said.contains("4 report(s): 1 hard, 0 soft, 1 complaint(s); 1 suppressed, 1 unsubscribed"),
            "{said}"
        );
        assert!(
            said.contains("1 auto-repl(ies)") && said.contains("1 skipped"),
            "{said}"
        );
        assert!(said.contains("4 message(s) moved to Processed"), "{said}");
        assert_eq!((dovecot.count(""), dovecot.count("Processed")), (0, 4));
        let suppressed = |email: &'static str| ws.on_store(async |store| store.is_suppressed(email).await.unwrap());
        let unsubscribed = |email: &'static str| {
            ws.on_store(async |store| {
                store
                    .subscriber_by_address("readers", email)
                    .await
                    .unwrap()
                    .unwrap()
                    .status
                    == herald::store::SubscriberStatus::Unsubscribed
            })
        };
        assert!(suppressed("reader0@example.org"));
        assert!(unsubscribed("reader1@example.org"));
        assert!(!suppressed("reader3@example.org"), "an auto-reply changes nothing");
        let listed = stdout(&ws.herald(&["bounces"]));
        assert!(listed.contains("via imap"), "{listed}");

        // An empty mailbox polls to nothing; the daemon polls on its own.
        let out = ws.herald(&["bounces", "poll"]);
        assert!(stdout(&out).contains("0 report(s)"), "{}", show(&out));
        let (_, id2) = &first["reader2@example.org"];
        dovecot.deliver("5.complaint", &arf("i5", "reader2@example.org", id2));
        let daemon = crate::support::KillOnDrop(
            ws.command(&["run"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while dovecot.count("Processed") < 5 {
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon did not poll the mailbox: {}",
                dovecot.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        drop(daemon);
        assert!(unsubscribed("reader2@example.org"));
    }

    #[test]
    fn hostile_reports_are_skipped_or_read_within_bounds_and_strangers_change_nobody() {
        use base64::Engine as _;
        let ws = Workspace::new(&base_config(&crate::support::file_mail()));
        ws.subscribers(2);
        ws.write("articles/one.txt", &article_txt("Tide tables change", "harbour"));
        let out = ws.herald(&["digest", "daily"]);
        assert!(out.status.success(), "{}", show(&out));
        let ingest_stdin = |input: &[u8]| {
            let mut child = ws
                .command(&["bounces", "ingest", "-"])
                .env("HERALD_LOG", "info")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut pipe = child.stdin.take().unwrap();
            // The whole input is taken, even when it is skipped: no broken pipe.
            pipe.write_all(input).unwrap();
            drop(pipe);
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", show(&out));
            out
        };

        // 50 MB on a pipe: skipped unread past the cap, and said so.
        let mut huge = b"From: MAILER-DAEMON@relay.example.net\r\nSubject: huge\r\n\r\n".to_vec();
        huge.resize(50 * 1024 * 1024, b'A');
        let out = ingest_stdin(&huge);
        assert!(stdout(&out).contains("1 skipped"), "{}", show(&out));
        assert!(
            show(&out).contains("larger than bounces.max_message_kb"),
            "{}",
            show(&out)
        );

        // A report carrying a 4 MB "zip bomb" (never unpacked) and one nested
        // 3,000 multiparts deep: read without a panic, the first one acted on.
        let bomb = base64::engine::general_purpose::STANDARD
            .encode([b"PK\x03\x04".as_slice(), &[0u8; 3 * 1024 * 1024]].concat());
        let dsn_part = dsn(
            "z1",
            "bounces@gazette.example.org",
            "reader0@example.org",
            "5.1.1",
            "550 5.1.1 gone",
            "x@y",
        );
        let with_bomb = dsn_part.replace(
            "--BB--\r\n",
            &format!("--BB\r\nContent-Type: application/zip; name=bomb.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n{bomb}\r\n--BB--\r\n"),
        );
        let out = ingest_stdin(with_bomb.as_bytes());
        assert!(stdout(&out).contains("1 report(s): 1 hard"), "{}", show(&out));
        let mut nested =
            String::from("From: MAILER-DAEMON@relay.example.net\r\nSubject: deep\r\nMIME-Version: 1.0\r\n");
        for depth in 0..3000 {
            nested.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{depth}\"\r\n\r\n--b{depth}\r\n"
            ));
        }
        nested.push_str("Content-Type: text/plain\r\n\r\n550 5.1.1 <reader1@example.org>: no such user\r\n");
        let out = ingest_stdin(nested.as_bytes());
        // Past the MIME parser's depth limit it is not read as a report: said, not acted on.
        assert!(stdout(&out).contains("1 unrecognised"), "{}", show(&out));
        assert!(
            show(&out).contains("not a bounce or complaint Herald can read"),
            "{}",
            show(&out)
        );

        // A report about someone Herald never mailed, sent to another domain's
        // bounce address: kept as unmatched, nobody changed.
        let stranger = dsn(
            "s1",
            "bounces@other.example",
            "stranger@elsewhere.example",
            "5.1.1",
            "550 5.1.1 gone",
            "a@b",
        );
        let out = ingest_stdin(stranger.as_bytes());
        assert!(
            stdout(&out).contains("1 hard, 0 soft, 0 complaint(s); 0 suppressed, 0 unsubscribed, 1 unmatched"),
            "{}",
            show(&out)
        );
        let suppressed = ws.on_store(async |store| {
            (
                store.is_suppressed("reader0@example.org").await.unwrap(),
                store.is_suppressed("reader1@example.org").await.unwrap(),
                store.is_suppressed("stranger@elsewhere.example").await.unwrap(),
            )
        });
        assert!(suppressed.0, "the report beside the attachment was read");
        assert!(
            !suppressed.1,
            "a report nested past the parser's depth limit changes nobody"
        );
        assert!(!suppressed.2, "a stranger is never suppressed through Herald's list");
    }
}

//! Sign-up with double opt-in, confirmation, preferences, CSRF, the per-IP
//! rate limit and `/metrics`, over HTTP against the in-process web interface.

use herald::store::Consent;
use herald::token::Purpose;

use crate::support::{Workspace, article_txt, base_config, file_mail, settings_with, show};
use crate::web::{Site, client, one_click, start_with, status_of, subscribe};

/// Two lists, the first offering a weekly (default) and a daily digest.
const TWO_LISTS: &str = r#"
[[lists]]
name = "offers"
title = "Gazette Offers"

[[jobs]]
name = "weekly"
kind = "digest"
list = "readers"
schedule = "0 7 * * 1"
timezone = "UTC"

[[jobs]]
name = "daily"
kind = "digest"
list = "readers"
schedule = "0 7 * * *"
timezone = "UTC"

[[jobs]]
name = "offers"
kind = "digest"
list = "offers"
schedule = "0 9 * * 5"
timezone = "UTC"
"#;

async fn site(ws: &Workspace, extra: &str) -> Site {
    start_with(settings_with(ws, &format!("{TWO_LISTS}{extra}"))).await
}

/// Undoes the HTML escaping Handlebars applies to attribute values.
fn unescape(s: &str) -> String {
    s.replace("&#x3D;", "=")
        .replace("&#x2F;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn attribute_after<'a>(html: &'a str, marker: &str, attribute: &str) -> Option<&'a str> {
    let at = html.find(marker)?;
    let rest = &html[at..];
    let start = rest.find(&format!("{attribute}=\""))? + attribute.len() + 2;
    Some(&rest[start..start + rest[start..].find('"')?])
}

/// A page's form: its action, its CSRF field and the cookie the page set (if any).
struct PageForm {
    action: String,
    csrf: String,
    cookie: Option<String>,
    html: String,
}

async fn open_form(url: &str, cookie: Option<&str>) -> PageForm {
    let mut request = client().get(url);
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    let cookie = response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
    let html = response.text().await.unwrap();
    PageForm {
        action: unescape(attribute_after(&html, "<form method=\"post\"", "action").expect("a form")),
        csrf: unescape(attribute_after(&html, "name=\"csrf\"", "value").expect("a CSRF field")),
        cookie,
        html,
    }
}

async fn post_form(site: &Site, action: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> reqwest::Response {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut request = client()
        .post(format!("{}{action}", site.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("User-Agent", "HeraldTest/1.0")
        .body(body);
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    request.send().await.unwrap()
}

fn confirmation_link(ws: &Workspace, email: &str) -> url::Url {
    let (_, raw) = ws
        .outbox()
        .into_iter()
        .find(|(p, _)| p.to_string_lossy().contains(&format!("confirm-readers-{email}")))
        .unwrap_or_else(|| panic!("a confirmation mail to {email}"));
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let text = message.body_text(0).unwrap().to_string();
    let line = text
        .lines()
        .find(|l| l.starts_with("https://gazette.example.org/confirm?token="))
        .unwrap_or_else(|| panic!("a confirm link in:\n{text}"));
    url::Url::parse(line.trim()).unwrap()
}

/// The local URL for a link in a mail (which names the public site).
fn local(site: &Site, link: &url::Url) -> String {
    format!("{}{}?{}", site.base, link.path(), link.query().unwrap_or_default())
}

async fn sign_up(site: &Site, email: &str, cadence: &str) -> reqwest::Response {
    let form = open_form(&format!("{}/subscribe/readers", site.base), None).await;
    post_form(
        site,
        &form.action,
        form.cookie.as_deref(),
        &[
            ("csrf", &form.csrf),
            ("email", email),
            ("name", "Ana"),
            ("cadence", cadence),
        ],
    )
    .await
}

async fn consents(site: &Site, email: &str) -> Vec<Consent> {
    let row = site
        .store
        .subscriber_by_address("readers", email)
        .await
        .unwrap()
        .unwrap();
    site.store.consents(row.id).await.unwrap()
}

#[tokio::test]
async fn signing_up_mails_a_link_whose_page_confirms_only_with_its_button() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = site(&ws, "").await;

    let form = open_form(&format!("{}/subscribe/readers", site.base), None).await;
    assert!(form.html.contains("Subscribe to Gazette Daily"), "{}", form.html);
    assert!(
        form.html.contains("value=\"weekly\" checked") && form.html.contains("value=\"daily\""),
        "the list offers its two cadences, the default chosen: {}",
        form.html
    );
    let cookie = form.cookie.clone().expect("the form page sets the CSRF cookie");
    assert!(cookie.starts_with("herald_csrf="));

    let response = post_form(
        &site,
        &form.action,
        Some(&cookie),
        &[
            ("csrf", &form.csrf),
            ("email", "ana@example.org"),
            ("name", "Ana"),
            ("cadence", "daily"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Check your inbox"));
    assert_eq!(status_of(&site, "ana@example.org").await, "pending");

    let link = confirmation_link(&ws, "ana@example.org");
    // Mail scanners follow links: the GET shows a button and changes nothing.
    for _ in 0..2 {
        let page = open_form(&local(&site, &link), Some(&cookie)).await;
        assert!(page.html.contains("Confirm your subscription"), "{}", page.html);
    }
    assert_eq!(status_of(&site, "ana@example.org").await, "pending");

    let page = open_form(&local(&site, &link), Some(&cookie)).await;
    let response = post_form(&site, &page.action, Some(&cookie), &[("csrf", &page.csrf)]).await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("You are subscribed"), "{html}");
    assert_eq!(status_of(&site, "ana@example.org").await, "active");
    let row = site
        .store
        .subscriber_by_address("readers", "ana@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.cadence, "daily");
    assert_eq!(row.name.as_deref(), Some("Ana"));

    let record = consents(&site, "ana@example.org").await;
    let actions: Vec<&str> = record.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(actions, ["signup", "confirm"]);
    for c in &record {
        assert_eq!(c.ip, "127.0.0.1");
        assert_eq!(c.user_agent, "HeraldTest/1.0");
        assert_eq!(c.wording_version.len(), 12);
        assert!(c.wording.contains("Gazette Daily"), "{}", c.wording);
    }
    assert_eq!(record[0].page, "/subscribe/readers");
    assert_eq!(record[1].page, "/confirm");

    // The operator sees the record.
    let out = ws.herald(&["subscribers", "show", "ana@example.org", "--list", "readers"]);
    assert!(out.status.success(), "{}", show(&out));
    let shown = crate::support::stdout(&out);
    for expected in [
        "ana@example.org on readers: active",
        "cadence: daily",
        "signup       page /subscribe/readers ip 127.0.0.1 agent \"HeraldTest/1.0\"",
        "confirm      page /confirm ip 127.0.0.1",
        &format!("wording {}", record[0].wording_version),
    ] {
        assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
    }

    // Confirming again changes nothing and says so.
    let again = post_form(&site, &page.action, Some(&cookie), &[("csrf", &page.csrf)]).await;
    assert!(again.text().await.unwrap().contains("You are subscribed"));
    assert_eq!(consents(&site, "ana@example.org").await.len(), 2);
}

#[tokio::test]
async fn a_form_body_over_64_kib_is_refused_unread_and_changes_nothing() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = site(&ws, "").await;
    let form = open_form(&format!("{}/subscribe/readers", site.base), None).await;
    let cookie = form.cookie.clone().unwrap();
    // A valid form with a name field padded past the cap.
    let padding = "x".repeat(70 * 1024);
    let fields = [
        ("csrf", form.csrf.as_str()),
        ("email", "eve@example.org"),
        ("name", padding.as_str()),
    ];
    let response = post_form(&site, &form.action, Some(&cookie), &fields).await;
    assert_eq!(response.status(), 413);
    assert!(
        site.store
            .subscriber_by_address("readers", "eve@example.org")
            .await
            .unwrap()
            .is_none()
    );
    assert!(ws.outbox().is_empty(), "no confirmation mail was sent");
    // The same form under the cap goes through.
    let fields = [
        ("csrf", form.csrf.as_str()),
        ("email", "eve@example.org"),
        ("name", "Eve"),
    ];
    assert_eq!(
        post_form(&site, &form.action, Some(&cookie), &fields).await.status(),
        200
    );
}

#[tokio::test]
async fn forms_without_a_matching_csrf_field_are_refused() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = site(&ws, "").await;
    let form = open_form(&format!("{}/subscribe/readers", site.base), None).await;
    let cookie = form.cookie.clone().unwrap();
    let other_nonce = format!("herald_csrf={}", "a".repeat(32));
    let cases: [(Option<&str>, &str); 4] = [
        (None, form.csrf.as_str()),               // no cookie (a cross-site post)
        (Some(cookie.as_str()), ""),              // no field
        (Some(other_nonce.as_str()), &form.csrf), // the field signed for someone else's cookie
        (Some(cookie.as_str()), "1.x.y.z"),       // a forged field
    ];
    for (cookie, csrf) in cases {
        let response = post_form(
            &site,
            &form.action,
            cookie,
            &[("csrf", csrf), ("email", "eve@example.org")],
        )
        .await;
        assert_eq!(response.status(), 403, "cookie {cookie:?}, field {csrf:?}");
        assert!(response.text().await.unwrap().contains("This form has expired"));
    }
    assert!(
        site.store
            .subscriber_by_address("readers", "eve@example.org")
            .await
            .unwrap()
            .is_none()
    );
    assert!(ws.outbox().is_empty(), "no confirmation mail was sent");

    // The confirm and preferences forms check it too.
    let token = subscribe(&site, "bo@example.org").await;
    let preferences = format!("/preferences?token={token}");
    let response = post_form(&site, &preferences, None, &[("name", "Mallory")]).await;
    assert_eq!(response.status(), 403);
    let confirm = format!("/confirm?token={}", site.keys.sign(Purpose::Confirm, "whoever"));
    assert_eq!(post_form(&site, &confirm, None, &[]).await.status(), 403);
}

#[tokio::test]
async fn an_invalid_address_gets_the_form_back_and_nothing_is_stored() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = site(&ws, "").await;
    for bad in ["not-an-address", "two words@example.org", "a@localhost", ""] {
        let form = open_form(&format!("{}/subscribe/readers", site.base), None).await;
        let response = post_form(
            &site,
            &form.action,
            form.cookie.as_deref(),
            &[("csrf", &form.csrf), ("email", bad), ("name", "Bo")],
        )
        .await;
        assert_eq!(response.status(), 422, "{bad:?}");
        let html = response.text().await.unwrap();
        assert!(html.contains("does not look like an email address"), "{html}");
        assert!(html.contains("value=\"Bo\""), "what was typed is kept: {html}");
    }
    assert_eq!(site.store.subscriber_count("readers", None).await.unwrap(), 0);
    assert!(ws.outbox().is_empty());
}

#[tokio::test]
async fn signing_up_while_subscribed_says_the_same_and_sends_nothing() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = site(&ws, "").await;
    subscribe(&site, "cy@example.org").await;
    let response = sign_up(&site, "cy@example.org", "weekly").await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Check your inbox"));
    assert!(ws.outbox().is_empty(), "no mail tells a stranger who is subscribed");
    assert_eq!(status_of(&site, "cy@example.org").await, "active");
}

#[tokio::test]
async fn a_resubscribe_voids_the_old_links_and_an_old_confirmation_cannot_bring_anyone_back() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = site(&ws, "").await;
    sign_up(&site, "di@example.org", "weekly").await;
    let first_link = confirmation_link(&ws, "di@example.org");
    let page = open_form(&local(&site, &first_link), None).await;
    post_form(&site, &page.action, page.cookie.as_deref(), &[("csrf", &page.csrf)]).await;
    assert_eq!(status_of(&site, "di@example.org").await, "active");

    let uid = site
        .store
        .subscriber_by_address("readers", "di@example.org")
        .await
        .unwrap()
        .unwrap()
        .uid;
    let old_unsubscribe = site.keys.sign(Purpose::Unsubscribe, &uid);
    let response = one_click(format!("{}/unsubscribe?token={old_unsubscribe}", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(status_of(&site, "di@example.org").await, "unsubscribed");

    // The old confirmation link does not resubscribe.
    let response = client().get(local(&site, &first_link)).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(status_of(&site, "di@example.org").await, "unsubscribed");

    // A new sign-up does (after confirming), and voids every old link.
    for (path, _) in ws.outbox() {
        std::fs::remove_file(path).unwrap();
    }
    sign_up(&site, "di@example.org", "weekly").await;
    let second_link = confirmation_link(&ws, "di@example.org");
    assert_ne!(second_link, first_link);
    let page = open_form(&local(&site, &second_link), None).await;
    post_form(&site, &page.action, page.cookie.as_deref(), &[("csrf", &page.csrf)]).await;
    assert_eq!(status_of(&site, "di@example.org").await, "active");
    for stale in [
        format!("{}/unsubscribe?token={old_unsubscribe}", site.base),
        format!("{}/preferences?token={old_unsubscribe}", site.base),
    ] {
        assert_eq!(client().get(&stale).send().await.unwrap().status(), 400, "{stale}");
    }
    let replay = one_click(format!("{}/unsubscribe?token={old_unsubscribe}", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    assert_eq!(status_of(&site, "di@example.org").await, "active");
}

#[tokio::test]
async fn preferences_change_the_cadence_join_and_leave_lists() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = site(&ws, "").await;
    let token = subscribe(&site, "ed@example.org").await;
    let url = format!("{}/preferences?token={token}", site.base);
    let form = open_form(&url, None).await;
    assert!(
        form.html.contains("Gazette Daily") && form.html.contains("Gazette Offers"),
        "{}",
        form.html
    );
    assert!(
        form.html.contains("name=\"list\" value=\"readers\" checked"),
        "{}",
        form.html
    );
    assert!(
        !form.html.contains("name=\"list\" value=\"offers\" checked"),
        "{}",
        form.html
    );
    assert_eq!(
        status_of(&site, "ed@example.org").await,
        "active",
        "the GET changed nothing"
    );

    let cookie = form.cookie.clone().unwrap();
    let response = post_form(
        &site,
        &form.action,
        Some(&cookie),
        &[
            ("csrf", &form.csrf),
            ("name", "Ed Stone"),
            ("list", "readers"),
            ("cadence.readers", "daily"),
            ("list", "offers"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("Saved."), "{html}");
    assert!(html.contains("name=\"list\" value=\"offers\" checked"), "{html}");
    let readers = site
        .store
        .subscriber_by_address("readers", "ed@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (readers.cadence.as_str(), readers.name.as_deref()),
        ("daily", Some("Ed Stone"))
    );
    let offers = site
        .store
        .subscriber_by_address("offers", "ed@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offers.status.as_str(), "active");
    let joined = site.store.consents(offers.id).await.unwrap();
    assert_eq!(joined[0].action, "join");
    assert_eq!(joined[0].page, "/preferences");
    assert!(joined[0].wording.contains("Gazette Offers"));

    // Untick everything: leave both lists.
    let response = post_form(
        &site,
        &form.action,
        Some(&cookie),
        &[("csrf", &form.csrf), ("name", "Ed Stone")],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(status_of(&site, "ed@example.org").await, "unsubscribed");
    let offers = site
        .store
        .subscriber_by_address("offers", "ed@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offers.status.as_str(), "unsubscribed");
    let actions: Vec<String> = consents(&site, "ed@example.org")
        .await
        .into_iter()
        .map(|c| c.action)
        .collect();
    assert_eq!(actions, ["preferences", "unsubscribe"]);
}

#[tokio::test]
async fn each_cadence_gets_its_own_digest_job() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = site(&ws, "").await;
    for (email, cadence) in [
        ("wk@example.org", "weekly"),
        ("dy@example.org", "daily"),
        ("no@example.org", ""),
    ] {
        subscribe(&site, email).await;
        let row = site
            .store
            .subscriber_by_address("readers", email)
            .await
            .unwrap()
            .unwrap();
        site.store
            .update_preferences(&row.uid, None, cadence, chrono::Utc::now())
            .await
            .unwrap();
    }
    ws.write("articles/bridge.txt", &article_txt("Bridge reopens", "bridge"));
    let recipients = |job: &str| {
        let out = ws.herald(&["digest", job]);
        assert!(out.status.success(), "{}", show(&out));
        let sent: Vec<String> = ws
            .outbox()
            .into_iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        std::fs::remove_dir_all(ws.path().join("outbox")).unwrap();
        sent
    };
    let daily = recipients("daily");
    assert_eq!(daily.len(), 1, "{daily:?}");
    assert!(daily[0].contains("dy@example.org"));
    let weekly = recipients("weekly");
    assert_eq!(
        weekly.len(),
        2,
        "the default job takes those who chose none: {weekly:?}"
    );
    assert!(weekly.iter().any(|f| f.contains("wk@example.org")));
    assert!(weekly.iter().any(|f| f.contains("no@example.org")));
}

#[tokio::test]
async fn the_pages_are_rate_limited_per_client_address() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = site(&ws, "\n[web]\nrate_limit_per_minute = 3\n").await;
    let url = format!("{}/subscribe/readers", site.base);
    for _ in 0..3 {
        assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    }
    let limited = client()
        .get(format!("{}/unsubscribe?token=1.a.b.c", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429, "token endpoints share the address's allowance");
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(limited.text().await.unwrap().contains("Too many requests"));
    let health = client().get(format!("{}/healthz", site.base)).send().await.unwrap();
    assert_eq!(health.status(), 200, "health checks are not limited");
}

#[tokio::test]
async fn metrics_are_not_served_on_the_public_listener_by_default() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = site(&ws, "").await;
    let response = client().get(format!("{}/metrics", site.base)).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let health = client().get(format!("{}/healthz", site.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn metrics_expose_the_store_in_prometheus_text() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = site(&ws, crate::web::METRICS_WEB).await;
    subscribe(&site, "fi@example.org").await;
    subscribe(&site, "gu@example.org").await;
    ws.write("articles/bridge.txt", &article_txt("Bridge reopens", "bridge"));
    let out = ws.herald(&["digest", "weekly"]);
    assert!(out.status.success(), "{}", show(&out));

    // Subscriber counts are not public: the token opens them.
    for refused in [None, Some("Bearer wrong-token-0123456789")] {
        let mut request = client().get(format!("{}/metrics", site.base));
        if let Some(value) = refused {
            request = request.header("Authorization", value);
        }
        assert_eq!(request.send().await.unwrap().status(), 401);
    }
    let response = client()
        .get(format!("{}/metrics", site.base))
        .header("Authorization", "Bearer metrics-token-for-tests-0123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    for line in [
        "# TYPE herald_articles_ingested_total counter",
        "herald_articles_ingested_total{source=\"desk\"} 1",
        "herald_editions_total{job=\"weekly\"} 1",
        "herald_deliveries{job=\"weekly\",state=\"sent\"} 2",
        "herald_subscribers{list=\"readers\",status=\"active\"} 2",
        "# TYPE herald_queue_depth gauge",
        "# TYPE herald_send_rate_per_second gauge",
        "# TYPE herald_posts gauge",
        "# TYPE herald_job_last_success_timestamp_seconds gauge",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("herald_smtp_replies{job=\"weekly\",class=")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("herald_send_rate_per_second ") && l != "herald_send_rate_per_second 0"),
        "{text}"
    );
}

#[test]
fn requests_through_a_proxy_without_trust_forwarded_for_are_warned_about() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let port = crate::support::free_port();
    let log = std::fs::File::create(ws.path().join("serve.log")).unwrap();
    let _serve = crate::support::KillOnDrop(
        ws.command(&["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("HERALD_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    herald::install_crypto();
    let client = reqwest::blocking::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let asked = client
            .get(format!("http://127.0.0.1:{port}/subscribe/readers"))
            .header("X-Forwarded-For", "203.0.113.7")
            .send();
        if asked.is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "herald serve did not answer");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(ws.path().join("serve.log")).unwrap();
        if text.contains("web.trust_forwarded_for is false") {
            assert_eq!(
                text.matches("web.trust_forwarded_for is false").count(),
                1,
                "once: {text}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no warning:\n{text}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Turns on the welcome mail Herald ships in `contrib/`: copies its
/// templates into the workspace's `templates/emails/`.
fn with_welcome(ws: &Workspace) {
    let contrib = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/templates/emails");
    for part in ["welcome.html.hbs", "welcome.txt.hbs"] {
        ws.write(
            &format!("templates/emails/{part}"),
            &std::fs::read_to_string(contrib.join(part)).unwrap(),
        );
    }
}

/// `text` with each `token=...` value (which changes from run to run) replaced.
fn redact_tokens(text: &str) -> String {
    let mut parts = text.split("token=");
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        let end = part.find(|c: char| c.is_whitespace() || c == '&').unwrap_or(part.len());
        out.push_str("token=[token]");
        out.push_str(&part[end..]);
    }
    out
}

/// Signs `email` up for `readers` and presses the button of the mailed link.
/// Returns the confirmation page's form, to press its button again.
async fn sign_up_and_confirm(site: &Site, link_of: impl Fn() -> url::Url, email: &str) -> PageForm {
    let response = sign_up(site, email, "daily").await;
    assert_eq!(response.status(), 200);
    press_confirm(site, &link_of()).await
}

/// Opens a confirmation link and presses its button; the page's form.
async fn press_confirm(site: &Site, link: &url::Url) -> PageForm {
    let page = open_form(&local(site, link), None).await;
    let response = post_form(site, &page.action, page.cookie.as_deref(), &[("csrf", &page.csrf)]).await;
    let html = response.text().await.unwrap();
    assert!(html.contains("You are subscribed"), "{html}");
    page
}

/// The messages in the outbox whose subject starts with "Welcome", once
/// there are `count` of them (or after ten seconds).
async fn welcome_mails(ws: &Workspace, count: usize) -> Vec<Vec<u8>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found: Vec<Vec<u8>> = ws
            .outbox()
            .into_iter()
            .map(|(_, raw)| raw)
            .filter(|raw| {
                let message = mail_parser::MessageParser::default().parse(raw).unwrap();
                message.subject().is_some_and(|s| s.starts_with("Welcome"))
            })
            .collect();
        if found.len() >= count || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_confirmed_reader_is_welcomed_once_through_the_ledger_with_the_latest_edition() {
    let config = base_config(&file_mail()).replace(
        "title = \"Gazette Daily\"\n",
        "title = \"Gazette Daily\"\narchive = true\n",
    );
    let ws = Workspace::new(&config);
    with_welcome(&ws);
    let app = crate::support::settings_from(&ws, &config, &crate::support::job_toml("daily", "0 7 * * *"));
    ws.write("articles/ferry.txt", &article_txt("Ferry returns in spring", "ferry"));
    let out = ws.herald(&["digest", "daily"]);
    assert!(crate::support::stdout(&out).contains("edition #1"), "{}", show(&out));
    let site = start_with(app).await;

    let page = sign_up_and_confirm(&site, || confirmation_link(&ws, "ana@example.org"), "ana@example.org").await;
    let mails = welcome_mails(&ws, 1).await;
    assert_eq!(mails.len(), 1, "one welcome mail");
    let message = mail_parser::MessageParser::default().parse(&mails[0]).unwrap();
    assert_eq!(message.subject(), Some("Welcome to Gazette Daily"));
    let to = message.to().unwrap().first().unwrap();
    assert_eq!(to.address(), Some("ana@example.org"));
    assert!(
        message.header_raw("List-Unsubscribe").is_some() && message.header_raw("List-Unsubscribe-Post").is_some(),
        "a list mail, with one-click unsubscribe"
    );
    let text = message.body_text(0).unwrap().to_string();
    let html = message.body_html(0).unwrap().to_string();
    // The latest edition of the archive, by its page.
    let edition = site.store.archived_editions("readers", 0, 1).await.unwrap().remove(0);
    let edition_url = format!("https://gazette.example.org/archive/readers/{}", edition.nonce);
    for part in [&text, &html] {
        assert!(part.contains("Welcome to Gazette Daily, Ana"), "{part}");
        assert!(part.contains(&edition_url), "the latest edition's page: {part}");
        assert!(part.contains("Test Gazette: 1 new"), "its subject: {part}");
        assert!(part.contains("https://gazette.example.org/archive/readers"), "{part}");
        assert!(part.contains("ana@example.org"), "{part}");
    }
    let redacted = redact_tokens(&text)
        .replace(&edition.nonce, "[nonce]")
        .replace(&edition.created_at.format("%-d %B %Y").to_string(), "[date]");
    insta::assert_snapshot!(redacted);

    // The ledger has it: one edition of the list's welcome queue, one row,
    // sent (recorded just after the transport took the message).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let rows = loop {
        let rows = site.store.deliveries(Some("welcome:readers"), None, 10).await.unwrap();
        let sending = rows.iter().any(|r| r.state == herald::store::DeliveryState::Sending);
        if !sending || std::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].email, "ana@example.org");
    assert_eq!(rows[0].state, herald::store::DeliveryState::Sent);

    // Its unsubscribe link works like a digest's.
    let link = text
        .lines()
        .find_map(|l| l.strip_prefix("Unsubscribe: "))
        .expect("an unsubscribe link");
    assert!(
        link.starts_with("https://gazette.example.org/unsubscribe?token="),
        "{link}"
    );

    // Pressing the button again sends nothing more; the archive lists digests only.
    let again = post_form(&site, &page.action, page.cookie.as_deref(), &[("csrf", &page.csrf)]).await;
    assert!(again.text().await.unwrap().contains("You are subscribed"));
    assert_eq!(
        site.store
            .deliveries(Some("welcome:readers"), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let index = crate::web::text_of(client().get(format!("{}/archive/readers", site.base))).await;
    assert!(!index.contains("Welcome to"), "{index}");
    assert_eq!(site.store.archived_editions("readers", 0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn without_welcome_templates_a_confirmation_sends_no_welcome() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = site(&ws, "").await;
    sign_up_and_confirm(&site, || confirmation_link(&ws, "bo@example.org"), "bo@example.org").await;
    assert_eq!(ws.outbox().len(), 1, "the confirmation request only");
    assert!(
        site.store
            .deliveries(Some("welcome:readers"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_welcome_the_relay_could_not_take_waits_in_the_ledger_and_goes_once_later() {
    let port = crate::support::free_port();
    let config = base_config(&crate::support::smtp_mail(port, "retry_initial_secs = 1"));
    let ws = Workspace::new(&config);
    with_welcome(&ws);
    let app = crate::support::settings_from(&ws, &config, &crate::support::job_toml("daily", "0 7 * * *"));
    let site = start_with(app).await;

    let sink = crate::support::SmtpSink::start_on(port, &[]);
    let response = sign_up(&site, "cy@example.org", "daily").await;
    assert_eq!(response.status(), 200);
    let request = sink.messages().pop().expect("the confirmation request");
    sink.stop();
    let request = mail_parser::MessageParser::default().parse(&request).unwrap();
    let link = request
        .body_text(0)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("https://gazette.example.org/confirm?token="))
        .map(|l| url::Url::parse(l.trim()).unwrap())
        .expect("a confirm link");

    // The relay is down when the reader confirms: they are subscribed all
    // the same, and their welcome waits in the ledger.
    press_confirm(&site, &link).await;
    assert_eq!(status_of(&site, "cy@example.org").await, "active");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let row = loop {
        let rows = site.store.deliveries(Some("welcome:readers"), None, 10).await.unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        // Claimed (`sending`, one attempt) first, then its outcome recorded.
        let recorded = rows[0].attempts > 0 && rows[0].state != herald::store::DeliveryState::Sending;
        if recorded || std::time::Instant::now() > deadline {
            break rows[0].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(row.state, herald::store::DeliveryState::Queued, "{row:?}");
    assert!(row.last_reply.is_some(), "{row:?}");

    // Once the relay is back, `herald run --once` (or the daemon) sends it, once.
    let sink = crate::support::SmtpSink::start_on(port, &[]);
    tokio::time::sleep(crate::support::until_past(row.next_attempt_at)).await;
    let out = ws.herald(&["run", "--once"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        crate::support::stdout(&out).contains("== welcome mails of list readers: 1 sent"),
        "{}",
        show(&out)
    );
    let again = ws.herald(&["run", "--once"]);
    assert!(again.status.success(), "{}", show(&again));
    assert_eq!(sink.recipients_at_least(1), ["cy@example.org"]);
    let messages = sink.messages();
    let welcome = mail_parser::MessageParser::default().parse(&messages[0]).unwrap();
    assert_eq!(welcome.subject(), Some("Welcome to Gazette Daily"));
    let listed = ws.herald(&["deliveries", "--job", "welcome:readers"]);
    assert!(listed.status.success(), "{}", show(&listed));
    let listed = crate::support::stdout(&listed);
    assert!(
        listed.contains("sent") && listed.contains("cy@example.org") && listed.contains("tries 2"),
        "{listed}"
    );
}

#[test]
fn a_welcome_mail_without_its_text_part_is_refused_at_load_with_the_file_named() {
    let ws = Workspace::new(&base_config(&file_mail()));
    with_welcome(&ws);
    std::fs::remove_file(ws.path().join("templates/emails/welcome.txt.hbs")).unwrap();
    ws.write(
        "templates/emails/welcome-readers.html.hbs",
        "<p>{{list.title}} {{latest.nosuch}}</p>",
    );
    ws.write("templates/emails/welcome-readers.txt.hbs", "{{list.title}}");
    let out = ws.herald(&["check"]);
    assert!(!out.status.success(), "{}", show(&out));
    let said = show(&out);
    assert!(
        said.contains("templates/emails/welcome.txt.hbs") && said.contains("a welcome mail needs both"),
        "{said}"
    );
    assert!(
        said.contains("templates/emails/welcome-readers.html.hbs") && said.contains("does not render"),
        "{said}"
    );
}

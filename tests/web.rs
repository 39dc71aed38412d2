//! The HTTP interface: RFC 8058 one-click unsubscribe, the GET page that
//! changes nothing, tokens that must not work, and `/healthz`.

use std::sync::Arc;

use herald::store::{NewSubscriber, Store};
use herald::token::{Purpose, TokenKeys};

use crate::support::{Workspace, article_txt, base_config, file_mail, settings_with, show};

/// The web interface served in-process on a free port.
pub struct Site {
    pub base: String,
    pub store: Store,
    pub keys: TokenKeys,
    _trigger: herald::shutdown::ShutdownTrigger,
}

async fn start(ws: &Workspace) -> Site {
    start_with(settings_with(ws, &crate::support::job_toml("daily", "0 7 * * *"))).await
}

pub async fn start_with(app: herald::app::App) -> Site {
    // The sender half is dropped: the pages keep the last configuration sent.
    let (_, app) = tokio::sync::watch::channel(Arc::new(app));
    serve(app).await
}

/// Serves the configuration `app` holds, following what is sent on it, as
/// `herald run` does across reloads.
async fn serve(app: tokio::sync::watch::Receiver<Arc<herald::app::App>>) -> Site {
    serve_on(app, Arc::new(herald::clock::SystemClock)).await
}

/// As [`serve`], with the pages reading the time from `clock`.
async fn serve_on(
    app: tokio::sync::watch::Receiver<Arc<herald::app::App>>,
    clock: Arc<dyn herald::clock::Clock>,
) -> Site {
    let (store, keys) = {
        let current = app.borrow().clone();
        let store = Store::open(&current.settings.store_url).await.unwrap();
        let keys = store.token_keys(&current.tokens).await.unwrap();
        (store, keys)
    };
    let (trigger, shutdown) = herald::shutdown::channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = herald::web::WebState::new(store.clone(), app, keys.clone(), Default::default(), false, clock);
    tokio::spawn(herald::web::serve(listener, state, shutdown));
    Site {
        base,
        store,
        keys,
        _trigger: trigger,
    }
}

pub async fn subscribe(site: &Site, email: &str) -> String {
    let s = NewSubscriber {
        email: email.into(),
        ..Default::default()
    };
    site.store
        .add_subscriber("readers", &s, chrono::Utc::now())
        .await
        .unwrap();
    let uid = site
        .store
        .subscribers("readers", None, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.email == email)
        .unwrap()
        .uid;
    site.keys.sign(Purpose::Unsubscribe, &uid)
}

pub async fn status_of(site: &Site, email: &str) -> String {
    site.store
        .subscribers("readers", None, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.email == email)
        .unwrap()
        .status
        .to_string()
}

/// The exact RFC 8058 one-click POST a mailbox provider sends: form-encoded, no cookies.
pub fn one_click(url: String) -> reqwest::RequestBuilder {
    client()
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
}

/// The `[web]` table that opens `/metrics` on the public listener to [`metrics`].
pub const METRICS_WEB: &str = "\n[web]\nmetrics_token = \"metrics-token-for-tests-0123\"\n";

/// `/metrics` of `site`, asked for with the token [`METRICS_WEB`] sets.
pub async fn metrics(site: &Site) -> String {
    let request = client()
        .get(format!("{}/metrics", site.base))
        .header("Authorization", "Bearer metrics-token-for-tests-0123");
    text_of(request).await
}

/// The body of the answer to `request`, as text.
pub async fn text_of(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

pub fn client() -> reqwest::Client {
    herald::install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_reloaded_configuration_reaches_the_pages_at_once() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let (reload, app) = tokio::sync::watch::channel(Arc::new(settings_with(
        &ws,
        &crate::support::job_toml("daily", "0 7 * * *"),
    )));
    let site = serve(app).await;
    let token = subscribe(&site, "ana@example.org").await;
    let page = || async {
        let url = format!("{}/unsubscribe?token={token}", site.base);
        client().get(url).send().await.unwrap().text().await.unwrap()
    };
    let before = page().await;
    assert!(before.contains("Test Gazette"), "{before}");

    // The operator renames the site; the daemon's reloader sends the new configuration.
    let config = std::fs::read_to_string(ws.path().join("config/herald.toml")).unwrap();
    ws.write(
        "config/herald.toml",
        &config.replace("name = \"Test Gazette\"", "name = \"Millbrook Courier\""),
    );
    let renamed = herald::app::App::load(&ws.path().join("config/herald.toml"), Vec::new()).unwrap();
    reload.send(Arc::new(renamed)).unwrap();
    let after = page().await;
    assert!(after.contains("Millbrook Courier"), "{after}");
    assert!(!after.contains("Test Gazette"), "{after}");
}

/// A clock stopped at one instant.
struct Stopped(chrono::DateTime<chrono::Utc>);

impl herald::clock::Clock for Stopped {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0
    }
}

#[tokio::test]
async fn the_pages_read_the_time_from_the_clock_they_are_given() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let app = settings_with(&ws, &crate::support::job_toml("daily", "0 7 * * *"));
    let (_, app) = tokio::sync::watch::channel(Arc::new(app));
    let at: chrono::DateTime<chrono::Utc> = "2031-05-04T03:02:01Z".parse().unwrap();
    let site = serve_on(app, Arc::new(Stopped(at))).await;
    let token = subscribe(&site, "ana@example.org").await;
    let answer = one_click(format!("{}/unsubscribe?token={token}", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let ana = site
        .store
        .subscriber_by_address("readers", "ana@example.org")
        .await
        .unwrap()
        .unwrap();
    let history = site.store.consent_history(ana.id).await.unwrap();
    let unsubscribed = history.last().expect("the unsubscribe is recorded");
    assert_eq!(unsubscribed.consent.action, "unsubscribe");
    assert_eq!(unsubscribed.created_at.timestamp_millis(), at.timestamp_millis());
}

#[tokio::test]
async fn a_store_failure_behind_a_valid_link_says_try_again_not_invalid_link() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = start(&ws).await;
    let token = subscribe(&site, "ana@example.org").await;
    // The pages share this pool: closed, every lookup fails as in an outage.
    site.store.close().await;
    for path in ["unsubscribe", "preferences"] {
        let page = client()
            .get(format!("{}/{path}?token={token}", site.base))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 503, "{path}");
        let html = page.text().await.unwrap();
        assert!(html.contains("Nothing was changed"), "{path}: {html}");
    }
}

#[tokio::test]
async fn a_get_shows_a_button_and_changes_nothing() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = start(&ws).await;
    let token = subscribe(&site, "ana@example.org").await;
    let page = client()
        .get(format!("{}/unsubscribe?token={token}", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<form method=\"post\"") && html.contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
        "{html}"
    );
    assert!(
        html.contains("ana@example.org") && html.contains("Gazette Daily"),
        "{html}"
    );
    assert_eq!(
        status_of(&site, "ana@example.org").await,
        "active",
        "mail scanners follow GET links"
    );
}

#[tokio::test]
async fn the_rfc_8058_post_unsubscribes_with_200_and_no_redirect() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = start(&ws).await;
    let token = subscribe(&site, "ana@example.org").await;
    let response = one_click(format!("{}/unsubscribe?token={token}", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("location").is_none());
    assert_eq!(status_of(&site, "ana@example.org").await, "unsubscribed");

    let token = subscribe(&site, "bo@example.org").await;
    let boundary = "----herald-test";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
    );
    let response = client()
        .post(format!("{}/unsubscribe?token={token}", site.base))
        .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(status_of(&site, "bo@example.org").await, "unsubscribed");

    // Browsers' boundaries are mixed-case and boundaries are case-sensitive
    // (RFC 2046); parameters may be quoted and the field may come with others.
    for (who, content_type, boundary) in [
        (
            "webkit@example.org",
            "multipart/form-data; boundary=----WebKitFormBoundaryq8V2mZ0xY7TbLk3R",
            "----WebKitFormBoundaryq8V2mZ0xY7TbLk3R",
        ),
        (
            "gecko@example.org",
            "Multipart/Form-Data; charset=utf-8; boundary=\"---------------------------29Ab4F8cD\"",
            "---------------------------29Ab4F8cD",
        ),
    ] {
        let token = subscribe(&site, who).await;
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
        );
        let response = client()
            .post(format!("{}/unsubscribe?token={token}", site.base))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{content_type}");
        assert_eq!(status_of(&site, who).await, "unsubscribed", "{content_type}");
    }
    // A part that only looks like the field (another name, another value) is not it.
    let token = subscribe(&site, "dee@example.org").await;
    let boundary = "----WebKitFormBoundaryZz";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe-Not\"\r\n\r\nOne-Click\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click-Later\r\n--{boundary}--\r\n"
    );
    let response = client()
        .post(format!("{}/unsubscribe?token={token}", site.base))
        .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(status_of(&site, "dee@example.org").await, "active");

    // The button on the page posts the same field; a POST without it is refused.
    let token = subscribe(&site, "cy@example.org").await;
    let bare = client()
        .post(format!("{}/unsubscribe?token={token}", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 400);
    assert_eq!(status_of(&site, "cy@example.org").await, "active");
}

#[tokio::test]
async fn forged_truncated_and_replayed_tokens_get_one_generic_page_and_change_nothing() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = start(&ws).await;
    let token = subscribe(&site, "ana@example.org").await;
    let other = TokenKeys::from_config(Some("someone-elses-secret"), []);
    let uid = token.split('.').nth(2).unwrap().to_string();
    let forged = other.sign(Purpose::Unsubscribe, &uid);
    // Change the uid's last character to a different one, whatever it was.
    let last = if uid.ends_with('0') { '1' } else { '0' };
    let tampered = token.replace(&uid, &format!("{}{last}", &uid[..uid.len() - 1]));
    assert_ne!(tampered, token);
    let truncated = token[..token.len() - 4].to_string();
    let mut pages = Vec::new();
    for bad in [forged.as_str(), tampered.as_str(), truncated.as_str(), "", "1.x.y.z"] {
        for post in [false, true] {
            let url = format!("{}/unsubscribe?token={bad}", site.base);
            let request = if post { one_click(url) } else { client().get(url) };
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 400, "token {bad:?}");
            pages.push(response.text().await.unwrap());
        }
    }
    assert!(
        pages.iter().all(|p| p == &pages[0]),
        "one generic error page, whatever is wrong"
    );
    assert!(pages[0].contains("This link does not work"));
    assert_eq!(status_of(&site, "ana@example.org").await, "active");

    // Unsubscribe, resubscribe: the old link is void.
    let unsubscribe = |t: &str| one_click(format!("{}/unsubscribe?token={t}", site.base)).send();
    assert_eq!(unsubscribe(&token).await.unwrap().status(), 200);
    let fresh = subscribe(&site, "ana@example.org").await;
    assert_ne!(fresh, token);
    assert_eq!(
        unsubscribe(&token).await.unwrap().status(),
        400,
        "a replayed old token after resubscribe"
    );
    assert_eq!(status_of(&site, "ana@example.org").await, "active");
}

#[tokio::test]
async fn the_link_in_a_delivered_message_unsubscribes_before_the_next_send() {
    let ws = Workspace::new(&base_config(&file_mail()));
    ws.subscribers(2);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    let out = tokio::process::Command::from(ws.command(&["digest", "daily"]))
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let (_, raw) = ws
        .outbox()
        .into_iter()
        .find(|(p, _)| p.to_string_lossy().contains("reader0@"))
        .unwrap();
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let header = message
        .header_raw("List-Unsubscribe")
        .unwrap()
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string();
    let link = url::Url::parse(&header).unwrap();
    assert_eq!(
        link.as_str().split('?').next(),
        Some("https://gazette.example.org/unsubscribe")
    );

    let site = start(&ws).await;
    let local = format!("{}{}?{}", site.base, link.path(), link.query().unwrap());
    let response = one_click(local).send().await.unwrap();
    assert_eq!(response.status(), 200);
    ws.write("articles/market.txt", &article_txt("Market moves", "market"));
    let next = tokio::process::Command::from(ws.command(&["digest", "daily"]))
        .output()
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&next.stdout).contains("for 1 recipient(s)"),
        "{}",
        show(&next)
    );
}

#[tokio::test]
async fn healthz_reports_the_store() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let site = start(&ws).await;
    let response = client().get(format!("{}/healthz", site.base)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["store"], "ok");
}

/// Every kind of answer the pages give: each carries the security headers,
/// and a 404 or 405 is a small HTML page.
#[tokio::test]
async fn every_answer_carries_the_security_headers_and_errors_are_pages() {
    for hsts in [false, true] {
        let ws = Workspace::new(&base_config(&file_mail()));
        let jobs = crate::support::job_toml("daily", "0 7 * * *") + if hsts { "\n[web]\nhsts = true\n" } else { "" };
        let site = start_with(settings_with(&ws, &jobs)).await;
        let token = subscribe(&site, "ana@example.org").await;
        let base = &site.base;
        let http = client();
        let answers = [
            (
                "unsubscribe page",
                http.get(format!("{base}/unsubscribe?token={token}")),
                200,
            ),
            (
                "one-click post",
                one_click(format!("{base}/unsubscribe?token={token}")),
                200,
            ),
            (
                "a forged token",
                http.get(format!("{base}/unsubscribe?token=1.x.y.z")),
                400,
            ),
            ("sign-up form", http.get(format!("{base}/subscribe/readers")), 200),
            (
                "a sign-up without its form token",
                http.post(format!("{base}/subscribe/readers"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("email=bo%40example.org"),
                403,
            ),
            ("an unknown list", http.get(format!("{base}/subscribe/nobody")), 404),
            (
                "preferences",
                http.get(format!("{base}/preferences?token={token}")),
                200,
            ),
            ("health", http.get(format!("{base}/healthz")), 200),
            (
                "a webhook no provider is set up for",
                http.post(format!("{base}/webhooks/mailgun")),
                404,
            ),
            ("no such page", http.get(format!("{base}/wp-login.php")), 404),
            (
                "a method the page does not take",
                http.delete(format!("{base}/healthz")),
                405,
            ),
        ];
        for (what, request, status) in answers {
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), status, "{what}");
            let headers = response.headers().clone();
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            assert_eq!(
                header("content-security-policy"),
                herald::web::CONTENT_SECURITY_POLICY,
                "{what}"
            );
            assert!(
                header("content-security-policy").contains("frame-ancestors 'none'"),
                "{what}"
            );
            assert_eq!(header("x-frame-options"), "DENY", "{what}");
            assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
            assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
            assert_eq!(
                header("strict-transport-security"),
                if hsts { "max-age=31536000" } else { "" },
                "{what}"
            );
            if status == 404 || status == 405 {
                assert!(header("content-type").starts_with("text/html"), "{what}");
                let body = response.text().await.unwrap();
                assert!(body.contains("<h1>") && body.contains("Test Gazette"), "{what}: {body}");
            }
        }
    }
}

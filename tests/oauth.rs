//! Threads and LinkedIn against local fakes of their APIs, and the life of
//! an OAuth token: expiry shown and warned about, refreshed where the
//! platform allows it, and posts that wait (never fail) for a new secret.

use std::time::Duration;

use wiremock::matchers::{any, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::social::{account, herald, noisy_png, social_workspace, sql, stdout};
use crate::support::oauth::{LinkedInFake, ThreadsFake, little_text_shown};
use crate::support::{Workspace, article_txt, show};

const THREADS_TOKEN: &str = "th-long-lived-token-Qm7";
const LINKEDIN_TOKEN: &str = "li-member-token-Vx2";
const ORGANIZATION: &str = "urn:li:organization:2414183";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A time `days` from now, as `token_expires_at` takes it.
fn in_days(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn threads_env(token: &str) -> Vec<(&'static str, String)> {
    vec![("HERALD_SECRET_THREADS_ACCESS_TOKEN", token.to_string())]
}

fn linkedin_env(token: &str) -> Vec<(&'static str, String)> {
    vec![("HERALD_SECRET_LI_ACCESS_TOKEN", token.to_string())]
}

async fn threads_server(fake: &ThreadsFake) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(fake.clone()).mount(&server).await;
    server
}

/// A LinkedIn fake on its own server, with a picture at `/pictures/desk.png`.
async fn linkedin_server(token: &str, expires_in_days: i64) -> (MockServer, LinkedInFake, Vec<u8>) {
    let server = MockServer::start().await;
    let picture = noisy_png(64, 48);
    Mock::given(path("/pictures/desk.png"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "image/png")
                .set_body_bytes(picture.clone()),
        )
        .mount(&server)
        .await;
    let fake = LinkedInFake::new(&server.uri(), token, expires_in_days, ORGANIZATION);
    Mock::given(any()).respond_with(fake.clone()).mount(&server).await;
    (server, fake, picture)
}

fn threads_account(server: &MockServer, extra: &str) -> String {
    account(
        "threads",
        "threads",
        &server.uri(),
        &format!("timeout_secs = 1\nuser_id = \"1789\"\n{extra}"),
    )
}

fn linkedin_account(server: &MockServer, extra: &str) -> String {
    account(
        "li",
        "linkedin",
        &server.uri(),
        &format!("timeout_secs = 1\nauthor = \"{ORGANIZATION}\"\nallow_private_images = true\n{extra}"),
    )
}

#[tokio::test]
async fn threads_posts_each_article_once_as_a_linked_text_post_within_its_quota() {
    let fake = ThreadsFake::new(THREADS_TOKEN, 50);
    let server = threads_server(&fake).await;
    let ws = social_workspace(
        &threads_account(&server, &format!("token_expires_at = \"{}\"", in_days(50))),
        &["threads"],
    );
    let env = threads_env(THREADS_TOKEN);
    let first = herald(&ws, &["post", "social"], &env).await;
    assert!(stdout(&first).contains("2 skipped, 0 posted"), "{}", show(&first));

    ws.write(
        "articles/festival.txt",
        &article_txt("Harbour festival 🎉 returns with #music and (free) boats", "festival"),
    );
    let out = herald(&ws, &["post", "social"], &env).await;
    assert!(stdout(&out).contains("1 queued, 0 skipped, 1 posted"), "{}", show(&out));
    let published = fake.published();
    assert_eq!(published.len(), 1);
    let (_, text, link, _) = &published[0];
    assert!(text.contains("Harbour festival 🎉 returns"), "{text}");
    assert!(
        link.starts_with("http") && text.contains(link.as_str()),
        "link attachment {link} in: {text}"
    );
    assert!(text.matches('#').count() <= 2, "one generated hashtag at most: {text}");
    let posts = stdout(&herald(&ws, &["posts"], &env).await);
    assert!(
        posts.contains("https://www.threads.com/@harbourgazette/post/18001"),
        "{posts}"
    );
    let again = herald(&ws, &["post", "social"], &env).await;
    assert!(
        stdout(&again).contains("0 queued, 0 skipped, 0 posted"),
        "{}",
        show(&again)
    );

    // The day's quota is used up (by other tools): the post waits, and goes once a slot frees.
    fake.state.lock().unwrap().used_elsewhere = 250;
    ws.write("articles/ferry.txt", &article_txt("Ferry timetable changes", "ferry"));
    let full = herald(&ws, &["post", "social"], &env).await;
    assert!(
        stdout(&full).contains("0 posted") && stdout(&full).contains("the rest waits until"),
        "{}",
        show(&full)
    );
    assert_eq!(fake.published().len(), 1);
    fake.state.lock().unwrap().used_elsewhere = 0;
    sql(&ws, "UPDATE posts SET next_attempt_at = 0 WHERE state = 'queued'").await;
    let freed = herald(&ws, &["post", "social"], &env).await;
    assert!(stdout(&freed).contains("1 posted"), "{}", show(&freed));
    assert_eq!(fake.published().len(), 2);

    // A rate limit in the Graph API's words (code 4, HTTP 400) waits too.
    fake.state.lock().unwrap().script.push_back(
        ResponseTemplate::new(400).set_body_json(
            serde_json::json!({ "error": { "message": "Application request limit reached", "type": "OAuthException", "code": 4 } }),
        ),
    );
    ws.write("articles/market.txt", &article_txt("Market stalls return", "market"));
    let limited = herald(&ws, &["post", "social"], &env).await;
    assert!(stdout(&limited).contains("the rest waits until"), "{}", show(&limited));
    sql(&ws, "UPDATE posts SET next_attempt_at = 0 WHERE state = 'queued'").await;
    assert!(stdout(&herald(&ws, &["post", "social"], &env).await).contains("1 posted"));
    assert_eq!(fake.published().len(), 3);

    // The answer to a publish is lost: the retry finds the post and makes no second one.
    fake.state.lock().unwrap().slow_publishes = 1;
    ws.write(
        "articles/bridge.txt",
        &article_txt("Bridge repairs finish early", "bridge"),
    );
    let lost = herald(&ws, &["post", "social"], &env).await;
    assert!(stdout(&lost).contains("0 posted, 1 to retry"), "{}", show(&lost));
    assert_eq!(
        fake.published().len(),
        4,
        "the post was made before the answer was lost"
    );
    sql(&ws, "UPDATE posts SET next_attempt_at = 0 WHERE state = 'queued'").await;
    let retry = herald(&ws, &["post", "social"], &env).await;
    assert!(stdout(&retry).contains("1 posted"), "{}", show(&retry));
    assert_eq!(fake.published().len(), 4, "no duplicate");
    let posts = stdout(&herald(&ws, &["posts"], &env).await);
    assert!(posts.contains("already published"), "{posts}");

    // Meta expires the token early (code 190): the post waits for a new one.
    fake.state.lock().unwrap().tokens.insert(THREADS_TOKEN.to_string(), 0);
    ws.write("articles/pier.txt", &article_txt("Pier lights restored", "pier"));
    let expired = herald(&ws, &["post", "social"], &env).await;
    assert!(
        stdout(&expired).contains("WAITING: the platform refused the access token")
            && stdout(&expired).contains("Session has expired"),
        "{}",
        show(&expired)
    );
    let renewed = "th-long-lived-token-renewed-Kd3";
    fake.state
        .lock()
        .unwrap()
        .tokens
        .insert(renewed.to_string(), chrono::Utc::now().timestamp() + 60 * 86_400);
    let out = herald(&ws, &["post", "social"], &threads_env(renewed)).await;
    assert!(stdout(&out).contains("1 posted"), "{}", show(&out));
    assert_eq!(fake.published().len(), 5, "each article once");
}

#[tokio::test]
async fn linkedin_shares_an_escaped_article_with_its_picture_once_under_the_versioned_api() {
    let (server, fake, picture) = linkedin_server(LINKEDIN_TOKEN, 50).await;
    let ws = social_workspace(
        &linkedin_account(&server, &format!("token_expires_at = \"{}\"", in_days(50))),
        &["li"],
    );
    let env = linkedin_env(LINKEDIN_TOKEN);
    herald(&ws, &["post", "social"], &env).await;

    ws.write(
        "articles/budget.md",
        &format!(
            "---\ntitle: 'Q&A: the (draft) budget #2027 [update] *now* a_b ~c'\nimage: '{}/pictures/desk.png'\n---\n\n\
             The council published its draft budget on Monday, with the harbour works at its heart.\n",
            server.uri()
        ),
    );
    let out = herald(&ws, &["post", "social"], &env).await;
    assert!(stdout(&out).contains("1 queued, 0 skipped, 1 posted"), "{}", show(&out));
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    let (urn, body) = &posts[0];
    let commentary = body["commentary"].as_str().unwrap();
    let shown = little_text_shown(commentary).expect("every reserved character escaped");
    assert!(
        shown.contains("Q&A: the (draft) budget #2027 [update] *now* a_b ~c"),
        "{shown}"
    );
    let store = ws.store().await;
    let record = store.posts(Some("li"), 10).await.unwrap();
    store.close().await;
    let recorded = record.iter().find(|r| !r.text.is_empty()).expect("the post's record");
    assert_eq!(
        recorded.text, shown,
        "the post shows exactly the teaser Herald recorded"
    );
    assert_eq!(
        body["content"]["article"]["title"],
        "Q&A: the (draft) budget #2027 [update] *now* a_b ~c"
    );
    let image = body["content"]["article"]["thumbnail"].as_str().expect("a thumbnail");
    assert_eq!(
        fake.state.lock().unwrap().images[image],
        picture,
        "the article's picture, uploaded as is"
    );
    let listed = stdout(&herald(&ws, &["posts"], &env).await);
    assert!(
        listed.contains(&format!("https://www.linkedin.com/feed/update/{urn}/")),
        "{listed}"
    );
    let live = herald(&ws, &["check", "--live"], &env).await;
    assert!(
        stdout(&live).contains(&format!(
            "account li: ok, token accepted for Harbour Desk ({ORGANIZATION})"
        )),
        "{}",
        show(&live)
    );

    // A 429 waits for Retry-After; the post then goes once.
    fake.state
        .lock()
        .unwrap()
        .script
        .push_back(ResponseTemplate::new(429).insert_header("retry-after", "1"));
    ws.write("articles/ferry.txt", &article_txt("Ferry timetable changes", "ferry"));
    let limited = herald(&ws, &["post", "social"], &env).await;
    assert!(stdout(&limited).contains("the rest waits until"), "{}", show(&limited));
    sql(&ws, "UPDATE posts SET next_attempt_at = 0 WHERE state = 'queued'").await;
    assert!(stdout(&herald(&ws, &["post", "social"], &env).await).contains("1 posted"));
    assert_eq!(fake.posts().len(), 2);

    // The answer to a post is lost: the retry finds it among the author's posts.
    fake.state.lock().unwrap().slow_posts = 1;
    ws.write(
        "articles/bridge.txt",
        &article_txt("Bridge repairs finish early", "bridge"),
    );
    let lost = herald(&ws, &["post", "social"], &env).await;
    assert!(stdout(&lost).contains("0 posted, 1 to retry"), "{}", show(&lost));
    sql(&ws, "UPDATE posts SET next_attempt_at = 0 WHERE state = 'queued'").await;
    let retry = herald(&ws, &["post", "social"], &env).await;
    assert!(stdout(&retry).contains("1 posted"), "{}", show(&retry));
    assert_eq!(fake.posts().len(), 3, "no duplicate");

    // A headline of 2,659 characters fits 3,000 as written, not as sent
    // (each parenthesis takes a backslash): it is refused here, not by LinkedIn.
    let long_title = "(Long) ".repeat(380);
    ws.write("articles/long.txt", &article_txt(long_title.trim(), "length"));
    let long = herald(&ws, &["post", "social"], &env).await;
    assert!(
        stdout(&long).contains("0 posted, 0 to retry, 1 failed"),
        "{}",
        show(&long)
    );
    assert!(stderr(&long).contains("/3000)"), "{}", show(&long));
    assert_eq!(fake.posts().len(), 3);
}

#[test]
fn linkedin_and_threads_settings_are_checked_at_load_each_named() {
    let config = crate::support::base_config(&crate::support::file_mail())
        + "\n[[accounts]]\nname = \"li\"\ntype = \"linkedin\"\nauthor = \"urn:li:company:12\"\napi_version = \"2025-11\"\ntoken_expires_at = \"next spring\"\n"
        + "\n[[accounts]]\nname = \"threads\"\ntype = \"threads\"\nuser_id = \"@gazette\"\n"
        + "\n[[accounts]]\nname = \"xacc\"\ntype = \"x\"\ntoken_expires_at = \"2027-01-01\"\n";
    let ws = Workspace::new(&config);
    let out = ws
        .command(&["check"])
        .env("HERALD_SECRET_LI_ACCESS_TOKEN", "t")
        .env("HERALD_SECRET_THREADS_ACCESS_TOKEN", "t")
        .env("HERALD_SECRET_XACC_CONSUMER_KEY", "k")
        .env("HERALD_SECRET_XACC_CONSUMER_SECRET", "k")
        .env("HERALD_SECRET_XACC_ACCESS_TOKEN", "k")
        .env("HERALD_SECRET_XACC_ACCESS_TOKEN_SECRET", "k")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = show(&out);
    for expected in [
        "accounts.\"li\".author: \"urn:li:company:12\" is not urn:li:person:ID or urn:li:organization:NUMBER",
        "accounts.\"li\".api_version: \"2025-11\" is not a LinkedIn-Version (YYYYMM)",
        "accounts.\"li\".token_expires_at: \"next spring\" is not a date",
        "accounts.\"threads\".user_id: \"@gazette\" is not a Threads user id",
        "accounts.\"xacc\".token_expires_at: an x account has no expiring OAuth token",
    ] {
        assert!(said.contains(expected), "{expected:?} not in:\n{said}");
    }
}

#[tokio::test]
async fn a_token_near_expiry_is_warned_about_daily_refreshed_where_allowed_and_shown() {
    // LinkedIn: no refresh for this token, so a warning, once a day.
    let (li_server, _li, _) = linkedin_server(LINKEDIN_TOKEN, 3).await;
    // Threads: its long-lived token is refreshed before it runs out.
    let fake = ThreadsFake::new(THREADS_TOKEN, 2);
    let th_server = threads_server(&fake).await;
    let accounts = linkedin_account(&li_server, &format!("token_expires_at = \"{}\"", in_days(3)))
        + &threads_account(&th_server, &format!("token_expires_at = \"{}\"", in_days(2)));
    let ws = social_workspace(&accounts, &["li", "threads"]);
    let mut env = linkedin_env(LINKEDIN_TOKEN);
    env.extend(threads_env(THREADS_TOKEN));
    env.push(("NO_COLOR", "1".to_string()));

    let check = herald(&ws, &["check"], &env).await;
    assert!(check.status.success(), "{}", show(&check));
    let said = stdout(&check);
    assert!(
        said.contains("WARNING: account li: the access token expires on")
            && said.contains("replace HERALD_SECRET_LI_ACCESS_TOKEN before then"),
        "{said}"
    );
    assert!(
        said.contains("WARNING: account threads: the access token expires on"),
        "{said}"
    );

    let first = herald(&ws, &["post", "social"], &env).await;
    assert!(first.status.success(), "{}", show(&first));
    let logged = stderr(&first);
    assert_eq!(
        logged.matches("the access token expires in").count(),
        1,
        "LinkedIn's token is warned about; Threads' was refreshed instead: {logged}"
    );
    assert!(logged.contains("account=li"), "{logged}");
    assert_eq!(fake.state.lock().unwrap().refreshes, 1);
    let second = herald(&ws, &["post", "social"], &env).await;
    assert!(
        !stderr(&second).contains("the access token expires in"),
        "once a day: {}",
        show(&second)
    );
    assert_eq!(fake.state.lock().unwrap().refreshes, 1, "refreshed once");

    // The refreshed token is what Threads gets now, and the store keeps it sealed.
    ws.write(
        "articles/festival.txt",
        &article_txt("Harbour festival returns", "festival"),
    );
    let posted = herald(&ws, &["post", "social"], &env).await;
    assert!(
        stdout(&posted).contains("account threads: 1 queued, 0 skipped, 1 posted"),
        "{}",
        show(&posted)
    );
    assert_eq!(
        fake.state.lock().unwrap().seen_tokens.last().map(String::as_str),
        Some("th-refreshed-1")
    );
    let store = ws.store().await;
    let state = store.account_token("threads").await.unwrap();
    store.close().await;
    let sealed = state.sealed.expect("the refreshed token is kept");
    assert!(!sealed.contains("th-refreshed-1"), "sealed, not in the clear");
    let live = herald(&ws, &["check", "--live"], &env).await;
    let said = stdout(&live);
    assert!(
        said.contains("account threads: ok, token accepted for @harbourgazette"),
        "{}",
        show(&live)
    );
    assert!(said.contains("account threads: access token expires on"), "{said}");
    assert!(said.contains("(in 60 days)") || said.contains("(in 59 days)"), "{said}");

    // /metrics shows each account's expiry in seconds.
    let app = in_process_app(&ws, crate::web::METRICS_WEB, &env);
    let site = crate::web::start_with(app).await;
    let text = crate::web::metrics(&site).await;
    let seconds = |account: &str| -> f64 {
        let prefix = format!("herald_account_token_expires_seconds{{account=\"{account}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
            .parse()
            .unwrap()
    };
    assert!((seconds("threads") - 60.0 * 86_400.0).abs() < 3_600.0, "{text}");
    assert!((seconds("li") - 3.0 * 86_400.0).abs() < 3_600.0, "{text}");
    assert!(
        text.contains("herald_account_token_refused{account=\"li\"} 0"),
        "{text}"
    );
}

#[tokio::test]
async fn posts_wait_for_an_expired_or_refused_token_and_go_once_it_is_replaced() {
    let (server, fake, _) = linkedin_server(LINKEDIN_TOKEN, 50).await;
    let expired = linkedin_account(&server, &format!("token_expires_at = \"{}\"", in_days(-1)));
    let ws = social_workspace(&expired, &["li"]);
    let env = linkedin_env(LINKEDIN_TOKEN);
    herald(&ws, &["post", "social"], &env).await;
    ws.write(
        "articles/festival.txt",
        &article_txt("Harbour festival returns", "festival"),
    );

    // Expired by the operator's date: nothing is tried, nothing fails.
    let out = herald(&ws, &["post", "social"], &env).await;
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stdout(&out).contains("WAITING: the access token expired on")
            && stdout(&out).contains("posts wait until HERALD_SECRET_LI_ACCESS_TOKEN is replaced"),
        "{}",
        show(&out)
    );
    assert!(fake.posts().is_empty());
    let listed = stdout(&herald(&ws, &["posts"], &env).await);
    assert!(listed.contains("queued") && !listed.contains("failed"), "{listed}");

    // The operator renews the token (a new secret, a new date): the post goes, once.
    let renewed = "li-member-token-renewed-Wq9";
    fake.state
        .lock()
        .unwrap()
        .tokens
        .insert(renewed.to_string(), chrono::Utc::now().timestamp() + 60 * 86_400);
    let config = std::fs::read_to_string(ws.path().join("config/herald.toml")).unwrap();
    ws.write(
        "config/herald.toml",
        &config.replace(&in_days(-1)[..10], &in_days(59)[..10]),
    );
    let out = herald(&ws, &["post", "social"], &linkedin_env(renewed)).await;
    assert!(stdout(&out).contains("1 posted"), "{}", show(&out));
    assert_eq!(fake.posts().len(), 1);

    // The platform revokes it: the post waits (not failed) until the secret changes again.
    fake.state.lock().unwrap().tokens.remove(renewed);
    ws.write("articles/ferry.txt", &article_txt("Ferry timetable changes", "ferry"));
    let refused = herald(&ws, &["post", "social"], &linkedin_env(renewed)).await;
    assert!(refused.status.success(), "{}", show(&refused));
    assert!(
        stdout(&refused).contains("WAITING: the platform refused the access token")
            && stdout(&refused).contains("revoked"),
        "{}",
        show(&refused)
    );
    let again = herald(&ws, &["post", "social"], &linkedin_env(renewed)).await;
    assert!(stdout(&again).contains("WAITING"), "{}", show(&again));
    let live = herald(&ws, &["check", "--live"], &linkedin_env(renewed)).await;
    assert_eq!(live.status.code(), Some(2), "{}", show(&live));
    assert!(stdout(&live).contains("WARNING: account li: the platform refused the access token"));
    let listed = stdout(&herald(&ws, &["posts"], &env).await);
    assert!(!listed.contains("failed"), "{listed}");

    let third = "li-member-token-third-Pz4";
    fake.state
        .lock()
        .unwrap()
        .tokens
        .insert(third.to_string(), chrono::Utc::now().timestamp() + 60 * 86_400);
    let out = herald(&ws, &["post", "social"], &linkedin_env(third)).await;
    assert!(stdout(&out).contains("1 posted"), "{}", show(&out));
    assert_eq!(fake.posts().len(), 2, "each article once");
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// The workspace's configuration with `extra`, loaded in this process with
/// `env` as its environment (paths made absolute).
fn in_process_app(ws: &Workspace, extra: &str, env: &[(&str, String)]) -> herald::app::App {
    let root = ws.path().display().to_string();
    let config = std::fs::read_to_string(ws.path().join("config/herald.toml"))
        .unwrap()
        .replace("path = \"articles\"", &format!("path = \"{root}/articles\""))
        .replace(crate::support::SQLITE_STORE, &format!("url = \"{}\"", ws.store_url()))
        + &format!("\n[templates]\ndir = \"{root}/templates\"\n")
        + extra;
    ws.write("config/in-process.toml", &config);
    let env = env.iter().map(|(k, v)| (k.to_string(), v.clone()));
    herald::app::App::load(&ws.path().join("config/in-process.toml"), env).expect("valid config")
}

#[tokio::test]
async fn a_running_daemon_takes_a_token_renewed_in_dot_env_on_reload() {
    let (server, fake, _) = linkedin_server(LINKEDIN_TOKEN, 50).await;
    let ws = social_workspace(&linkedin_account(&server, ""), &["li"]);
    // The token in `.env` is one LinkedIn has revoked.
    ws.write(".env", "HERALD_SECRET_LI_ACCESS_TOKEN=li-revoked-token-Rv5\n");
    herald(&ws, &["post", "social"], &[]).await;
    ws.write(
        "articles/festival.txt",
        &article_txt("Harbour festival returns", "festival"),
    );
    let refused = herald(&ws, &["post", "social"], &[]).await;
    assert!(
        stdout(&refused).contains("WAITING: the platform refused the access token"),
        "{}",
        show(&refused)
    );

    let _daemon = crate::daemon::start_daemon_logging_to(&ws, "daemon.log");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // Started, so it read the revoked token from `.env`; then the operator renews it there.
    while !crate::daemon::log_text(&ws).contains("herald daemon started") {
        assert!(tokio::time::Instant::now() < deadline, "the daemon did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ws.write(".env", &format!("HERALD_SECRET_LI_ACCESS_TOKEN={LINKEDIN_TOKEN}\n"));
    // The operator's edit is seen by the file watcher (SIGHUP does the same;
    // a signal before the daemon handles it would end the process): touched
    // until the reload is logged, as the daemon may still be starting.
    let config = std::fs::read_to_string(ws.path().join("config/herald.toml")).unwrap();
    let mut edits = 0;
    while !std::fs::read_to_string(ws.path().join("daemon.log"))
        .unwrap_or_default()
        .contains("configuration reloaded")
    {
        let log = std::fs::read_to_string(ws.path().join("daemon.log")).unwrap_or_default();
        assert!(tokio::time::Instant::now() < deadline, "no reload logged:\n{log}");
        edits += 1;
        ws.write("config/herald.toml", &format!("{config}\n# token renewed ({edits})\n"));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    while fake.posts().is_empty() {
        let log = std::fs::read_to_string(ws.path().join("daemon.log")).unwrap_or_default();
        assert!(
            tokio::time::Instant::now() < deadline,
            "the waiting post never went:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.posts().len(), 1);
    assert!(
        fake.posts()[0].1["commentary"]
            .as_str()
            .unwrap()
            .contains("Harbour festival returns")
    );
}

#[tokio::test]
async fn hostile_answers_are_capped_and_an_absurd_token_lifetime_is_refused() {
    // LinkedIn answers a post with 2 MiB: not read past 1 MiB, the post in doubt.
    let li = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(201).set_body_string("x".repeat(2 * 1024 * 1024)))
        .mount(&li)
        .await;
    // Threads answers a refresh with a lifetime past the end of time.
    let threads = MockServer::start().await;
    Mock::given(path("/refresh_access_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({ "access_token": "th-forever", "token_type": "bearer", "expires_in": i64::MAX }),
        ))
        .mount(&threads)
        .await;
    let accounts = linkedin_account(&li, "") + &threads_account(&threads, "");
    let ws = social_workspace(&accounts, &["li", "threads"]);
    let mut env = linkedin_env(LINKEDIN_TOKEN);
    env.extend(threads_env(THREADS_TOKEN));
    herald(&ws, &["post", "social"], &env).await;
    ws.write(
        "articles/festival.txt",
        &article_txt("Harbour festival returns", "festival"),
    );
    let out = herald(&ws, &["post", "social"], &env).await;
    // Exit 1 for the Threads post the bare server refused (404); no panic on the lifetime.
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(!show(&out).contains("panicked"), "{}", show(&out));
    assert!(
        stdout(&out).contains("account li: 1 queued, 0 skipped, 0 posted, 1 to retry"),
        "{}",
        show(&out)
    );
    let posts = stdout(&herald(&ws, &["posts"], &env).await);
    assert!(
        posts.contains("an answer over 1048576 bytes, not read further"),
        "{posts}"
    );
    let store = ws.store().await;
    let state = store.account_token("threads").await.unwrap();
    store.close().await;
    assert_eq!(state.sealed, None, "no token kept from an absurd answer");
    assert_eq!(state.expires_at, None);
}

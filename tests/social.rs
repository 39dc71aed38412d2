//! Social posting against local fakes of each platform: once per article and
//! account, no backfill flood, signed and within limits, replies classified,
//! and no double post across a crash.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::fakes::{BlueskyFake, BlueskyState, ChatFake, MastodonFake, XFake, XKeys};
use crate::support::{Workspace, article_txt, base_config, file_mail, show};

const X_KEYS: XKeys = XKeys {
    consumer_key: "ck-123",
    consumer_secret: "cs-456",
    token: "tok-789",
    token_secret: "ts-012",
};

/// A workspace whose config has the given accounts and a social job posting to them.
pub(crate) fn social_workspace(accounts: &str, names: &[&str]) -> Workspace {
    let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let config = base_config(&file_mail())
        + accounts
        + &format!(
            "\n[[jobs]]\nname = \"social\"\nkind = \"social\"\naccounts = [{}]\nschedule = \"0 * * * *\"\ntimezone = \"UTC\"\n",
            list.join(", ")
        );
    let ws = Workspace::new(&config);
    ws.write(
        "articles/existing-1.txt",
        &article_txt("Harbour wall repaired", "harbour wall"),
    );
    ws.write(
        "articles/existing-2.txt",
        &article_txt("Library hours extended", "library"),
    );
    ws
}

fn secrets() -> Vec<(&'static str, &'static str)> {
    vec![
        ("HERALD_SECRET_MASTO_ACCESS_TOKEN", "masto-token"),
        ("HERALD_SECRET_XACC_CONSUMER_KEY", X_KEYS.consumer_key),
        ("HERALD_SECRET_XACC_CONSUMER_SECRET", X_KEYS.consumer_secret),
        ("HERALD_SECRET_XACC_ACCESS_TOKEN", X_KEYS.token),
        ("HERALD_SECRET_XACC_ACCESS_TOKEN_SECRET", X_KEYS.token_secret),
        ("HERALD_SECRET_SKY_APP_PASSWORD", "app-pass-1"),
        ("HERALD_SECRET_TG_BOT_TOKEN", "123:abc"),
        ("HERALD_SECRET_HOOK_SIGNING_SECRET", "hook-secret"),
    ]
}

pub(crate) async fn herald(ws: &Workspace, args: &[&str], extra: &[(&str, String)]) -> std::process::Output {
    let mut cmd = ws.command(args);
    for (k, v) in secrets() {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    tokio::process::Command::from(cmd).output().await.unwrap()
}

pub(crate) fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn account(name: &str, kind: &str, base_url: &str, extra: &str) -> String {
    format!(
        "\n[[accounts]]\nname = \"{name}\"\ntype = \"{kind}\"\nbase_url = \"{base_url}\"\nmin_spacing_secs = 0\n{extra}\n"
    )
}

pub(crate) async fn sql(ws: &Workspace, statement: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&ws.store_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn mastodon(server: &MockServer) -> MastodonFake {
    let fake = MastodonFake {
        token: "masto-token",
        limit: 300,
        script: Default::default(),
        statuses: Default::default(),
        by_key: Default::default(),
        slow_answers: Default::default(),
    };
    Mock::given(method("GET"))
        .and(path("/api/v2/instance"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({ "configuration": { "statuses": { "max_characters": 300 } } })),
        )
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .respond_with(fake.clone())
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/accounts/verify_credentials"))
        .respond_with(fake.clone())
        .mount(server)
        .await;
    fake
}

#[tokio::test]
async fn check_live_tries_each_accounts_credentials_without_posting() {
    let server = MockServer::start().await;
    let fake = mastodon(&server).await;
    let state = Arc::new(Mutex::new(BlueskyState::default()));
    Mock::given(path_regex("^/xrpc/"))
        .respond_with(BlueskyFake {
            handle: "courier.test",
            password: "app-pass-1",
            state: state.clone(),
            script: Default::default(),
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/2/users/me"))
        .respond_with(XFake {
            keys: Arc::new(X_KEYS),
            script: Default::default(),
            tweets: Default::default(),
        })
        .mount(&server)
        .await;
    // Telegram: the token is part of the path; a wrong one is a 401, as the real API answers.
    Mock::given(method("GET"))
        .and(path("/bot123:abc/getMe"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({ "ok": true, "result": { "id": 1, "is_bot": true, "username": "courier_bot" } }),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/bot.*/getMe$"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(serde_json::json!({ "ok": false, "error_code": 401, "description": "Unauthorized" })),
        )
        .mount(&server)
        .await;
    let ws = social_workspace(
        &(account("masto", "mastodon", &server.uri(), "")
            + &account("sky", "bluesky", &server.uri(), "handle = \"courier.test\"")
            + &account("tg", "telegram", &server.uri(), "chat_id = \"@courier\"")
            + &account("xacc", "x", &server.uri(), "")
            + &account(
                "hook",
                "webhook",
                &server.uri(),
                &format!("url = \"{}/hook\"", server.uri()),
            )),
        &["masto", "sky", "tg", "xacc", "hook"],
    );
    let out = herald(&ws, &["check", "--live"], &[]).await;
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    for expected in [
        "account masto: ok, token accepted for @courier",
        "account sky: ok, app password accepted for courier.test (did:plc:courier)",
        "account tg: ok, bot token accepted for @courier_bot",
        "account xacc: ok, keys accepted for @courier",
        "account hook: not tried",
    ] {
        assert!(text.contains(expected), "missing {expected:?}:\n{}", show(&out));
    }
    assert!(fake.statuses.lock().unwrap().is_empty(), "nothing posted");

    let out = herald(
        &ws,
        &["check", "--live"],
        &[
            ("HERALD_SECRET_MASTO_ACCESS_TOKEN", "revoked".to_string()),
            ("HERALD_SECRET_SKY_APP_PASSWORD", "wrong".to_string()),
            ("HERALD_SECRET_TG_BOT_TOKEN", "999:zzz".to_string()),
            ("HERALD_SECRET_XACC_ACCESS_TOKEN_SECRET", "not-the-secret".to_string()),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let text = show(&out);
    assert!(text.contains("ERROR: account masto: HTTP 401"), "{text}");
    assert!(
        text.contains("ERROR: account sky: the app password was refused"),
        "{text}"
    );
    assert!(text.contains("ERROR: account tg: HTTP 401"), "{text}");
    assert!(
        text.contains("ERROR: account xacc: HTTP 401"),
        "the fake recomputes the signature: {text}"
    );
}

#[tokio::test]
async fn a_new_account_records_history_without_posting_then_posts_each_new_article_once() {
    let server = MockServer::start().await;
    let fake = mastodon(&server).await;
    let ws = social_workspace(
        &account("masto", "mastodon", &server.uri(), "visibility = \"unlisted\""),
        &["masto"],
    );

    let first = herald(&ws, &["post", "social"], &[]).await;
    assert!(first.status.success(), "{}", show(&first));
    assert!(
        stdout(&first).contains("account masto: 0 queued, 2 skipped, 0 posted"),
        "{}",
        show(&first)
    );
    assert!(fake.statuses.lock().unwrap().is_empty(), "no backfill flood");

    ws.write("articles/new.txt", &article_txt("Ferry returns in spring", "ferry"));
    let second = herald(&ws, &["post", "social"], &[]).await;
    assert!(
        stdout(&second).contains("account masto: 1 queued, 0 skipped, 1 posted"),
        "{}",
        show(&second)
    );
    let third = herald(&ws, &["post", "social"], &[]).await;
    assert!(
        stdout(&third).contains("account masto: 0 queued, 0 skipped, 0 posted"),
        "{}",
        show(&third)
    );

    let statuses = fake.statuses.lock().unwrap().clone();
    assert_eq!(statuses.len(), 1, "posted once");
    insta::assert_snapshot!(statuses[0]);
    let posts = stdout(&herald(&ws, &["posts"], &[]).await);
    assert!(
        posts.contains("posted") && posts.contains("skipped") && posts.contains("https://social.example/@courier/1"),
        "{posts}"
    );
    // The counts come from the store, by state, in name order.
    let counts: Vec<String> = posts
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(counts, ["posted 1", "skipped 2"], "{posts}");
    assert!(posts.starts_with("all accounts: 3 post record(s)"), "{posts}");
}

#[tokio::test]
async fn x_posts_are_signed_within_the_weighted_limit_and_replies_are_classified() {
    let server = MockServer::start().await;
    let fake = XFake {
        keys: Arc::new(X_KEYS),
        script: Default::default(),
        tweets: Default::default(),
    };
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let ws = social_workspace(&account("xacc", "x", &server.uri(), ""), &["xacc"]);
    assert!(stdout(&herald(&ws, &["post", "social"], &[]).await).contains("2 skipped"));

    // Wide characters count double; the excerpt is cut so the post fits 280.
    let wide = "東京の港で新しいフェリーが運航を始めました。".repeat(12);
    ws.write(
        "articles/wide.json",
        &format!(r#"{{"title": "港のフェリー 🎉", "tags": ["harbour news"], "body": "{wide}"}}"#),
    );
    let out = herald(&ws, &["post", "social"], &[]).await;
    assert!(stdout(&out).contains("1 posted"), "{}", show(&out));
    let tweet = fake.tweets.lock().unwrap()[0].clone();
    assert!(
        tweet.starts_with("港のフェリー 🎉")
            && tweet.contains("https://gazette.example.org/")
            && tweet.ends_with("#HarbourNews"),
        "{tweet}"
    );

    // 429: the post waits for x-rate-limit-reset.
    let reset = chrono::Utc::now().timestamp() + 3600;
    fake.script.lock().unwrap().push_back(
        ResponseTemplate::new(429)
            .insert_header("x-rate-limit-reset", reset.to_string().as_str())
            .set_body_json(serde_json::json!({ "title": "Too Many Requests" })),
    );
    ws.write(
        "articles/next.txt",
        &article_txt("Market moves to the square", "market"),
    );
    let limited = herald(&ws, &["post", "social"], &[]).await;
    assert!(
        stdout(&limited).contains("0 posted") && stdout(&limited).contains("the rest waits until"),
        "{}",
        show(&limited)
    );

    // After the reset, X says it has the post already: counted as posted, not failed.
    sql(&ws, "UPDATE posts SET next_attempt_at = 0 WHERE state = 'queued'").await;
    fake.script
        .lock()
        .unwrap()
        .push_back(ResponseTemplate::new(403).set_body_json(
            serde_json::json!({ "detail": "You are not allowed to create a Tweet with duplicate content." }),
        ));
    let dup = herald(&ws, &["post", "social"], &[]).await;
    assert!(
        stdout(&dup).contains("1 posted, 0 to retry, 0 failed"),
        "{}",
        show(&dup)
    );

    // Wrong keys: the fake's independent signature check refuses, and the post fails loudly.
    ws.write("articles/third.txt", &article_txt("Bakery wins award", "bakery"));
    let bad = herald(
        &ws,
        &["post", "social"],
        &[("HERALD_SECRET_XACC_CONSUMER_SECRET", "wrong".into())],
    )
    .await;
    assert_eq!(bad.status.code(), Some(1), "{}", show(&bad));
    assert!(stdout(&bad).contains("1 failed"), "{}", show(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("bad signature"),
        "{}",
        show(&bad)
    );
    assert_eq!(fake.tweets.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn mastodon_retries_in_doubt_with_the_same_idempotency_key_and_posts_once() {
    let server = MockServer::start().await;
    let fake = mastodon(&server).await;
    let ws = social_workspace(
        &account("masto", "mastodon", &server.uri(), "timeout_secs = 1"),
        &["masto"],
    );
    herald(&ws, &["post", "social"], &[]).await;
    ws.write("articles/new.txt", &article_txt("Ferry returns in spring", "ferry"));
    *fake.slow_answers.lock().unwrap() = 1; // the post is made, the answer lost
    let lost = herald(&ws, &["post", "social"], &[]).await;
    assert!(stdout(&lost).contains("0 posted, 1 to retry"), "{}", show(&lost));
    sql(&ws, "UPDATE posts SET next_attempt_at = 0 WHERE state = 'queued'").await;
    let retry = herald(&ws, &["post", "social"], &[]).await;
    assert!(stdout(&retry).contains("1 posted"), "{}", show(&retry));
    assert_eq!(
        fake.statuses.lock().unwrap().len(),
        1,
        "the repeated Idempotency-Key returned the first post"
    );
}

#[tokio::test]
async fn a_crash_mid_post_and_a_restart_post_nothing_twice() {
    let server = MockServer::start().await;
    let fake = mastodon(&server).await;
    let ws = social_workspace(
        &account("masto", "mastodon", &server.uri(), "timeout_secs = 2"),
        &["masto"],
    );
    herald(&ws, &["post", "social"], &[]).await;
    ws.write("articles/new.txt", &article_txt("Ferry returns in spring", "ferry"));
    *fake.slow_answers.lock().unwrap() = 1;
    let mut cmd = ws.command(&["post", "social"]);
    for (k, v) in secrets() {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = tokio::process::Command::from(cmd).kill_on_drop(true).spawn().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fake.statuses.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the post never reached the fake"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap();

    let early = herald(&ws, &["post", "social"], &[]).await;
    assert!(
        stdout(&early).contains("0 posted"),
        "a leased post is left alone: {}",
        show(&early)
    );
    let store = ws.store().await;
    let lease = store
        .earliest_post_lease("masto")
        .await
        .unwrap()
        .expect("the killed run left its lease");
    store.close().await;
    tokio::time::sleep(crate::support::until_past(lease)).await; // the lease (2 x 2 s + 5 s) runs out
    let after = herald(&ws, &["post", "social"], &[]).await;
    assert!(stdout(&after).contains("1 posted"), "{}", show(&after));
    assert_eq!(fake.statuses.lock().unwrap().len(), 1, "no duplicate post");
    let posts = stdout(&herald(&ws, &["posts"], &[]).await);
    assert!(posts.contains("(1 in doubt)"), "{posts}");
}

#[tokio::test]
async fn bluesky_refreshes_its_session_and_posts_with_byte_offset_facets() {
    let server = MockServer::start().await;
    let state = Arc::new(Mutex::new(BlueskyState::default()));
    let fake = BlueskyFake {
        handle: "courier.test",
        password: "app-pass-1",
        state: state.clone(),
        script: Default::default(),
    };
    Mock::given(path_regex("^/xrpc/"))
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let ws = social_workspace(
        &account("sky", "bluesky", &server.uri(), "handle = \"courier.test\""),
        &["sky"],
    );
    herald(&ws, &["post", "social"], &[]).await;

    ws.write(
        "articles/new.txt",
        &article_txt("Café owners 👩‍🍳 rally for the harbour", "café"),
    );
    let first = herald(&ws, &["post", "social"], &[]).await;
    assert!(stdout(&first).contains("1 posted"), "{}", show(&first));
    state.lock().unwrap().expire_next = true;
    ws.write("articles/next.txt", &article_txt("Market moves", "market"));
    let second = herald(&ws, &["post", "social"], &[]).await;
    assert!(stdout(&second).contains("1 posted"), "{}", show(&second));

    let state = state.lock().unwrap();
    assert_eq!(
        state.sessions_created, 1,
        "the session is kept, not re-created per post"
    );
    assert_eq!(state.refreshes, 1, "an expired token is refreshed once");
    assert_eq!(state.records.len(), 2);
}

#[tokio::test]
async fn chat_webhooks_post_and_honour_retry_after() {
    let server = MockServer::start().await;
    let discord = ChatFake {
        script: Default::default(),
        bodies: Default::default(),
        ok: serde_json::json!({ "id": "555" }),
    };
    let telegram = ChatFake {
        script: Default::default(),
        bodies: Default::default(),
        ok: serde_json::json!({ "ok": true, "result": { "message_id": 7 } }),
    };
    let hook = ChatFake {
        script: Default::default(),
        bodies: Default::default(),
        ok: serde_json::json!({}),
    };
    Mock::given(method("POST"))
        .and(path("/discord"))
        .respond_with(discord.clone())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/bot123:abc/sendMessage"))
        .respond_with(telegram.clone())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(hook.clone())
        .mount(&server)
        .await;
    let uri = server.uri();
    let accounts = account("disc", "discord", &uri, "")
        + &account("tg", "telegram", &uri, "chat_id = \"@courier\"")
        + &account("hook", "webhook", &uri, &format!("url = \"{uri}/hook\""));
    let ws = social_workspace(
        &accounts.replace(
            &format!("base_url = \"{uri}\"\nmin_spacing_secs = 0\n\nurl ="),
            "min_spacing_secs = 0\nurl =",
        ),
        &["disc", "tg", "hook"],
    );
    let discord_url = [("HERALD_SECRET_DISC_WEBHOOK_URL", format!("{uri}/discord"))];
    let out = herald(&ws, &["post", "social"], &discord_url).await;
    assert!(out.status.success(), "{}", show(&out));

    discord.script.lock().unwrap().push_back(
        ResponseTemplate::new(429).set_body_json(serde_json::json!({ "retry_after": 0.5, "global": false })),
    );
    ws.write("articles/new.txt", &article_txt("Ferry returns in spring", "ferry"));
    let out = herald(&ws, &["post", "social"], &discord_url).await;
    let text = stdout(&out);
    assert!(
        text.contains("account disc: 1 queued, 0 skipped, 0 posted") && text.contains("the rest waits until"),
        "{text}"
    );
    assert!(
        text.contains("account tg: 1 queued, 0 skipped, 1 posted")
            && text.contains("account hook: 1 queued, 0 skipped, 1 posted"),
        "{text}"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let out = herald(&ws, &["post", "social"], &discord_url).await;
    assert!(
        stdout(&out).contains("account disc: 0 queued, 0 skipped, 1 posted"),
        "{}",
        show(&out)
    );

    let (_, discord_body) = discord.bodies.lock().unwrap()[0].clone();
    assert!(
        discord_body["content"]
            .as_str()
            .unwrap()
            .starts_with("Ferry returns in spring")
    );
    let (_, tg_body) = telegram.bodies.lock().unwrap()[0].clone();
    assert_eq!(tg_body["chat_id"], "@courier");
    assert_eq!(
        tg_body["link_preview_options"],
        serde_json::json!({ "url": "https://gazette.example.org/ferry-returns-in-spring", "prefer_large_media": true }),
        "the preview is the article's: {tg_body}"
    );
    let (headers, hook_body) = hook.bodies.lock().unwrap()[0].clone();
    assert_eq!(hook_body["article"]["title"], "Ferry returns in spring");
    let signature = headers
        .iter()
        .find(|(k, _)| k == "x-herald-signature")
        .map(|(_, v)| v.clone())
        .expect("signed");
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"hook-secret").unwrap();
    mac.update(serde_json::to_string(&hook_body).unwrap().as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(signature, format!("sha256={hex}"));
}

#[tokio::test]
async fn dry_run_shows_each_accounts_post_with_its_count_and_posts_nothing() {
    let server = MockServer::start().await;
    let fake = mastodon(&server).await;
    let x = XFake {
        keys: Arc::new(X_KEYS),
        script: Default::default(),
        tweets: Default::default(),
    };
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(x.clone())
        .mount(&server)
        .await;
    let accounts = account("masto", "mastodon", &server.uri(), "") + &account("xacc", "x", &server.uri(), "");
    let ws = social_workspace(&accounts, &["masto", "xacc"]);
    let first = herald(&ws, &["post", "social", "--dry-run"], &[]).await;
    assert!(
        stdout(&first).contains("first run: the articles that exist now are recorded without posting"),
        "{}",
        show(&first)
    );
    herald(&ws, &["post", "social"], &[]).await;
    ws.write("articles/new.txt", &article_txt("Ferry returns in spring", "ferry"));
    let dry = herald(&ws, &["post", "social", "--dry-run"], &[]).await;
    let text = stdout(&dry);
    assert!(
        text.contains("account masto (mastodon, limit 300 characters, URLs as 23):"),
        "{text}"
    );
    assert!(
        text.contains("account xacc (x, limit 280 weighted characters, URLs as 23):"),
        "{text}"
    );
    assert!(
        text.contains("--- https://gazette.example.org/ferry-returns-in-spring ["),
        "{text}"
    );
    assert!(text.contains("| Ferry returns in spring"), "{text}");
    assert!(text.contains("dry run: nothing posted, nothing recorded"), "{text}");
    assert!(fake.statuses.lock().unwrap().is_empty() && x.tweets.lock().unwrap().is_empty());
    assert!(
        stdout(&herald(&ws, &["post", "social"], &[]).await).contains("1 queued"),
        "the dry run recorded nothing"
    );
}

#[tokio::test]
async fn an_account_without_its_secrets_is_refused_at_load() {
    let ws = social_workspace(&account("xacc", "x", "https://api.x.example", ""), &["xacc"]);
    let out = tokio::process::Command::from(ws.command(&["check"]))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("environment HERALD_SECRET_XACC_CONSUMER_KEY: accounts.\"xacc\""),
        "{err}"
    );
    assert!(err.contains("HERALD_SECRET_XACC_ACCESS_TOKEN_SECRET"), "{err}");
}

#[tokio::test]
async fn spacing_and_the_daily_cap_hold_posts_back() {
    let server = MockServer::start().await;
    let fake = mastodon(&server).await;
    let slack = ChatFake {
        script: Default::default(),
        bodies: Default::default(),
        ok: serde_json::json!("ok"),
    };
    Mock::given(method("POST"))
        .and(path("/slack"))
        .respond_with(slack.clone())
        .mount(&server)
        .await;
    let accounts = account("masto", "mastodon", &server.uri(), "")
        .replace("min_spacing_secs = 0", "min_spacing_secs = 3600")
        + &account("team", "slack", &server.uri(), "daily_cap = 2")
            .replace(&format!("base_url = \"{}\"\n", server.uri()), "");
    let ws = social_workspace(&accounts, &["masto", "team"]);
    let slack_url = [("HERALD_SECRET_TEAM_WEBHOOK_URL", format!("{}/slack", server.uri()))];
    herald(&ws, &["post", "social"], &slack_url).await;
    for n in 0..3 {
        ws.write(
            &format!("articles/new{n}.txt"),
            &article_txt(&format!("Story number {n}"), "harbour"),
        );
    }
    slack
        .script
        .lock()
        .unwrap()
        .push_back(ResponseTemplate::new(500).set_body_string("internal_error"));
    let out = herald(&ws, &["post", "social"], &slack_url).await;
    let text = stdout(&out);
    assert!(
        text.contains("account masto: 3 queued, 0 skipped, 1 posted"),
        "one post, then an hour's spacing: {text}"
    );
    assert!(
        text.contains("account team: 3 queued, 0 skipped, 2 posted, 1 to retry"),
        "Slack's 500 defers one post; the other two go out: {text}"
    );
    sql(
        &ws,
        "UPDATE posts SET next_attempt_at = 0 WHERE state = 'queued' AND account = 'team'",
    )
    .await;
    let out = herald(&ws, &["post", "social"], &slack_url).await;
    let text = stdout(&out);
    assert!(
        text.contains("account team: 0 queued, 0 skipped, 0 posted"),
        "the daily cap of 2 holds the retry: {text}"
    );
    assert!(text.contains("the rest waits until"), "{text}");
    assert!(text.contains("account masto: 0 queued, 0 skipped, 0 posted"), "{text}");
    assert_eq!(fake.statuses.lock().unwrap().len(), 1);
    assert_eq!(slack.bodies.lock().unwrap().len(), 2);
    assert!(
        slack.bodies.lock().unwrap()[0].1["text"]
            .as_str()
            .unwrap()
            .contains("https://gazette.example.org/story-number-")
    );
}

#[tokio::test]
async fn the_daemon_fires_social_jobs_on_their_schedule() {
    let server = MockServer::start().await;
    let fake = mastodon(&server).await;
    let ws = social_workspace(&account("masto", "mastodon", &server.uri(), ""), &["masto"]);
    let config = std::fs::read_to_string(ws.path().join("config/herald.toml"))
        .unwrap()
        .replace("schedule = \"0 * * * *\"", "schedule = \"*/1 * * * * *\"");
    ws.write("config/herald.toml", &config);
    let mut cmd = ws.command(&["run"]);
    cmd.env("HERALD_LOG", "info").stdout(std::process::Stdio::null());
    for (k, v) in secrets() {
        cmd.env(k, v);
    }
    let log = std::fs::File::create(ws.path().join("daemon.log")).unwrap();
    let mut daemon = tokio::process::Command::from(cmd)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log_text = || std::fs::read_to_string(ws.path().join("daemon.log")).unwrap_or_default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !log_text().contains("account done") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no social fire:\n{}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ws.write("articles/new.txt", &article_txt("Ferry returns in spring", "ferry"));
    while fake.statuses.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing posted:\n{}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Two more fires run after the post.
    let fires = log_text().matches("account done").count();
    while log_text().matches("account done").count() < fires + 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no later fires:\n{}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(daemon.wait().await.unwrap().success());
    assert_eq!(
        fake.statuses.lock().unwrap().len(),
        1,
        "once, however many fires came after"
    );
}

#[tokio::test]
async fn markup_in_a_title_reaches_no_post_and_no_card() {
    let server = MockServer::start().await;
    let masto = mastodon(&server).await;
    let x = XFake {
        keys: Arc::new(X_KEYS),
        script: Default::default(),
        tweets: Default::default(),
    };
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(x.clone())
        .mount(&server)
        .await;
    let sky = Arc::new(Mutex::new(BlueskyState::default()));
    Mock::given(path_regex("^/xrpc/"))
        .respond_with(BlueskyFake {
            handle: "courier.test",
            password: "app-pass-1",
            state: sky.clone(),
            script: Default::default(),
        })
        .mount(&server)
        .await;
    let accounts = account("masto", "mastodon", &server.uri(), "")
        + &account("xacc", "x", &server.uri(), "")
        + &account("sky", "bluesky", &server.uri(), "handle = \"courier.test\"");
    let ws = social_workspace(&accounts, &["masto", "xacc", "sky"]);
    assert!(herald(&ws, &["post", "social"], &[]).await.status.success());

    ws.write(
        "articles/budget.md",
        "---\ntitle: 'Council <script>alert(1)</script> votes &amp; \"reviews\" budget <b>today</b>'\n\
         author: '<i>Ana</i> &lt;Perez&gt;'\n---\n\n\
         The council <em>voted</em> on Tuesday to review the harbour budget &amp; its &quot;reserve&quot; fund.\n",
    );
    let out = herald(&ws, &["post", "social"], &[]).await;
    assert!(
        stdout(&out).contains("account sky: 1 queued, 0 skipped, 1 posted"),
        "{}",
        show(&out)
    );

    let headline = "Council votes & \"reviews\" budget today";
    let status = masto.statuses.lock().unwrap()[0].clone();
    let tweet = x.tweets.lock().unwrap()[0].clone();
    let record = sky.lock().unwrap().records.values().next().unwrap().clone();
    let card_title = record["embed"]["external"]["title"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let sky_text = record["text"].as_str().unwrap().to_string();
    for (channel, text) in [("mastodon", &status), ("x", &tweet), ("bluesky", &sky_text)] {
        assert!(text.starts_with(headline), "{channel}: {text}");
        assert!(
            !text.contains('<') && !text.contains("&amp;") && !text.contains("&quot;"),
            "{channel}: {text}"
        );
    }
    assert_eq!(card_title, headline, "{record}");
    let card_text = record["embed"]["external"]["description"].as_str().unwrap_or_default();
    assert!(
        !card_text.contains('<') && !card_text.contains("&amp;") && card_text.contains("budget & its \"reserve\" fund"),
        "{record}"
    );
}

/// A PNG of noise (it compresses badly, so it is large for its size).
pub(crate) fn noisy_png(width: u32, height: u32) -> Vec<u8> {
    use image::ImageEncoder;
    let mut seed = 0x9e37_79b9_u32;
    let picture = image::RgbImage::from_fn(width, height, |_, _| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        image::Rgb([seed as u8, (seed >> 8) as u8, (seed >> 16) as u8])
    });
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&picture, width, height, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

#[tokio::test]
async fn bluesky_cards_carry_the_article_picture_fitted_under_the_blob_limit_or_go_without() {
    let server = MockServer::start().await;
    let state = Arc::new(Mutex::new(BlueskyState::default()));
    Mock::given(path_regex("^/xrpc/"))
        .respond_with(BlueskyFake {
            handle: "courier.test",
            password: "app-pass-1",
            state: state.clone(),
            script: Default::default(),
        })
        .mount(&server)
        .await;
    let small = noisy_png(120, 80);
    let large = noisy_png(1000, 800);
    assert!(large.len() > 1_000_000, "the large picture is {} bytes", large.len());
    let png = |bytes: Vec<u8>| {
        ResponseTemplate::new(200)
            .insert_header("content-type", "image/png")
            .set_body_bytes(bytes)
    };
    Mock::given(path("/pictures/small.png"))
        .respond_with(png(small.clone()))
        .mount(&server)
        .await;
    Mock::given(path("/pictures/large.png"))
        .respond_with(png(large))
        .mount(&server)
        .await;
    Mock::given(path("/pictures/enormous.png"))
        .respond_with(png(vec![0u8; 11 * 1024 * 1024]))
        .mount(&server)
        .await;
    Mock::given(path("/pictures/page.png"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/html")
                .set_body_string("<html>not a picture</html>"),
        )
        .mount(&server)
        .await;
    // /pictures/missing.png is not mounted: 404.
    let ws = social_workspace(
        &account(
            "sky",
            "bluesky",
            &server.uri(),
            "handle = \"courier.test\"\nallow_private_images = true",
        ),
        &["sky"],
    );
    herald(&ws, &["post", "social"], &[]).await;

    let stories = ["small", "large", "enormous", "page", "missing"];
    for name in stories {
        ws.write(
            &format!("articles/{name}.md"),
            &format!(
                "---\ntitle: 'Harbour pictures: {name}'\nimage: '{}/pictures/{name}.png'\n---\n\n\
                 The harbour ferry returned on Monday, and the photographers came to watch it dock.\n",
                server.uri()
            ),
        );
    }
    let out = herald(&ws, &["post", "social"], &[]).await;
    assert!(stdout(&out).contains("5 queued, 0 skipped, 5 posted"), "{}", show(&out));

    let state = state.lock().unwrap();
    assert_eq!(state.records.len(), 5, "each post made once, pictures or not");
    let record = |name: &str| {
        state
            .records
            .values()
            .find(|r| r["embed"]["external"]["title"] == format!("Harbour pictures: {name}"))
            .unwrap_or_else(|| panic!("no post for {name}"))
            .clone()
    };
    let blob = |name: &str| {
        let thumb = record(name)["embed"]["external"]["thumb"].clone();
        let cid = thumb["ref"]["$link"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no thumb"))
            .to_string();
        (thumb, state.blobs[&cid].clone())
    };
    let (thumb, (mime, bytes)) = blob("small");
    assert_eq!(
        (mime.as_str(), &bytes),
        ("image/png", &small),
        "a small PNG goes as it is: {thumb}"
    );
    let (thumb, (mime, bytes)) = blob("large");
    assert_eq!(mime, "image/jpeg", "{thumb}");
    assert!(bytes.len() <= 1_000_000, "{} bytes", bytes.len());
    let decoded = image::load_from_memory(&bytes).unwrap();
    assert_eq!(decoded.width() * 4, decoded.height() * 5, "the aspect is kept");
    for name in ["enormous", "page", "missing"] {
        assert!(
            record(name)["embed"]["external"].get("thumb").is_none(),
            "{name}: a card without a picture, the post still made"
        );
    }
    assert_eq!(state.blobs.len(), 2, "only what fits is uploaded");
}

//! Secrets (the SMTP password, social API tokens, the link-signing key)
//! never show in output, logs at any level, errors or `Debug` text, even
//! when the servers they are sent to refuse them.

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{SmtpSink, Workspace, article_txt, base_config, show, smtp_mail};

const SECRETS: [(&str, &str); 10] = [
    ("HERALD_SECRET_THREADS_ACCESS_TOKEN", "threads-token-Gy71"),
    ("HERALD_SECRET_LI_ACCESS_TOKEN", "linkedin-token-Nc38"),
    ("HERALD_SECRET_TG_BOT_TOKEN", "4242:telegram-token-Ud90"),
    ("HERALD_MAIL__SMTP__PASSWORD", "smtp-pass-Zq81"),
    ("HERALD_TOKENS__SECRET", "link-key-Vb52-0123456789abcdef0123456789"),
    ("HERALD_WEB__METRICS_TOKEN", "metrics-token-Tq55-0123456789"),
    ("HERALD_SECRET_MASTO_ACCESS_TOKEN", "masto-token-Kp33"),
    ("HERALD_SECRET_XACC_CONSUMER_KEY", "x-consumer-Jd47"),
    ("HERALD_SECRET_XACC_CONSUMER_SECRET", "x-consumer-secret-Wm09"),
    ("HERALD_SECRET_XACC_ACCESS_TOKEN", "x-token-Rr12"),
];
const X_TOKEN_SECRET: (&str, &str) = ("HERALD_SECRET_XACC_ACCESS_TOKEN_SECRET", "x-token-secret-Hh64");

fn all_secrets() -> impl Iterator<Item = (&'static str, &'static str)> {
    SECRETS.into_iter().chain([X_TOKEN_SECRET])
}

fn assert_no_secret(what: &str, text: &str) {
    for (var, value) in all_secrets() {
        assert!(!text.contains(value), "{what} shows {var}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_show_in_output_logs_errors_or_debug() {
    // Every API refuses the credentials; the SMTP server offers no AUTH at all.
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string(r#"{"error": "The access token is invalid"}"#))
        .mount(&api)
        .await;
    let sink = SmtpSink::start(&[]);
    // Telegram's token is part of its URLs: its server is down, so the
    // error about the connection is what must not show it.
    let down = format!("http://127.0.0.1:{}", crate::support::free_port());
    let accounts = format!(
        "\n[[accounts]]\nname = \"masto\"\ntype = \"mastodon\"\nbase_url = \"{0}\"\nmin_spacing_secs = 0\n\
         \n[[accounts]]\nname = \"xacc\"\ntype = \"x\"\nbase_url = \"{0}\"\nmin_spacing_secs = 0\n\
         \n[[accounts]]\nname = \"threads\"\ntype = \"threads\"\nbase_url = \"{0}\"\nmin_spacing_secs = 0\n\
         \n[[accounts]]\nname = \"li\"\ntype = \"linkedin\"\nbase_url = \"{0}\"\nmin_spacing_secs = 0\nauthor = \"urn:li:person:a1b2\"\n\
         \n[[accounts]]\nname = \"tg\"\ntype = \"telegram\"\nbase_url = \"{1}\"\nmin_spacing_secs = 0\nchat_id = \"@gazette\"\n\
         \n[[jobs]]\nname = \"social\"\nkind = \"social\"\naccounts = [\"masto\", \"xacc\", \"threads\", \"li\", \"tg\"]\nschedule = \"0 * * * *\"\ntimezone = \"UTC\"\n",
        api.uri(),
        down
    );
    let mail = smtp_mail(sink.port, "send_timeout_secs = 5")
        .replace("tls = \"none\"\n", "tls = \"none\"\nusername = \"herald\"\n");
    let ws = Workspace::new(&(base_config(&mail) + &accounts));
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    ws.write("subs.csv", "email\nana@example.org\nbo@example.org\n");

    let run = |args: &[&str]| {
        let mut cmd = ws.command(args);
        cmd.env("HERALD_LOG", "trace");
        for (var, value) in all_secrets() {
            cmd.env(var, value);
        }
        cmd.output().unwrap()
    };
    for args in [
        &["subscribers", "import", "subs.csv"][..],
        &["check"],
        &["digest", "daily"],
        &["post", "social"],
        &["post", "social", "--dry-run"],
        &["deliveries"],
        &["posts"],
        &["check", "--live"],
        &["preview", "daily", "--format", "eml"],
    ] {
        let out = tokio::task::block_in_place(|| run(args));
        assert_no_secret(&format!("herald {}", args.join(" ")), &show(&out));
    }
    // A social job's first run skips the backlog: a new article is posted, and refused.
    ws.write("articles/bridge.txt", &article_txt("Bridge opens", "bridge"));
    let out = tokio::task::block_in_place(|| run(&["post", "social"]));
    assert_no_secret("herald post social", &show(&out));
    // The failures were real (so their error paths ran).
    let deliveries = show(&tokio::task::block_in_place(|| run(&["deliveries"])));
    assert!(deliveries.contains("queued"), "{deliveries}");
    let posts = show(&tokio::task::block_in_place(|| run(&["posts"])));
    assert!(posts.contains("401"), "{posts}");
    assert!(posts.contains("Connection refused"), "{posts}");

    // Debug output of the loaded configuration.
    let root = ws.path().display().to_string();
    let config = std::fs::read_to_string(ws.path().join("config/herald.toml"))
        .unwrap()
        .replace("path = \"articles\"", &format!("path = \"{root}/articles\""))
        + &format!("\n[templates]\ndir = \"{root}/templates\"\n");
    ws.write("config/absolute.toml", &config);
    let path = ws.path().join("config/absolute.toml");
    let env: Vec<(String, String)> = all_secrets().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let app = herald::app::App::load(&path, env).expect("valid config");
    assert_no_secret("Debug of the loaded configuration", &format!("{app:?}"));
}

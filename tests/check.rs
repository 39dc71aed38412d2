//! `herald check`: the shipped config is valid; a broken one is refused with
//! every problem named by file and key.

use crate::support::{Workspace, base_config, file_mail, show, stdout};

#[test]
fn the_shipped_configuration_is_valid() {
    let out = std::process::Command::new(crate::support::HERALD)
        .args(["check"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("HERALD_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        stdout(&out),
        "config/herald.toml: configuration is valid (1 sources, 1 lists, 1 jobs)\n"
    );
}

#[test]
fn a_broken_configuration_is_refused_with_every_problem() {
    let config = base_config(&file_mail())
        .replace("schedule = \"0 7 * * *\"", "schedule = \"0 7 * *\"")
        .replace("timezone = \"Europe/London\"", "timezone = \"Europe/Londn\"")
        .replace("list = \"readers\"", "list = \"reader\"")
        .replace(
            "base_url = \"https://gazette.example.org/\"",
            "base_url = \"gazette.example.org\"",
        )
        + "\n[[jobs]]\nname = \"weekly\"\nkind = \"digest\"\nlist = \"readers\"\nsources = [\"nope\"]\nschedule = \"61 7 * * 1\"\ntimezone = \"UTC\"\n";
    let ws = Workspace::new(&config);
    let out = ws.herald(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_template_with_a_syntax_error_is_named_by_file() {
    let ws = Workspace::new(&base_config(&file_mail()));
    ws.write("templates/digest.txt.hbs", "Hello {{#each articles}}{{title}}\n");
    ws.write("templates/digest.html.hbs", "<p>{{recipient \"shoe_size\"}}</p>");
    let out = ws.herald(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("templates/digest.txt.hbs"), "{err}");
    assert!(err.contains("each"), "{err}");
}

#[test]
fn a_template_that_uses_an_unknown_field_is_refused() {
    let ws = Workspace::new(&base_config(&file_mail()));
    ws.write(
        "templates/digest.html.hbs",
        "<p>{{#each articles}}{{headline}}{{/each}} {{recipient \"shoe_size\"}}</p>",
    );
    let out = ws.herald(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("templates/digest.html.hbs") && err.contains("does not render"),
        "{err}"
    );
}

#[test]
fn a_mistyped_key_is_refused() {
    let ws = Workspace::new(&base_config("[mail]\ntransport = \"file\"\nmax_conections = 4\n"));
    let out = ws.herald(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config/herald.toml") && err.contains("max_conections"),
        "{err}"
    );
}

#[test]
fn a_bad_environment_override_is_named() {
    let ws = Workspace::new(&base_config(&crate::support::smtp_mail(2525, "")));
    let out = ws
        .command(&["check"])
        .env("HERALD_MAIL__SMTP__TLS", "sometimes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("environment HERALD_MAIL__SMTP__TLS: mail.smtp.tls"),
        "{err}"
    );

    let out = ws
        .command(&["check"])
        .env("HERALD_MAIL__SMTP__PORT", "twenty-five")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mail.smtp.port"),
        "{}",
        show(&out)
    );
}

#[test]
fn cadences_dkim_and_web_keys_are_checked_at_load() {
    let config = base_config(&format!(
        "{}[mail.dkim]\nselector = \"herald\"\nalgorithm = \"dsa\"\nprivate_key_file = \"config/herald.toml\"\n",
        file_mail()
    )) + "\n[[jobs]]\nname = \"weekly\"\nkind = \"digest\"\nlist = \"readers\"\ncadence = \"daily\"\nschedule = \"0 7 * * 1\"\ntimezone = \"UTC\"\n\
           max_articles = 5\nmin_articles = 6\n"
        + "\n[web]\nrate_limit_per_minute = 0\n";
    let ws = Workspace::new(&config);
    let out = ws.herald(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "jobs.\"weekly\".cadence: list \"readers\" already has a digest job with cadence \"daily\"",
        "mail.dkim.algorithm: \"dsa\" is not one of rsa, ed25519",
        "web.rate_limit_per_minute",
        "jobs.\"weekly\".min_articles: 6 is more than max_articles (5): no edition could ever be made",
    ] {
        assert!(err.contains(expected), "{expected:?} not in:\n{err}");
    }
}

#[test]
fn bounce_keys_are_checked_at_load_each_named() {
    let config = base_config(&file_mail())
        + "\n[bounces]\nsns_topic_arns = [\"arn:aws:sns:eu-west-1:123456789012:ok\", \"arn:aws:s3:::bucket\"]\n\
           sns_certificate_base = \"ftp://certs.example/\"\npostmark_username = \"herald\"\n\
           \n[bounces.imap]\nhost = \"imap.example.org\"\nmove_to = \"INBOX\"\nca_file = \"no/such/ca.pem\"\n";
    let ws = Workspace::new(&config);
    let out = ws.herald(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "bounces.sns_topic_arns: \"arn:aws:s3:::bucket\" is not an SNS topic ARN",
        "bounces.sns_certificate_base: \"ftp://certs.example/\" is not an http(s) URL ending in '/'",
        "bounces.postmark_password: is required with bounces.postmark_username",
        "bounces.imap.username: is required",
        "bounces.imap.password: is required",
        "bounces.imap.move_to: \"INBOX\" is the folder read",
    ] {
        assert!(err.contains(expected), "{expected:?} not in:\n{err}");
    }
    // With the rest right, the CA file is read at load and named when missing.
    let config = base_config(&file_mail())
        + "\n[bounces.imap]\nhost = \"imap.example.org\"\nusername = \"u\"\npassword = \"p\"\nca_file = \"no/such/ca.pem\"\n";
    let ws = Workspace::new(&config);
    let out = ws.herald(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bounces.imap.ca_file: cannot read no/such/ca.pem"),
        "{}",
        show(&out)
    );
}

#[test]
fn the_env_example_copied_to_dot_env_is_read_whole() {
    let ws = Workspace::sqlite(&base_config(&file_mail()));
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".env.example"),
        ws.path().join(".env"),
    )
    .unwrap();
    ws.subscribers(1);
    ws.write(
        "articles/ferry.txt",
        &crate::support::article_txt("Ferry returns", "ferry"),
    );
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    // The .env's outbox and site name, set on lines below the first value with spaces.
    let outbox: Vec<_> = std::fs::read_dir(ws.path().join("data/outbox"))
        .expect("the outbox .env names")
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(outbox.len(), 1);
    assert!(
        outbox[0].contains("From: \"The Millbrook Courier\" <digest@courier.example.org>"),
        "{}",
        outbox[0]
    );
    assert!(!ws.path().join("outbox").exists(), "not the config file's outbox");
}

#[test]
fn a_dot_env_line_that_cannot_be_read_stops_the_start_naming_it() {
    let ws = Workspace::new(&base_config(&file_mail()));
    ws.write(
        ".env",
        "# settings\nHERALD_SITE__NAME=The Millbrook Courier\nHERALD_MAIL__SMTP__HOST=smtp.example.org\n",
    );
    let out = ws.herald(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("/.env line 2: cannot read `HERALD_SITE__NAME=The Millbrook Courier`: quote a value"),
        "{text}"
    );
}

#[test]
fn a_template_error_is_told_once_with_its_line_and_the_field_by_name() {
    let config = base_config(&file_mail())
        + &crate::support::job_toml("weekly", "0 7 * * 1")
        + &crate::support::job_toml("monthly", "0 7 1 * *");
    let ws = Workspace::new(&config);
    ws.write(
        "templates/digest.txt.hbs",
        "Hello\n{{#each articles}}{{title}}{{/each}}\nSummary: {{article.summary}}\n",
    );
    let out = ws.herald(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("article.summary").count(),
        1,
        "once, though three jobs use it:\n{err}"
    );
    assert!(
        err.contains("templates/digest.txt.hbs")
            && err.contains("line 3, column 10: `article.summary` is not a field this template is given"),
        "{err}"
    );
    assert!(!err.contains("Some("), "{err}");
}

#[test]
fn a_cron_mistake_is_told_in_plain_words() {
    let ws = Workspace::new(
        &base_config(&file_mail()).replace("schedule = \"0 7 * * *\"", "schedule = \"0 8 * * SATURDAY\""),
    );
    let out = ws.herald(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "jobs.\"daily\".schedule: \"0 8 * * SATURDAY\" is not a valid cron line: day of week: \"SATURDAY\" is not a day name (SUN-SAT)"
        ),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_in_one_run_each_from_where_it_came() {
    let config = base_config("[mail]\ntransport = \"file\"\nmax_conections = 4\n")
        .replace("schedule = \"0 7 * * *\"", "schedule = \"0 8 * * SATURDAY\"")
        .replace("timezone = \"Europe/London\"", "timezone = \"Europe/Londn\"")
        .replace("[[lists]]\n", "[[lists]]\ncolour = \"blue\"\n")
        + "\n[web]\nlisten = \"everywhere\"\n";
    let ws = Workspace::new(&config);
    let out = ws
        .command(&["check"])
        .env("HERALD_MAIL__SMTP__HOSTNAME", "smtp.example.org")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "invalid configuration (6 problems)",
        "config/herald.toml: mail.max_conections: unknown key",
        "config/herald.toml: lists[0].colour: unknown key",
        "environment HERALD_MAIL__SMTP__HOSTNAME: mail.smtp.hostname: unknown key",
        "config/herald.toml: jobs.\"daily\".schedule: \"0 8 * * SATURDAY\" is not a valid cron line: day of week",
        "config/herald.toml: jobs.\"daily\".timezone: \"Europe/Londn\" is not an IANA time zone",
        "config/herald.toml: web.listen: \"everywhere\" is not an address",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn check_live_tries_the_store_and_each_source_and_warns_about_renames() {
    let dead = crate::support::free_port();
    let config = base_config(&file_mail())
        + &format!(
            "\n[[sources]]\nname = \"wire\"\ntype = \"feed\"\nurl = \"http://127.0.0.1:{dead}/feed.xml\"\ntimeout_secs = 2\n"
        );
    let ws = Workspace::new(&config);
    // As written: under TEST_STORE=postgres the store line names a database.
    let config = std::fs::read_to_string(ws.path().join("config/herald.toml")).unwrap();
    ws.subscribers(2);
    ws.write(
        "articles/ferry.txt",
        &crate::support::article_txt("Ferry returns", "ferry"),
    );
    ws.herald(&["digest", "daily"]);
    ws.write(
        "articles/market.txt",
        &crate::support::article_txt("Market moves", "market"),
    );

    // The job and the list renamed in the file.
    ws.write(
        "config/herald.toml",
        &config
            .replace("name = \"daily\"", "name = \"morning\"")
            .replace("name = \"readers\"", "name = \"gazette\"")
            .replace("list = \"readers\"", "list = \"gazette\""),
    );
    let out = ws.herald(&["check", "--live"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a dead feed fails the live check: {}",
        show(&out)
    );
    let text = show(&out);
    for expected in [
        ": ok, schema up to date",
        "source desk: ok, 2 article(s)",
        "ERROR: source wire: ",
        "WARNING: the store has 2 active subscriber(s) on list \"readers\", which the configuration no longer has",
        "mail.transport is \"file\": no SMTP server to check",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }

    // Only the job renamed: its first edition would hold what came since the list's last one.
    ws.write(
        "config/herald.toml",
        &config.replace("name = \"daily\"", "name = \"morning\""),
    );
    ws.herald(&["ingest"]);
    let text = show(&ws.herald(&["check", "--live"]));
    assert!(
        text.contains("WARNING: job morning has never made an edition, but list readers had one at")
            && text.contains("by a job no longer configured")
            && text.contains("would now hold 1 of the articles stored so far"),
        "{text}"
    );
}

//! The main job through the file transport: what lands in the outbox, once.

use std::path::Path;

use mail_parser::MessageParser;

use crate::support::{Workspace, article_txt, base_config, file_mail, show, stdout};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_readme_command_runs_the_main_job_on_embedded_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["config", "templates", "samples"] {
        copy_tree(&root.join(sub), &dir.path().join(sub));
    }
    let run = || {
        std::process::Command::new(crate::support::HERALD)
            .args(["digest", "weekly"])
            .current_dir(dir.path())
            .env_remove("HERALD_CONFIG")
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.contains("source newsroom: 7 new"), "{text}");
    assert!(text.contains("seeded 5 subscriber(s)"), "{text}");
    assert!(
        text.contains("edition #1: 6 article(s) for 5 recipient(s)"),
        "the 2019 archive piece stays out: {text}"
    );
    assert!(text.contains("deliveries: 5 sent"), "{text}");

    let outbox: Vec<_> = std::fs::read_dir(dir.path().join("data/outbox"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(outbox.len(), 5);
    for entry in outbox {
        let bytes = std::fs::read(entry.path()).unwrap();
        let message = MessageParser::default()
            .parse(&bytes)
            .expect("a complete RFC 5322 message");
        assert!(
            message
                .subject()
                .unwrap()
                .starts_with("The Millbrook Courier: 6 new stories")
        );
        let body = message.body_text(0).unwrap();
        assert!(
            body.contains("The Tanners' footbridge over the Mill Race reopened"),
            "{body}"
        );
        for junk in [
            "staff training day",
            "priya.natarajan@",
            "@priya",
            "Comments are open",
            "12 comments",
            "Share this story",
            "@millbrookcourier",
        ] {
            assert!(!body.contains(junk), "boilerplate {junk:?} leaked into:\n{body}");
        }
    }

    let again = run();
    assert!(again.status.success(), "{}", show(&again));
    let text = stdout(&again);
    assert!(text.contains("0 new, 0 updated, 7 unchanged"), "{text}");
    assert!(text.contains("no new articles since the last edition"), "{text}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("data/outbox")).unwrap().count(),
        5,
        "nothing is sent twice"
    );
}

fn workspace_with_readers(n: usize) -> Workspace {
    let ws = Workspace::new(&base_config(&file_mail()));
    ws.subscribers(n);
    ws
}

#[test]
fn fewer_articles_than_min_articles_wait_for_the_next_run() {
    let config = base_config(&file_mail()).replace(
        "[[jobs]]\nname = \"daily\"",
        "[[jobs]]\nmin_articles = 3\nname = \"daily\"",
    );
    let ws = Workspace::new(&config);
    ws.subscribers(2);
    ws.write(
        "articles/one.txt",
        &article_txt("Harbour wall repaired", "harbour wall"),
    );
    ws.write("articles/two.txt", &article_txt("Library hours extended", "library"));
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stdout(&out).contains(
            "2 new article(s), fewer than min_articles (3): no edition, they wait for the next run: nothing to send"
        ),
        "{}",
        show(&out)
    );
    assert!(ws.outbox().is_empty(), "no edition, nothing sent");
    let dry = ws.herald(&["digest", "daily", "--dry-run"]);
    assert!(
        stdout(&dry).contains("dry run: 2 new article(s), fewer than min_articles (3)"),
        "{}",
        show(&dry)
    );

    ws.write("articles/three.txt", &article_txt("Ferry returns in spring", "ferry"));
    let out = ws.herald(&["digest", "daily"]);
    assert!(
        stdout(&out).contains("edition #1: 3 article(s) for 2 recipient(s)"),
        "the two that waited go out with the third: {}",
        show(&out)
    );
    assert_eq!(ws.outbox().len(), 2);
    let again = ws.herald(&["digest", "daily"]);
    assert!(
        stdout(&again).contains("no new articles since the last edition"),
        "{}",
        show(&again)
    );
}

#[test]
fn an_edited_article_is_updated_in_place_and_not_sent_again() {
    let ws = workspace_with_readers(2);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    let first = ws.herald(&["digest", "daily"]);
    assert!(first.status.success(), "{}", show(&first));
    assert_eq!(ws.outbox().len(), 2);

    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry timetable"));
    ws.write("articles/market.txt", &article_txt("Market moves", "market"));
    let second = ws.herald(&["digest", "daily"]);
    let text = stdout(&second);
    assert!(text.contains("1 new, 1 updated"), "{text}");
    assert!(text.contains("edition #2: 1 article(s) for 2 recipient(s)"), "{text}");
    let outbox = ws.outbox();
    assert_eq!(outbox.len(), 4);
    let latest = MessageParser::default()
        .parse(
            &outbox
                .iter()
                .find(|(p, _)| p.to_string_lossy().contains("-e2-"))
                .unwrap()
                .1,
        )
        .unwrap();
    let body = latest.body_text(0).unwrap();
    assert!(
        body.contains("Market moves") && !body.contains("Ferry returns"),
        "{body}"
    );
}

#[test]
fn history_older_than_the_lookback_does_not_flood_the_first_edition() {
    let ws = workspace_with_readers(1);
    let recent = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    ws.write("articles/old.md", "+++\ntitle = \"Old news\"\npublished = 2024-01-01T00:00:00Z\n+++\nThe old story has plenty of words in its only paragraph here.\n");
    ws.write("articles/new.md", &format!("---\ntitle: Fresh news\npublished: {recent}\n---\nThe fresh story has plenty of words in its only paragraph here.\n"));
    let out = ws.herald(&["digest", "daily"]);
    let text = stdout(&out);
    assert!(
        text.contains("2 new") && text.contains("edition #1: 1 article(s)"),
        "{}",
        show(&out)
    );
}

#[test]
fn dry_run_renders_but_sends_and_records_nothing() {
    // Four readers: one chose the weekly job's cadence, so the daily edition goes to three.
    let ws = Workspace::new(&(base_config(&file_mail()) + &crate::support::job_toml("weekly", "0 7 * * 1")));
    ws.subscribers(4);
    let url = ws.store_url();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async move {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            sqlx::query("UPDATE subscribers SET cadence = 'weekly' WHERE email = 'reader3@example.org'")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        })
    })
    .join()
    .unwrap();
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    let out = ws.herald(&["digest", "daily", "--dry-run"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.contains("would hold 1 article(s) for 3 recipient(s) (active, not suppressed, of the job's cadence)"),
        "the real run's selection: {text}"
    );
    assert!(
        text.contains("Ferry returns") && text.contains("nothing sent, nothing recorded"),
        "{text}"
    );
    assert!(ws.outbox().is_empty());
    let deliveries = stdout(&ws.herald(&["deliveries"]));
    assert!(deliveries.contains("all jobs: 0 delivery record(s)"), "{deliveries}");
    let real = stdout(&ws.herald(&["digest", "daily"]));
    assert!(
        real.contains("1 new") && real.contains("3 sent"),
        "the dry run stored nothing: {real}"
    );
}

#[test]
fn a_test_copy_goes_to_one_address_only() {
    let ws = workspace_with_readers(3);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    let out = ws.herald(&["digest", "daily", "--to", "editor@gazette.example.org"]);
    assert!(out.status.success(), "{}", show(&out));
    let outbox = ws.outbox();
    assert_eq!(outbox.len(), 1);
    let message = MessageParser::default().parse(&outbox[0].1).unwrap();
    assert_eq!(
        message.to().unwrap().first().unwrap().address().unwrap(),
        "editor@gazette.example.org"
    );
    assert!(message.subject().unwrap().starts_with("[Test] Test Gazette: 1 new"));
    assert!(stdout(&ws.herald(&["deliveries"])).contains("0 delivery record(s)"));

    let bad = ws.herald(&["digest", "daily", "--to", "not an address"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not an address"),
        "{}",
        show(&bad)
    );
}

#[test]
fn preview_renders_every_format_without_sending() {
    let ws = workspace_with_readers(1);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    let html = ws.herald(&["preview", "daily"]);
    assert!(
        stdout(&html).contains("<h2") && stdout(&html).contains("Hello Reader 0"),
        "{}",
        show(&html)
    );
    let text = ws.herald(&["preview", "daily", "--format", "text"]);
    assert!(
        stdout(&text).contains("Read more: https://gazette.example.org/ferry-returns"),
        "{}",
        show(&text)
    );
    let eml = ws.herald(&["preview", "daily", "--format", "eml", "--out", "preview.eml"]);
    assert!(eml.status.success(), "{}", show(&eml));
    let bytes = std::fs::read(ws.path().join("preview.eml")).unwrap();
    assert!(
        MessageParser::default()
            .parse(&bytes)
            .unwrap()
            .subject()
            .unwrap()
            .contains("1 new")
    );
    assert!(ws.outbox().is_empty());
}

#[test]
fn hostile_titles_are_plain_text_on_one_line() {
    let ws = workspace_with_readers(1);
    ws.write(
        "articles/evil.json",
        r#"{"title": "Bad\r\nBcc: victim@example.org <script>alert(1)</script>", "body": "An ordinary story paragraph with enough words <b>to</b> count as prose."}"#,
    );
    ws.write(
        "articles/budget.md",
        "---\ntitle: 'Council <script>alert(1)</script> votes &amp; \"reviews\" budget <b>today</b>'\n---\n\n\
         The council voted on Tuesday to review the harbour budget &amp; its reserve fund.\n",
    );
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    let (_, bytes) = &ws.outbox()[0];
    let message = MessageParser::default().parse(bytes).unwrap();
    assert!(message.header("Bcc").is_none());
    assert!(message.bcc().is_none());
    let subject = message.subject().unwrap();
    let html = message.body_html(0).unwrap();
    let text = message.body_text(0).unwrap();
    for part in [subject, &html, &text] {
        assert!(!part.contains("script") && !part.contains("alert(1)"), "{part}");
        assert!(!part.contains("<b>"), "{part}");
    }
    assert!(text.contains("Bad Bcc: victim@example.org"), "one line, plain: {text}");
    assert!(text.contains("Council votes & \"reviews\" budget today"), "{text}");
    assert!(text.contains("budget & its reserve fund"), "{text}");
    assert!(
        html.contains("Council votes &amp; &quot;reviews&quot; budget today")
            || html.contains("Council votes &amp; \"reviews\" budget today"),
        "escaped once in HTML: {html}"
    );
}

#[test]
fn unreadable_article_files_are_reported_and_the_rest_still_go_out() {
    let ws = workspace_with_readers(1);
    ws.write("articles/good.txt", &article_txt("Good story", "harbour"));
    ws.write("articles/broken.md", "+++\ntitle = \"Never closed\"\n");
    ws.write("articles/bad.json", "{\"title\": ");
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.contains("1 new, 0 updated, 0 unchanged, 2 skipped"), "{text}");
    assert!(
        text.contains("articles/broken.md: the front matter is not closed with +++"),
        "{text}"
    );
    assert!(text.contains("articles/bad.json: bad JSON"), "{text}");
    assert!(text.contains("1 sent"), "{text}");
}

/// Runs `herald digest daily` and returns its output.
fn digest(ws: &Workspace) -> String {
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    stdout(&out)
}

#[test]
fn edits_that_operators_make_never_send_a_story_twice() {
    let ws = Workspace::new(&base_config(&file_mail()));
    ws.subscribers(2);
    ws.write(
        "articles/ferry.txt",
        &article_txt("Ferry retruns to the harbour", "ferry"),
    );
    let first = digest(&ws);
    assert!(first.contains("source desk: 1 new"), "{first}");
    assert_eq!(ws.outbox().len(), 2);

    // A typo fixed in the headline: the same article, updated in place.
    ws.write(
        "articles/ferry.txt",
        &article_txt("Ferry returns to the harbour", "ferry"),
    );
    let fixed = digest(&ws);
    assert!(fixed.contains("source desk: 0 new, 1 updated"), "{fixed}");
    assert!(fixed.contains("no new articles"), "{fixed}");

    // The site moved: folder articles keep their identity.
    let config = std::fs::read_to_string(ws.path().join("config/herald.toml")).unwrap();
    ws.write(
        "config/herald.toml",
        &config.replace("https://gazette.example.org/", "https://news.gazette.example.org/"),
    );
    let moved = digest(&ws);
    assert!(moved.contains("source desk: 0 new"), "{moved}");
    assert!(moved.contains("no new articles"), "{moved}");

    // The job renamed: its first edition does not reach back before the list's last one.
    let config = std::fs::read_to_string(ws.path().join("config/herald.toml")).unwrap();
    ws.write(
        "config/herald.toml",
        &config.replace("name = \"daily\"", "name = \"morning\""),
    );
    let out = ws.herald(&["digest", "morning"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("no new articles"), "{}", stdout(&out));

    assert_eq!(ws.outbox().len(), 2, "the story went out once");
}

#[test]
fn a_story_paragraph_ending_in_a_plug_keeps_its_story_and_an_empty_excerpt_is_warned() {
    let ws = Workspace::new(&base_config(&file_mail()));
    ws.subscribers(1);
    ws.write(
        "articles/ferry.txt",
        "Ferry returns to Millbrook\n\nThe ferry returns to Millbrook harbour on Monday after a winter of repairs. Follow us on Twitter @gazette\n",
    );
    ws.write(
        "articles/plug.txt",
        "Our new podcast\n\nFollow us on Mastodon at @gazette@social.example. 12 comments\n",
    );
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(
        warned.contains("the article has no excerpt") && warned.contains("Our new podcast"),
        "{warned}"
    );
    assert!(!warned.contains("Ferry returns to Millbrook"), "{warned}");
    let (_, raw) = &ws.outbox()[0];
    let message = MessageParser::default().parse(raw).unwrap();
    let text = message.body_text(0).unwrap();
    assert!(
        text.contains("The ferry returns to Millbrook harbour on Monday after a winter of repairs."),
        "{text}"
    );
    assert!(!text.contains("@gazette"), "{text}");
}

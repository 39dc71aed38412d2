//! The public archive: a list's editions as pages and an Atom feed, the
//! "view in your browser" link in each digest, caching answers, and nothing
//! of any subscriber in any of it.

use mail_parser::MessageParser;

use crate::support::{Workspace, article_txt, base_config, file_mail, job_toml, settings_from, show, stdout};
use crate::web::{client, start_with};

/// Subscribers whose every value is distinctive, to be searched for.
const READERS: &str = "email,name,city\n\
    zebediah.quartermaine@example.org,Zebediah Quartermaine,Quillsbury\n\
    ottoline.vexworth@example.org,Ottoline Vexworth,Marrowfen\n";

fn archived_workspace() -> (Workspace, herald::app::App) {
    let ws = Workspace::new(&base_config(&file_mail()));
    let config = base_config(&file_mail()).replace(
        "title = \"Gazette Daily\"\n",
        "title = \"Gazette Daily\"\narchive = true\n",
    );
    let app = settings_from(&ws, &config, &job_toml("daily", "0 7 * * *"));
    ws.write("subs.csv", READERS);
    let out = ws.herald(&["subscribers", "import", "subs.csv"]);
    assert!(out.status.success(), "{}", show(&out));
    (ws, app)
}

#[tokio::test]
async fn archived_editions_are_public_pages_and_a_feed_without_a_trace_of_any_reader() {
    let (ws, app) = archived_workspace();
    ws.write("articles/ferry.txt", &article_txt("Ferry returns in spring", "ferry"));
    let out = ws.herald(&["digest", "daily"]);
    assert!(stdout(&out).contains("edition #1"), "{}", show(&out));
    ws.write("articles/library.txt", &article_txt("Library opens late", "library"));
    let out = ws.herald(&["digest", "daily"]);
    assert!(stdout(&out).contains("edition #2"), "{}", show(&out));

    // Each digest links to its own archive page.
    let mut links = Vec::new();
    for (_, raw) in ws.outbox() {
        let message = MessageParser::default().parse(&raw).unwrap();
        let text = message.body_text(0).unwrap().to_string();
        let link = text
            .lines()
            .find_map(|l| l.strip_prefix("View in your browser: "))
            .unwrap_or_else(|| panic!("no archive link in:\n{text}"))
            .to_string();
        assert!(message.body_html(0).unwrap().contains(&link));
        links.push(link);
    }
    links.sort();
    links.dedup();
    assert_eq!(
        links.len(),
        2,
        "one page per edition, the same for every reader: {links:?}"
    );

    let site = start_with(app).await;
    let http = client();
    let local = |url: &str| url.replace("https://gazette.example.org", &site.base);
    let mut everything = String::new();

    let index = http.get(format!("{}/archive/readers", site.base)).send().await.unwrap();
    assert_eq!(index.status(), 200);
    let etag = index.headers()["etag"].to_str().unwrap().to_string();
    let index_body = index.text().await.unwrap();
    assert_eq!(
        index_body.matches("Test Gazette: 1 new").count(),
        2,
        "both editions: {index_body}"
    );
    for link in &links {
        assert!(
            index_body.contains(link.as_str()),
            "the index links {link}: {index_body}"
        );
    }
    everything.push_str(&index_body);
    let again = http
        .get(format!("{}/archive/readers", site.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304, "unchanged since the reader's copy");
    assert!(again.text().await.unwrap().is_empty());

    for link in &links {
        let page = http.get(local(link)).send().await.unwrap();
        assert_eq!(page.status(), 200, "{link}");
        let policy = page.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(
            policy.contains("img-src https:") && policy.contains("frame-ancestors 'none'"),
            "{policy}"
        );
        let modified = page.headers()["last-modified"].to_str().unwrap().to_string();
        let body = page.text().await.unwrap();
        assert!(body.contains("Hello reader,"), "filled for no one: {body}");
        assert!(
            body.contains("/subscribe/readers"),
            "the readers' own links lead to the sign-up page"
        );
        everything.push_str(&body);
        let since = http
            .get(local(link))
            .header("if-modified-since", &modified)
            .send()
            .await
            .unwrap();
        assert_eq!(since.status(), 304, "{link}");
    }

    let feed = http
        .get(format!("{}/archive/readers/feed.atom", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    assert!(
        feed.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/atom+xml")
    );
    let atom = feed.text().await.unwrap();
    everything.push_str(&atom);
    let parsed = feed_rs::parser::parse(atom.as_bytes()).expect("valid Atom");
    assert_eq!(parsed.feed_type, feed_rs::model::FeedType::Atom);
    assert_eq!(parsed.title.unwrap().content, "Gazette Daily");
    assert_eq!(parsed.entries.len(), 2);
    for entry in &parsed.entries {
        assert!(entry.updated.is_some() && entry.title.is_some());
        assert!(links.contains(&entry.links[0].href), "{:?}", entry.links);
    }

    // Not one byte of any reader: names, addresses, attributes, tokens, uids.
    let (subscribers, uids): (Vec<String>, Vec<String>) = {
        let list = site.store.subscribers("readers", None, 10).await.unwrap();
        (
            list.iter().map(|s| s.email.clone()).collect(),
            list.iter().map(|s| s.uid.clone()).collect(),
        )
    };
    assert_eq!(subscribers.len(), 2);
    let lowered = everything.to_lowercase();
    for secret in [
        "zebediah",
        "quartermaine",
        "quillsbury",
        "ottoline",
        "vexworth",
        "marrowfen",
        "token=",
    ]
    .into_iter()
    .map(String::from)
    .chain(uids)
    {
        assert!(
            !lowered.contains(&secret.to_lowercase()),
            "{secret:?} is in the archive"
        );
    }
}

#[tokio::test]
async fn a_list_not_archived_has_no_archive_and_its_digests_no_browser_link() {
    let ws = Workspace::new(&base_config(&file_mail()));
    let app = settings_from(&ws, &base_config(&file_mail()), &job_toml("daily", "0 7 * * *"));
    ws.subscribers(1);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns in spring", "ferry"));
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    let (_, raw) = &ws.outbox()[0];
    let text = MessageParser::default()
        .parse(raw)
        .unwrap()
        .body_text(0)
        .unwrap()
        .to_string();
    assert!(!text.contains("View in your browser"), "{text}");

    let site = start_with(app).await;
    for path in [
        "/archive/readers",
        "/archive/readers/feed.atom",
        "/archive/readers/0123456789abcdef",
    ] {
        let answer = client().get(format!("{}{path}", site.base)).send().await.unwrap();
        assert_eq!(answer.status(), 404, "{path}");
    }
}

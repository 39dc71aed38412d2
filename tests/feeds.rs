//! Feed sources over HTTP: RSS, Atom and JSON Feed, conditional GET, the byte
//! cap, edits, and one broken feed never stopping the others or losing what
//! was stored.

use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{Workspace, base_config, file_mail, show};

fn rss(items: &[(&str, &str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(guid, title, when)| {
            format!(
                "<item><guid isPermaLink=\"false\">{guid}</guid><title>{title}</title>\
                 <link>https://feeds.example.org/{guid}?utm_source=rss</link><pubDate>{when}</pubDate>\
                 <description>&lt;p&gt;The {title} story is told in full in this paragraph of the feed.&lt;/p&gt;</description></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Wire</title><link>https://feeds.example.org/</link><description>d</description>{items}</channel></rss>"
    )
}

const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom desk</title><id>urn:desk</id><updated>2026-11-01T00:00:00Z</updated>
<entry><title>Atom entry on the canal</title><id>urn:desk:canal</id><link href="https://atom.example.org/canal"/>
<updated>2026-11-01T09:00:00Z</updated><author><name>Rosa Vine</name></author>
<content type="html">&lt;p&gt;The canal towpath reopens after months of repair work by volunteers.&lt;/p&gt;</content></entry></feed>"#;

const JSON_FEED: &str = r#"{"version": "https://jsonfeed.org/version/1.1", "title": "JSON desk",
"items": [{"id": "j-1", "url": "https://json.example.org/orchard", "title": "Orchard harvest festival",
"content_text": "The community orchard held its first harvest festival with apple pressing for all.",
"date_published": "2026-11-02T10:00:00Z", "tags": ["food"]}]}"#;

fn feed_config(feeds: &[(&str, String)], extra: &str) -> String {
    let mut config = base_config(&file_mail()).replace(
        "[[sources]]\nname = \"desk\"\ntype = \"folder\"\npath = \"articles\"\n",
        "",
    );
    for (name, url) in feeds {
        config.push_str(&format!(
            // Pages are not served but by the test about pictures (`extra` can set it back).
            "\n[[sources]]\nname = \"{name}\"\ntype = \"feed\"\nurl = \"{url}\"\npage_images = false\n{extra}\n"
        ));
    }
    config
}

async fn herald(ws: &Workspace, args: &[&str]) -> std::process::Output {
    tokio::process::Command::from(ws.command(args)).output().await.unwrap()
}

async fn article_count(ws: &Workspace) -> i64 {
    let store = ws.store().await;
    store.article_count().await.unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn rss_atom_and_json_feed_are_read_and_conditional_get_is_used() {
    let server = MockServer::start().await;
    let body = rss(&[
        ("a1", "Harbour wall", "Mon, 02 Nov 2026 08:00:00 GMT"),
        ("a2", "Bus timetable", "Mon, 02 Nov 2026 09:00:00 GMT"),
    ]);
    Mock::given(method("GET"))
        .and(path("/rss"))
        .and(header("If-None-Match", "\"v1\""))
        .respond_with(ResponseTemplate::new(304))
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/rss"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("ETag", "\"v1\"")
                .set_body_string(body),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/atom"))
        .respond_with(ResponseTemplate::new(200).set_body_string(ATOM))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(JSON_FEED))
        .mount(&server)
        .await;
    let uri = server.uri();
    let ws = Workspace::new(&feed_config(
        &[
            ("wire", format!("{uri}/rss")),
            ("atom", format!("{uri}/atom")),
            ("json", format!("{uri}/json")),
        ],
        "",
    ));

    let first = herald(&ws, &["ingest"]).await;
    assert!(first.status.success(), "{}", show(&first));
    let text = stdout(&first);
    assert!(text.contains("source wire: 2 new"), "{text}");
    assert!(
        text.contains("+ Harbour wall <https://feeds.example.org/a1>"),
        "tracking parameters dropped: {text}"
    );
    assert!(
        text.contains("source atom: 1 new") && text.contains("Atom entry on the canal"),
        "{text}"
    );
    assert!(
        text.contains("source json: 1 new") && text.contains("Orchard harvest festival"),
        "{text}"
    );

    let second = herald(&ws, &["ingest"]).await;
    let text = stdout(&second);
    assert!(text.contains("source wire: not modified since the last poll"), "{text}");
    assert!(text.contains("source atom: 0 new, 0 updated, 1 unchanged"), "{text}");
    assert_eq!(article_count(&ws).await, 4);
}

#[tokio::test]
async fn a_broken_feed_is_reported_and_neither_stops_the_others_nor_loses_stored_articles() {
    let server = MockServer::start().await;
    let good = rss(&[("g1", "Good one", "Mon, 02 Nov 2026 08:00:00 GMT")]);
    Mock::given(method("GET"))
        .and(path("/flaky"))
        .respond_with(ResponseTemplate::new(200).set_body_string(good.clone()))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/flaky"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<rss><channel><item><title>cut off"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/gone"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/good"))
        .respond_with(ResponseTemplate::new(200).set_body_string(rss(&[(
            "s1",
            "Steady",
            "Mon, 02 Nov 2026 08:00:00 GMT",
        )])))
        .mount(&server)
        .await;
    let uri = server.uri();
    let ws = Workspace::new(&feed_config(
        &[
            ("flaky", format!("{uri}/flaky")),
            ("gone", format!("{uri}/gone")),
            ("good", format!("{uri}/good")),
        ],
        "",
    ));
    let first = herald(&ws, &["ingest"]).await;
    assert_eq!(
        first.status.code(),
        Some(1),
        "a failed source makes ingest fail: {}",
        show(&first)
    );
    assert_eq!(article_count(&ws).await, 2);

    let second = herald(&ws, &["ingest"]).await;
    let text = stdout(&second);
    assert!(
        text.contains(&format!(
            "source flaky: FAILED: {uri}/flaky is not a feed Herald can read"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("source gone: FAILED: {uri}/gone answered HTTP 404")),
        "{text}"
    );
    assert!(text.contains("source good: 0 new, 0 updated, 1 unchanged"), "{text}");
    assert_eq!(
        article_count(&ws).await,
        2,
        "the broken feed lost nothing already stored"
    );

    // A digest still goes out with what the others gave, and says the run was not clean.
    let digest = herald(&ws, &["digest", "daily"]).await;
    assert_eq!(digest.status.code(), Some(1), "{}", show(&digest));
    assert!(
        show(&digest).contains("ERROR: source(s) failed: flaky, gone"),
        "{}",
        show(&digest)
    );
}

#[tokio::test]
async fn a_feed_over_the_byte_cap_is_refused() {
    let server = MockServer::start().await;
    let items: Vec<(String, String)> = (0..200).map(|i| (format!("id{i}"), format!("Item {i}"))).collect();
    let items: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|(g, t)| (g.as_str(), t.as_str(), "Mon, 02 Nov 2026 08:00:00 GMT"))
        .collect();
    Mock::given(method("GET"))
        .and(path("/big"))
        .respond_with(ResponseTemplate::new(200).set_body_string(rss(&items)))
        .mount(&server)
        .await;
    let ws = Workspace::new(&feed_config(
        &[("big", format!("{}/big", server.uri()))],
        "max_bytes = 4096",
    ));
    let out = herald(&ws, &["ingest"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stdout(&out).contains("is larger than max_bytes (4096 bytes)"),
        "{}",
        show(&out)
    );
    assert_eq!(article_count(&ws).await, 0);
}

#[tokio::test]
async fn an_edited_feed_item_updates_in_place() {
    let server = MockServer::start().await;
    let before = rss(&[("e1", "Original headline", "Mon, 02 Nov 2026 08:00:00 GMT")]);
    let after = rss(&[("e1", "Corrected headline", "Mon, 02 Nov 2026 08:00:00 GMT")]);
    Mock::given(method("GET"))
        .and(path("/f"))
        .respond_with(ResponseTemplate::new(200).set_body_string(before))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/f"))
        .respond_with(ResponseTemplate::new(200).set_body_string(after))
        .mount(&server)
        .await;
    let ws = Workspace::new(&feed_config(&[("f", format!("{}/f", server.uri()))], ""));
    assert!(stdout(&herald(&ws, &["ingest"]).await).contains("1 new"));
    let out = herald(&ws, &["ingest"]).await;
    assert!(stdout(&out).contains("source f: 0 new, 1 updated"), "{}", show(&out));
    assert_eq!(article_count(&ws).await, 1);
}

#[tokio::test]
async fn a_feed_item_without_a_picture_gets_the_one_its_page_names_read_once() {
    let server = MockServer::start().await;
    let uri = server.uri();
    let feed = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Wire</title><link>{uri}/</link><description>d</description>\
         <item><guid>a</guid><title>Ferry returns</title><link>{uri}/stories/a</link><pubDate>Mon, 02 Nov 2026 09:00:00 GMT</pubDate>\
         <enclosure url=\"https://cdn.example.org/ferry.jpg\" type=\"image/jpeg\" length=\"1\"/>\
         <description>The ferry returns to the harbour on Monday after its winter repairs.</description></item>\
         <item><guid>b</guid><title>Orchid found</title><link>{uri}/stories/b</link><pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate>\
         <description>A rare orchid was found growing on the old railway embankment.</description></item>\
         <item><guid>c</guid><title>Market moves</title><link>{uri}/stories/c</link><pubDate>Mon, 02 Nov 2026 11:00:00 GMT</pubDate>\
         <description>The Saturday market moves to the square while the hall is repaired.</description></item>\
         </channel></rss>"
    );
    Mock::given(path("/feed.xml"))
        .respond_with(ResponseTemplate::new(200).set_body_string(feed))
        .mount(&server)
        .await;
    Mock::given(path("/stories/b"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "<!doctype html><html><head><title>Orchid</title>\
                 <meta property=\"og:image\" content=\"/pictures/orchid.jpg?w=1200&amp;h=630\"></head>\
                 <body><p>The story.</p></body></html>",
            "text/html; charset=utf-8",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/stories/c"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/stories/a"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let config = feed_config(&[("wire", format!("{uri}/feed.xml"))], "allow_private_redirects = true")
        .replace("page_images = false\n", "");
    let ws = Workspace::new(&config);

    for _ in 0..2 {
        let out = herald(&ws, &["ingest"]).await;
        assert!(out.status.success(), "{}", show(&out));
    }
    let store = ws.store().await;
    let identities: Vec<String> = ["a", "b", "c"].iter().map(|g| format!("id:wire:{g}")).collect();
    let images = store.stored_images(&identities).await.unwrap();
    store.close().await;
    assert_eq!(
        images["id:wire:a"].as_deref(),
        Some("https://cdn.example.org/ferry.jpg"),
        "the feed's own picture, no page read"
    );
    assert_eq!(
        images["id:wire:b"],
        Some(format!("{uri}/pictures/orchid.jpg?w=1200&h=630")),
        "og:image, resolved and decoded"
    );
    assert_eq!(images["id:wire:c"], None, "a page that cannot be read leaves none");
    // Each page read once over two polls (the mocks' expectations, checked on drop).
}

//! Snapshots of what a subscriber sees: the rendered digest, HTML and text.

use chrono::{DateTime, Utc};
use herald::mail::message::{Addressee, EditionParts};
use herald::store::StoredArticle;

use crate::support::{Workspace, base_config, file_mail};

fn article(id: i64, title: &str, excerpt: &str, author: Option<&str>, published: &str) -> StoredArticle {
    StoredArticle {
        id,
        identity: format!("url:https://gazette.example.org/{id}"),
        source: "desk".into(),
        url: format!("https://gazette.example.org/stories/{id}"),
        title: title.into(),
        author: author.map(str::to_string),
        excerpt: excerpt.into(),
        tags: "[\"town\"]".into(),
        image: None,
        published_at: DateTime::parse_from_rfc3339(published).unwrap().to_utc(),
    }
}

fn rendered() -> (EditionParts, String, String) {
    let articles = vec![
        article(
            2,
            "Council backs the <em>new</em> ferry & pier",
            "Councillors voted 9-2 to fund repairs to the pier.",
            Some("Jo Reed"),
            "2026-03-01T18:30:00Z",
        ),
        article(
            1,
            "Library opens late on Thursdays",
            "A six-month trial starts in April.",
            None,
            "2026-03-01T09:00:00Z",
        ),
    ];
    render_for_ana("", &articles)
}

/// The digest of `articles` as Ana gets it (HTML and text), by the job
/// "daily" with `job_keys` added to its table.
pub(crate) fn render_for_ana(job_keys: &str, articles: &[StoredArticle]) -> (EditionParts, String, String) {
    let (_ws, app) = loaded(job_keys);
    let job = app.settings.job("daily").unwrap();
    let digest = job.digest().unwrap();
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-03-02T07:00:00Z").unwrap().into();
    let parts = herald::digest::render(&app, job, digest, articles, now, None).unwrap();
    let edition = EditionParts::new(
        1,
        "abc",
        "readers",
        "Gazette Daily",
        &parts.subject,
        &parts.html,
        &parts.text,
    );
    let to = Addressee {
        email: "ana@example.org",
        name: Some("Ana <Ruiz>"),
        uid: "u1",
        attributes: Default::default(),
        unsubscribe_url: "https://gazette.example.org/unsubscribe?token=1.k.u1.sig".into(),
        preferences_url: "https://gazette.example.org/preferences?token=1.k.u1.sig".into(),
        return_path: None,
    };
    let html = edition.html_for(&to);
    let text = edition.text_for(&to);
    (edition, html, text)
}

/// Three stories from two sources, two with https pictures and one whose
/// picture is plain http (never shown).
pub(crate) fn stories_with_pictures() -> Vec<StoredArticle> {
    let mut ferry = article(
        3,
        "Harbour ferry returns after winter repairs",
        "The Millbrook ferry carries passengers again from Monday, ending a four-month pause for hull repairs.",
        Some("Ana Perez"),
        "2026-03-01T18:30:00Z",
    );
    ferry.image = Some("https://images.gazette.example.org/ferry.svg".into());
    let mut orchid = article(
        2,
        "Rare orchid found on a railway embankment",
        "Botanists confirmed the first sighting of the ghost orchid in the county for sixty years.",
        None,
        "2026-03-01T12:00:00Z",
    );
    orchid.image = Some("https://images.gazette.example.org/orchid.svg".into());
    let mut cricket = article(
        1,
        "Pellford win the county cricket title",
        "A boundary off the final ball gave Pellford their first title since 1987.",
        Some("Sam Lee"),
        "2026-03-01T09:00:00Z",
    );
    cricket.source = "sport".into();
    cricket.image = Some("http://images.gazette.example.org/cricket.svg".into());
    vec![ferry, orchid, cricket]
}

/// Each `<tag ...>` of `name` in `html`.
fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name} ");
    html.match_indices(&open)
        .map(|(at, _)| &html[at..at + html[at..].find('>').unwrap() + 1])
        .collect()
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    Some(&tag[at..at + tag[at..].find('"')?])
}

/// What mail clients need of the default digest: a table layout 600 px wide,
/// styles inlined and no external CSS or script, every picture https with
/// width, height and alt text, every link absolute, a hidden preheader from
/// the first story, and a table of contents when the stories come from more
/// than one source.
#[test]
fn the_default_digest_is_built_for_email_clients() {
    let (_, html, text) = render_for_ana("", &stories_with_pictures());

    let column = tags(&html, "table")
        .into_iter()
        .find(|t| attribute(t, "class") == Some("column"))
        .expect("a column table");
    assert_eq!(attribute(column, "width"), Some("600"), "{column}");
    assert_eq!(attribute(column, "role"), Some("presentation"), "{column}");
    assert!(!html.contains("<div class=\"article\""), "no div layout");
    for banned in ["<script", "<link", "@import", "javascript:", "<iframe", "<form"] {
        assert!(!html.to_lowercase().contains(banned), "{banned} in {html}");
    }
    for class in ["masthead", "greeting", "story", "title", "excerpt", "footer"] {
        assert!(
            html.contains(&format!("class=\"{class}\" style=\"")),
            "the {class} styles are inlined: {html}"
        );
    }
    let images = tags(&html, "img");
    assert_eq!(images.len(), 2, "the http picture is left out: {images:?}");
    for img in &images {
        assert!(attribute(img, "src").unwrap().starts_with("https://"), "{img}");
        assert!(
            attribute(img, "width").is_some_and(|w| w.parse::<u32>().is_ok()),
            "{img}"
        );
        assert!(
            attribute(img, "height").is_some_and(|h| h.parse::<u32>().is_ok()),
            "{img}"
        );
        assert!(attribute(img, "alt").is_some_and(|alt| !alt.is_empty()), "{img}");
    }
    assert!(attribute(images[0], "alt") == Some("Harbour ferry returns after winter repairs"));
    for a in tags(&html, "a") {
        let href = attribute(a, "href").unwrap();
        assert!(href.starts_with("https://"), "a link that is not absolute: {a}");
    }
    let preheader = &html[html.find("class=\"preheader\"").expect("a preheader")..];
    assert!(
        preheader[..preheader.find("</div>").unwrap()].contains("The Millbrook ferry carries passengers again"),
        "{preheader}"
    );
    assert!(html.contains("In this edition: desk (2) · sport (1)"), "{html}");
    assert!(
        html.find(">sport</td>").unwrap() > html.find("Rare orchid").unwrap(),
        "stories are grouped by source"
    );
    assert!(
        !text.contains("images.gazette.example.org"),
        "the text part has no pictures"
    );

    let (_, plain, _) = render_for_ana("show_images = false\n", &stories_with_pictures());
    assert!(tags(&plain, "img").is_empty(), "show_images = false: {plain}");
}

#[test]
fn the_digest_html_part() {
    let (_, html, _) = rendered();
    insta::assert_snapshot!(html);
}

#[test]
fn the_digest_text_part() {
    let (edition, _, text) = rendered();
    assert_eq!(edition.subject_preview(), "Test Gazette: 2 new");
    insta::assert_snapshot!(text);
}

/// A workspace and the configuration loaded from it, with its articles and templates.
fn loaded(job_keys: &str) -> (Workspace, herald::app::App) {
    let ws = Workspace::new(&base_config(&file_mail()));
    let root = ws.path().display().to_string();
    let config = base_config(&file_mail())
        .replace("path = \"articles\"", &format!("path = \"{root}/articles\""))
        .replace("name = \"daily\"\n", &format!("name = \"daily\"\n{job_keys}"))
        + &format!("\n[templates]\ndir = \"{root}/templates\"\n");
    ws.write("config/herald.toml", &config);
    let app = herald::app::App::load(&ws.path().join("config/herald.toml"), Vec::new()).expect("valid config");
    (ws, app)
}

const HEADERS: [&str; 12] = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "reply-to",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever a subscriber's name or an article's title holds (line breaks,
    /// header-like text, lines of dots), the message keeps its headers and
    /// its MIME structure, every line ends in CRLF, so nothing can be
    /// smuggled into the SMTP stream either, and no header line is longer
    /// than RFC 5322 allows, however long a name or a title.
    #[test]
    fn no_subscriber_or_article_value_adds_a_header_or_a_bare_line_break(
        name in "[a-zA-Z .:\r\n\t<>\"@=?-]{0,60}|[a-zA-Z \u{e9}]{900,1500}|[a-zA-Z]{900,1500}",
        title in "[a-zA-Z .:\r\n\t<>\"@=?-]{1,60}|[a-zA-Z \u{e9}]{900,1500}|[a-zA-Z]{900,1500}",
    ) {
        let (_ws, app) = loaded("");
        let job = app.settings.job("daily").unwrap();
    let digest = job.digest().unwrap();
        let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-03-02T07:00:00Z").unwrap().into();
        let articles = vec![article(1, &title, &format!("{title}\r\n.\r\nBcc: x@evil.example"), Some(&name), "2026-03-01T09:00:00Z")];
        let parts = herald::digest::render(&app, job, digest, &articles, now, None).unwrap();
        let edition = EditionParts::new(1, "abc", "readers", "Gazette Daily", &parts.subject, &parts.html, &parts.text);
        let to = Addressee {
            email: "ana@example.org",
            name: Some(&name),
            uid: "u1",
            attributes: Default::default(),
            unsubscribe_url: "https://gazette.example.org/unsubscribe?token=1.k.u1.sig".into(),
            preferences_url: "https://gazette.example.org/preferences?token=1.k.u1.sig".into(),
            return_path: None,
        };
        for encoding in [herald::mail::message::BodyEncoding::EightBit, herald::mail::message::BodyEncoding::Safe] {
            let message = herald::mail::message::build(
                &app.settings.site,
                &edition,
                &to,
                herald::mail::message::message_id(&app.settings.site, &edition, 7),
                "",
                std::time::SystemTime::UNIX_EPOCH,
                encoding,
            )
            .unwrap();
            let raw = message.formatted();
            for (i, byte) in raw.iter().enumerate() {
                match byte {
                    b'\n' => proptest::prop_assert!(i > 0 && raw[i - 1] == b'\r', "a bare LF at {i}"),
                    b'\r' => proptest::prop_assert!(raw.get(i + 1) == Some(&b'\n'), "a bare CR at {i}"),
                    _ => {}
                }
            }
            let text = String::from_utf8_lossy(&raw);
            let head = text.split("\r\n\r\n").next().unwrap();
            let mut names = Vec::new();
            for line in head.split("\r\n") {
                // RFC 5322 section 2.1.1: no line over 998 octets, whatever a name or title holds.
                proptest::prop_assert!(line.len() <= 998, "a header line of {} octets: {:?}", line.len(), &line[..80]);
                if line.starts_with(' ') || line.starts_with('\t') {
                    continue; // a folded continuation
                }
                let field = line.split(':').next().unwrap().to_ascii_lowercase();
                proptest::prop_assert!(HEADERS.contains(&field.as_str()), "an unexpected header line: {line:?}");
                names.push(field);
            }
            for once in ["to", "from", "subject", "content-type"] {
                proptest::prop_assert_eq!(names.iter().filter(|n| *n == once).count(), 1, "{} once", once);
            }
            let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
            let recipients: Vec<_> = parsed.to().unwrap().iter().filter_map(|a| a.address()).collect();
            proptest::prop_assert_eq!(recipients, vec!["ana@example.org"]);
            proptest::prop_assert!(parsed.bcc().is_none());
            proptest::prop_assert_eq!(parsed.text_body_count(), 1);
            proptest::prop_assert_eq!(parsed.html_body_count(), 1);
        }
    }
}

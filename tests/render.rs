//! Snapshots of what a subscriber sees: the rendered digest, HTML and text.

use chrono::{DateTime, Utc};
use herald::message::{Addressee, EditionParts};
use herald::store::StoredArticle;

use crate::util::{Workspace, base_config, file_mail};

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
        published_at: DateTime::parse_from_rfc3339(published).unwrap().timestamp_millis(),
    }
}

fn rendered() -> (EditionParts, String, String) {
    let ws = Workspace::new(&base_config(&file_mail()));
    let root = ws.path().display().to_string();
    let config = base_config(&file_mail()).replace("path = \"articles\"", &format!("path = \"{root}/articles\""))
        + &format!("\n[templates]\ndir = \"{root}/templates\"\n");
    ws.write("config/herald.toml", &config);
    let settings = herald::config::load(&ws.path().join("config/herald.toml"), Vec::new()).expect("valid config");
    let job = settings.job("daily").unwrap();
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-03-02T07:00:00Z").unwrap().into();
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
    let parts = herald::digest::render(&settings, job, &articles, now).unwrap();
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
    };
    let html = edition.html_for(&to);
    let text = edition.text_for(&to);
    (edition, html, text)
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

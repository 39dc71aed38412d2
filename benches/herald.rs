//! Benchmarks, each beside a reference measured in the same run:
//! - per-recipient rendering by merge fields vs a full template run per recipient;
//! - building a fitted teaser vs rendering the post template once;
//! - cleaning feed items into articles (and storing them) vs feed-rs parsing alone.
//!
//! Run with `cargo bench`; compare the pairs as ratios, not absolute times.

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use herald::mail::message::{Addressee, EditionParts};
use herald::social::teaser::{self, Counting, Rule, TeaserInput};
use herald::store::StoredArticle;

fn loaded() -> (tempfile::TempDir, herald::app::App) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    std::fs::create_dir_all(dir.path().join("articles")).unwrap();
    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
    let config = format!(
        r#"
[site]
name = "Bench Gazette"
base_url = "https://bench.example.org/"
from = "Bench Gazette <news@bench.example.org>"
postal_address = "1 Bench Row"
[tokens]
secret = "bench"
[templates]
dir = "{templates}"
[[sources]]
name = "desk"
type = "folder"
path = "{root}/articles"
[[lists]]
name = "readers"
[[jobs]]
name = "daily"
kind = "digest"
list = "readers"
schedule = "0 7 * * *"
timezone = "UTC"
max_articles = 500
"#
    );
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();
    let app = herald::app::App::load(&dir.path().join("herald.toml"), Vec::new()).unwrap();
    (dir, app)
}

fn articles(n: i64) -> Vec<StoredArticle> {
    (0..n)
        .map(|i| StoredArticle {
            id: i,
            identity: format!("url:{i}"),
            source: "desk".into(),
            url: format!("https://bench.example.org/story-{i}"),
            title: format!("Council story number {i} about the harbour & the <market>"),
            author: Some("Jo Reed".into()),
            excerpt: "The council agreed a budget for the harbour wall and the market square after a long debate."
                .into(),
            tags: "[\"council\"]".into(),
            // Pictures on, as the default template shows them.
            image: Some(format!("https://bench.example.org/pictures/{i}.jpg")),
            published_at: chrono::DateTime::from_timestamp_millis(1_764_000_000_000 + i).expect("in range"),
        })
        .collect()
}

fn rendering(c: &mut Criterion) {
    let (_dir, app) = loaded();
    let job = app.settings.job("daily").unwrap();
    let digest = job.digest().unwrap();
    let now: DateTime<Utc> = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
    for n in [10, 100] {
        let articles = articles(n);
        let parts = herald::digest::render(&app, job, digest, &articles, now, None).unwrap();
        let edition = EditionParts::new(
            1,
            "nonce",
            "readers",
            "Readers",
            &parts.subject,
            &parts.html,
            &parts.text,
        );
        let to = Addressee {
            email: "ana@example.org",
            name: Some("Ana"),
            uid: "u1",
            attributes: Default::default(),
            unsubscribe_url: "https://bench.example.org/unsubscribe?token=1.k.u1.sig".into(),
            preferences_url: "https://bench.example.org/preferences?token=1.k.u1.sig".into(),
            return_path: None,
        };
        let mut group = c.benchmark_group(format!("per-recipient render, {n} articles"));
        group.measurement_time(Duration::from_secs(3)).sample_size(20);
        group.bench_function("herald: merge fields into the shared render", |b| {
            b.iter(|| black_box((edition.html_for(&to), edition.text_for(&to), edition.subject_preview())))
        });
        group.bench_function("reference: a full template run per recipient", |b| {
            b.iter(|| black_box(herald::digest::render(&app, job, digest, &articles, now, None).unwrap()))
        });
        group.finish();
    }
}

fn teasers(c: &mut Criterion) {
    let template = teaser::compile(teaser::DEFAULT_TEMPLATE).unwrap();
    let input = TeaserInput {
        title: "港のフェリー、春に運航再開 🎉 Harbour ferry returns".into(),
        excerpt: "The council agreed the repair budget for the ferry pier after a long debate. ".repeat(8),
        url: "https://bench.example.org/2026/11/harbour-ferry-returns-in-spring".into(),
        author: None,
        tags: vec!["harbour news".into(), "council".into(), "transport".into()],
    };
    let mut group = c.benchmark_group("teaser");
    group.measurement_time(Duration::from_secs(3)).sample_size(20);
    for (name, rule) in [
        (
            "x",
            Rule {
                counting: Counting::XWeighted,
                max: 280,
                max_bytes: None,
            },
        ),
        (
            "bluesky",
            Rule {
                counting: Counting::Graphemes,
                max: 300,
                max_bytes: Some(3000),
            },
        ),
        (
            "threads",
            Rule {
                counting: Counting::EmojiBytes,
                max: 500,
                max_bytes: None,
            },
        ),
        (
            "linkedin",
            Rule {
                counting: Counting::LittleText,
                max: 3000,
                max_bytes: None,
            },
        ),
    ] {
        group.bench_function(format!("herald: build and fit for {name}"), |b| {
            b.iter(|| black_box(teaser::build(&template, &input, 3, &rule).unwrap()))
        });
    }
    let unfitted = serde_json::json!({ "title": input.title, "excerpt": input.excerpt, "url": input.url, "author": null, "hashtags": "", "tags": input.tags });
    group.bench_function("reference: render the post template once", |b| {
        b.iter(|| black_box(template.render("post", &unfitted).unwrap()))
    });
    group.finish();
}

fn feeds(c: &mut Criterion) {
    let items: String = (0..5000)
        .map(|i| {
            format!(
                "<item><guid>g{i}</guid><title>Story {i} &amp; more</title><link>https://feeds.example.org/{i}</link>\
                 <pubDate>Mon, 02 Nov 2026 08:00:00 GMT</pubDate><description>&lt;p&gt;Paragraph {i} of the story, with enough words to be prose about the town.&lt;/p&gt;&lt;p&gt;Follow me at @reporter or mail me@example.org&lt;/p&gt;</description></item>"
            )
        })
        .collect();
    let feed = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title><link>https://feeds.example.org/</link><description>d</description>{items}</channel></rss>"
    );
    let mut group = c.benchmark_group("5,000-item feed");
    group.measurement_time(Duration::from_secs(5)).sample_size(10);
    group.bench_function("reference: feed-rs parse only", |b| {
        b.iter(|| black_box(feed_rs::parser::parse(feed.as_bytes()).unwrap()))
    });
    let url = url::Url::parse("https://feeds.example.org/feed.xml").unwrap();
    let now: DateTime<Utc> = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
    let limits = herald::source::feed::Limits {
        timeout: Duration::from_secs(30),
        max_bytes: u64::MAX,
        max_items: usize::MAX,
        trust_ids: true,
        allow_private_redirects: false,
    };
    group.bench_function("herald: parse, sanitise, excerpt every item", |b| {
        b.iter(|| black_box(herald::source::feed::parse("bench", &url, feed.as_bytes(), &limits, now).unwrap()))
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    group.bench_function("herald: all that, then stored in a new SQLite store", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/bench.db", dir.path().display());
                let store = runtime.block_on(herald::store::Store::open(&url)).unwrap();
                (dir, store)
            },
            |(dir, store)| {
                let polled = herald::source::feed::parse("bench", &url, feed.as_bytes(), &limits, now).unwrap();
                let stored = runtime
                    .block_on(store.upsert_articles(&polled.articles, Utc::now()))
                    .unwrap();
                assert_eq!(stored.len(), 5000);
                // Dropped after the measurement: closing the store and deleting its folder are not ingestion.
                (dir, store)
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, rendering, teasers, feeds);
criterion_main!(benches);

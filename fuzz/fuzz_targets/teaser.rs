//! Any title, excerpt, link and tags through the teaser builder for every
//! platform's rule: a teaser that fits the rule, or a too-long error;
//! never a panic and never a teaser over the limit.
#![no_main]

use std::sync::LazyLock;

use herald::social::teaser::{self, Counting, Rule, TeaserInput};
use libfuzzer_sys::fuzz_target;

static TEMPLATE: LazyLock<handlebars::Handlebars<'static>> =
    LazyLock::new(|| teaser::compile(teaser::DEFAULT_TEMPLATE).expect("the default template compiles"));

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\u{0}');
    let mut next = || parts.next().unwrap_or_default().to_string();
    let input = TeaserInput {
        title: next(),
        excerpt: next(),
        url: next(),
        author: Some(next()).filter(|a| !a.is_empty()),
        tags: next().split(',').map(str::to_string).collect(),
    };
    for rule in [
        Rule {
            counting: Counting::XWeighted,
            max: 280,
            max_bytes: None,
        },
        Rule {
            counting: Counting::CharsUrl23,
            max: 500,
            max_bytes: None,
        },
        Rule {
            counting: Counting::Graphemes,
            max: 300,
            max_bytes: Some(3000),
        },
        Rule {
            counting: Counting::Chars,
            max: 2000,
            max_bytes: None,
        },
    ] {
        if let Ok(post) = teaser::build(&TEMPLATE, &input, 3, &rule) {
            assert!(rule.fits(&post), "{} over {rule:?}: {post:?}", rule.length(&post));
        }
    }
});

//! Teasers: headline, excerpt, link and hashtags, rendered from a per-account
//! template and fitted to the platform's length rule, counted the platform's
//! way. When a teaser is too long the excerpt is shortened at a sentence or
//! word boundary (then dropped, then the hashtags go); the headline and the
//! link are never cut.

use handlebars::Handlebars;
use serde::Serialize;
use unicode_segmentation::UnicodeSegmentation;

use crate::clean;

/// How a platform counts a post's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// X: twitter-text weighted length (URLs 23, wide characters 2).
    XWeighted,
    /// Mastodon: characters, every URL counted as 23.
    CharsUrl23,
    /// Bluesky: grapheme clusters (and a byte cap).
    Graphemes,
    /// Discord, Telegram, Slack, webhooks: characters.
    Chars,
    /// Threads: characters, each emoji counted as its UTF-8 bytes.
    EmojiBytes,
    /// LinkedIn: characters as sent, after the escaping its "little text
    /// format" needs (each reserved character takes a backslash too).
    LittleText,
}

impl Counting {
    /// What the limit counts, in words, for dry runs.
    pub fn describe(self) -> &'static str {
        match self {
            Counting::XWeighted => "weighted characters, URLs as 23",
            Counting::CharsUrl23 => "characters, URLs as 23",
            Counting::Graphemes => "graphemes",
            Counting::Chars => "characters",
            Counting::EmojiBytes => "characters, emoji as their UTF-8 bytes",
            Counting::LittleText => "characters once escaped",
        }
    }
}

/// A platform's length rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub counting: Counting,
    pub max: usize,
    pub max_bytes: Option<usize>,
}

impl Rule {
    pub fn length(&self, text: &str) -> usize {
        match self.counting {
            Counting::XWeighted => x_weighted(text),
            Counting::CharsUrl23 => with_urls_as_23(text, text.chars().count(), |url| url.chars().count()),
            Counting::Graphemes => text.graphemes(true).count(),
            Counting::Chars => text.chars().count(),
            Counting::EmojiBytes => text.chars().map(|c| if is_emoji(c) { c.len_utf8() } else { 1 }).sum(),
            Counting::LittleText => text
                .chars()
                .map(|c| if is_little_text_reserved(c) { 2 } else { 1 })
                .sum(),
        }
    }

    pub fn fits(&self, text: &str) -> bool {
        self.length(text) <= self.max && self.max_bytes.is_none_or(|max| text.len() <= max)
    }

    /// "271/280" (and bytes where the platform caps them), for dry runs.
    pub fn describe(&self, text: &str) -> String {
        let mut shown = format!("{}/{}", self.length(text), self.max);
        if let Some(max) = self.max_bytes {
            shown.push_str(&format!(", {}/{max} bytes", text.len()));
        }
        shown
    }
}

/// Characters Threads counts as their UTF-8 bytes: pictographs, symbols
/// and dingbats, regional-indicator letters (flags), and the joiners,
/// variation selectors and tags that build emoji sequences.
fn is_emoji(c: char) -> bool {
    matches!(u32::from(c),
        0x1F000..=0x1FAFF // pictographs, emoticons, transport, flags' letters, symbols
        | 0x2600..=0x27BF // miscellaneous symbols and dingbats
        | 0x2B00..=0x2BFF // arrows and stars (⭐, ⬆)
        | 0x2300..=0x23FF // technical (⌚, ⏰)
        | 0x200D | 0xFE0E | 0xFE0F | 0x20E3 // joiner, variation selectors, keycap
        | 0xE0020..=0xE007F // tag characters (subdivision flags)
    )
}

/// The characters LinkedIn's "little text format" reserves: a literal one
/// must be escaped with a backslash.
pub fn is_little_text_reserved(c: char) -> bool {
    matches!(
        c,
        '\\' | '|' | '{' | '}' | '@' | '[' | ']' | '(' | ')' | '<' | '>' | '#' | '*' | '_' | '~'
    )
}

/// `length` with every http(s) URL (a whitespace-separated word) counted as
/// 23 instead of `measure(url)`.
fn with_urls_as_23(text: &str, length: usize, measure: impl Fn(&str) -> usize) -> usize {
    text.split_whitespace()
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .fold(length, |n, url| n - measure(url) + 23)
}

/// X's weighted length by twitter-text. twitter-text 0.3 panics on some
/// text with an `@` (its mention scanner slices a string inside a character
/// when an `@` follows certain non-ASCII text; found by the `teaser` fuzz
/// target). Mentions carry no weight of their own, so every `@` and `＠` is
/// counted as a character of the same weight (`_`, `＿`) that starts no
/// mention. Should twitter-text panic anyway, the count falls back to an
/// upper bound: 1 for the characters X weighs 1, 2 for every other
/// character, 23 for each URL. Over-counting only ever shortens a teaser.
fn x_weighted(text: &str) -> usize {
    let text = text.replace('@', "_").replace('\u{ff20}', "\u{ff3f}");
    let parsed = std::panic::catch_unwind(|| twitter_text::parse(&text, twitter_text_config::config_v3(), true));
    match parsed {
        Ok(parsed) => parsed.weighted_length.max(0) as usize,
        Err(_) => {
            let weight = |c: char| match u32::from(c) {
                0..=4351 | 8192..=8205 | 8208..=8223 | 8242..=8247 => 1,
                _ => 2,
            };
            let weigh = |s: &str| s.chars().map(weight).sum::<usize>();
            with_urls_as_23(&text, weigh(&text), weigh)
        }
    }
}

/// What a teaser is made from.
#[derive(Debug, Clone, Serialize)]
pub struct TeaserInput {
    pub title: String,
    pub excerpt: String,
    pub url: String,
    pub author: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TeaserError {
    #[error("the headline and link alone are too long for the platform ({0})")]
    TooLong(String),
    #[error("the post template failed: {0}")]
    Template(String),
}

/// `green spaces` -> `#GreenSpaces`: letters and digits only, words joined in
/// CamelCase, at most `max` of them, no repeats.
pub fn hashtags(tags: &[String], max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let camel: String = tag
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut chars = w.chars();
                let first = chars
                    .next()
                    .map(|c| c.to_uppercase().collect::<String>())
                    .unwrap_or_default();
                first + chars.as_str()
            })
            .collect();
        if camel.is_empty() || camel.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let tag = format!("#{camel}");
        if !out.iter().any(|t| t.eq_ignore_ascii_case(&tag)) {
            out.push(tag);
        }
        if out.len() == max {
            break;
        }
    }
    out
}

/// The default post template.
pub const DEFAULT_TEMPLATE: &str = "{{title}}\n\n{{excerpt}}\n\n{{url}}{{#if hashtags}}\n\n{{hashtags}}{{/if}}";

/// An account's post template: its own, or the default.
pub fn template_of(account: &crate::config::AccountSettings) -> &str {
    account.template.as_deref().unwrap_or(DEFAULT_TEMPLATE)
}

/// Compiles a post template (strict mode, no HTML escaping).
pub fn compile(template: &str) -> Result<Handlebars<'static>, TeaserError> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_template_string("post", template)
        .map_err(|e| TeaserError::Template(e.to_string()))?;
    Ok(hb)
}

#[derive(Serialize)]
struct PostData<'a> {
    title: &'a str,
    excerpt: &'a str,
    url: &'a str,
    author: Option<&'a str>,
    hashtags: String,
    tags: &'a [String],
}

fn render(
    template: &Handlebars<'_>,
    input: &TeaserInput,
    excerpt: &str,
    hashtags: &[String],
) -> Result<String, TeaserError> {
    let data = PostData {
        title: &input.title,
        excerpt,
        url: &input.url,
        author: input.author.as_deref(),
        hashtags: hashtags.join(" "),
        tags: &input.tags,
    };
    let text = template
        .render("post", &data)
        .map_err(|e| TeaserError::Template(e.to_string()))?;
    // An emptied part must not leave a gap of blank lines.
    let mut out = String::with_capacity(text.len());
    for line in text.trim().lines() {
        if line.trim().is_empty() && out.ends_with("\n\n") {
            continue;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    Ok(out.trim_end().to_string())
}

/// Builds the teaser for `input` under `rule`.
pub fn build(
    template: &Handlebars<'_>,
    input: &TeaserInput,
    max_hashtags: usize,
    rule: &Rule,
) -> Result<String, TeaserError> {
    let input = TeaserInput {
        title: clean::plain_line(&input.title),
        excerpt: clean::plain_line(&input.excerpt),
        url: input.url.trim().to_string(),
        author: input.author.as_deref().map(clean::plain_line),
        tags: input.tags.clone(),
    };
    let all_tags = hashtags(&input.tags, max_hashtags);
    for tags in [&all_tags[..], &[]] {
        let full = render(template, &input, &input.excerpt, tags)?;
        if rule.fits(&full) {
            return Ok(full);
        }
        // The longest shortened excerpt that fits, by bisection on its length.
        let (mut lo, mut hi) = (0usize, input.excerpt.chars().count());
        let mut best = None;
        while lo <= hi {
            let mid = (lo + hi) / 2;
            let excerpt = if mid == 0 {
                String::new()
            } else {
                clean::shorten(&input.excerpt, mid)
            };
            let text = render(template, &input, &excerpt, tags)?;
            if rule.fits(&text) {
                best = Some(text);
                lo = mid + 1;
            } else if mid == 0 {
                break;
            } else {
                hi = mid - 1;
            }
        }
        if let Some(text) = best {
            return Ok(text);
        }
    }
    let bare = render(template, &input, "", &[])?;
    Err(TeaserError::TooLong(rule.describe(&bare)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(title: &str, excerpt: &str) -> TeaserInput {
        TeaserInput {
            title: title.into(),
            excerpt: excerpt.into(),
            url: "https://courier.example.org/2026/11/a-very-long-article-slug-that-goes-on-and-on".into(),
            author: None,
            tags: vec![
                "green spaces".into(),
                "council".into(),
                "Green-Spaces".into(),
                "2026".into(),
            ],
        }
    }

    #[test]
    fn hashtags_are_cleaned_deduped_and_capped() {
        assert_eq!(hashtags(&input("t", "e").tags, 3), vec!["#GreenSpaces", "#Council"]);
        assert_eq!(hashtags(&["a b".into(), "c".into(), "d".into()], 2), vec!["#AB", "#C"]);
    }

    #[test]
    fn acronyms_keep_their_capitals() {
        let tags = ["RNLI".to_string(), "NHS funding".into(), "lifeboat crews".into()];
        assert_eq!(hashtags(&tags, 3), vec!["#RNLI", "#NHSFunding", "#LifeboatCrews"]);
    }

    #[test]
    fn text_that_made_twitter_text_panic_is_counted() {
        let x = Rule {
            counting: Counting::XWeighted,
            max: 280,
            max_bytes: None,
        };
        // Found by the fuzzer: twitter-text sliced inside the replacement characters.
        let text = "\u{fffd}\u{fffd}*@ https://example.org/a";
        assert_eq!(x.length(text), 2 + 2 + 1 + 1 + 1 + 23);
        assert_eq!(x.length("\u{fffd}\u{fffd}*\u{ff20}x"), 2 + 2 + 1 + 2 + 1);
        assert_eq!(
            x.length("RT @herald and @jo: news"),
            24,
            "mentions weigh their characters"
        );
    }

    #[test]
    fn counting_follows_each_platform() {
        let x = Rule {
            counting: Counting::XWeighted,
            max: 280,
            max_bytes: None,
        };
        assert_eq!(x.length("hello https://example.org/a/very/long/path/indeed"), 6 + 23);
        assert_eq!(x.length("日本"), 4, "CJK counts 2");
        let mastodon = Rule {
            counting: Counting::CharsUrl23,
            max: 500,
            max_bytes: None,
        };
        assert_eq!(
            mastodon.length("hi https://example.org/a/very/long/path/indeed"),
            3 + 23
        );
        let bluesky = Rule {
            counting: Counting::Graphemes,
            max: 300,
            max_bytes: Some(3000),
        };
        assert_eq!(
            bluesky.length("e\u{301}👩‍👩‍👧"),
            2,
            "combining marks and ZWJ families are one grapheme each"
        );
    }

    #[test]
    fn a_long_excerpt_is_shortened_and_the_rest_kept_whole() {
        let template = compile(DEFAULT_TEMPLATE).unwrap();
        let rule = Rule {
            counting: Counting::XWeighted,
            max: 140,
            max_bytes: None,
        };
        let long = "The council agreed the budget. ".repeat(20);
        let text = build(&template, &input("Budget agreed", &long), 3, &rule).unwrap();
        assert!(rule.fits(&text), "{text}");
        assert!(
            text.starts_with("Budget agreed\n\nThe council agreed the budget."),
            "{text}"
        );
        assert!(text.contains("https://courier.example.org/2026/11/a-very-long-article-slug-that-goes-on-and-on"));
        assert!(text.ends_with("#GreenSpaces #Council"), "{text}");
    }

    #[test]
    fn a_headline_too_long_for_the_platform_is_an_error_not_a_cut() {
        let template = compile(DEFAULT_TEMPLATE).unwrap();
        let rule = Rule {
            counting: Counting::Chars,
            max: 40,
            max_bytes: None,
        };
        let err = build(
            &template,
            &input("A headline that is far too long for this tiny platform", "x"),
            3,
            &rule,
        );
        assert!(matches!(err, Err(TeaserError::TooLong(_))), "{err:?}");
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Words mixing ASCII, accents, combining marks, CJK and emoji (some with ZWJ).
        fn word() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![
                    "[a-zA-Z]{1,9}",
                    Just("café".to_string()),
                    Just("e\u{301}te\u{301}".to_string()),
                    Just("東京都".to_string()),
                    Just("한국어".to_string()),
                    Just("🎉".to_string()),
                    Just("👩‍💻".to_string()),
                    Just("🇬🇧".to_string()),
                    Just("naïve,".to_string()),
                    Just("end.".to_string()),
                ],
                1..4,
            )
            .prop_map(|parts| parts.concat())
        }

        fn words(max: usize) -> impl Strategy<Value = String> {
            prop::collection::vec(word(), 1..max).prop_map(|w| w.join(" "))
        }

        fn url() -> impl Strategy<Value = String> {
            "[a-z0-9-]{1,120}".prop_map(|slug| format!("https://news.example.org/2026/{slug}"))
        }

        fn rules() -> Vec<Rule> {
            vec![
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
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            #[test]
            fn every_teaser_fits_and_keeps_headline_and_url(title in words(8), excerpt in words(200), url in url(), tags in prop::collection::vec(words(3), 0..6)) {
                let template = compile(DEFAULT_TEMPLATE).unwrap();
                let input = TeaserInput { title: title.clone(), excerpt, url: url.clone(), author: None, tags };
                for rule in rules() {
                    let text = build(&template, &input, 3, &rule).unwrap();
                    prop_assert!(rule.fits(&text), "{} does not fit {:?}: {}", rule.describe(&text), rule, text);
                    prop_assert!(text.contains(&url), "the URL is whole");
                    prop_assert!(text.starts_with(&crate::clean::plain_line(&title)), "the headline is whole");
                }
            }
        }
    }
}

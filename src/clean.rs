//! Cleaning article text: one-line fields lose control characters, HTML is
//! sanitised, and the excerpt is a sentence that belongs to the story, never
//! an author footer, a contact line or a site notice.

use std::collections::HashSet;

mod lead;

/// Collapses a value meant for one line (title, author, tag): control
/// characters (CR and LF included) become spaces, runs of space become one.
pub fn one_line(value: &str) -> String {
    value
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A one-line field as plain text: markup removed (a script's or a style's
/// content with it), entities decoded, controls and runs of whitespace
/// collapsed. Decoding can uncover markup escaped twice, so it repeats a few
/// times while anything changes; whatever tag or entity is left after that is
/// dropped, so none ever reaches a post, a card or a subject.
pub fn plain_line(value: &str) -> String {
    let mut text = one_line(value);
    for _ in 0..PLAIN_ROUNDS {
        if !text.contains(['<', '&']) {
            return text;
        }
        let decoded = one_line(&html_text(&text));
        if decoded == text {
            break;
        }
        text = decoded;
    }
    one_line(&drop_markup(&text))
}

/// How many times [`plain_line`] decodes markup that decoding uncovered.
const PLAIN_ROUNDS: usize = 4;

/// The text of an HTML fragment, without decoration or line wrapping.
fn html_text(html: &str) -> String {
    html2text::config::plain_no_decorate()
        .link_footnotes(false)
        .string_from_read(html.as_bytes(), 100_000)
        .unwrap_or_default()
}

/// `text` without anything shaped like a tag (`<` then a letter, `/`, `!` or
/// `?`, up to the next `>` or the end) or an entity (`&` then up to 32
/// letters, digits or `#`, then `;`).
fn drop_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        if c == '<' && after.starts_with(|n: char| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?')) {
            rest = after.find('>').map_or("", |end| &after[end + 1..]);
            out.push(' ');
            continue;
        }
        if c == '&' {
            let name = after
                .find(|n: char| !(n.is_ascii_alphanumeric() || n == '#'))
                .unwrap_or(after.len());
            if (1..=32).contains(&name) && after[name..].starts_with(';') {
                rest = &after[name + 1..];
                continue;
            }
        }
        out.push(c);
        rest = after;
    }
    out
}

/// Sanitises article HTML: no scripts, no event handlers, no styles, safe links only.
pub fn sanitize_html(html: &str) -> String {
    ammonia::clean(html)
}

/// Turns plain-text paragraphs into escaped HTML paragraphs.
pub fn text_to_html(paragraphs: &[String]) -> String {
    paragraphs
        .iter()
        .map(|p| format!("<p>{}</p>", escape_html(p)))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// Splits plain text into paragraphs at blank lines, each folded onto one line.
pub fn paragraphs(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .map(one_line)
        .filter(|p| !p.is_empty())
        .collect()
}

/// The paragraphs of an HTML fragment as plain text.
pub fn html_paragraphs(html: &str) -> Vec<String> {
    paragraphs(&html_text(html))
}

const STOPWORDS: &[&str] = &[
    "about", "after", "again", "also", "been", "before", "being", "could", "does", "from", "have", "here", "into",
    "just", "more", "most", "much", "only", "other", "over", "some", "such", "than", "that", "their", "them", "then",
    "there", "these", "they", "this", "those", "what", "when", "where", "which", "while", "will", "with", "would",
    "your", "yours",
];

/// Words that carry meaning, cut to a short stem so "harbour" matches "harbours".
fn content_stems(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 4 && !STOPWORDS.contains(&w.as_str()))
        .map(|w| w.chars().take(5).collect())
        .collect()
}

fn looks_like_email(word: &str) -> bool {
    let word = word.trim_matches(|c: char| !c.is_alphanumeric());
    match word.split_once('@') {
        Some((local, domain)) => !local.is_empty() && domain.contains('.') && !domain.starts_with('.'),
        None => false,
    }
}

fn looks_like_handle(word: &str) -> bool {
    let word = word.trim_matches(|c: char| matches!(c, '(' | ')' | ',' | '.' | ';' | ':'));
    word.len() > 1
        && word.starts_with('@')
        && word[1..]
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '@')
}

const BOILERPLATE_PHRASES: &[&str] = &[
    "follow me",
    "follow us",
    "find me on",
    "find us on",
    "write to me",
    "reach me at",
    "get in touch",
    "comments are closed",
    "comments are open",
    "leave a comment",
    "comment below",
    "join the discussion",
    "join the conversation",
    "share this",
    "subscribe to",
    "sign up for our",
    "all rights reserved",
    "this post first appeared",
    "originally published",
    "read the comments",
    "comments policy",
    "moderated before",
    "about the author",
];

/// Whether a paragraph is site or author boilerplate rather than the story.
pub fn is_boilerplate(paragraph: &str) -> bool {
    let lower = paragraph.to_lowercase();
    let words: Vec<&str> = paragraph.split_whitespace().collect();
    words.iter().any(|w| looks_like_email(w) || looks_like_handle(w))
        || BOILERPLATE_PHRASES.iter().any(|p| lower.contains(p))
        || lower.split_whitespace().collect::<Vec<_>>().windows(2).any(|w| {
            w[0].chars().all(|c| c.is_ascii_digit())
                && w[1].trim_matches(|c: char| !c.is_alphabetic()).starts_with("comment")
        })
}

/// The sentences of `text`: each runs to a `.`, `!` or `?` followed by
/// whitespace, or to the end.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if matches!(c, '.' | '!' | '?') && chars.peek().is_some_and(|(_, next)| next.is_whitespace()) {
            out.push(text[start..i + c.len_utf8()].trim());
            start = i + c.len_utf8();
        }
    }
    out.push(text[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// `text` without its boilerplate sentences (a social handle, an address,
/// "follow us", a comments note), so a story paragraph that ends with a
/// plug keeps its story. Empty when nothing but boilerplate is left.
pub fn without_boilerplate(text: &str) -> String {
    let kept: Vec<&str> = sentences(text).into_iter().filter(|s| !is_boilerplate(s)).collect();
    // A question or a label left alone ("Questions?") is not story text.
    if kept.iter().map(|s| s.split_whitespace().count()).sum::<usize>() < 4 {
        return String::new();
    }
    kept.join(" ")
}

/// The text an excerpt comes from: the lead paragraph's story sentences
/// (see [`lead`]).
pub fn lead_paragraph(title: &str, paragraphs: &[String]) -> Option<String> {
    lead::lead(title, paragraphs).map(|(_, text)| text)
}

/// Shortens `text` to at most `max` characters at a sentence boundary when one
/// fits, else at a word boundary, marking a cut with an ellipsis.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    let sentence_end = cut
        .char_indices()
        .filter(|&(i, c)| matches!(c, '.' | '!' | '?') && cut[i + c.len_utf8()..].starts_with(' '))
        .map(|(i, c)| i + c.len_utf8())
        .next_back();
    if let Some(end) = sentence_end.filter(|&end| end >= max / 3) {
        return cut[..end].to_string();
    }
    let word_end = cut.rfind(' ').unwrap_or(cut.len());
    format!(
        "{}…",
        cut[..word_end].trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '-'))
    )
}

/// The excerpt of an article, as plain text: an explicit summary's story
/// sentences when it has any, else the lead paragraph's, shortened to `max` characters. Empty
/// only when the article has no story text at all.
pub fn excerpt(title: &str, summary: Option<&str>, paragraphs: &[String], max: usize) -> String {
    let summary = summary
        .map(|s| without_boilerplate(&plain_line(s)))
        .filter(|s| !s.is_empty());
    let text = summary
        .or_else(|| lead_paragraph(title, paragraphs))
        .unwrap_or_default();
    shorten(&plain_line(&text), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_removes_line_breaks_and_controls() {
        assert_eq!(one_line(" Big\r\nnews\u{0}\there  "), "Big news here");
    }

    #[test]
    fn plain_line_removes_markup_and_decodes_entities() {
        assert_eq!(
            plain_line("Council <script>alert(1)</script> votes &amp; \"reviews\" budget <b>today</b>"),
            "Council votes & \"reviews\" budget today"
        );
        assert_eq!(
            plain_line("Caf&eacute; &#8220;open&#8221;"),
            "Café \u{201c}open\u{201d}"
        );
        assert_eq!(plain_line("&lt;b&gt;Twice&lt;/b&gt; escaped"), "Twice escaped");
        assert_eq!(plain_line("AT&T wins; 3 < 5 and Q&A"), "AT&T wins; 3 < 5 and Q&A");
        // Escaped more times than it is decoded: what is left holds no tag or entity.
        assert_eq!(plain_line("&amp;amp;amp;amp;amp;amp;lt;i&gt;"), "amp;lt;i>");
    }

    fn has_tag_or_entity(text: &str) -> bool {
        let bytes = text.as_bytes();
        bytes
            .windows(2)
            .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || b"/!?".contains(&w[1])))
            || text.match_indices('&').any(|(at, _)| {
                let name = &text[at + 1..];
                let end = name
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
                    .unwrap_or(name.len());
                (1..=32).contains(&end) && name[end..].starts_with(';')
            })
    }

    proptest::proptest! {
        #[test]
        fn no_tag_entity_or_control_survives_plain_line(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    "[a-zA-Z ]{0,8}",
                    proptest::strategy::Just("<".to_string()),
                    proptest::strategy::Just(">".to_string()),
                    proptest::strategy::Just("&".to_string()),
                    proptest::strategy::Just(";".to_string()),
                    proptest::strategy::Just("&amp;".to_string()),
                    proptest::strategy::Just("&lt;".to_string()),
                    proptest::strategy::Just("&#60;".to_string()),
                    proptest::strategy::Just("<script>".to_string()),
                    proptest::strategy::Just("</b>".to_string()),
                    proptest::strategy::Just("<!--".to_string()),
                    "\\PC",
                    "[\u{0}-\u{1f}\u{7f}-\u{9f}]",
                ],
                0..24,
            )
        ) {
            let value = parts.concat();
            let clean = plain_line(&value);
            proptest::prop_assert!(!has_tag_or_entity(&clean), "{value:?} became {clean:?}");
            proptest::prop_assert!(!clean.contains(char::is_control), "{value:?} became {clean:?}");
            proptest::prop_assert_eq!(plain_line(&clean), clean.clone(), "plain_line is stable");
        }
    }

    #[test]
    fn a_story_that_ends_with_a_plug_keeps_its_story() {
        let summary = "The ferry returns to Millbrook harbour on Monday after a winter of repairs. \
                       Follow us on Twitter @gazette";
        assert_eq!(
            excerpt("Ferry returns", Some(summary), &[], 280),
            "The ferry returns to Millbrook harbour on Monday after a winter of repairs."
        );
        let paragraphs = vec![
            "Questions? Write to ana.perez@example.org.".to_string(),
            "Council votes to reopen the library on Saturdays. Comments are closed on this post.".to_string(),
        ];
        assert_eq!(
            excerpt("Library opens on Saturdays", None, &paragraphs, 280),
            "Council votes to reopen the library on Saturdays."
        );
        assert_eq!(
            without_boilerplate("Follow us on Mastodon at @gazette@social.example. 12 comments"),
            ""
        );
        assert_eq!(excerpt("Nothing", Some("Follow us @gazette"), &[], 280), "");
    }

    #[test]
    fn boilerplate_is_recognised() {
        assert!(is_boilerplate("Follow me on Mastodon at @ana@social.example for more."));
        assert!(is_boilerplate("Questions? Write to ana.perez@example.org."));
        assert!(is_boilerplate("Comments are closed on this post."));
        assert!(is_boilerplate("12 comments"));
        assert!(!is_boilerplate(
            "The council voted to reopen the harbour ferry next spring."
        ));
    }

    #[test]
    fn off_topic_first_paragraph_is_skipped() {
        let paragraphs = vec![
            "Before we start, a quick reminder that our office is closed on Monday for the holiday.".to_string(),
            "The harbour ferry returns next spring after the council approved the repair budget.".to_string(),
        ];
        assert_eq!(
            lead_paragraph("Harbour ferry to return in spring", &paragraphs),
            Some(paragraphs[1].clone())
        );
    }

    #[test]
    fn shorten_prefers_sentences_then_words() {
        let text = "First sentence is here. Second sentence runs on for quite a while longer than that.";
        assert_eq!(shorten(text, 40), "First sentence is here.");
        assert_eq!(shorten("one two three four five six", 15), "one two three…");
        assert_eq!(shorten("short", 15), "short");
    }
}

//! Cleaning article text: one-line fields lose control characters, HTML is
//! sanitised, and the excerpt is a sentence that belongs to the story, never
//! an author footer, a contact line or a site notice.

use std::collections::HashSet;

/// Collapses a value meant for one line (title, author, tag): control
/// characters (CR and LF included) become spaces, runs of space become one.
pub fn one_line(value: &str) -> String {
    value
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
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
    let text = html2text::config::plain_no_decorate()
        .link_footnotes(false)
        .string_from_read(html.as_bytes(), 100_000)
        .unwrap_or_default();
    paragraphs(&text)
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

/// Picks the text an excerpt comes from: a paragraph's story sentences
/// (boilerplate sentences removed), long enough to be prose, and, when the
/// first such paragraph shares nothing with the headline but a later one
/// does, the later one.
pub fn lead_paragraph(title: &str, paragraphs: &[String]) -> Option<String> {
    let candidates: Vec<String> = paragraphs
        .iter()
        .map(|p| without_boilerplate(p))
        .filter(|p| p.split_whitespace().count() >= 6)
        .collect();
    let first = candidates.first()?;
    let title_stems = content_stems(title);
    let shares = |p: &str| !content_stems(p).is_disjoint(&title_stems);
    if title_stems.is_empty() || shares(first) {
        return Some(first.clone());
    }
    Some(candidates.iter().take(4).find(|p| shares(p)).unwrap_or(first).clone())
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

/// The excerpt of an article: an explicit summary's story sentences when it
/// has any, else the lead paragraph's, shortened to `max` characters. Empty
/// only when the article has no story text at all.
pub fn excerpt(title: &str, summary: Option<&str>, paragraphs: &[String], max: usize) -> String {
    let summary = summary
        .map(|s| without_boilerplate(&one_line(s)))
        .filter(|s| !s.is_empty());
    let text = summary
        .or_else(|| lead_paragraph(title, paragraphs))
        .unwrap_or_default();
    shorten(&text, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_removes_line_breaks_and_controls() {
        assert_eq!(one_line(" Big\r\nnews\u{0}\there  "), "Big news here");
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

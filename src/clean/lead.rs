//! Which paragraph is the lead: the one about the story the headline names.
//!
//! Newsroom pages put other things first: a byline, a photo credit, an
//! "Advertisement" label, a newsletter pitch, a note that the article was
//! updated, or a wire opener about another story altogether. Labels are
//! dropped outright. Among the first few prose paragraphs left, each is
//! scored by the content words it shares with the headline and with the rest
//! of the article, every word weighted by its rarity in the article, and the
//! earliest whose score is close to the best is taken: a later paragraph
//! has to score clearly higher to pass over an earlier one.

use std::collections::{HashMap, HashSet};

use super::{content_stems, without_boilerplate};

/// How many prose paragraphs from the top may be the lead.
const CANDIDATES: usize = 4;
/// Fewer words than this is a label or a fragment, not prose.
const MIN_WORDS: usize = 6;
/// Labels are short: a paragraph longer than this is never one.
const LABEL_MAX_WORDS: usize = 30;
/// A shared headline word counts this much more than one shared with the body.
const HEADLINE_WEIGHT: f64 = 2.0;
/// The first paragraph is the lead in most news writing: a later paragraph
/// has to score this many times as much as an earlier one to take its place.
const EARLIER_ADVANTAGE: f64 = 1.25;

/// How a label paragraph begins (lowercased, after any leading punctuation).
const LABEL_STARTS: &[&str] = &[
    "advertisement",
    "sponsored",
    "paid content",
    "photo:",
    "photo by",
    "photograph:",
    "picture:",
    "image:",
    "credit:",
    "read more",
    "related:",
    "see also",
    "listen to this article",
    "editor's note",
    "editor\u{2019}s note",
    "(c) ",
    "\u{a9}",
    "copyright",
];

/// What a label paragraph holds anywhere.
const LABEL_PARTS: &[&str] = &["(photo", "photo:", "in your inbox", "min read", "minute read"];

/// The lead of an article: the index of the paragraph in `paragraphs` and
/// its story text (boilerplate sentences removed). None when no paragraph is
/// prose.
pub fn lead(title: &str, paragraphs: &[String]) -> Option<(usize, String)> {
    let prose: Vec<(usize, String)> = paragraphs
        .iter()
        .enumerate()
        .filter(|(_, p)| !is_label(p))
        .map(|(i, p)| (i, without_boilerplate(p)))
        .filter(|(_, p)| p.split_whitespace().count() >= MIN_WORDS)
        .collect();
    let stems: Vec<HashSet<String>> = prose.iter().map(|(_, p)| content_stems(p)).collect();
    let mut paragraphs_with: HashMap<&str, usize> = HashMap::new();
    for word in stems.iter().flatten() {
        *paragraphs_with.entry(word).or_default() += 1;
    }
    // Inverse paragraph frequency: a word in one paragraph weighs most.
    let count = stems.len() as f64;
    let rarity = |word: &str| ((count + 1.0) / paragraphs_with[word] as f64).ln() + 1.0;
    let headline = content_stems(title);
    let score = |words: &HashSet<String>| {
        let with_headline: f64 = words.intersection(&headline).map(|w| rarity(w)).sum();
        let with_body: f64 = words
            .iter()
            .filter(|w| paragraphs_with[w.as_str()] > 1)
            .map(|w| rarity(w))
            .sum();
        HEADLINE_WEIGHT * with_headline + with_body / (words.len().max(1) as f64).sqrt()
    };
    let scores: Vec<f64> = stems.iter().take(CANDIDATES).map(score).collect();
    let best = scores.iter().copied().fold(0.0, f64::max);
    let at = scores.iter().position(|&points| points * EARLIER_ADVANTAGE >= best)?;
    Some(prose[at].clone())
}

/// Whether a paragraph is a page label rather than prose: a byline, a photo
/// credit or caption, an advertisement or sponsor line, a "read more" or
/// "related" link, a newsletter pitch, an update or copyright line.
fn is_label(paragraph: &str) -> bool {
    let words = paragraph.split_whitespace().count();
    if words > LABEL_MAX_WORDS {
        return false;
    }
    let lower = paragraph.to_lowercase();
    let start = lower.trim_start_matches(|c: char| !c.is_alphanumeric() && !matches!(c, '(' | '\u{a9}'));
    LABEL_STARTS.iter().any(|label| start.starts_with(label))
        || LABEL_PARTS.iter().any(|part| lower.contains(part))
        || is_byline(paragraph, words)
        || is_timestamp(start, words)
}

/// "By Ana Perez, Harbour Reporter": short, "By" then a capitalised name.
fn is_byline(paragraph: &str, words: usize) -> bool {
    let mut parts = paragraph.split_whitespace();
    words <= 12
        && parts.next().is_some_and(|by| by.eq_ignore_ascii_case("by"))
        && parts.next().is_some_and(|name| name.starts_with(char::is_uppercase))
}

/// "Updated 14:32 GMT, 3 June": short, a verb of publishing, then a number.
fn is_timestamp(lower: &str, words: usize) -> bool {
    words <= 10
        && ["updated", "published", "posted", "last modified"]
            .iter()
            .any(|verb| lower.starts_with(verb))
        && lower.contains(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paragraphs(text: &str) -> Vec<String> {
        crate::clean::paragraphs(text)
    }

    #[test]
    fn labels_are_told_from_prose() {
        for label in [
            "Advertisement",
            "By Ana Perez, Harbour Reporter",
            "Photo: Tom Hale / Gazette",
            "The mask on display in 2019. (Photo by Lena Ortiz)",
            "Updated 14:32 GMT, 3 June",
            "Read more: our coverage of the budget",
            "Get the briefing in your inbox every weekday at seven.",
            "Editor\u{2019}s note: this article was corrected.",
        ] {
            assert!(is_label(label), "{label:?} is a label");
        }
        for prose in [
            "By the time the ferry docked, the storm had passed over the bay.",
            "Updated figures show the harbour handled more ships than ever last year.",
            "Photographers gathered at the harbour to watch the ferry return.",
        ] {
            assert!(!is_label(prose), "{prose:?} is prose");
        }
    }

    #[test]
    fn the_first_paragraph_is_kept_when_it_is_about_the_story() {
        let text = "The harbour ferry returns on Monday after repairs to its hull.\n\n\
                    Repairs to the ferry's hull took four months at the Eastgate yard.";
        assert_eq!(
            lead("Harbour ferry returns", &paragraphs(text)).map(|(at, _)| at),
            Some(0)
        );
    }

    #[test]
    fn an_opener_about_another_story_is_passed_over() {
        let text = "In other news, the football coach resigned on Tuesday after five defeats in a row.\n\n\
                    The harbour ferry returns on Monday after repairs to its hull.\n\n\
                    Repairs to the ferry's hull took four months at the Eastgate yard.";
        assert_eq!(
            lead("Harbour ferry returns", &paragraphs(text)).map(|(at, _)| at),
            Some(1)
        );
    }

    #[test]
    fn no_prose_means_no_lead() {
        assert_eq!(lead("Title", &paragraphs("Advertisement\n\nBy Ana Perez")), None);
    }

    /// The written corpus in tests/leads: articles with known right leads.
    #[test]
    fn the_lead_corpus_is_read_right_nine_times_in_ten_or_better() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/leads");
        let manifest = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
        let (mut right, mut total, mut wrong) = (0, 0, Vec::new());
        for line in manifest.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let (file, expected) = line.split_once(' ').unwrap();
            let expected: usize = expected.trim().parse().unwrap();
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let (title, body) = text.split_once("\n\n").unwrap();
            let found = lead(title, &paragraphs(body)).map(|(at, _)| at);
            total += 1;
            if found == Some(expected) {
                right += 1;
            } else {
                wrong.push(format!("{file}: expected {expected}, found {found:?}"));
            }
        }
        println!("lead corpus: {right}/{total} right; wrong: {wrong:?}");
        assert!(total >= 20, "the corpus holds {total} articles");
        assert!(right * 10 >= total * 9, "{right}/{total} right; wrong: {wrong:#?}");
    }
}

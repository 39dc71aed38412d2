//! The picture a page names for link previews: `og:image` (or its `:url` or
//! `:secure_url` form), else `twitter:image`. Read from the `<meta>` tags of
//! the page's head only (reading stops at `</head>` or `<body`), each
//! attribute value entity-decoded, resolved against the page's URL; http(s)
//! only.

use url::Url;

/// Which meta names give the picture, best first.
const NAMES: [&str; 4] = ["og:image:secure_url", "og:image:url", "og:image", "twitter:image"];

/// The picture `html` (the page at `page`) names for previews, if any.
pub fn page_image(html: &str, page: &Url) -> Option<String> {
    let mut found: Vec<(usize, String)> = Vec::new();
    for attributes in meta_tags(head(html)) {
        let named = attributes
            .iter()
            .find(|(name, _)| name == "property" || name == "name")
            .map(|(_, value)| value.to_ascii_lowercase());
        let content = attributes.iter().find(|(name, _)| name == "content").map(|(_, v)| v);
        if let (Some(named), Some(content)) = (named, content)
            && let Some(rank) = NAMES.iter().position(|n| *n == named)
            && let Some(url) = page
                .join(content.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
        {
            found.push((rank, url.to_string()));
        }
    }
    // The best name; the first of its tags when a page repeats it.
    found.into_iter().min_by_key(|(rank, _)| *rank).map(|(_, url)| url)
}

/// `html` up to its head's end (or its body's start).
fn head(html: &str) -> &str {
    let lower = html.to_ascii_lowercase();
    let end = ["</head", "<body"]
        .iter()
        .filter_map(|marker| lower.find(marker))
        .min()
        .unwrap_or(html.len());
    &html[..end]
}

/// The attributes of each `<meta ...>` tag in `html`: lowercased names,
/// entity-decoded values.
fn meta_tags(html: &str) -> Vec<Vec<(String, String)>> {
    let lower = html.to_ascii_lowercase();
    let mut tags = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find("<meta") {
        let start = from + at + "<meta".len();
        if !html[start..].starts_with(|c: char| c.is_ascii_whitespace() || c == '/') {
            from = start;
            continue;
        }
        let (attributes, end) = attributes(&html[start..]);
        tags.push(attributes);
        from = start + end;
    }
    tags
}

/// The attributes at the start of `text` (just after a tag's name), and how
/// many bytes they took up to the tag's end.
fn attributes(text: &str) -> (Vec<(String, String)>, usize) {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_space = |i: &mut usize| {
        while *i < bytes.len() && (bytes[*i].is_ascii_whitespace() || bytes[*i] == b'/') {
            *i += 1;
        }
    };
    loop {
        skip_space(&mut i);
        if i >= bytes.len() || bytes[i] == b'>' {
            return (out, (i + 1).min(bytes.len()));
        }
        let name_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !matches!(bytes[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name = text[name_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let (raw, next) = match bytes.get(i) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let end = text[i + 1..].find(quote as char).map_or(text.len(), |e| i + 1 + e);
                    (&text[i + 1..end], (end + 1).min(text.len()))
                }
                _ => {
                    let end = text[i..]
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .map_or(text.len(), |e| i + e);
                    (&text[i..end], end)
                }
            };
            value = crate::clean::plain_line(raw);
            i = next;
        }
        if !name.is_empty() {
            out.push((name, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://news.example.org/2026/ferry").unwrap()
    }

    #[test]
    fn open_graph_comes_first_resolved_and_decoded() {
        let html = r#"<!doctype html><html><head>
            <meta name="twitter:image" content="https://cdn.example.org/t.jpg">
            <META PROPERTY='og:image' CONTENT='/pictures/ferry.jpg?w=1200&amp;h=630'>
            <meta property="og:image" content="https://cdn.example.org/second.jpg" />
            </head><body><meta property="og:image:secure_url" content="https://late.example.org/x.jpg"></body></html>"#;
        assert_eq!(
            page_image(html, &page()).as_deref(),
            Some("https://news.example.org/pictures/ferry.jpg?w=1200&h=630"),
            "og:image over twitter:image, the first of a repeated name, nothing from the body"
        );
    }

    #[test]
    fn twitter_image_is_the_fallback_and_unsafe_schemes_are_not_taken() {
        let html = r#"<head><meta property="og:image" content="javascript:alert(1)">
            <meta name=twitter:image content=//cdn.example.org/t.png></head>"#;
        assert_eq!(
            page_image(html, &page()).as_deref(),
            Some("https://cdn.example.org/t.png")
        );
        assert_eq!(page_image("<head><title>x</title></head>", &page()), None);
    }

    #[test]
    fn broken_markup_is_read_without_a_panic() {
        for html in [
            "<meta",
            "<meta property=\"og:image\" content=\"",
            "<meta property=og:image content=",
            "<metadata property=\"og:image\" content=\"/x.jpg\">",
            "<meta property=\"og:image\" content=\"/ü.jpg\"",
            "\u{1f600}<meta/>",
        ] {
            let _ = page_image(html, &page());
        }
        assert_eq!(
            page_image("<metadata property=\"og:image\" content=\"/x.jpg\">", &page()),
            None,
            "only meta tags"
        );
    }
}

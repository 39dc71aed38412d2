//! Any text as an article file (plain text, Markdown with TOML or YAML front
//! matter, JSON), the first byte choosing the kind: a draft or an error,
//! never a panic; a draft cleaned into an article whose one-line fields hold
//! no tag and no control character.
#![no_main]

use herald::source::article_file::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((kind, rest)) = data.split_first() else {
        return;
    };
    let ext = ["txt", "md", "json"][usize::from(*kind) % 3];
    let text = String::from_utf8_lossy(rest);
    let modified = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("a valid time");
    let Ok(draft) = parse(ext, &text, modified) else {
        return;
    };
    if let Ok(article) = herald::article::Article::from_draft("fuzz", draft, None) {
        for field in [Some(&article.title), article.author.as_ref(), Some(&article.excerpt)]
            .into_iter()
            .flatten()
        {
            assert!(!field.contains(char::is_control), "a control character in {field:?}");
            assert!(
                !field
                    .as_bytes()
                    .windows(2)
                    .any(|w| w[0] == b'<' && w[1].is_ascii_alphabetic()),
                "a tag in {field:?}"
            );
        }
    }
});

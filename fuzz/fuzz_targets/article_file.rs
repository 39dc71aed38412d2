//! Any text as an article file (plain text, Markdown with TOML or YAML front
//! matter, JSON), the first byte choosing the kind: a draft or an error,
//! never a panic.
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
    let _ = parse(ext, &text, modified);
});

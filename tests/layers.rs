//! The layering rules of ARCHITECTURE.md, checked against the source: each
//! top-level module uses only the modules its row allows, every row names
//! only modules above it (so there are no import circles), and only `store`
//! speaks SQL. A new module or a new dependency is a deliberate edit here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module of the library, lowest first, with the modules it
/// may use. A row may name only rows above it.
const LAYERS: &[(&str, &[&str])] = &[
    // Leaves: they know nothing of the rest of Herald.
    ("config", &[]),
    ("clock", &[]),
    ("failpoint", &[]),
    ("shutdown", &[]),
    ("health", &[]),
    ("instance", &[]),
    ("clean", &[]),
    ("retry", &[]),
    ("token", &[]),
    ("schedule", &["config"]),
    // What comes in: articles, the sources they come from, and the store.
    ("article", &["clean"]),
    ("source", &["article", "clean", "clock", "config"]),
    ("store", &["article", "failpoint", "source", "token"]),
    ("import", &["clean", "store"]),
    ("ingest", &["article", "config", "source", "store"]),
    // What goes out: rendering, mail (each recipient's message and the transports), social posts.
    ("render", &["clean", "config", "store"]),
    ("mail", &["clean", "config", "render", "token"]),
    // Bounce and complaint reports read (from files, a mailbox over IMAP with
    // mail's TLS, webhooks), matched to deliveries, recorded.
    ("bounce", &["config", "mail", "store", "token"]),
    (
        "social",
        &[
            "clean", "clock", "config", "ingest", "instance", "retry", "shutdown", "source", "store",
        ],
    ),
    // The loaded configuration with what is compiled from it.
    ("app", &["config", "mail", "render", "social", "store", "token"]),
    // The jobs: sending an edition, building one, welcoming a subscriber.
    (
        "sender",
        &[
            "app", "bounce", "clock", "config", "instance", "mail", "retry", "shutdown", "store", "token",
        ],
    ),
    (
        "digest",
        &[
            "app",
            "article",
            "config",
            "failpoint",
            "import",
            "ingest",
            "render",
            "sender",
            "store",
        ],
    ),
    (
        "welcome",
        &["app", "clock", "config", "render", "sender", "shutdown", "store"],
    ),
    // The faces: the web pages, the daemon, the command line.
    (
        "web",
        &[
            "app", "bounce", "clean", "clock", "config", "health", "import", "mail", "shutdown", "social", "store",
            "token", "welcome",
        ],
    ),
    (
        "daemon",
        &[
            "app",
            "bounce",
            "clock",
            "config",
            "digest",
            "failpoint",
            "health",
            "ingest",
            "instance",
            "schedule",
            "sender",
            "shutdown",
            "social",
            "source",
            "store",
            "web",
        ],
    ),
    (
        "cli",
        &[
            "app", "bounce", "clean", "clock", "config", "daemon", "digest", "import", "ingest", "mail", "schedule",
            "sender", "shutdown", "social", "source", "store",
        ],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`None` for the crate roots).
fn module_of(file: &Path) -> Option<String> {
    let first = file.strip_prefix(src()).unwrap().components().next()?;
    let name = first.as_os_str().to_str()?.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// The code of a file without its unit tests, which may reach anywhere.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The first path segment of every `crate::` path in `code`, including each
/// item of a `use crate::{a, b::c}` group.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start => {
                        refs.insert(ident(&group[i..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            refs.insert(ident(rest));
        }
    }
    refs.retain(|r| !r.is_empty());
    refs
}

#[test]
fn every_module_uses_only_what_its_layer_allows() {
    let order: BTreeMap<&str, usize> = LAYERS.iter().enumerate().map(|(i, (m, _))| (*m, i)).collect();
    let mut problems = Vec::new();
    for (i, (module, allowed)) in LAYERS.iter().enumerate() {
        for used in *allowed {
            match order.get(used) {
                Some(&j) if j < i => {}
                _ => problems.push(format!("the table lets {module} use {used}, which is not above it")),
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut seen = BTreeSet::new();
    for file in &files {
        let Some(module) = module_of(file) else { continue };
        seen.insert(module.clone());
        let Some(&(_, allowed)) = LAYERS.iter().find(|(m, _)| *m == module) else {
            problems.push(format!("{}: module {module} has no row in LAYERS", file.display()));
            continue;
        };
        for used in crate_refs(&code(file)) {
            // Items of the crate root (`crate::error_chain`) are for everyone.
            let is_module = order.contains_key(used.as_str()) || src().join(format!("{used}.rs")).exists();
            if is_module && used != module && !allowed.contains(&used.as_str()) {
                problems.push(format!(
                    "{}: {module} uses crate::{used}, which its layer does not allow",
                    file.display()
                ));
            }
        }
    }
    for (module, _) in LAYERS {
        if !seen.contains(*module) {
            problems.push(format!("LAYERS names {module}, which is not a module"));
        }
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn only_the_store_speaks_sql() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let store = src().join("store");
    let speaking: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(&store))
        .filter(|f| code(f).contains("sqlx::"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(speaking.is_empty(), "SQL outside src/store: {speaking:?}");
}

#[test]
fn group_imports_are_read_item_by_item() {
    let refs = crate_refs("use crate::{config::{A, B}, mail};\nlet x = crate::clock::now();");
    assert_eq!(
        refs,
        BTreeSet::from(["clock".to_string(), "config".into(), "mail".into()])
    );
}

//! `[[sources]]` and `[[lists]]`.

use super::*;

pub(super) fn check_sources(c: &mut Checker, raw: &RawConfig, site_base: Option<&Url>) -> Vec<SourceSettings> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, s) in raw.sources.iter().enumerate() {
        let key = item_key("sources", i, &s.name);
        let name = check_name(c, &key, &s.name, &mut seen);
        let kind = check_source_kind(c, &key, s, site_base);
        let poll_interval = Duration::from_secs(c.positive(
            &format!("{key}.poll_interval_secs"),
            s.poll_interval_secs,
            900,
            7 * 86400,
        ) as u64);
        if let (Some(name), Some(kind)) = (name, kind) {
            out.push(SourceSettings {
                name,
                kind,
                poll_interval,
            });
        }
    }
    out
}

pub(super) fn check_source_kind(
    c: &mut Checker,
    key: &str,
    s: &RawSource,
    site_base: Option<&Url>,
) -> Option<SourceKind> {
    match s.kind.as_deref() {
        Some("folder") => {
            let path = PathBuf::from(c.required(&format!("{key}.path"), &s.path)?);
            if !path.is_dir() {
                c.problem(&format!("{key}.path"), format!("{} is not a folder", path.display()));
            }
            let base_url = match &s.base_url {
                Some(u) => c.url(&format!("{key}.base_url"), u)?,
                None => site_base?.clone(),
            };
            Some(SourceKind::Folder { path, base_url })
        }
        Some("feed") => {
            let url = c.required(&format!("{key}.url"), &s.url)?;
            let url = c.url(&format!("{key}.url"), &url)?;
            Some(SourceKind::Feed {
                url,
                timeout: Duration::from_secs(c.positive(&format!("{key}.timeout_secs"), s.timeout_secs, 20, 600) as u64),
                max_bytes: c.positive(&format!("{key}.max_bytes"), s.max_bytes, 10 * 1024 * 1024, 1 << 30) as u64,
                max_items: c.positive(&format!("{key}.max_items"), s.max_items, 1000, 100_000) as usize,
                trust_ids: s.trust_ids.unwrap_or(true),
                allow_private_redirects: s.allow_private_redirects.unwrap_or(false),
                page_images: s.page_images.unwrap_or(true),
            })
        }
        Some(other) => {
            c.problem(&format!("{key}.type"), format!("{other:?} is not one of folder, feed"));
            None
        }
        None => {
            c.problem(&format!("{key}.type"), "is required (folder or feed)");
            None
        }
    }
}

pub(super) fn check_lists(c: &mut Checker, raw: &RawConfig) -> Vec<ListSettings> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, l) in raw.lists.iter().enumerate() {
        let key = item_key("lists", i, &l.name);
        let Some(name) = check_name(c, &key, &l.name, &mut seen) else {
            continue;
        };
        let seed = l.seed.as_ref().map(PathBuf::from);
        if let Some(seed) = &seed
            && !seed.is_file()
        {
            c.problem(&format!("{key}.seed"), format!("{} is not a file", seed.display()));
        }
        let title = l.title.clone().unwrap_or_else(|| name.clone());
        let consent = match &l.consent {
            Some(text) if text.trim().is_empty() => {
                c.problem(
                    &format!("{key}.consent"),
                    "must not be empty (leave it out for the default wording)",
                );
                String::new()
            }
            Some(text) => text.trim().to_string(),
            None => format!(
                "I would like to receive {title} by email. I can leave at any time with the link at the foot of every email."
            ),
        };
        out.push(ListSettings {
            title,
            name,
            seed,
            signup: l.signup.unwrap_or(true),
            archive: l.archive.unwrap_or(false),
            consent,
        });
    }
    out
}

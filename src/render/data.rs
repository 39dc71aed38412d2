//! The data a digest's templates see: the site, the list, the edition, its
//! articles, and the same articles grouped into sections by source and by
//! tag. Every value is data: escaped in the HTML part, never parsed as
//! template source.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::merge::strip_markers;
use crate::config::{DigestJob, JobSettings, ListSettings, Site};
use crate::store::StoredArticle;

/// The most characters of the hidden preheader (the line a mail client shows
/// beside the subject), taken from the first story's excerpt.
const PREHEADER_CHARS: usize = 140;

#[derive(Debug, Clone, Serialize)]
pub struct ArticleData {
    pub title: String,
    pub url: String,
    pub excerpt: String,
    pub author: Option<String>,
    pub published: String,
    pub tags: Vec<String>,
    /// The article's picture: an https URL, or none.
    pub image: Option<String>,
    /// The name of the source it came from.
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EditionData {
    pub site: SiteData,
    pub list: ListData,
    pub edition: EditionInfo,
    pub articles: Vec<ArticleData>,
    pub sections: Sections,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteData {
    pub name: String,
    pub base_url: String,
    pub postal_address: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListData {
    pub name: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EditionInfo {
    pub job: String,
    pub date: String,
    pub count: usize,
    pub single: bool,
    pub empty: bool,
    /// The first story's excerpt, shortened: for a hidden preheader.
    pub preheader: String,
    /// The job's `show_images`.
    pub show_images: bool,
    /// Whether the articles come from more than one source, so a table of
    /// contents by source helps.
    pub sectioned: bool,
    /// The edition's page in the list's public archive, when it has one.
    pub archive_url: Option<String>,
}

/// The edition's articles grouped: by source (in the job's order of
/// sources) and by tag (most articles first); empty groups left out. An
/// article with several tags is in each of their groups.
#[derive(Debug, Clone, Serialize)]
pub struct Sections {
    pub by_source: Vec<Section>,
    pub by_tag: Vec<Section>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub name: String,
    pub count: usize,
    pub articles: Vec<ArticleData>,
}

pub(super) fn safe(value: &str) -> String {
    strip_markers(value).into_owned()
}

impl SiteData {
    pub(super) fn of(site: &Site) -> Self {
        SiteData {
            name: safe(&site.name),
            base_url: site.base_url.to_string(),
            postal_address: safe(&site.postal_address),
        }
    }
}

impl ListData {
    pub(super) fn of(list: &ListSettings) -> Self {
        ListData {
            name: list.name.clone(),
            title: safe(&list.title),
        }
    }
}

impl EditionData {
    /// The data an edition's templates see, from its stored articles.
    pub fn new(
        site: &Site,
        list: &ListSettings,
        job: &JobSettings,
        digest: &DigestJob,
        articles: &[StoredArticle],
        now: DateTime<Utc>,
        archive_url: Option<String>,
    ) -> Self {
        let tz: Tz = job.timezone;
        let articles = articles
            .iter()
            .map(|a| ArticleData {
                title: safe(&a.title),
                url: safe(&a.url),
                excerpt: safe(&a.excerpt),
                author: a.author.as_deref().map(safe),
                published: a.published_at.with_timezone(&tz).format("%-d %B %Y").to_string(),
                tags: a.tags().iter().map(|t| safe(t)).collect(),
                image: a.image.as_deref().filter(|u| u.starts_with("https://")).map(safe),
                source: safe(&a.source),
            })
            .collect();
        Self::assemble(
            SiteData::of(site),
            ListData::of(list),
            job,
            digest,
            now.with_timezone(&tz).format("%A %-d %B %Y").to_string(),
            articles,
            archive_url,
        )
    }

    /// Sample editions to test-render a job's templates with: one full (two
    /// sources, pictures, tags, an author), one empty.
    pub fn samples(job: &JobSettings, digest: &DigestJob) -> Vec<EditionData> {
        let article = |n: usize, full: bool| ArticleData {
            title: format!("Sample article {n}"),
            url: format!("https://example.org/sample-{n}"),
            excerpt: "A sample excerpt.".into(),
            author: full.then(|| "Sample Author".into()),
            published: "1 January 2026".into(),
            tags: if full { vec!["sample".into()] } else { Vec::new() },
            image: full.then(|| "https://example.org/sample.png".into()),
            source: format!("sample-{n}"),
        };
        let make = |articles: Vec<ArticleData>| {
            Self::assemble(
                SiteData {
                    name: "Sample".into(),
                    base_url: "https://example.org/".into(),
                    postal_address: "1 Sample Street".into(),
                },
                ListData {
                    name: digest.list.clone(),
                    title: "Sample list".into(),
                },
                job,
                digest,
                "Thursday 1 January 2026".into(),
                articles,
                Some("https://example.org/archive/sample/0123456789abcdef".into()),
            )
        };
        vec![make(vec![article(1, true), article(2, false)]), make(Vec::new())]
    }

    fn assemble(
        site: SiteData,
        list: ListData,
        job: &JobSettings,
        digest: &DigestJob,
        date: String,
        articles: Vec<ArticleData>,
        archive_url: Option<String>,
    ) -> Self {
        let sections = Sections::of(&job.sources, &articles);
        EditionData {
            site,
            list,
            edition: EditionInfo {
                job: job.name.clone(),
                date,
                count: articles.len(),
                single: articles.len() == 1,
                empty: articles.is_empty(),
                preheader: articles
                    .first()
                    .map(|a| crate::clean::shorten(&a.excerpt, PREHEADER_CHARS))
                    .unwrap_or_default(),
                show_images: digest.show_images,
                sectioned: sections.by_source.len() > 1,
                archive_url,
            },
            articles,
            sections,
        }
    }
}

impl Sections {
    fn of(sources: &[String], articles: &[ArticleData]) -> Sections {
        let group = |name: &str, belongs: &dyn Fn(&ArticleData) -> bool| {
            let articles: Vec<ArticleData> = articles.iter().filter(|a| belongs(a)).cloned().collect();
            Section {
                name: name.to_string(),
                count: articles.len(),
                articles,
            }
        };
        // The job's sources in its order, then any other (a sample's).
        let mut names: Vec<&str> = sources.iter().map(String::as_str).collect();
        for a in articles {
            if !names.contains(&a.source.as_str()) {
                names.push(&a.source);
            }
        }
        let by_source = names
            .iter()
            .map(|name| group(name, &|a| a.source == *name))
            .filter(|s| s.count > 0)
            .collect();
        let mut tags: Vec<&str> = Vec::new();
        for tag in articles.iter().flat_map(|a| &a.tags) {
            if !tags.contains(&tag.as_str()) {
                tags.push(tag);
            }
        }
        let mut by_tag: Vec<Section> = tags
            .iter()
            .map(|tag| group(tag, &|a| a.tags.iter().any(|t| t == tag)))
            .collect();
        by_tag.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        Sections { by_source, by_tag }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(source: &str, tags: &[&str]) -> ArticleData {
        ArticleData {
            title: format!("{source} story"),
            url: "https://example.org/".into(),
            excerpt: String::new(),
            author: None,
            published: String::new(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            image: None,
            source: source.into(),
        }
    }

    #[test]
    fn sections_follow_the_jobs_sources_and_count_tags() {
        let articles = [
            article("sport", &["football"]),
            article("news", &["council", "harbour"]),
            article("news", &["harbour"]),
        ];
        let sections = Sections::of(&["news".into(), "weather".into(), "sport".into()], &articles);
        let by_source: Vec<(&str, usize)> = sections.by_source.iter().map(|s| (s.name.as_str(), s.count)).collect();
        assert_eq!(
            by_source,
            [("news", 2), ("sport", 1)],
            "in the job's order, empty ones left out"
        );
        let by_tag: Vec<(&str, usize)> = sections.by_tag.iter().map(|s| (s.name.as_str(), s.count)).collect();
        assert_eq!(by_tag, [("harbour", 2), ("council", 1), ("football", 1)]);
    }
}

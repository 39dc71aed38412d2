//! The folder source: every `.txt`, `.md` and `.json` file in a folder (and
//! its sub-folders) is one article.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use url::Url;

use super::article_file;
use super::{Polled, SourceError};
use crate::article::{Article, ArticleError};

const EXTENSIONS: &[&str] = &["txt", "md", "markdown", "json"];

pub async fn poll(name: &str, path: &Path, base_url: &Url, now: DateTime<Utc>) -> Result<Polled, SourceError> {
    let (name, path, base_url) = (name.to_string(), path.to_path_buf(), base_url.clone());
    tokio::task::spawn_blocking(move || poll_blocking(&name, &path, &base_url, now))
        .await
        .expect("the folder reader does not panic")
}

fn poll_blocking(name: &str, root: &Path, base_url: &Url, now: DateTime<Utc>) -> Result<Polled, SourceError> {
    let mut files = Vec::new();
    collect(root, &mut files).map_err(|error| SourceError::Folder {
        path: root.display().to_string(),
        error,
    })?;
    files.sort();
    let mut polled = Polled::default();
    for file in files {
        let ext = file
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let shown = file.display().to_string();
        let read = std::fs::read(&file)
            .map_err(|e| e.to_string())
            .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string()));
        let text = match read {
            Ok(text) => text,
            Err(e) => {
                polled.skipped.push(format!("{shown}: {e}"));
                continue;
            }
        };
        let modified: DateTime<Utc> = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .map(DateTime::<Utc>::from)
            .unwrap_or(now);
        let relative = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        let article = match article_file::parse(&ext, &text, modified) {
            Ok(draft) => identified(name, draft, &relative, base_url).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match article {
            Ok(article) => polled.articles.push(article),
            Err(e) => polled.skipped.push(format!("{shown}: {e}")),
        }
    }
    Ok(polled)
}

/// The article of a file: known by its source and its path in the folder
/// (unless it gives an `id`), so an edit of its title, URL or the site's
/// `base_url` updates it in place instead of making it new.
fn identified(
    source: &str,
    mut draft: crate::article::Draft,
    relative: &str,
    base_url: &Url,
) -> Result<Article, ArticleError> {
    if draft.id.is_some() {
        return Article::from_draft(source, draft, Some(base_url));
    }
    draft.id = Some(format!("file:{relative}"));
    let mut article = Article::from_draft(source, draft, Some(base_url))?;
    article.former_identity = Some(format!("url:{}", article.url));
    Ok(article)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(path);
        }
    }
    Ok(())
}

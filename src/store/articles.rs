//! Articles and the per-source poll state.

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use super::columns::Millis;
use super::{Store, StoreError, placeholders};
use crate::article::Article;
use crate::source::Validators;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Inserted,
    Updated,
    Unchanged,
}

/// An article as stored, with its row id.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredArticle {
    pub id: i64,
    pub identity: String,
    pub source: String,
    pub url: String,
    pub title: String,
    pub author: Option<String>,
    pub excerpt: String,
    pub tags: String,
    pub image: Option<String>,
    #[sqlx(try_from = "Millis")]
    pub published_at: DateTime<Utc>,
}

impl StoredArticle {
    pub fn tags(&self) -> Vec<String> {
        serde_json::from_str(&self.tags).unwrap_or_default()
    }
}

impl Store {
    /// Stores an article once per identity; an edited article is updated in
    /// place (and so is never sent again as new).
    pub async fn upsert_article(&self, article: &Article, now: DateTime<Utc>) -> Result<Upsert, StoreError> {
        let mut conn = self.pool.acquire().await?;
        upsert(&mut conn, article, now).await
    }

    /// Stores a source's articles in one transaction; one [`Upsert`] per article, in order.
    pub async fn upsert_articles(&self, articles: &[Article], now: DateTime<Utc>) -> Result<Vec<Upsert>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut done = Vec::with_capacity(articles.len());
        for article in articles {
            done.push(upsert(&mut tx, article, now).await?);
        }
        tx.commit().await?;
        Ok(done)
    }

    pub async fn validators(&self, source: &str) -> Result<Validators, StoreError> {
        let row: Option<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT etag, last_modified FROM source_state WHERE source = $1")
                .bind(source)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row
            .map(|(etag, last_modified)| Validators { etag, last_modified })
            .unwrap_or_default())
    }

    /// Records a poll: new validators when the source gave them, and the error when it failed.
    pub async fn record_poll(
        &self,
        source: &str,
        validators: Option<&Validators>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let keep = Validators::default();
        let (update_validators, v) = match validators {
            Some(v) => (1i64, v),
            None => (0i64, &keep),
        };
        sqlx::query(
            "INSERT INTO source_state (source, etag, last_modified, polled_at, last_error) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (source) DO UPDATE SET polled_at = $4, last_error = $5, \
             etag = CASE WHEN $6 = 1 THEN $2 ELSE source_state.etag END, \
             last_modified = CASE WHEN $6 = 1 THEN $3 ELSE source_state.last_modified END",
        )
        .bind(source)
        .bind(&v.etag)
        .bind(&v.last_modified)
        .bind(now.timestamp_millis())
        .bind(error)
        .bind(update_validators)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Articles from `sources` published in `(since, until]` that no edition of
    /// `job` holds yet, newest first.
    pub async fn edition_candidates(
        &self,
        job: &str,
        sources: &[String],
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, identity, source, url, title, author, excerpt, tags, image, published_at FROM articles a \
             WHERE a.source IN ({}) AND a.published_at > $1 AND a.published_at <= $2 \
             AND NOT EXISTS (SELECT 1 FROM edition_articles ea WHERE ea.job = $3 AND ea.article_id = a.id) \
             ORDER BY a.published_at DESC, a.id DESC LIMIT {}",
            placeholders(4, sources.len()),
            limit
        );
        let mut query = sqlx::query_as::<_, StoredArticle>(AssertSqlSafe(sql))
            .bind(since.timestamp_millis())
            .bind(until.timestamp_millis())
            .bind(job);
        for source in sources {
            query = query.bind(source);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    pub async fn article(&self, id: i64) -> Result<StoredArticle, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, identity, source, url, title, author, excerpt, tags, image, published_at FROM articles WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn article_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM articles")
            .fetch_one(&self.pool)
            .await?)
    }
}

impl Store {
    /// Which of `identities` the store already holds.
    /// The picture the store has for each known article of `identities`
    /// (none when it has none); unknown ones are not in the map.
    pub async fn stored_images(
        &self,
        identities: &[String],
    ) -> Result<std::collections::HashMap<String, Option<String>>, StoreError> {
        let mut images = std::collections::HashMap::new();
        for chunk in identities.chunks(500) {
            let sql = format!(
                "SELECT identity, image FROM articles WHERE identity IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, Option<String>)>(AssertSqlSafe(sql));
            for identity in chunk {
                query = query.bind(identity);
            }
            images.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(images)
    }

    pub async fn known_identities(
        &self,
        identities: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut known = std::collections::HashSet::new();
        for chunk in identities.chunks(500) {
            let sql = format!(
                "SELECT identity FROM articles WHERE identity IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
            for identity in chunk {
                query = query.bind(identity);
            }
            known.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(known)
    }
}

/// Inserts a new article, or updates a known one whose content changed.
async fn upsert(
    executor: &mut sqlx::AnyConnection,
    article: &Article,
    now: DateTime<Utc>,
) -> Result<Upsert, StoreError> {
    let hash = article.content_hash();
    let tags = serde_json::to_string(&article.tags).expect("strings serialise");
    let now = now.timestamp_millis();
    if let Some(former) = &article.former_identity {
        sqlx::query(
            "UPDATE articles SET identity = $1 WHERE identity = $2 AND source = $3 \
             AND NOT EXISTS (SELECT 1 FROM articles known WHERE known.identity = $1)",
        )
        .bind(&article.identity)
        .bind(former)
        .bind(&article.source)
        .execute(&mut *executor)
        .await?;
    }
    let inserted = sqlx::query(
        "INSERT INTO articles (identity, source, url, title, author, excerpt, content_html, tags, image, \
         published_at, content_hash, first_seen_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) ON CONFLICT (identity) DO NOTHING",
    )
    .bind(&article.identity)
    .bind(&article.source)
    .bind(&article.url)
    .bind(&article.title)
    .bind(&article.author)
    .bind(&article.excerpt)
    .bind(&article.content_html)
    .bind(&tags)
    .bind(&article.image)
    .bind(article.published_at.timestamp_millis())
    .bind(&hash)
    .bind(now)
    .execute(&mut *executor)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Upsert::Inserted);
    }
    let updated = sqlx::query(
        "UPDATE articles SET url = $2, title = $3, author = $4, excerpt = $5, content_html = $6, tags = $7, \
         image = $8, published_at = CASE WHEN $12 = 1 THEN $9 ELSE published_at END, content_hash = $10, updated_at = $11 \
         WHERE identity = $1 AND content_hash <> $10",
    )
    .bind(&article.identity)
    .bind(&article.url)
    .bind(&article.title)
    .bind(&article.author)
    .bind(&article.excerpt)
    .bind(&article.content_html)
    .bind(&tags)
    .bind(&article.image)
    .bind(article.published_at.timestamp_millis())
    .bind(&hash)
    .bind(now)
    .bind(i64::from(article.dated))
    .execute(&mut *executor)
    .await?;
    Ok(if updated.rows_affected() == 1 {
        Upsert::Updated
    } else {
        Upsert::Unchanged
    })
}

//! The durable store: articles, subscribers, editions and per-recipient
//! deliveries, on SQLite (the embedded default, in WAL mode) or PostgreSQL,
//! through one set of queries on sqlx's `Any` driver.

#[macro_use]
mod state;

mod articles;
mod bounces;
mod columns;
mod copy;
mod deliveries;
mod editions;
mod fires;
mod holds;
mod lease;
mod posts;
mod privacy;
mod schema;
mod stats;
mod subscribers;
mod tokens;

use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Connection, Executor};

pub use articles::{StoredArticle, Upsert};
pub use bounces::{BounceAction, BounceKind, BounceRow, BounceTarget, EditionBounces, NewBounce, SoftLimit};
pub use copy::TableCopy;
pub use deliveries::{Attempt, Claimed, DeliveryRow, DeliveryState, Lease, Outcome, StateCount};
pub use editions::{
    ArchivedEdition, Cancelled, EditionRow, FireRef, NewEdition, PausedEdition, Recipients, welcome_queue,
};
pub use fires::Fire;
pub use holds::Hold;
pub use posts::{PostOutcome, PostRow, PostState};
pub use privacy::{Erased, Suppression, erased_key};
pub use schema::Migration;
pub use state::UnknownState;
pub use stats::{Sample, Stats};
pub use subscribers::{
    AddOutcome, Attributes, Consent, ConsentRecord, NewSubscriber, SignupOutcome, Subscriber, SubscriberStatus,
    email_key,
};
pub use tokens::AccountToken;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the folder for {path}: {error}")]
    Folder { path: String, error: std::io::Error },
    #[error(
        "the store's schema is at version {store}, newer than this Herald knows (up to {known}): \
         run a Herald as new as the one that migrated it"
    )]
    NewerSchema { store: i64, known: i64 },
    #[error(
        "the fire of {job} scheduled at {scheduled_at} was taken over by another instance \
         (this one's claim ran out): the edition is left to it"
    )]
    FireLost { job: String, scheduled_at: DateTime<Utc> },
    #[error("cannot back up: {0}")]
    Backup(String),
    #[error("the target store is not empty (its table {table} has rows): copy only into a new store")]
    NotEmpty { table: &'static str },
    #[error("the store has a table the copy does not know: {table}")]
    UnknownTable { table: String },
    #[error(
        "the store needs migrations this Herald carries ({migrations}): run `herald migrate` \
         (a PostgreSQL store is migrated only on purpose, since several instances may share it)"
    )]
    Pending { migrations: String },
}

/// `url` as it may be shown: a password in it is replaced by `***`.
pub fn display_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Every SQLite connection's settings: write-ahead log, a busy wait of 10 s, foreign keys.
async fn set_up_sqlite(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    conn.execute("PRAGMA busy_timeout = 10000").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    Ok(())
}

impl Store {
    /// Opens the store at `url` (`sqlite://path` or `postgres://...`). A
    /// SQLite store gets its pending migrations applied; a PostgreSQL store
    /// with pending migrations is refused (see [`Store::migrate`]).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let (store, _) = Store::connect(url, None).await?;
        Ok(store)
    }

    /// Writes a consistent copy of a SQLite store to `to` while others may
    /// be using it (`VACUUM INTO`: a snapshot as of one moment, compacted).
    /// A PostgreSQL store is backed up with its own tools (pg_dump).
    pub async fn backup(&self, to: &Path) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Backup(
                "a PostgreSQL store is backed up with pg_dump (or the server's own backups), not by Herald".into(),
            ));
        }
        if to.exists() {
            return Err(StoreError::Backup(format!(
                "{} exists: back up to a new file",
                to.display()
            )));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(to.display().to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Opens the store at `url` and applies its pending migrations, on either
    /// backend. Returns the migrations applied now.
    pub async fn migrate(url: &str) -> Result<(Store, Vec<Migration>), StoreError> {
        Store::connect(url, Some(schema::Pending::Apply)).await
    }

    /// Connects, then checks the schema: `pending` says what to do with
    /// migrations not yet applied (by default: apply them on SQLite, refuse on PostgreSQL).
    async fn connect(url: &str, pending: Option<schema::Pending>) -> Result<(Store, Vec<Migration>), StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite => {
                let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                let file = path.split('?').next().unwrap_or(path);
                if let Some(parent) = Path::new(file).parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|error| StoreError::Folder {
                        path: file.to_string(),
                        error,
                    })?;
                }
                if url.contains('?') {
                    url.to_string()
                } else {
                    format!("sqlite://{file}?mode=rwc")
                }
            }
            Backend::Postgres => url.to_string(),
        };
        let options = AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 4 } else { 16 });
        let options = if backend == Backend::Sqlite {
            // One connection first: a file that cannot be set up (a full
            // disk, no permission) is reported at once with SQLite's own
            // words, instead of the pool retrying until it times out.
            let mut probe = sqlx::AnyConnection::connect(&url).await?;
            set_up_sqlite(&mut probe).await?;
            probe.close().await?;
            // A connection to a local file does not go stale: no ping before each use.
            options
                .test_before_acquire(false)
                .after_connect(|conn, _| Box::pin(set_up_sqlite(conn)))
        } else {
            options
        };
        let pool = options.connect(&url).await?;
        let (migrator, default) = match backend {
            Backend::Sqlite => (&SQLITE_MIGRATIONS, schema::Pending::Apply),
            Backend::Postgres => (&POSTGRES_MIGRATIONS, schema::Pending::Refuse),
        };
        let applied = schema::bring_up_to_date(&pool, backend, migrator, pending.unwrap_or(default)).await?;
        Ok((Store { pool, backend }, applied))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The configured token keys, or a signing key generated for this store
    /// (and kept in it) when none is configured.
    pub async fn token_keys(
        &self,
        configured: &crate::token::TokenKeys,
    ) -> Result<crate::token::TokenKeys, StoreError> {
        if configured.is_configured() {
            return Ok(configured.clone());
        }
        Ok(configured.clone().or_generated(&self.generated_token_secret().await?))
    }

    /// The token secret generated for this store when none is configured.
    async fn generated_token_secret(&self) -> Result<String, StoreError> {
        let fresh = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        sqlx::query("INSERT INTO secrets (name, value) VALUES ('token_secret', $1) ON CONFLICT (name) DO NOTHING")
            .bind(&fresh)
            .execute(&self.pool)
            .await?;
        let value: String = sqlx::query_scalar("SELECT value FROM secrets WHERE name = 'token_secret'")
            .fetch_one(&self.pool)
            .await?;
        Ok(value)
    }
}

/// `$1, $2, ...` for `n` values starting at `$first`.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a stored enum value.
fn parse_state<T: FromStr>(value: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    value.parse().expect("the store only holds values Herald wrote")
}

#[cfg(test)]
mod tests {
    use super::display_url;

    #[test]
    fn a_password_in_a_store_url_is_not_shown() {
        assert_eq!(
            display_url("postgres://herald:hunter2@db.example.org:5432/herald"),
            "postgres://herald:***@db.example.org:5432/herald"
        );
        assert_eq!(display_url("sqlite://data/herald.db"), "sqlite://data/herald.db");
        assert_eq!(
            display_url("postgres://herald@db.example.org/herald"),
            "postgres://herald@db.example.org/herald"
        );
    }
}

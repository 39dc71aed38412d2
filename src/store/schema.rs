//! The store's schema version against the migrations this build carries.
//!
//! A SQLite store (one process, the embedded default) is brought up to date
//! when it is opened. A PostgreSQL store, which several instances may share,
//! is migrated only by `herald migrate`, so an upgrade is a deliberate step;
//! until then every other command refuses it and names the command. Either
//! backend is refused when its schema is newer than this build knows: an
//! older binary must not write to a schema it does not understand.

use sqlx::AnyPool;
use sqlx::migrate::Migrator;

use super::{Backend, StoreError};

/// What opening a store does with migrations it has not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    Apply,
    Refuse,
}

/// A migration, as `herald migrate` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: i64,
    pub description: String,
}

/// Checks the store's applied migrations against `migrator`'s and applies
/// the pending ones when `pending` says so. Returns the ones applied now.
pub(super) async fn bring_up_to_date(
    pool: &AnyPool,
    backend: Backend,
    migrator: &Migrator,
    pending: Pending,
) -> Result<Vec<Migration>, StoreError> {
    let applied = applied_versions(pool, backend).await?;
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(&newest) = applied.iter().max()
        && newest > known
    {
        return Err(StoreError::NewerSchema { store: newest, known });
    }
    let missing: Vec<Migration> = migrator
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| Migration {
            version: m.version,
            description: m.description.to_string(),
        })
        .collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    if pending == Pending::Refuse {
        return Err(StoreError::Pending {
            migrations: missing
                .iter()
                .map(|m| format!("{:04}_{}", m.version, m.description.replace(' ', "_")))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    migrator.run(pool).await?;
    Ok(missing)
}

/// The versions recorded in sqlx's migration table; none on a new store.
async fn applied_versions(pool: &AnyPool, backend: Backend) -> Result<Vec<i64>, StoreError> {
    let exists_sql = match backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_name = '_sqlx_migrations' AND table_schema = current_schema()"
        }
    };
    let exists: i64 = sqlx::query_scalar(exists_sql).fetch_one(pool).await?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    Ok(
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version")
            .fetch_all(pool)
            .await?,
    )
}

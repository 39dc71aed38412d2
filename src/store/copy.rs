//! Copying a whole store into an empty one: `herald migrate --from URL --to
//! URL`, to move a SQLite store to PostgreSQL. Every table (articles,
//! sources' poll state, subscribers, suppressions, consent records,
//! editions, deliveries, fires, instances, posts, account state, secrets)
//! is streamed in its primary-key order and inserted with its ids in batches,
//! PostgreSQL's identity counters are moved past the copied ids, and the row
//! counts of both stores are compared.

use futures::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Column, Row};

use super::{Backend, Store, StoreError};

/// Tables in an order that keeps references valid, each with its ordering key.
const TABLES: [(&str, &str); 15] = [
    ("secrets", "name"),
    ("articles", "id"),
    ("source_state", "source"),
    ("subscribers", "id"),
    ("suppressions", "email_key"),
    ("consents", "id"),
    ("editions", "id"),
    ("edition_articles", "edition_id, article_id"),
    ("deliveries", "id"),
    ("job_fires", "job, scheduled_at"),
    ("instances", "id"),
    ("posts", "id"),
    ("account_state", "account"),
    ("job_holds", "job"),
    ("bounces", "id"),
];

/// Tables whose `id` PostgreSQL generates.
const IDENTITY_TABLES: [&str; 7] = [
    "articles",
    "subscribers",
    "editions",
    "deliveries",
    "posts",
    "consents",
    "bounces",
];

/// Parameters per insert statement at most (PostgreSQL allows 65,535).
const PARAMETERS_PER_INSERT: usize = 8_000;

/// One table's copy: rows in the source, rows in the target afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    pub table: &'static str,
    pub source: i64,
    pub target: i64,
}

/// Whether each column (by name) of a table holds integers; the rest hold
/// text (the schema has nothing else).
type Kinds = std::collections::HashMap<String, bool>;

impl Store {
    /// Copies every table of this store into `target`, which must be empty
    /// and at the same schema version, and returns each table's counts.
    pub async fn copy_into(&self, target: &Store) -> Result<Vec<TableCopy>, StoreError> {
        // A table added by a later migration must be added to TABLES too.
        for table in self.tables().await? {
            if table != "_sqlx_migrations" && !TABLES.iter().any(|(known, _)| *known == table) {
                return Err(StoreError::UnknownTable { table });
            }
        }
        for (table, _) in TABLES {
            if table != "secrets" && target.count(table).await? > 0 {
                return Err(StoreError::NotEmpty { table });
            }
        }
        // The target's own generated signing key gives way to the source's.
        sqlx::query("DELETE FROM secrets").execute(&target.pool).await?;
        let mut copies = Vec::with_capacity(TABLES.len());
        for (table, key) in TABLES {
            self.copy_table(target, table, key).await?;
            copies.push(TableCopy {
                table,
                source: self.count(table).await?,
                target: target.count(table).await?,
            });
        }
        if target.backend == Backend::Postgres {
            for table in IDENTITY_TABLES {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                );
                sqlx::query(AssertSqlSafe(sql)).execute(&target.pool).await?;
            }
        }
        Ok(copies)
    }

    async fn copy_table(&self, target: &Store, table: &str, key: &str) -> Result<(), StoreError> {
        let kinds = target.column_kinds(table).await?;
        let select = format!("SELECT * FROM {table} ORDER BY {key}");
        let mut rows = sqlx::query(AssertSqlSafe(select)).fetch(&self.pool);
        let mut batch: Vec<AnyRow> = Vec::new();
        let mut columns: Vec<String> = Vec::new();
        while let Some(row) = rows.try_next().await? {
            if columns.is_empty() {
                columns = row.columns().iter().map(|c| c.name().to_string()).collect();
            }
            batch.push(row);
            if batch.len() * columns.len() >= PARAMETERS_PER_INSERT {
                target.insert_rows(table, &columns, &kinds, &batch).await?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            target.insert_rows(table, &columns, &kinds, &batch).await?;
        }
        Ok(())
    }

    async fn insert_rows(
        &self,
        table: &str,
        columns: &[String],
        kinds: &Kinds,
        rows: &[AnyRow],
    ) -> Result<(), StoreError> {
        let mut next = 1;
        let tuples: Vec<String> = rows
            .iter()
            .map(|_| {
                let marks: Vec<String> = (0..columns.len())
                    .map(|_| {
                        let mark = match self.backend {
                            // Anonymous marks on SQLite: sqlx maps numbered ones by name, quadratically.
                            Backend::Sqlite => "?".to_string(),
                            Backend::Postgres => format!("${next}"),
                        };
                        next += 1;
                        mark
                    })
                    .collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {}",
            columns.join(", "),
            tuples.join(", ")
        );
        let mut insert = sqlx::query(AssertSqlSafe(sql));
        for row in rows {
            for (index, column) in columns.iter().enumerate() {
                insert = if kinds.get(column).copied().unwrap_or(false) {
                    insert.bind(row.try_get::<Option<i64>, _>(index)?)
                } else {
                    insert.bind(row.try_get::<Option<String>, _>(index)?)
                };
            }
        }
        insert.execute(&self.pool).await?;
        Ok(())
    }

    async fn column_kinds(&self, table: &str) -> Result<Kinds, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT name, type FROM pragma_table_info($1)",
            Backend::Postgres => {
                "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT) FROM information_schema.columns \
                 WHERE table_name = $1 AND table_schema = current_schema()"
            }
        };
        let columns: Vec<(String, String)> = sqlx::query_as(sql).bind(table).fetch_all(&self.pool).await?;
        Ok(columns
            .into_iter()
            .map(|(name, kind)| {
                let kind = kind.to_ascii_lowercase();
                (name, kind.contains("int"))
            })
            .collect())
    }

    async fn tables(&self) -> Result<Vec<String>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            Backend::Postgres => {
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            }
        };
        Ok(sqlx::query_scalar(sql).fetch_all(&self.pool).await?)
    }

    async fn count(&self, table: &str) -> Result<i64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        Ok(sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(&self.pool).await?)
    }
}

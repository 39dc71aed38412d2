//! The same store queries on PostgreSQL (127.0.0.1:5432, a database of its own
//! per test): a digest goes out once, and a rerun sends nothing.

use std::collections::HashSet;

use crate::util::{SmtpSink, Workspace, article_txt, base_config, show, smtp_mail, state_count, stdout};

/// A fresh database on the local PostgreSQL, dropped when this is dropped.
pub struct PgDatabase {
    pub url: String,
    name: String,
}

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn admin(statement: String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(ADMIN_URL)
            .await
            .expect("PostgreSQL runs on 127.0.0.1:5432 (scripts/test starts it)");
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
}

impl PgDatabase {
    pub fn create() -> PgDatabase {
        let name = format!("herald_test_{}", uuid::Uuid::new_v4().simple());
        admin(format!("CREATE DATABASE {name}"));
        PgDatabase {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        admin(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

#[test]
fn a_digest_on_postgres_goes_out_once() {
    let db = PgDatabase::create();
    let sink = SmtpSink::start(&[]);
    let config = base_config(&smtp_mail(sink.port, ""))
        .replace("url = \"sqlite://data/herald.db\"", &format!("url = \"{}\"", db.url));
    let ws = Workspace::new(&config);
    ws.subscribers(50);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    ws.write("articles/market.txt", &article_txt("Market moves", "market"));

    let first = ws.herald(&["digest", "daily"]);
    assert!(first.status.success(), "{}", show(&first));
    assert!(
        stdout(&first).contains("edition #1: 2 article(s) for 50 recipient(s)"),
        "{}",
        show(&first)
    );
    let again = ws.herald(&["digest", "daily"]);
    assert!(stdout(&again).contains("no new articles"), "{}", show(&again));

    let recipients = sink.recipients();
    assert_eq!(recipients.len(), 50);
    assert_eq!(recipients.iter().collect::<HashSet<_>>().len(), 50);
    assert_eq!(state_count(&stdout(&ws.herald(&["deliveries"])), "sent"), (50, 0));
    assert!(!ws.path().join("data/herald.db").exists(), "nothing went to SQLite");
}

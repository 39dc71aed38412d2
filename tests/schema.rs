//! Schema versions: a SQLite store is migrated when opened, and a store whose
//! schema is newer than this build knows is refused before anything is written.

use crate::support::{Workspace, base_config, file_mail, show, stdout};

#[test]
fn a_store_migrated_by_a_newer_herald_is_refused() {
    let ws = Workspace::sqlite(&base_config(&file_mail()));
    let first = ws.herald(&["deliveries"]);
    assert!(
        first.status.success(),
        "a new SQLite store is migrated on open: {}",
        show(&first)
    );
    let up_to_date = ws.herald(&["migrate"]);
    assert!(
        stdout(&up_to_date).contains("the schema is up to date"),
        "{}",
        show(&up_to_date)
    );

    let db = ws.path().join("data/herald.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9001, 'from the future', TRUE, x'00', 1)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    });

    for args in [&["deliveries"][..], &["migrate"], &["digest", "daily"]] {
        let refused = ws.herald(args);
        assert!(!refused.status.success(), "{args:?}: {}", show(&refused));
        let text = show(&refused);
        assert!(
            text.contains("the store's schema is at version 9001, newer than this Herald knows"),
            "{args:?}: {text}"
        );
    }
}

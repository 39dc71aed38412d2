//! The same store queries on PostgreSQL (127.0.0.1:5432, a database of its own
//! per test): a digest goes out once, and a rerun sends nothing; the schema
//! is migrated only by `herald migrate`.

use std::collections::HashSet;

use crate::support::{SmtpSink, Workspace, article_txt, base_config, file_mail, show, smtp_mail, state_count, stdout};

/// A fresh database on the local PostgreSQL, dropped when this is dropped.
pub struct PgDatabase {
    pub url: String,
    name: String,
}

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Runs `work` on a runtime of its own, on a thread of its own, so it works
/// from async tests too.
fn blocking<T: Send + 'static>(work: impl std::future::Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || tokio::runtime::Runtime::new().unwrap().block_on(work))
        .join()
        .expect("the admin thread does not panic")
}

fn admin(statement: String) {
    blocking(async move {
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

    /// A new database with Herald's schema (migrated through the library,
    /// whatever the configuration that will use it).
    pub fn migrated() -> PgDatabase {
        let db = PgDatabase::create();
        let url = db.url.clone();
        blocking(async move { herald::store::Store::migrate(&url).await.map(|_| ()) }).expect("migrated");
        db
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        admin(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

impl PgDatabase {
    /// A workspace with `config` (a [`base_config`]) whose store is this database, migrated.
    pub fn workspace(&self, config: &str) -> Workspace {
        let config = config.replace("url = \"sqlite://data/herald.db\"", &format!("url = \"{}\"", self.url));
        let ws = Workspace::new(&config);
        let migrated = ws.herald(&["migrate"]);
        assert!(migrated.status.success(), "{}", show(&migrated));
        ws
    }
}

#[test]
fn a_digest_on_postgres_goes_out_once() {
    let db = PgDatabase::create();
    let sink = SmtpSink::start(&[]);
    let ws = db.workspace(&base_config(&smtp_mail(sink.port, "")));
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

#[test]
fn a_postgres_store_is_migrated_only_by_herald_migrate() {
    let db = PgDatabase::create();
    let config = base_config(&file_mail()).replace(
        "url = \"sqlite://data/herald.db\"",
        &format!("url = \"{}\"", db.url.replace("postgres@", "postgres:s3cret-pw@")),
    );
    let ws = Workspace::new(&config);

    let refused = ws.herald(&["deliveries"]);
    assert!(!refused.status.success(), "{}", show(&refused));
    let text = show(&refused);
    assert!(text.contains("run `herald migrate`"), "{text}");
    assert!(
        text.contains("0001_initial"),
        "the pending migrations are named: {text}"
    );
    assert!(!text.contains("s3cret-pw"), "the password is not shown: {text}");

    let migrated = ws.herald(&["migrate"]);
    assert!(migrated.status.success(), "{}", show(&migrated));
    let text = stdout(&migrated);
    assert!(text.contains("applied migration 0001 (initial)"), "{text}");
    assert!(text.contains("postgres://postgres:***@127.0.0.1:5432/"), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");

    let again = ws.herald(&["migrate"]);
    assert!(stdout(&again).contains("the schema is up to date"), "{}", show(&again));
    let listed = ws.herald(&["deliveries"]);
    assert!(listed.status.success(), "{}", show(&listed));
}

/// `(claimed_by, rows)` of the database's delivery rows.
fn rows_by_instance(db: &PgDatabase) -> Vec<(String, i64)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
        let rows = sqlx::query_as(
            "SELECT COALESCE(claimed_by, ''), COUNT(*) FROM deliveries GROUP BY claimed_by ORDER BY claimed_by",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        rows
    })
}

#[test]
fn three_instances_share_one_edition_and_send_each_copy_once() {
    use crate::daemon::{start_daemon_logging_to, stop, wait_for};
    use std::time::Duration;

    let db = PgDatabase::create();
    let sink = SmtpSink::start(&[]);
    let ws = db.workspace(
        &base_config(&smtp_mail(sink.port, "max_connections = 8\nrate_limit = 1500"))
            .replace("schedule = \"0 7 * * *\"", "schedule = \"*/5 * * * * *\""),
    );
    ws.subscribers(20_000);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));

    let daemons: Vec<_> = (0..3)
        .map(|i| start_daemon_logging_to(&ws, &format!("daemon{i}.log")))
        .collect();
    let logs = || -> Vec<String> {
        (0..3)
            .map(|i| std::fs::read_to_string(ws.path().join(format!("daemon{i}.log"))).unwrap_or_default())
            .collect()
    };
    let count = |needle: &str| logs().iter().filter(|l| l.contains(needle)).count();
    wait_for(&ws, "the edition to go out", Duration::from_secs(180), || {
        sink.recipients().len() >= 20_000
    });
    // The helpers stop once the instance that made the edition has finished its run.
    wait_for(&ws, "the helpers to finish", Duration::from_secs(60), || {
        count("helped send another instance's edition") == 2
    });
    assert_eq!(count("edition created"), 1, "one instance made the edition");
    for daemon in daemons {
        stop(&ws, daemon);
    }

    let mut copies: std::collections::HashMap<String, usize> = Default::default();
    for r in sink.recipients() {
        *copies.entry(r).or_default() += 1;
    }
    assert_eq!(copies.len(), 20_000, "every recipient got the edition");
    let doubled: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "nobody got it twice: {doubled:?}");

    let by_instance = rows_by_instance(&db);
    assert_eq!(
        by_instance.len(),
        3,
        "all three instances sent part of it: {by_instance:?}"
    );
    assert!(
        by_instance.iter().all(|(who, n)| !who.is_empty() && *n > 0),
        "{by_instance:?}"
    );
    assert_eq!(by_instance.iter().map(|(_, n)| n).sum::<i64>(), 20_000);
    let rows = stdout(&ws.herald(&["deliveries"]));
    assert_eq!(state_count(&rows, "sent"), (20_000, 0), "{rows}");
}

#[test]
fn an_instance_killed_mid_send_leaves_its_rows_to_the_others() {
    use crate::daemon::{start_daemon_logging_to, stop, wait_for};
    use std::time::{Duration, Instant};

    let db = PgDatabase::create();
    let sink = SmtpSink::start(&[]);
    let ws = db.workspace(
        &base_config(&smtp_mail(
            sink.port,
            "max_connections = 4\nrate_limit = 400\nsend_timeout_secs = 2",
        ))
        .replace("schedule = \"0 7 * * *\"", "schedule = \"*/5 * * * * *\""),
    );
    ws.subscribers(3_000);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));

    let mut daemons: Vec<_> = (0..3)
        .map(|i| start_daemon_logging_to(&ws, &format!("daemon{i}.log")))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while sink.recipients().len() < 600 {
        assert!(Instant::now() < deadline, "the send did not get going");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut killed = daemons.remove(0);
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    let at_kill = sink.recipients().len();
    assert!(at_kill < 3_000, "killed mid-send ({at_kill} delivered)");

    // The others send the rest, and the killed one's leased rows once the lease (2 x 2 s + 5 s) runs out.
    wait_for(
        &ws,
        "the others to finish the edition",
        Duration::from_secs(120),
        || {
            let rows = stdout(&ws.herald(&["deliveries"]));
            state_count(&rows, "sent").0 == 3_000
        },
    );
    for daemon in daemons {
        stop(&ws, daemon);
    }

    let (in_doubt, _) = crate::support::assert_once_except_in_doubt(&ws, &sink, 3_000);
    assert!(
        in_doubt <= 4 + 1,
        "at most the killed instance's rows in flight are in doubt"
    );
}

/// A PostgreSQL server of the test's own (initdb in a temporary folder, on a
/// free port), so it can be stopped and started without touching the
/// machine's server that other tests use. Run as the `postgres` user when
/// the tests run as root, since PostgreSQL refuses to run as root.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> PrivatePostgres {
        let dir = tempfile::tempdir().unwrap();
        let port = crate::support::free_port();
        let server = PrivatePostgres { dir, port };
        if server.as_root() {
            let chown = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres", &server.data().display().to_string()])
                .status()
                .unwrap();
            assert!(chown.success());
        }
        server.pg(
            "initdb",
            &[
                "-A",
                "trust",
                "-U",
                "postgres",
                "-D",
                &server.data().display().to_string(),
            ],
        );
        server.up();
        server
    }

    fn as_root(&self) -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().to_path_buf()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs one of PostgreSQL's programs (from /usr/lib/postgresql/VERSION/bin).
    fn pg(&self, program: &str, args: &[&str]) {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's programs are under /usr/lib/postgresql")
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin").join(program))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no {program} under /usr/lib/postgresql"));
        let mut command = if self.as_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            std::process::Command::new(&bin)
        };
        let out = command.args(args).output().unwrap();
        assert!(out.status.success(), "{program} {args:?}: {}", show(&out));
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data().display()
        );
        let data = self.data().display().to_string();
        let log = self.data().join("server.log").display().to_string();
        self.pg("pg_ctl", &["-D", &data, "-o", &options, "-l", &log, "-w", "start"]);
    }

    fn down(&self) {
        let data = self.data().display().to_string();
        self.pg("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = std::panic::catch_unwind(|| self.pg("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]));
    }
}

#[test]
fn the_instances_reconnect_and_finish_after_a_postgresql_restart() {
    use crate::daemon::{start_daemon_logging_to, stop, wait_for};
    use std::time::{Duration, Instant};

    let server = PrivatePostgres::start();
    let sink = SmtpSink::start(&[]);
    let config = base_config(&smtp_mail(
        sink.port,
        "max_connections = 4\nrate_limit = 400\nsend_timeout_secs = 2",
    ))
    .replace("schedule = \"0 7 * * *\"", "schedule = \"*/5 * * * * *\"")
    .replace(
        "url = \"sqlite://data/herald.db\"",
        &format!("url = \"{}\"", server.url()),
    );
    let ws = Workspace::new(&config);
    let migrated = ws.herald(&["migrate"]);
    assert!(migrated.status.success(), "{}", show(&migrated));
    ws.subscribers(3_000);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));

    let daemons: Vec<_> = (0..2)
        .map(|i| start_daemon_logging_to(&ws, &format!("daemon{i}.log")))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while sink.recipients().len() < 600 {
        assert!(Instant::now() < deadline, "the send did not get going");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.down();
    std::thread::sleep(Duration::from_secs(3)); // the length of the outage, not a wait for anything
    let during = sink.recipients().len();
    assert!(during < 3_000, "restarted mid-send ({during} delivered)");
    server.up();

    wait_for(
        &ws,
        "the instances to finish the edition",
        Duration::from_secs(150),
        || {
            let rows = stdout(&ws.herald(&["deliveries"]));
            state_count(&rows, "sent").0 == 3_000
        },
    );
    for daemon in daemons {
        stop(&ws, daemon);
    }

    crate::support::assert_once_except_in_doubt(&ws, &sink, 3_000);
}

#[test]
fn a_sqlite_store_is_copied_into_postgresql_with_every_count_checked() {
    let sink = SmtpSink::start(&[]);
    let sqlite = base_config(&smtp_mail(sink.port, ""));
    let ws = Workspace::sqlite(&sqlite);
    ws.subscribers(120);
    let removed = ws.herald(&["subscribers", "remove", "reader3@example.org"]);
    assert!(removed.status.success(), "{}", show(&removed));
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    let first = ws.herald(&["digest", "daily"]);
    assert!(first.status.success(), "{}", show(&first));

    let db = PgDatabase::create();
    let copy = ws.herald(&["migrate", "--from", "sqlite://data/herald.db", "--to", &db.url]);
    assert!(copy.status.success(), "{}", show(&copy));
    let text = stdout(&copy);
    assert!(text.contains("every count matches"), "{text}");
    for (table, rows) in [
        ("subscribers", 120),
        ("articles", 1),
        ("editions", 1),
        ("deliveries", 119),
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{table} ")))
            .unwrap();
        assert!(
            line.contains(&format!("{rows} rows in the source")) && line.ends_with("ok"),
            "{line}"
        );
    }
    let again = ws.herald(&["migrate", "--from", "sqlite://data/herald.db", "--to", &db.url]);
    assert!(
        !again.status.success(),
        "a second copy into a store with rows is refused"
    );
    assert!(show(&again).contains("is not empty"), "{}", show(&again));

    // Switched to PostgreSQL, Herald carries on where SQLite left off.
    ws.write(
        "config/herald.toml",
        &sqlite.replace("url = \"sqlite://data/herald.db\"", &format!("url = \"{}\"", db.url)),
    );
    let rows = stdout(&ws.herald(&["deliveries"]));
    assert_eq!(state_count(&rows, "sent"), (119, 0), "{rows}");
    let nothing = ws.herald(&["digest", "daily"]);
    assert!(stdout(&nothing).contains("no new articles"), "{}", show(&nothing));
    ws.write("articles/market.txt", &article_txt("Market moves", "market"));
    let second = ws.herald(&["digest", "daily"]);
    assert!(
        stdout(&second).contains("edition #2: 1 article(s) for 119 recipient(s)"),
        "{}",
        show(&second)
    );
    let rows = stdout(&ws.herald(&["deliveries"]));
    assert_eq!(state_count(&rows, "sent"), (238, 0), "{rows}");
    assert!(!sink.recipients().contains(&"reader3@example.org".to_string()));
}

#[test]
fn instances_ingesting_the_same_source_store_each_article_once() {
    let db = PgDatabase::create();
    let ws = db.workspace(&base_config(&file_mail()));
    for i in 0..30 {
        ws.write(
            &format!("articles/story{i}.txt"),
            &article_txt(&format!("Story number {i}"), "harbour"),
        );
    }
    let children: Vec<_> = (0..3)
        .map(|_| {
            crate::support::KillOnDrop(
                ws.command(&["ingest"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    for mut child in children {
        let status = child.0.wait().unwrap();
        assert!(status.success(), "a concurrent ingest failed");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (rows, distinct): (i64, i64) = rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
        let counts = sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT title) FROM articles")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        counts
    });
    assert_eq!((rows, distinct), (30, 30), "each article stored once");
}

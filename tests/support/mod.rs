//! Shared test helpers: a temporary Herald workspace (config, templates,
//! articles) with its store, a real Postfix `smtp-sink`, and running the
//! `herald` binary; the scripted relay, the platform fakes and the WebDriver
//! client live beside this file.

pub mod dovecot;
pub mod fakes;
pub mod oauth;
pub mod postfix;
pub mod relay;
pub mod webdriver;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const HERALD: &str = env!("CARGO_BIN_EXE_herald");

/// A temporary folder laid out like a Herald deployment.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    /// Under `TEST_STORE=postgres`, the database that stands in for the SQLite store.
    _database: Option<crate::postgres::PgDatabase>,
}

/// The SQLite store line of [`base_config`].
pub const SQLITE_STORE: &str = "url = \"sqlite://data/herald.db\"";

/// The base configuration tests start from; `{extra}` is appended.
pub fn base_config(mail: &str) -> String {
    format!(
        r#"
[site]
name = "Test Gazette"
base_url = "https://gazette.example.org/"
from = "Test Gazette <news@gazette.example.org>"
postal_address = "1 Test Row, Testham TE1 1ST"

[store]
url = "sqlite://data/herald.db"

[tokens]
secret = "test-secret-for-tokens"

{mail}

[[sources]]
name = "desk"
type = "folder"
path = "articles"

[[lists]]
name = "readers"
title = "Gazette Daily"

[[jobs]]
name = "daily"
kind = "digest"
list = "readers"
schedule = "0 7 * * *"
timezone = "Europe/London"
subject = "{{{{site.name}}}}: {{{{edition.count}}}} new"
"#
    )
}

pub fn file_mail() -> String {
    "[mail]\ntransport = \"file\"\n[mail.file]\ndir = \"outbox\"\n".to_string()
}

pub fn smtp_mail(port: u16, extra: &str) -> String {
    format!("[mail]\ntransport = \"smtp\"\n{extra}\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n")
}

impl Workspace {
    /// A workspace with `config`. Under `TEST_STORE=postgres` (the
    /// second pass of `scripts/test`), a config on the default SQLite store
    /// gets a new, migrated PostgreSQL database instead, so the same tests
    /// run on both backends.
    pub fn new(config: &str) -> Workspace {
        let on_postgres = std::env::var("TEST_STORE").as_deref() == Ok("postgres") && config.contains(SQLITE_STORE);
        let database = on_postgres.then(crate::postgres::PgDatabase::migrated);
        let config = match &database {
            Some(db) => config.replace(SQLITE_STORE, &format!("url = \"{}\"", db.url)),
            None => config.to_string(),
        };
        Self::with_store(&config, database)
    }

    /// A workspace on exactly the store `config` names, on either pass: for
    /// tests about SQLite itself.
    pub fn sqlite(config: &str) -> Workspace {
        Self::with_store(config, None)
    }

    fn with_store(config: &str, database: Option<crate::postgres::PgDatabase>) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        let ws = Workspace {
            dir,
            _database: database,
        };
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
            &ws.path().join("templates"),
        );
        std::fs::create_dir_all(ws.path().join("articles")).unwrap();
        ws.write("config/herald.toml", config);
        ws
    }

    /// The workspace's store, opened (and migrated) as Herald opens it.
    pub async fn store(&self) -> herald::store::Store {
        herald::store::Store::open(&self.store_url())
            .await
            .expect("the workspace's store opens")
    }

    /// Runs `work` on the workspace's store on a runtime of its own, for
    /// tests that are otherwise synchronous; the store is closed after.
    pub fn on_store<T>(&self, work: impl AsyncFnOnce(&herald::store::Store) -> T) -> T {
        tokio::runtime::Runtime::new().expect("a runtime").block_on(async {
            let store = self.store().await;
            let out = work(&store).await;
            store.close().await;
            out
        })
    }

    /// The URL of the workspace's store: its SQLite file, or the PostgreSQL database standing in.
    pub fn store_url(&self) -> String {
        match &self._database {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}/data/herald.db", self.path().display()),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Writes `n` subscribers to a CSV and imports them.
    pub fn subscribers(&self, n: usize) {
        let mut csv = String::from("email,name,city\n");
        for i in 0..n {
            csv.push_str(&format!("reader{i}@example.org,Reader {i},Town {}\n", i % 7));
        }
        self.write("subs.csv", &csv);
        let out = self.herald(&["subscribers", "import", "subs.csv"]);
        assert!(out.status.success(), "import failed:\n{}", show(&out));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(HERALD);
        cmd.args(args)
            .current_dir(self.path())
            .env_remove("HERALD_CONFIG")
            .env("HERALD_LOG", "warn");
        for (key, _) in std::env::vars() {
            if key.starts_with("HERALD_") && key != "HERALD_LOG" {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    pub fn herald(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("herald runs")
    }

    pub fn outbox(&self) -> Vec<(PathBuf, Vec<u8>)> {
        read_all(&self.path().join("outbox"))
    }
}

pub fn show(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn read_all(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(read_all(&path));
        } else if !path.file_name().unwrap().to_string_lossy().starts_with('.') {
            // A file the sink is still moving into place can vanish between
            // the listing and the read: it is read under its final name next time.
            match std::fs::read(&path) {
                Ok(bytes) => out.push((path.clone(), bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("cannot read {}: {e}", path.display()),
            }
        }
    }
    out.sort();
    out
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Postfix's `smtp-sink` on a free loopback port, keeping every message it accepts.
pub struct SmtpSink {
    pub port: u16,
    child: Child,
    dump: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts `smtp-sink` with extra fault options (e.g. `["-r", "RCPT"]`).
    pub fn start(options: &[&str]) -> SmtpSink {
        Self::start_on(free_port(), options)
    }

    pub fn start_on(port: u16, options: &[&str]) -> SmtpSink {
        let dump = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dump.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let mut cmd = Command::new("smtp-sink");
        if is_root() {
            cmd.args(["-u", "nobody"]);
        }
        let template = format!("{}/%M.", dump.path().display());
        cmd.args(["-d", &template])
            .args(options)
            .arg(format!("127.0.0.1:{port}"))
            .arg("256");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smtp-sink is installed (scripts/test installs Postfix's smtp-sink)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "smtp-sink did not start on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        SmtpSink { port, child, dump }
    }

    /// Every captured message, without the lines smtp-sink adds before it.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        read_all(self.dump.path())
            .into_iter()
            .map(|(_, bytes)| {
                let text = String::from_utf8_lossy(&bytes);
                let start = text.find("\nFrom: ").map(|i| i + 1).unwrap_or(0);
                bytes[start..].to_vec()
            })
            .collect()
    }

    /// The envelope recipients of every captured message.
    pub fn recipients(&self) -> Vec<String> {
        read_all(self.dump.path())
            .into_iter()
            .filter_map(|(_, bytes)| {
                let text = String::from_utf8_lossy(&bytes);
                let line = text.lines().find(|l| l.starts_with("X-Rcpt-Args: "))?;
                Some(line.trim_start_matches("X-Rcpt-Args: <").split('>').next()?.to_string())
            })
            .collect()
    }

    /// The envelope recipients once at least `count` messages are on disk
    /// (smtp-sink may still be writing the last ones when the sender has
    /// had its replies), or whatever is there after ten seconds.
    pub fn recipients_at_least(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.recipients();
            if got.len() >= count || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts that `count` different recipients got exactly one message each.
    pub fn assert_one_copy_each(&self, count: usize) {
        let mut got = self.recipients_at_least(count);
        assert_eq!(got.len(), count, "one copy each");
        got.sort();
        got.dedup();
        assert_eq!(got.len(), count, "{count} different recipients");
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A realistic article file with junk: an off-topic opener, an author footer, a comments line.
pub fn article_txt(title: &str, topic: &str) -> String {
    format!(
        "{title}\n\nA quick note before the news: our phone lines are closed on Monday.\n\n\
         The {topic} story begins here with enough words to be a real paragraph about {topic} and its effects on the town.\n\n\
         A second paragraph adds detail about the {topic} plans and who is paying for them.\n\n\
         Written by Jo Reed. Follow me on Mastodon at @jo@social.example or email jo.reed@gazette.example.org.\n\n\
         Comments are closed on this article.\n"
    )
}

/// `(count, in doubt)` of one state in `herald deliveries` output.
pub fn state_count(deliveries: &str, state: &str) -> (u64, u64) {
    for line in deliveries.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&state) && words.len() >= 2 && !line.trim_start().starts_with('#') {
            let count = words[1].parse().unwrap_or(0);
            let doubt = words
                .get(2)
                .map(|w| w.trim_start_matches('(').parse().unwrap_or(0))
                .unwrap_or(0);
            return (count, doubt);
        }
    }
    (0, 0)
}

/// Loads a configuration for in-process tests: `base_config` with `jobs`
/// replacing its job, and paths made absolute so the process's directory does not matter.
pub fn settings_with(ws: &Workspace, jobs: &str) -> herald::app::App {
    settings_from(ws, &base_config(&file_mail()), jobs)
}

/// As [`settings_with`], from the configuration `base` (a [`base_config`] changed by the test).
pub fn settings_from(ws: &Workspace, base: &str, jobs: &str) -> herald::app::App {
    let root = ws.path().display().to_string();
    let config = base
        .split("[[jobs]]")
        .next()
        .unwrap()
        .replace("path = \"articles\"", &format!("path = \"{root}/articles\""))
        .replace("dir = \"outbox\"", &format!("dir = \"{root}/outbox\""))
        .replace(SQLITE_STORE, &format!("url = \"{}\"", ws.store_url()))
        + &format!("\n[templates]\ndir = \"{root}/templates\"\n")
        + jobs;
    ws.write("config/herald.toml", &config);
    herald::app::App::load(&ws.path().join("config/herald.toml"), Vec::new()).expect("valid config")
}

pub fn job_toml(name: &str, schedule: &str) -> String {
    format!(
        "\n[[jobs]]\nname = \"{name}\"\nkind = \"digest\"\nlist = \"readers\"\nschedule = \"{schedule}\"\ntimezone = \"UTC\"\n"
    )
}

/// A child process that is killed when dropped, so a failing test never
/// leaves a daemon running (and holding the test's output open).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the sink received against what the store says, after an edition to
/// `recipients` addresses finished: every one got it, and only rows flagged
/// in doubt got it more than once. Returns the in-doubt and doubled counts.
pub fn assert_once_except_in_doubt(ws: &Workspace, sink: &SmtpSink, recipients: usize) -> (u64, u64) {
    let rows = stdout(&ws.herald(&["deliveries"]));
    let (sent, in_doubt) = state_count(&rows, "sent");
    assert_eq!(sent, recipients as u64, "every row ends sent: {rows}");
    let mut copies: std::collections::HashMap<String, usize> = Default::default();
    for r in sink.recipients_at_least(recipients) {
        *copies.entry(r).or_default() += 1;
    }
    assert_eq!(copies.len(), recipients, "nobody is skipped");
    let doubled: Vec<&String> = copies.iter().filter(|(_, n)| **n > 1).map(|(r, _)| r).collect();
    assert!(
        doubled.len() as u64 <= in_doubt,
        "only in-doubt rows may be doubled: {doubled:?} vs {in_doubt} in doubt"
    );
    assert!(
        copies.values().all(|n| *n <= 2),
        "nobody gets three copies: {:?}",
        copies.iter().filter(|(_, n)| **n > 2).collect::<Vec<_>>()
    );
    if !doubled.is_empty() {
        let listed = stdout(&ws.herald(&["deliveries", "--limit", &(recipients + 10).to_string()]));
        for r in &doubled {
            let line = listed.lines().find(|l| l.contains(&format!(" {r} "))).unwrap();
            assert!(line.contains("in-doubt"), "{r} was doubled but not flagged: {line}");
        }
    }
    (in_doubt, doubled.len() as u64)
}

/// A small xorshift generator: kill points, repeatable from the printed seed.
pub struct Xorshift(pub u64);

impl Xorshift {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A seed from the clock (never zero, which xorshift cannot leave).
pub fn random_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1
}

/// A number from the environment, or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// How long until the wall clock is past `at` (a time the store or a
/// schedule gave: a retry's due time, a lease's end, a fire), with a margin
/// for the millisecond rounding of stored times. Tests wait this long rather
/// than a guessed fixed time.
pub fn until_past(at: chrono::DateTime<chrono::Utc>) -> Duration {
    (at - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(50)
}

/// Waits until every queued row of `job` is due (retries are jittered per
/// row, so the last one decides).
pub fn wait_for_retry(ws: &Workspace, job: &str) {
    let rows = ws.on_store(async |store| {
        store
            .deliveries(Some(job), Some(herald::store::DeliveryState::Queued), 100_000)
            .await
            .unwrap()
    });
    let due = rows.iter().map(|r| r.next_attempt_at).max();
    let due = due.unwrap_or_else(|| panic!("{job} has no queued retry"));
    std::thread::sleep(until_past(due));
}

/// The next whole multiple of `every` seconds: when a `*/N * * * * *`
/// schedule fires next.
pub fn next_fire_every(every: i64) -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now().timestamp();
    chrono::DateTime::from_timestamp((now / every + 1) * every, 0).expect("in range")
}

/// A private CA and a certificate it signed for `localhost`:
/// (CA certificate, server certificate, server key) paths.
pub fn certificates(dir: &Path) -> (String, String, String) {
    let path = |name: &str| dir.join(name).display().to_string();
    let (ca, ca_key, cert, key, csr, ext) = (
        path("ca.pem"),
        path("ca-key.pem"),
        path("cert.pem"),
        path("key.pem"),
        path("server.csr"),
        path("server.ext"),
    );
    std::fs::write(&ext, "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
    let steps: [Vec<&str>; 3] = [
        vec![
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Herald Test CA",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
        ],
        vec![
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (ca, cert, key)
}

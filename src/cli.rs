//! The `herald` command line: argument parsing and the commands' output.
//! Each command loads and checks the whole configuration first.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{self, DEFAULT_CONFIG_PATH, JobKind, LogFormat, Settings};
use crate::digest;
use crate::import;
use crate::mail::{Delivery, MailTransport};
use crate::message::{self, Addressee, EditionParts};
use crate::sender::{DrainOptions, Pause, SendContext};
use crate::shutdown::Shutdown;
use crate::social;
use crate::store::{AddOutcome, DeliveryState, NewSubscriber, Store, StoredArticle};
use crate::{clock, ingest, source, store};
use chrono::{DateTime, Utc};

/// Prints one line of command output; a closed pipe (`herald ... | head`)
/// ends the command quietly instead of panicking.
macro_rules! say {
    () => { emit(format_args!("")) };
    ($($arg:tt)*) => { emit(format_args!($($arg)*)) };
}

fn emit(line: std::fmt::Arguments<'_>) {
    if let Err(e) = writeln!(std::io::stdout(), "{line}")
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "herald",
    version,
    about = "Turns newly published articles into email digests, on schedules from config files."
)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "HERALD_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and check the configuration, templates, sources, lists and jobs; report every problem.
    Check {
        /// Also connect to the SMTP server as a send would (greeting, EHLO, STARTTLS, AUTH), then QUIT.
        #[arg(long)]
        smtp: bool,
        /// Also try everything live: the store (and what it says about renamed jobs and
        /// lists), each source (one request per feed), and the SMTP server as --smtp does.
        #[arg(long)]
        live: bool,
    },
    /// Poll every source now, store new articles and print them.
    Ingest,
    /// Build and send the digest of a job now.
    Digest {
        /// The job's name, from [[jobs]].
        job: String,
        /// Render and summarise, but send nothing and record nothing.
        #[arg(long, conflicts_with = "to")]
        dry_run: bool,
        /// Send one test copy of the next digest to this address only (nothing is recorded).
        #[arg(long, value_name = "ADDRESS")]
        to: Option<String>,
    },
    /// Run a social job now: queue a teaser per new article and account, and post what is due.
    Post {
        /// The social job's name, from [[jobs]].
        job: String,
        /// Print exactly what each account would receive, with its length beside the limit; post nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Count and list social post records.
    Posts {
        #[arg(long)]
        account: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Render the next digest of a job without sending it.
    Preview {
        job: String,
        #[arg(long, value_enum, default_value = "html")]
        format: PreviewFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Manage the subscribers of a list.
    Subscribers {
        #[command(subcommand)]
        action: SubscribersAction,
    },
    /// The suppression list: addresses never sent to (hard bounces, complaints, erasures,
    /// and what an operator adds).
    Suppressions {
        #[command(subcommand)]
        action: SuppressionsAction,
    },
    /// Run the daemon: fire jobs on their schedules, poll sources, keep the queue moving,
    /// reload on config changes and SIGHUP, stop gracefully on SIGTERM/SIGINT.
    Run {
        /// Run every job once now, wait until its work is delivered or deferred, and exit
        /// (status 1 if anything failed).
        #[arg(long)]
        once: bool,
        /// Log format (overrides daemon.log_format).
        #[arg(long, value_enum, env = "HERALD_LOG_FORMAT")]
        log_format: Option<LogFormatArg>,
    },
    /// Serve the HTTP interface alone (sign-up, confirm, unsubscribe, preferences, /healthz, /metrics).
    Serve {
        /// The address to listen on (default: web.listen, else 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Print each job's cron line, time zone and next five fire times, and the fires that
    /// were claimed and have not finished (running, or waiting to be taken over).
    Schedule {
        /// How many fire times to show per job.
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
    /// Write a consistent copy of the SQLite store to a new FILE while the daemon runs
    /// (a PostgreSQL store is backed up with pg_dump).
    Backup { file: PathBuf },
    /// DKIM keys.
    Dkim {
        #[command(subcommand)]
        action: DkimAction,
    },
    /// Apply the store's pending schema migrations (a SQLite store gets them on open anyway;
    /// a PostgreSQL store only through this command). With --from and --to: copy a whole
    /// store into a new one (e.g. SQLite to PostgreSQL) and compare the row counts.
    Migrate {
        /// The store to copy from, e.g. sqlite://data/herald.db.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// The new, empty store to copy into (migrated first), e.g. postgres://herald@db/herald.
        #[arg(long, requires = "from")]
        to: Option<String>,
    },
    /// Resume editions paused over the mail error budget: their queued rows are sent
    /// by the daemon's next round, or by `herald run --once`.
    Resume {
        /// The edition numbers, as `herald deliveries` lists them.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        editions: Vec<i64>,
        /// Resume every paused edition.
        #[arg(long)]
        all: bool,
    },
    /// Emergency stop for an edition: its queued rows become `cancelled` and are never sent
    /// (rows being sent finish). For good: a cancelled edition cannot be resumed.
    Cancel {
        /// The edition number, as `herald deliveries` lists it.
        edition: i64,
    },
    /// Stop a job until `herald release JOB`: its fires are recorded and build nothing, none
    /// of its rows is sent (rows being sent finish), `herald digest JOB` refuses.
    Hold {
        job: String,
        /// Why, shown by `herald schedule` and `/metrics`.
        #[arg(long, default_value = "held by an operator")]
        reason: String,
    },
    /// Let a held job fire and send again; its queued rows go out on the next round.
    Release { job: String },
    /// Count and list per-recipient delivery records.
    Deliveries {
        #[arg(long)]
        job: Option<String>,
        /// queued, sending, sent, failed, suppressed or expired.
        #[arg(long)]
        state: Option<DeliveryState>,
        /// How many rows to list.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PreviewFormat {
    Html,
    Text,
    Eml,
}

#[derive(Debug, Subcommand)]
pub enum DkimAction {
    /// Write a new 2048-bit RSA signing key (PKCS#8 PEM, readable by its owner only) and
    /// print the DNS TXT record to publish. Needs no valid configuration.
    Keygen {
        /// The selector the record is published under (SELECTOR._domainkey.DOMAIN).
        #[arg(long)]
        selector: String,
        /// The signing domain: the domain of site.from's address.
        #[arg(long)]
        domain: String,
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubscribersAction {
    /// Subscribe one address.
    Add {
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// The list (may be left out when only one list is configured).
        #[arg(long)]
        list: Option<String>,
    },
    /// Unsubscribe one address (its history is kept).
    Remove {
        email: String,
        #[arg(long)]
        list: Option<String>,
    },
    /// List subscribers.
    List {
        #[arg(long)]
        list: Option<String>,
        /// active, pending or unsubscribed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one subscriber: status, cadence, and the consent record (sign-up,
    /// confirmation, preference changes, unsubscribe: when, page, IP, user agent, wording).
    Show {
        email: String,
        #[arg(long)]
        list: Option<String>,
    },
    /// Import a CSV with an `email` header (optional `name`, `status` and `cadence`; other
    /// columns become attributes). Never makes an unsubscribed, suppressed or erased address active.
    Import {
        file: PathBuf,
        #[arg(long)]
        list: Option<String>,
        /// The status of rows without a `status` column: active, or unsubscribed (history
        /// from a previous provider: kept, never sent to).
        #[arg(long, default_value = "active")]
        status: import::ImportStatus,
    },
    /// Write subscribers to stdout as CSV (the columns `import` reads, attributes as columns
    /// of their own) or JSON.
    Export {
        #[arg(long)]
        list: Option<String>,
        /// active, pending, unsubscribed or erased.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
    },
    /// Erase an address (a GDPR erasure request): on every list its address, name, attributes
    /// and consent records are deleted, delivery records lose it, and a hashed suppression is
    /// kept so no import or sign-up brings it back.
    Erase { email: String },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum SuppressionsAction {
    /// List suppressed addresses (an erased one shows as its hash), with why and when.
    List,
    /// Suppress an address: it is never sent to, imported or signed up again.
    Add {
        email: String,
        #[arg(long, default_value = "added by an operator")]
        reason: String,
    },
    /// Take an address off the list (an erased address cannot be: only its hash is kept).
    Remove { email: String },
    /// Suppress every address in a CSV's `email` column (or a file with one address per line).
    Import {
        file: PathBuf,
        #[arg(long, default_value = "imported")]
        reason: String,
    },
}

/// Sets up logs on stderr: `HERALD_LOG` filters (default `warn` for one-shot
/// commands, `info` for the daemon); the format is text or JSON.
fn init_logs(format: LogFormat, default_level: tracing::Level) {
    let filter = tracing_subscriber::EnvFilter::builder()
        .with_env_var("HERALD_LOG")
        .with_default_directive(tracing_subscriber::filter::LevelFilter::from_level(default_level).into())
        .from_env_lossy();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => logs.try_init(),
        LogFormat::Json => logs.json().try_init(),
    };
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Dkim {
        action: DkimAction::Keygen { selector, domain, out },
    } = &cli.command
    {
        return cmd_dkim_keygen(selector, domain, out);
    }
    let settings = match config::load(&cli.config, std::env::vars()) {
        Ok(settings) => settings,
        Err(e) => {
            eprint!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let daemon = matches!(cli.command, Command::Run { once: false, .. } | Command::Serve { .. });
    let format = match &cli.command {
        Command::Run {
            log_format: Some(LogFormatArg::Json),
            ..
        } => LogFormat::Json,
        Command::Run {
            log_format: Some(LogFormatArg::Text),
            ..
        } => LogFormat::Text,
        _ => settings.daemon.log_format,
    };
    let level = if daemon {
        tracing::Level::INFO
    } else {
        tracing::Level::WARN
    };
    init_logs(format, level);
    if let Command::Serve { listen } = cli.command {
        return crate::daemon::serve_only(settings, listen).await;
    }
    if daemon {
        return crate::daemon::run(settings, &cli.config).await;
    }
    let settings = Arc::new(settings);
    match cli.command {
        Command::Check { smtp, live } => {
            say!(
                "{}: configuration is valid ({} sources, {} lists, {} jobs)",
                settings.file.display(),
                settings.sources.len(),
                settings.lists.len(),
                settings.jobs.len()
            );
            let mut code = ExitCode::SUCCESS;
            if live {
                code = cmd_check_live(&settings).await?;
            }
            if smtp || live {
                let smtp = cmd_check_smtp(&settings).await?;
                if smtp != ExitCode::SUCCESS {
                    code = smtp;
                }
            }
            Ok(code)
        }
        Command::Ingest => cmd_ingest(&settings).await,
        Command::Digest { job, dry_run, to } => cmd_digest(settings, &job, dry_run, to).await,
        Command::Post { job, dry_run } => cmd_post(&settings, &job, dry_run).await,
        Command::Posts { account, limit } => cmd_posts(&settings, account, limit).await,
        Command::Preview { job, format, out } => cmd_preview(&settings, &job, format, out).await,
        Command::Subscribers { action } => cmd_subscribers(&settings, action).await,
        Command::Suppressions { action } => cmd_suppressions(&settings, action).await,
        Command::Deliveries { job, state, limit } => cmd_deliveries(&settings, job, state, limit).await,
        Command::Resume { editions, .. } => cmd_resume(&settings, &editions).await,
        Command::Cancel { edition } => cmd_cancel(&settings, edition).await,
        Command::Hold { job: name, reason } => cmd_hold(&settings, &name, &reason).await,
        Command::Release { job: name } => cmd_release(&settings, &name).await,
        Command::Run { .. } => cmd_run_once(settings).await,
        Command::Serve { .. } => unreachable!("handled above"),
        Command::Schedule { count } => cmd_schedule(&settings, count).await,
        Command::Dkim { .. } => unreachable!("handled before the configuration is loaded"),
        Command::Backup { file } => cmd_backup(&settings, &file).await,
        Command::Migrate { from, to } => match from.zip(to) {
            Some((from, to)) => cmd_copy_store(&from, &to).await,
            None => cmd_migrate(&settings).await,
        },
    }
}

/// `herald dkim keygen`: a new key on disk and the record to publish.
fn cmd_dkim_keygen(selector: &str, domain: &str, out: &std::path::Path) -> anyhow::Result<ExitCode> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let (pem, record) = crate::mail::generate_dkim_key(selector, domain).map_err(anyhow::Error::msg)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    file.write_all(pem.as_bytes())?;
    say!("wrote {} (keep it secret; readable by its owner only)", out.display());
    say!("publish this DNS record:");
    say!("{record}");
    say!("then set in config/herald.toml:");
    say!(
        "[mail.dkim]\nselector = \"{selector}\"\ndomain = \"{domain}\"\nprivate_key_file = \"{}\"",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `herald check --live`: the store and what it knows of the configuration's
/// past (jobs and lists renamed away), then each source, one request each.
/// Exit 2 when the store or a source cannot be reached.
async fn cmd_check_live(settings: &Settings) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let shown = store::display_url(&settings.store_url);
    match open_store(settings).await {
        Ok(store) => {
            say!("store {shown}: ok, schema up to date");
            for warning in history_warnings(settings, &store).await? {
                say!("WARNING: {warning}");
            }
            let client = source::http_client();
            for account in &settings.accounts {
                match social::verify(&store, account, &client, clock::now()).await {
                    Some(Ok(said)) => say!("account {}: ok, {said}", account.name),
                    Some(Err(e)) => {
                        failed = true;
                        eprintln!("ERROR: account {}: {e}", account.name);
                    }
                    None => say!(
                        "account {}: not tried (the platform has no call that checks without posting)",
                        account.name
                    ),
                }
            }
            store.close().await;
        }
        Err(e) => {
            failed = true;
            eprintln!("ERROR: store {shown}: {e:#}");
        }
    }
    let client = source::http_client();
    for s in &settings.sources {
        match source::poll(s, &client, &Default::default()).await {
            Ok(polled) => say!(
                "source {}: ok, {} article(s){}",
                s.name,
                polled.articles.len(),
                if polled.skipped.is_empty() {
                    String::new()
                } else {
                    format!(", {} unreadable item(s)", polled.skipped.len())
                }
            ),
            Err(e) => {
                failed = true;
                eprintln!("ERROR: source {}: {e}", s.name);
            }
        }
    }
    Ok(if failed { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// What the store's history says an operator may not expect: subscribers
/// under a list name no longer configured (a renamed list leaves them
/// behind), and a job that never sent on a list other jobs sent to (a
/// renamed job: what its first edition would hold).
async fn history_warnings(settings: &Settings, store: &Store) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    for (list, count) in store.subscribers_by_list().await? {
        if settings.list(&list).is_none() && count > 0 {
            warnings.push(format!(
                "the store has {count} active subscriber(s) on list {list:?}, which the configuration no longer has: \
                 if the list was renamed, its subscribers stayed under the old name (rename it back)"
            ));
        }
    }
    let now = clock::now();
    for job in settings.jobs.iter().filter(|j| j.kind == JobKind::Digest) {
        if store.last_edition_at(&job.name).await?.is_some() {
            continue;
        }
        let mut configured = job.siblings.clone();
        configured.push(job.name.clone());
        let Some(list_last) = store.last_list_edition_at(&job.list, &configured).await? else {
            continue;
        };
        let articles = digest::plan(store, job, now, &[]).await?;
        warnings.push(format!(
            "job {} has never made an edition, but list {} had one at {} by a job no longer configured \
             (was this job renamed?); its first edition starts there and would now hold {} of the articles stored so far",
            job.name,
            job.list,
            list_last.format("%Y-%m-%d %H:%M UTC"),
            articles.len()
        ));
    }
    Ok(warnings)
}

/// `herald check --smtp`: opens a session as a send would and says QUIT.
/// Exit 2 when the server refuses it or cannot be reached.
async fn cmd_check_smtp(settings: &Settings) -> anyhow::Result<ExitCode> {
    let transport = MailTransport::build(&settings.mail).map_err(anyhow::Error::msg)?;
    match transport.probe().await {
        None => {
            say!("mail.transport is \"file\": no SMTP server to check");
            Ok(ExitCode::SUCCESS)
        }
        Some(Ok(said)) => {
            say!("{}: {said}; QUIT", transport.describe());
            Ok(ExitCode::SUCCESS)
        }
        Some(Err(e)) => {
            eprintln!("ERROR: {}: {e}", transport.describe());
            Ok(ExitCode::from(2))
        }
    }
}

pub(crate) async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    Store::open(&settings.store_url)
        .await
        .with_context(|| format!("opening the store {}", store::display_url(&settings.store_url)))
}

async fn cmd_migrate(settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = migrated(&settings.store_url).await?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Opens the store at `url` with its pending migrations applied, saying which.
async fn migrated(url: &str) -> anyhow::Result<Store> {
    let shown = store::display_url(url);
    let (store, applied) = Store::migrate(url)
        .await
        .with_context(|| format!("migrating the store {shown}"))?;
    if applied.is_empty() {
        say!("{shown}: the schema is up to date");
    }
    for m in &applied {
        say!("{shown}: applied migration {:04} ({})", m.version, m.description);
    }
    Ok(store)
}

async fn cmd_copy_store(from: &str, to: &str) -> anyhow::Result<ExitCode> {
    let (from_shown, to_shown) = (store::display_url(from), store::display_url(to));
    let source = Store::open(from)
        .await
        .with_context(|| format!("opening the store {from_shown}"))?;
    let target = migrated(to).await?;
    let copies = source
        .copy_into(&target)
        .await
        .with_context(|| format!("copying {from_shown} into {to_shown}"))?;
    let mut mismatched = 0;
    for c in &copies {
        let verdict = if c.source == c.target {
            "ok"
        } else {
            mismatched += 1;
            "MISMATCH"
        };
        say!(
            "  {:<18} {:>10} rows in the source, {:>10} in the target  {verdict}",
            c.table,
            c.source,
            c.target
        );
    }
    source.close().await;
    target.close().await;
    if mismatched > 0 {
        say!("{mismatched} table(s) differ: do not switch store.url to {to_shown}");
        return Ok(ExitCode::FAILURE);
    }
    say!("copied {from_shown} into {to_shown}: every count matches; point store.url at it");
    Ok(ExitCode::SUCCESS)
}

fn job<'a>(settings: &'a Settings, name: &str) -> anyhow::Result<&'a crate::config::JobSettings> {
    job_of_kind(settings, name, JobKind::Digest)
}

fn job_of_kind<'a>(
    settings: &'a Settings,
    name: &str,
    kind: JobKind,
) -> anyhow::Result<&'a crate::config::JobSettings> {
    match settings.job(name) {
        Some(job) if job.kind == kind => Ok(job),
        Some(job) => match job.kind {
            JobKind::Social => bail!("job {name:?} is a social job: use `herald post {name}`"),
            JobKind::Digest => bail!("job {name:?} is a digest job: use `herald digest {name}`"),
        },
        None => {
            let names: Vec<&str> = settings.jobs.iter().map(|j| j.name.as_str()).collect();
            bail!(
                "no job named {name:?} in {} (jobs: {})",
                settings.file.display(),
                names.join(", ")
            )
        }
    }
}

fn list_name(settings: &Settings, list: Option<String>) -> anyhow::Result<String> {
    match list {
        Some(name) if settings.list(&name).is_some() => Ok(name),
        Some(name) => bail!("no list named {name:?} in {}", settings.file.display()),
        None if settings.lists.len() == 1 => Ok(settings.lists[0].name.clone()),
        None => bail!("there are {} lists: name one with --list", settings.lists.len()),
    }
}

fn print_sources(reports: &[ingest::SourceReport]) {
    for r in reports {
        match &r.error {
            Some(e) => say!("source {}: FAILED: {e} (stored articles kept)", r.source),
            None if r.not_modified => {
                say!("source {}: not modified since the last poll", r.source)
            }
            None => say!(
                "source {}: {} new, {} updated, {} unchanged, {} skipped",
                r.source,
                r.new.len(),
                r.updated,
                r.unchanged,
                r.skipped.len()
            ),
        }
        for a in &r.new {
            say!(
                "  + {} <{}> ({})",
                a.title,
                a.url,
                a.published_at.format("%Y-%m-%d %H:%M UTC")
            );
        }
        for s in &r.skipped {
            say!("  ! skipped {s}");
        }
    }
}

async fn cmd_ingest(settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let reports = ingest::ingest(&store, settings, None, &source::http_client(), clock::now()).await?;
    print_sources(&reports);
    store.close().await;
    let failed = reports.iter().any(|r| r.error.is_some());
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Plans and renders the next edition without storing anything new.
async fn next_edition(
    settings: &Settings,
    store: &Store,
    job: &crate::config::JobSettings,
) -> anyhow::Result<(Vec<StoredArticle>, EditionParts)> {
    let now = clock::now();
    let mut fetched = Vec::new();
    for (name, result) in ingest::fetch(settings, Some(&job.sources), &source::http_client()).await {
        match result {
            Ok(polled) => fetched.extend(polled.articles),
            Err(e) => eprintln!("warning: source {name}: {e}"),
        }
    }
    let articles = digest::plan(store, job, now, &fetched).await?;
    let parts = digest::render(settings, job, &articles, now)?;
    let list = settings.list(&job.list).expect("checked");
    Ok((
        articles,
        EditionParts::new(
            0,
            "preview",
            &list.name,
            &list.title,
            &parts.subject,
            &parts.html,
            &parts.text,
        ),
    ))
}

async fn cmd_digest(
    settings: Arc<Settings>,
    name: &str,
    dry_run: bool,
    to: Option<String>,
) -> anyhow::Result<ExitCode> {
    let job = job(&settings, name)?.clone();
    let store = open_store(&settings).await?;
    if !dry_run && to.is_none() {
        refuse_if_held(&store, name).await?;
    }
    let keys = store.token_keys(&settings.tokens).await?;
    if dry_run || to.is_some() {
        let (articles, parts) = next_edition(&settings, &store, &job).await?;
        let recipients = store.recipient_count(&job.list, job.recipients()).await?;
        say!(
            "job {name}: the next edition would hold {} article(s) for {recipients} recipient(s) \
             (active, not suppressed, of the job's cadence)",
            articles.len()
        );
        for a in &articles {
            say!("  - {} <{}>", a.title, a.url);
        }
        if let Some(address) = to {
            let address = import::validate_email(&address).map_err(anyhow::Error::msg)?;
            let transport = MailTransport::build(&settings.mail).map_err(anyhow::Error::msg)?;
            let addressee = Addressee::new(&settings.site, &keys, &address, None, "test", Default::default());
            let id = format!(
                "<herald.test.{}@{}>",
                uuid::Uuid::new_v4().simple(),
                settings.site.domain
            );
            let date = clock::now().into();
            let build = |encoding| {
                message::build(
                    &settings.site,
                    &parts,
                    &addressee,
                    id.clone(),
                    "[Test] ",
                    date,
                    encoding,
                )
                .map_err(|e| e.to_string())
            };
            let sent = transport
                .send(&build, &format!("test-{address}"), settings.mail.send_timeout, None)
                .await;
            transport.close().await;
            match sent {
                Delivery::Accepted(reply) => {
                    say!("test copy sent to {address} via {}: {reply}", transport.describe())
                }
                other => bail!("the test copy to {address} was not accepted: {}", other.reply()),
            }
        } else if articles.is_empty() && !job.send_when_empty {
            say!("dry run: nothing new, so no edition would be sent (send_when_empty = false)");
        } else {
            say!(
                "dry run: subject {:?}; nothing sent, nothing recorded",
                parts.subject_preview()
            );
        }
        store.close().await;
        return Ok(ExitCode::SUCCESS);
    }

    let ctx = Arc::new(SendContext::new(store.clone(), settings.clone()).await?);
    say!("job {name}: list {} via {}", job.list, ctx.transport.describe());
    let report = digest::run(
        ctx,
        &job,
        &source::http_client(),
        clock::now(),
        &DrainOptions::to_completion(),
        None,
    )
    .await?;
    let paused = print_digest(&store, &job, &report).await?;
    store.close().await;
    if let Some(pause) = &paused {
        eprintln!("ERROR: mail channel PAUSED: {pause}");
        match pause {
            Pause::Session(_) => eprintln!(
                "ERROR: fix the sending setup (relay address, TLS, credentials, sender address, SPF/DKIM; \
                 `herald check --smtp` tries it), then run `herald digest {name}` again; unsent rows stay queued, untouched"
            ),
            Pause::RelayDown { .. } => eprintln!(
                "ERROR: the mail server is down or throttling us; unsent rows stay queued: run `herald digest {name}` again later (the daemon retries on its own)"
            ),
        }
    }
    if paused.is_some() || !report.send.paused_editions.is_empty() {
        return Ok(ExitCode::from(3));
    }
    let failed: Vec<&str> = report
        .sources
        .iter()
        .filter(|s| s.error.is_some())
        .map(|s| s.source.as_str())
        .collect();
    if !failed.is_empty() {
        eprintln!(
            "ERROR: source(s) failed: {} (the edition holds what the other sources and earlier polls stored)",
            failed.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what a digest run did (an edition paused over its error budget
/// as an error); returns why the channel paused, if it did.
async fn print_digest(
    store: &Store,
    job: &crate::config::JobSettings,
    report: &digest::DigestReport,
) -> anyhow::Result<Option<Pause>> {
    let name = &job.name;
    print_sources(&report.sources);
    if let Some(seeded) = &report.seeded {
        say!(
            "list {}: seeded {} subscriber(s) from its seed file",
            job.list,
            seeded.added
        );
    }
    match &report.edition {
        Some(e) => say!(
            "edition #{}: {} article(s) for {} recipient(s), subject {:?} (created in {:.2} s)",
            e.id,
            e.article_count,
            e.recipient_count,
            message::subject_preview(&e.subject),
            report.edition_time.as_secs_f64()
        ),
        None => say!("no new articles since the last edition: nothing to send (send_when_empty = false)"),
    }
    let s = &report.send;
    if s.recovered_in_doubt > 0 {
        say!(
            "recovered {} delivery(ies) left mid-send by an interrupted run (flagged in doubt)",
            s.recovered_in_doubt
        );
    }
    say!(
        "deliveries: {} sent, {} to retry, {} failed, {} suppressed, {} expired",
        s.sent,
        s.retrying,
        s.failed,
        s.suppressed,
        s.expired
    );
    let secs = report.send_time.as_secs_f64();
    if s.sent > 0 && secs > 0.0 {
        say!("sent in {secs:.2} s ({:.0} messages/s)", s.sent as f64 / secs);
    }
    if s.retrying > 0
        && let Some(at) = store.next_retry_at(name).await?
    {
        say!(
            "next retry at {} (run `herald digest {name}` again, or let the daemon do it)",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    for (edition, reason) in &s.paused_editions {
        eprintln!("ERROR: edition #{edition} PAUSED: {reason}");
        eprintln!(
            "ERROR: its other rows stay queued; check the list and the server's replies (`herald deliveries --state failed`), then `herald resume {edition}`"
        );
    }
    Ok(s.paused.clone())
}

async fn cmd_preview(
    settings: &Settings,
    name: &str,
    format: PreviewFormat,
    out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let job = job(settings, name)?;
    let store = open_store(settings).await?;
    let keys = store.token_keys(&settings.tokens).await?;
    let (_, parts) = next_edition(settings, &store, job).await?;
    let sample = store
        .subscribers(&job.list, Some("active"), 1)
        .await?
        .into_iter()
        .next();
    let (email, name_value, uid) = match &sample {
        Some(s) => (s.email.clone(), s.name.clone(), s.uid.clone()),
        None => (
            "reader@example.org".to_string(),
            Some("Sample Reader".to_string()),
            "preview".to_string(),
        ),
    };
    let attributes = sample
        .as_ref()
        .and_then(|s| serde_json::from_str(&s.attributes).ok())
        .unwrap_or_default();
    let addressee = Addressee::new(&settings.site, &keys, &email, name_value.as_deref(), &uid, attributes);
    let bytes = match format {
        PreviewFormat::Html => parts.html_for(&addressee).into_bytes(),
        PreviewFormat::Text => parts.text_for(&addressee).into_bytes(),
        PreviewFormat::Eml => {
            let id = format!(
                "<herald.preview.{}@{}>",
                uuid::Uuid::new_v4().simple(),
                settings.site.domain
            );
            message::build(
                &settings.site,
                &parts,
                &addressee,
                id,
                "",
                clock::now().into(),
                message::BodyEncoding::EightBit,
            )?
            .formatted()
        }
    };
    match out {
        Some(path) => {
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("preview of job {name} written to {}", path.display());
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn cmd_subscribers(settings: &Settings, action: SubscribersAction) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let now = clock::now();
    let code = match action {
        SubscribersAction::Add { email, name, list } => {
            let list = list_name(settings, list)?;
            let email = import::validate_email(&email).map_err(anyhow::Error::msg)?;
            if store.is_suppressed(&email).await? {
                eprintln!(
                    "ERROR: {email} is suppressed (a hard bounce, a complaint, an erasure or an operator's choice): \
                     `herald suppressions remove {email}` first if they asked to come back"
                );
                store.close().await;
                return Ok(ExitCode::FAILURE);
            }
            let name = name.map(|n| crate::clean::one_line(&n)).filter(|n| !n.is_empty());
            let outcome = store
                .add_subscriber(
                    &list,
                    &NewSubscriber {
                        email: email.clone(),
                        name,
                        ..Default::default()
                    },
                    now,
                )
                .await?;
            match outcome {
                AddOutcome::Added => say!("{email} subscribed to {list}"),
                AddOutcome::Resubscribed => say!("{email} subscribed to {list} again"),
                AddOutcome::AlreadySubscribed => {
                    say!("{email} is already subscribed to {list}")
                }
            }
            ExitCode::SUCCESS
        }
        SubscribersAction::Remove { email, list } => {
            let list = list_name(settings, list)?;
            if store.unsubscribe(&list, &email, now).await? {
                say!("{email} unsubscribed from {list}");
                ExitCode::SUCCESS
            } else {
                say!("{email} is not an active subscriber of {list}");
                ExitCode::FAILURE
            }
        }
        SubscribersAction::List { list, status, limit } => {
            let list = list_name(settings, list)?;
            let rows = store.subscribers(&list, status.as_deref(), limit).await?;
            let total = store.subscriber_count(&list, status.as_deref()).await?;
            say!(
                "list {list}: {total} subscriber(s){}",
                status.map(|s| format!(" with status {s}")).unwrap_or_default()
            );
            for s in rows {
                say!("  {:<40} {:<14} {}", s.email, s.status, s.name.unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        SubscribersAction::Export { list, status, format } => {
            let lists: Vec<String> = match list {
                Some(name) => vec![list_name(settings, Some(name))?],
                None => settings.lists.iter().map(|l| l.name.clone()).collect(),
            };
            let mut rows = Vec::new();
            for list in &lists {
                rows.extend(store.subscribers(list, status.as_deref(), i64::MAX).await?);
            }
            export(&rows, format)?;
            ExitCode::SUCCESS
        }
        SubscribersAction::Erase { email } => {
            let erased = store.erase(&email, now).await?;
            say!(
                "{email} erased: {} subscription(s) scrubbed, {} consent record(s) and {} delivery record(s)' address removed; \
                 a hashed suppression keeps it from coming back",
                erased.subscriptions,
                erased.consents,
                erased.deliveries
            );
            ExitCode::SUCCESS
        }
        SubscribersAction::Show { email, list } => {
            let list = list_name(settings, list)?;
            let Some(s) = store.subscriber_by_address(&list, &email).await? else {
                say!("{email} is not on {list}");
                store.close().await;
                return Ok(ExitCode::FAILURE);
            };
            let at = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map_or_else(String::new, |t| t.to_rfc3339());
            say!("{} on {list}: {}", s.email, s.status);
            say!("  name:    {}", s.name.as_deref().unwrap_or("-"));
            let cadence = if s.cadence.is_empty() {
                "(the list's default)"
            } else {
                s.cadence.as_str()
            };
            say!("  cadence: {cadence}");
            say!("  since:   {}", at(s.created_at));
            let history = store.consent_history(s.id).await?;
            if history.is_empty() {
                say!("  consent: none recorded on the web (added by an operator or an import)");
            }
            for r in history {
                let c = r.consent;
                say!(
                    "  {} {:<12} page {} ip {} agent {:?}",
                    at(r.created_at),
                    c.action,
                    c.page,
                    c.ip,
                    c.user_agent
                );
                if !c.wording.is_empty() {
                    say!("      wording {}: {:?}", c.wording_version, c.wording);
                }
            }
            ExitCode::SUCCESS
        }
        SubscribersAction::Import { file, list, status } => {
            let list = list_name(settings, list)?;
            let input = std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?;
            let size = input.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = indicatif::ProgressBar::with_draw_target(Some(size), indicatif::ProgressDrawTarget::stderr());
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {elapsed} {msg}")
                    .expect("the template is valid"),
            );
            let report = import::import_csv(&store, &list, std::io::BufReader::new(input), status, now, |bytes| {
                bar.set_position(bytes)
            })
            .await?;
            bar.finish_and_clear();
            say!(
                "{}: {} row(s), {} added to {list}, {} duplicate(s) skipped, {} suppressed skipped, {} invalid",
                file.display(),
                report.rows,
                report.added,
                report.duplicates,
                report.suppressed,
                report.invalid.len()
            );
            for (line, reason) in &report.invalid {
                say!("  line {line}: {reason}");
            }
            if report.invalid.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    };
    store.close().await;
    Ok(code)
}

/// Writes subscribers to stdout: CSV with the columns `import` reads and
/// one column per attribute, or a JSON array.
fn export(rows: &[store::Subscriber], format: ExportFormat) -> anyhow::Result<()> {
    let at = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map_or_else(String::new, |t| t.to_rfc3339());
    let attributes: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .iter()
        .map(|s| serde_json::from_str(&s.attributes).unwrap_or_default())
        .collect();
    let stdout = std::io::stdout();
    match format {
        ExportFormat::Json => {
            let out: Vec<serde_json::Value> = rows
                .iter()
                .zip(&attributes)
                .map(|(s, a)| {
                    serde_json::json!({
                        "email": s.email, "name": s.name, "list": s.list_name, "status": s.status,
                        "cadence": s.cadence, "created_at": at(s.created_at), "attributes": a,
                    })
                })
                .collect();
            serde_json::to_writer_pretty(stdout.lock(), &out)?;
            writeln!(stdout.lock())?;
        }
        ExportFormat::Csv => {
            let mut keys: Vec<&String> = attributes.iter().flat_map(|a| a.keys()).collect();
            keys.sort();
            keys.dedup();
            let mut csv = csv::Writer::from_writer(stdout.lock());
            let mut header = vec!["email", "name", "list", "status", "cadence", "created_at"];
            header.extend(keys.iter().map(|k| k.as_str()));
            csv.write_record(&header)?;
            for (s, a) in rows.iter().zip(&attributes) {
                let mut record = vec![
                    s.email.clone(),
                    s.name.clone().unwrap_or_default(),
                    s.list_name.clone(),
                    s.status.clone(),
                    s.cadence.clone(),
                    at(s.created_at),
                ];
                record.extend(keys.iter().map(|k| match a.get(*k) {
                    Some(serde_json::Value::String(v)) => v.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                }));
                csv.write_record(&record)?;
            }
            csv.flush()?;
        }
    }
    Ok(())
}

async fn cmd_suppressions(settings: &Settings, action: SuppressionsAction) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let now = clock::now();
    let code = match action {
        SuppressionsAction::List => {
            let all = store.suppressions().await?;
            say!("{} suppressed address(es)", all.len());
            for s in all {
                let shown = if s.key.starts_with("sha256:") {
                    format!("(erased) {}", &s.key[..19])
                } else {
                    s.key
                };
                say!(
                    "  {:<40} {}  {}",
                    shown,
                    s.created_at.format("%Y-%m-%d %H:%M UTC"),
                    s.reason
                );
            }
            ExitCode::SUCCESS
        }
        SuppressionsAction::Add { email, reason } => {
            let email = import::validate_email(&email).map_err(anyhow::Error::msg)?;
            store.suppress(&email, &reason, now).await?;
            say!("{email} suppressed: never sent to, imported or signed up again");
            ExitCode::SUCCESS
        }
        SuppressionsAction::Remove { email } => {
            if store.unsuppress(&email).await? {
                say!("{email} is no longer suppressed (its subscriptions keep their status)");
                ExitCode::SUCCESS
            } else if store.is_suppressed(&email).await? {
                eprintln!("ERROR: {email} was erased on request: it stays suppressed");
                ExitCode::FAILURE
            } else {
                eprintln!("ERROR: {email} is not suppressed");
                ExitCode::FAILURE
            }
        }
        SuppressionsAction::Import { file, reason } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let mut lines = text.lines();
            let header: Vec<String> = lines
                .next()
                .unwrap_or("")
                .split(',')
                .map(|h| h.trim().to_lowercase())
                .collect();
            let column = header.iter().position(|h| h == "email");
            let first = if column.is_some() { None } else { text.lines().next() };
            let (mut added, mut invalid) = (0, Vec::new());
            for (n, line) in first.into_iter().chain(lines).enumerate() {
                let value = line.split(',').nth(column.unwrap_or(0)).unwrap_or("").trim();
                if value.is_empty() {
                    continue;
                }
                match import::validate_email(value) {
                    Ok(email) => {
                        store.suppress(&email, &reason, now).await?;
                        added += 1;
                    }
                    Err(e) => invalid.push(format!("line {}: {e}", n + 1 + usize::from(column.is_some()))),
                }
            }
            say!(
                "{}: {added} address(es) suppressed, {} invalid",
                file.display(),
                invalid.len()
            );
            for i in &invalid {
                say!("  {i}");
            }
            if invalid.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    };
    store.close().await;
    Ok(code)
}

async fn cmd_deliveries(
    settings: &Settings,
    job: Option<String>,
    state: Option<DeliveryState>,
    limit: i64,
) -> anyhow::Result<ExitCode> {
    if let Some(name) = &job {
        self::job(settings, name)?;
    }
    let store = open_store(settings).await?;
    let counts = store.delivery_counts(job.as_deref()).await?;
    let total: i64 = counts.iter().map(|c| c.count).sum();
    say!(
        "{}: {total} delivery record(s)",
        job.as_deref().map_or("all jobs".to_string(), |j| format!("job {j}"))
    );
    for c in &counts {
        let doubt = if c.in_doubt > 0 {
            format!(" ({} in doubt)", c.in_doubt)
        } else {
            String::new()
        };
        say!("  {:<11} {:>8}{doubt}", c.state.as_str(), c.count);
    }
    for e in store.paused_editions().await? {
        if job.as_ref().is_some_and(|j| *j != e.job) {
            continue;
        }
        let at = chrono::DateTime::from_timestamp_millis(e.paused_at).unwrap_or_default();
        say!(
            "  edition #{} (job {}) PAUSED since {}: {}; {} queued; `herald resume {}` continues it",
            e.id,
            e.job,
            at.format("%Y-%m-%d %H:%M:%S UTC"),
            e.reason,
            e.queued,
            e.id
        );
    }
    let rows = store.deliveries(job.as_deref(), state, limit).await?;
    if !rows.is_empty() {
        say!();
        for r in rows {
            say!(
                "  #{:<7} {:<10} edition {:<4} {:<10} tries {:<2}{} {:<36} {}{}",
                r.id,
                r.job,
                r.edition_id,
                r.state().as_str(),
                r.attempts,
                if r.in_doubt == 1 { " in-doubt" } else { "" },
                r.email,
                r.last_reply.as_deref().unwrap_or_default(),
                r.claimed_by
                    .as_ref()
                    .map(|by| format!("  (by {by})"))
                    .unwrap_or_default()
            );
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn cmd_resume(settings: &Settings, editions: &[i64]) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let resumed = store.resume_editions(editions).await?;
    store.close().await;
    for e in &resumed {
        say!(
            "edition #{} (job {}, list {}) resumed: {} queued delivery(ies) go out on the next send round",
            e.id,
            e.job,
            e.list_name,
            e.queued
        );
    }
    let missing: Vec<String> = editions
        .iter()
        .filter(|id| !resumed.iter().any(|e| e.id == **id))
        .map(|id| format!("#{id}"))
        .collect();
    if !missing.is_empty() {
        eprintln!("ERROR: not paused (or no such edition): {}", missing.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    if resumed.is_empty() {
        say!("no edition is paused");
    }
    Ok(ExitCode::SUCCESS)
}

async fn cmd_backup(settings: &Settings, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let started = std::time::Instant::now();
    let done = store.backup(file).await;
    store.close().await;
    done?;
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    say!(
        "backed up to {} ({:.1} MiB in {:.1} s); restore by stopping Herald and putting it in place of the store file",
        file.display(),
        size as f64 / 1_048_576.0,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

async fn cmd_cancel(settings: &Settings, edition: i64) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let cancelled = store.cancel_edition(edition, clock::now()).await?;
    store.close().await;
    let Some(c) = cancelled else {
        eprintln!("ERROR: no edition #{edition}");
        return Ok(ExitCode::FAILURE);
    };
    say!(
        "edition #{edition} cancelled: {} queued delivery(ies) will never be sent; {} were already sent; \
         {} being sent now finish",
        c.cancelled,
        c.sent,
        c.sending
    );
    Ok(ExitCode::SUCCESS)
}

/// Any job by name, digest or social.
fn any_job<'a>(settings: &'a Settings, name: &str) -> anyhow::Result<&'a crate::config::JobSettings> {
    settings
        .job(name)
        .ok_or_else(|| anyhow::anyhow!("no job named {name:?} in {}", settings.file.display()))
}

async fn cmd_hold(settings: &Settings, name: &str, reason: &str) -> anyhow::Result<ExitCode> {
    any_job(settings, name)?;
    let store = open_store(settings).await?;
    let held = store.hold_job(name, reason, clock::now()).await?;
    store.close().await;
    if held {
        say!("job {name} held: its fires build nothing and none of its rows is sent until `herald release {name}`");
    } else {
        say!("job {name} was already held");
    }
    Ok(ExitCode::SUCCESS)
}

async fn cmd_release(settings: &Settings, name: &str) -> anyhow::Result<ExitCode> {
    any_job(settings, name)?;
    let store = open_store(settings).await?;
    let released = store.release_job(name).await?;
    store.close().await;
    if released {
        say!("job {name} released: it fires again, and its queued rows go out on the next send round");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("ERROR: job {name} is not held");
        Ok(ExitCode::FAILURE)
    }
}

/// Refuses to run a held job by hand.
async fn refuse_if_held(store: &Store, name: &str) -> anyhow::Result<()> {
    if let Some(hold) = store.hold_of(name).await? {
        bail!(
            "job {name} is held since {} ({}): `herald release {name}` first",
            hold.held_at.format("%Y-%m-%d %H:%M:%S UTC"),
            hold.reason
        );
    }
    Ok(())
}

async fn cmd_run_once(settings: Arc<Settings>) -> anyhow::Result<ExitCode> {
    let store = open_store(&settings).await?;
    let ctx = Arc::new(SendContext::new(store.clone(), settings.clone()).await?);
    let client = source::http_client();
    let mut failed = false;
    for job in &settings.jobs {
        if let Some(hold) = store.hold_of(&job.name).await? {
            say!("== job {}: HELD ({}): skipped", job.name, hold.reason);
            continue;
        }
        if job.kind == JobKind::Social {
            say!("== job {} (accounts {})", job.name, job.accounts.join(", "));
            let report = social::run(&store, &settings, job, &client, clock::now(), &Shutdown::never()).await?;
            failed |= print_social(&report);
            continue;
        }
        say!(
            "== job {} (list {}, via {})",
            job.name,
            job.list,
            ctx.transport.describe()
        );
        match digest::run(
            ctx.clone(),
            job,
            &client,
            clock::now(),
            &DrainOptions::to_completion(),
            None,
        )
        .await
        {
            Ok(report) => {
                let paused = print_digest(&store, job, &report).await?;
                failed |= paused.is_some()
                    || !report.send.paused_editions.is_empty()
                    || report.send.failed > 0
                    || report.send.expired > 0
                    || report.sources.iter().any(|s| s.error.is_some());
                if let Some(reason) = paused {
                    eprintln!("ERROR: job {}: mail channel PAUSED: {reason}", job.name);
                }
            }
            Err(e) => {
                eprintln!("ERROR: job {}: {e}", job.name);
                failed = true;
            }
        }
    }
    store.close().await;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn cmd_schedule(settings: &Settings, count: usize) -> anyhow::Result<ExitCode> {
    let now = clock::now();
    for job in &settings.jobs {
        say!(
            "job {}: {:?} in {} ({})",
            job.name,
            job.schedule,
            job.timezone,
            job.cron.describe()
        );
        for at in crate::schedule::upcoming(&job.cron, job.timezone, now, count) {
            let local = at.with_timezone(&job.timezone);
            say!(
                "  {}   = {}",
                local.format("%a %Y-%m-%d %H:%M:%S %Z"),
                at.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
    }
    let holds;
    let unfinished = match open_store(settings).await {
        Ok(store) => {
            let fires = store.unfinished_fires().await;
            let found = store.holds().await;
            store.close().await;
            holds = found?;
            fires?
        }
        Err(e) => {
            say!("(unfinished fires not shown: {e})");
            return Ok(ExitCode::SUCCESS);
        }
    };
    if unfinished.is_empty() {
        say!("no unfinished fires");
    }
    for hold in holds {
        say!(
            "job {} HELD since {} ({}): its fires build nothing until `herald release {}`",
            hold.job,
            hold.held_at.format("%Y-%m-%d %H:%M:%S UTC"),
            hold.reason,
            hold.job
        );
    }
    for fire in unfinished {
        let state = if fire.lease_until >= now {
            format!("running on {}", fire.claimed_by)
        } else {
            format!(
                "its claimer {} stopped renewing at {}: a live daemon takes it over (or closes it, if a later fire ran)",
                fire.claimed_by,
                fire.lease_until.format("%Y-%m-%d %H:%M:%S UTC")
            )
        };
        say!(
            "unfinished fire: job {} scheduled {}, {}; edition {}{}",
            fire.job,
            fire.scheduled_at.format("%Y-%m-%d %H:%M:%S UTC"),
            state,
            fire.edition.map_or("not made yet".to_string(), |id| format!("#{id}")),
            if fire.takeovers > 0 {
                format!(" (taken over {} time(s))", fire.takeovers)
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what a social run did; returns whether anything failed.
fn print_social(report: &social::SocialReport) -> bool {
    print_sources(&report.sources);
    for a in &report.accounts {
        say!(
            "account {}: {} queued, {} skipped, {} posted, {} to retry, {} failed",
            a.account,
            a.queued,
            a.skipped,
            a.posted,
            a.retrying,
            a.failed
        );
        if let Some(at) = a.waiting_until {
            say!(
                "  the rest waits until {} (spacing, daily cap or rate limit)",
                at.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
    }
    report.accounts.iter().any(|a| a.failed > 0) || report.sources.iter().any(|s| s.error.is_some())
}

async fn cmd_post(settings: &Settings, name: &str, dry_run: bool) -> anyhow::Result<ExitCode> {
    let job = job_of_kind(settings, name, JobKind::Social)?;
    let store = open_store(settings).await?;
    let client = source::http_client();
    let now = clock::now();
    if !dry_run {
        refuse_if_held(&store, name).await?;
        let report = social::run(&store, settings, job, &client, now, &Shutdown::never()).await?;
        let failed = print_social(&report);
        store.close().await;
        return Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS });
    }
    // Dry run: read the sources without storing, and show each account's teasers.
    let mut fresh = Vec::new();
    for (source, result) in ingest::fetch(settings, Some(&job.sources), &client).await {
        match result {
            Ok(polled) => fresh.extend(polled.articles),
            Err(e) => eprintln!("warning: source {source}: {e}"),
        }
    }
    for account_name in &job.accounts {
        let account = settings.account(account_name).expect("checked");
        let rule = social::post::rule(&store, account, &client, now).await?;
        let template = social::teaser::compile(&account.template)?;
        say!(
            "account {} ({}, limit {} {}):",
            account.name,
            account.kind.name(),
            rule.max,
            match rule.counting {
                social::teaser::Counting::XWeighted => "weighted characters, URLs as 23",
                social::teaser::Counting::CharsUrl23 => "characters, URLs as 23",
                social::teaser::Counting::Graphemes => "graphemes",
                social::teaser::Counting::Chars => "characters",
            }
        );
        if !store.account_initialized(&account.name).await? && !account.backfill {
            say!("  first run: the articles that exist now are recorded without posting (backfill = false)");
            continue;
        }
        let stored = store.unposted_articles(&account.name, &job.sources).await?;
        let identities: Vec<String> = fresh.iter().map(|a| a.identity.clone()).collect();
        let known = store.known_identities(&identities).await?;
        let mut inputs: Vec<(String, social::teaser::TeaserInput, DateTime<Utc>)> = stored
            .iter()
            .map(|a| (a.url.clone(), social::post::teaser_input(a), a.published()))
            .collect();
        for a in fresh.iter().filter(|a| !known.contains(&a.identity)) {
            let input = social::teaser::TeaserInput {
                title: a.title.clone(),
                excerpt: a.excerpt.clone(),
                url: a.url.clone(),
                author: a.author.clone(),
                tags: a.tags.clone(),
            };
            inputs.push((a.url.clone(), input, a.published_at));
        }
        let mut shown = 0;
        for (url, input, published) in inputs {
            if published < now - account.lookback {
                continue;
            }
            shown += 1;
            match social::teaser::build(&template, &input, account.max_hashtags, &rule) {
                Ok(text) => {
                    say!("  --- {url} [{}]", rule.describe(&text));
                    for line in text.lines() {
                        say!("  | {line}");
                    }
                }
                Err(e) => say!("  --- {url}: CANNOT POST: {e}"),
            }
        }
        if shown == 0 {
            say!("  nothing new to post");
        }
    }
    say!("dry run: nothing posted, nothing recorded");
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn cmd_posts(settings: &Settings, account: Option<String>, limit: i64) -> anyhow::Result<ExitCode> {
    if let Some(name) = &account
        && settings.account(name).is_none()
    {
        bail!("no account named {name:?} in {}", settings.file.display());
    }
    let store = open_store(settings).await?;
    let rows = store.posts(account.as_deref(), 1_000_000).await?;
    let mut counts: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for r in &rows {
        let entry = counts.entry(r.state.as_str()).or_default();
        entry.0 += 1;
        entry.1 += (r.in_doubt == 1) as usize;
    }
    say!(
        "{}: {} post record(s)",
        account
            .as_deref()
            .map_or("all accounts".to_string(), |a| format!("account {a}")),
        rows.len()
    );
    for (state, (n, doubt)) in &counts {
        let doubt = if *doubt > 0 {
            format!(" ({doubt} in doubt)")
        } else {
            String::new()
        };
        say!("  {state:<11} {n:>8}{doubt}");
    }
    if limit > 0 && !rows.is_empty() {
        say!();
        for r in rows.iter().take(limit as usize) {
            say!(
                "  #{:<6} {:<14} article {:<5} {:<8} tries {:<2} {} {}",
                r.id,
                r.account,
                r.article_id,
                r.state,
                r.attempts,
                r.remote_url.as_deref().or(r.remote_id.as_deref()).unwrap_or(""),
                r.last_reply.as_deref().unwrap_or("")
            );
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

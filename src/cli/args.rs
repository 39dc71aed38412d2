//! The command line's shape: every command, its arguments and options (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::DEFAULT_CONFIG_PATH;
use crate::import;
use crate::store::{BounceKind, DeliveryState, SubscriberStatus};

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
    /// Bounces and complaints: list the ledger, or read reports in (`bounces ingest`).
    Bounces {
        #[command(subcommand)]
        action: Option<BouncesAction>,
        /// Only this kind.
        #[arg(long, value_enum)]
        kind: Option<BounceKindArg>,
        /// How many records to list, newest first.
        #[arg(long, default_value_t = 50)]
        limit: i64,
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
        /// A digest job, or `welcome:LIST` for a list's welcome mails.
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
        /// active, pending, unsubscribed or erased.
        #[arg(long)]
        status: Option<SubscriberStatus>,
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
        status: Option<SubscriberStatus>,
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
pub enum BouncesAction {
    /// Read bounce and complaint reports and act on them: hard bounces and
    /// complaints suppress at once, soft ones after bounces.soft_limit. Reads
    /// one message on standard input (`-`, for a Postfix pipe transport or
    /// procmail), an mbox, a Maildir, or a folder of message files; a report
    /// read twice counts once.
    Ingest {
        /// Files, folders, Maildirs, mboxes; `-` is standard input.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The envelope recipient the report was delivered to (a pipe
        /// transport's ${original_recipient}): where a VERP token shows.
        #[arg(long, value_name = "ADDRESS")]
        recipient: Option<String>,
    },
    /// Poll the [bounces.imap] mailbox once now (the daemon polls it every
    /// bounces.imap.poll_seconds): read its reports, record them, then move
    /// them to bounces.imap.move_to.
    Poll,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BounceKindArg {
    Hard,
    Soft,
    Complaint,
}

impl From<BounceKindArg> for BounceKind {
    fn from(kind: BounceKindArg) -> Self {
        match kind {
            BounceKindArg::Hard => BounceKind::Hard,
            BounceKindArg::Soft => BounceKind::Soft,
            BounceKindArg::Complaint => BounceKind::Complaint,
        }
    }
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

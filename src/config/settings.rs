//! The checked configuration's types: what every section of the file is
//! once parsed and resolved.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;

/// The checked configuration: every value parsed, every reference resolved.
/// What is compiled from it (templates, the DKIM key, token keys) is
/// `app::App`'s.
#[derive(Debug)]
pub struct Settings {
    pub file: PathBuf,
    pub site: Site,
    pub store_url: String,
    pub mail: MailSettings,
    pub tokens: TokenSettings,
    pub bounces: BounceSettings,
    /// The folder of the Handlebars templates.
    pub templates_dir: PathBuf,
    pub daemon: DaemonSettings,
    pub web: WebSettings,
    pub sources: Vec<SourceSettings>,
    pub lists: Vec<ListSettings>,
    pub accounts: Vec<AccountSettings>,
    pub jobs: Vec<JobSettings>,
}

impl Settings {
    pub fn job(&self, name: &str) -> Option<&JobSettings> {
        self.jobs.iter().find(|j| j.name == name)
    }

    pub fn list(&self, name: &str) -> Option<&ListSettings> {
        self.lists.iter().find(|l| l.name == name)
    }

    pub fn source(&self, name: &str) -> Option<&SourceSettings> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn account(&self, name: &str) -> Option<&AccountSettings> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The digest jobs of a list, in configuration order: the cadences a
    /// subscriber may choose. The first is the list's default.
    pub fn digest_jobs_of<'a>(&'a self, list: &'a str) -> impl Iterator<Item = (&'a JobSettings, &'a DigestJob)> + 'a {
        self.digest_jobs().filter(move |(_, d)| d.list == list)
    }

    /// Every digest job with its digest settings, in configuration order.
    pub fn digest_jobs(&self) -> impl Iterator<Item = (&JobSettings, &DigestJob)> {
        self.jobs.iter().filter_map(|j| j.digest().map(|d| (j, d)))
    }
}

#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub base_url: url::Url,
    pub from: lettre::message::Mailbox,
    pub reply_to: Option<lettre::message::Mailbox>,
    pub postal_address: String,
    /// Unsubscribe links are this URL with `?token=...` appended.
    pub unsubscribe_url: url::Url,
    /// The domain used in `Message-ID` and `List-Id`.
    pub domain: String,
}

impl Site {
    /// The URL of one of the web interface's pages (`confirm`, `preferences`, `subscribe/<list>`), under `base_url`.
    pub fn page_url(&self, page: &str) -> url::Url {
        self.base_url
            .join(page)
            .expect("a relative page path joins any base URL")
    }

    /// The public archive of `list`, or one edition of it (by its nonce).
    pub fn archive_url(&self, list: &str, edition: Option<&str>) -> url::Url {
        let path = match edition {
            Some(nonce) => format!("archive/{list}/{nonce}"),
            None => format!("archive/{list}"),
        };
        self.page_url(&path)
    }
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub transport: TransportSettings,
    pub max_connections: usize,
    /// Messages per second across all connections; `None` is unlimited.
    pub rate_limit: Option<f64>,
    pub send_timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max_age: Duration,
    /// When an edition's permanent failures pause it.
    pub error_budget: ErrorBudget,
    /// Temporary failures in a row (no message accepted between them) that
    /// open the circuit: the channel pauses and resumes on its own.
    pub breaker_after: u64,
    /// Signs every outgoing message when a key is configured.
    pub dkim: Option<DkimSettings>,
}

/// `[mail.dkim]`: the key is read and parsed by `app::App::load`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimSettings {
    pub selector: String,
    pub domain: String,
    pub algorithm: DkimAlgorithm,
    pub private_key_file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

/// `[tokens]`: the secret that signs links (first) and the ones that still verify.
#[derive(Debug, Clone, Default)]
pub struct TokenSettings {
    pub secret: Option<Secret>,
    pub previous: Vec<Secret>,
}

/// `[bounces]`: how reports of failed deliveries and complaints are matched
/// and acted on.
#[derive(Debug, Clone, PartialEq)]
pub struct BounceSettings {
    /// The VERP return path: each message's envelope sender becomes
    /// `local+TOKEN@domain` of this address. `None`: it stays `site.from`'s.
    pub address: Option<lettre::Address>,
    /// Soft bounces (with no delivery between) that suppress an address...
    pub soft_limit: u32,
    /// ...within this many days.
    pub soft_window: Duration,
    /// A report without a VERP token or a Herald Message-ID matches a
    /// delivery to the failed address made within this long.
    pub match_window: Duration,
    /// An edition whose complaints pass this share of its sent messages logs a warning.
    pub complaint_alert_percent: f64,
    /// Reports larger than this are refused unread.
    pub max_message_bytes: usize,
    /// Provider webhooks, each served only when configured.
    pub webhooks: WebhookSettings,
    /// The mailbox the daemon polls for reports, when set.
    pub imap: Option<ImapSettings>,
}

/// `[bounces.imap]`: a mailbox of reports, read over IMAP with TLS.
#[derive(Debug, Clone, PartialEq)]
pub struct ImapSettings {
    pub host: String,
    /// Implicit TLS (IMAPS), 993 unless set.
    pub port: u16,
    pub username: String,
    pub password: Secret,
    /// The folder reports arrive in.
    pub folder: String,
    /// Where read messages are moved; `None`: they are flagged \Seen and
    /// left, and only unseen ones are read.
    pub move_to: Option<String>,
    pub poll_interval: Duration,
    /// The longest wait for any one step (connect, TLS, each command).
    pub timeout: Duration,
    /// Messages read per poll at most; the rest wait for the next.
    pub max_messages: usize,
    /// PEM certificates trusted beside the web's roots (a private server's CA).
    pub ca_file: Option<PathBuf>,
}

/// The credentials each provider's bounce webhook is checked with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookSettings {
    /// Mailgun's HTTP webhook signing key (HMAC-SHA256 of timestamp and token).
    pub mailgun_signing_key: Option<Secret>,
    /// Postmark's basic-auth user name and password, set in the webhook URL.
    pub postmark: Option<(String, Secret)>,
    /// SendGrid's signed event webhook verification key: an ECDSA P-256
    /// public key, its uncompressed point (65 bytes) taken from the DER key.
    pub sendgrid_key: Option<Vec<u8>>,
    /// The SNS topics whose Amazon SES notifications are heard (none: the
    /// SES webhook is off).
    pub sns_topic_arns: Vec<String>,
    /// Where SNS signing certificates and subscription links may be instead
    /// of Amazon's SNS hosts (tests, private endpoints). `None`: Amazon's.
    pub sns_certificate_base: Option<url::Url>,
}

impl Default for BounceSettings {
    fn default() -> Self {
        BounceSettings {
            address: None,
            soft_limit: 3,
            soft_window: Duration::from_secs(30 * 86_400),
            match_window: Duration::from_secs(14 * 86_400),
            complaint_alert_percent: 0.1,
            max_message_bytes: 10 * 1024 * 1024,
            webhooks: WebhookSettings::default(),
            imap: None,
        }
    }
}

/// What a job does about fires it missed while the daemon was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// Never run a missed fire.
    Skip,
    /// Run once for the most recent missed fire, if it is within the window.
    Latest,
}

/// An edition pauses once at least `min_attempts` of its messages were tried
/// in one run and more than `percent` of them were refused for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorBudget {
    pub percent: u64,
    pub min_attempts: u64,
}

impl ErrorBudget {
    pub fn exceeded(&self, attempts: u64, failed: u64) -> bool {
        attempts >= self.min_attempts && failed * 100 > self.percent * attempts
    }
}

#[derive(Clone)]
pub enum TransportSettings {
    File { dir: PathBuf },
    Smtp(SmtpSettings),
}

impl fmt::Debug for TransportSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { dir } => f.debug_struct("File").field("dir", dir).finish(),
            Self::Smtp(s) => s.fmt(f),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    None,
    StartTls,
    Implicit,
}

#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<String>,
    pub helo_name: Option<String>,
    /// PEM certificates trusted beside the public roots (a private relay's CA).
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct DaemonSettings {
    /// How long in-flight sends may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    /// How long a fire's claim holds without renewal: the claimer renews it
    /// every third of this while the fire runs; once it runs out, another
    /// instance takes the fire over.
    pub fire_lease: Duration,
}

/// A secret setting: shown as `<redacted>` by `Debug`, read only through `expose`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Where `herald run` serves the HTTP interface; `None`: it does not.
    pub listen: Option<std::net::SocketAddr>,
    /// Page requests per minute one client IP may make.
    pub rate_limit_per_minute: u32,
    /// Take the client IP from the last `X-Forwarded-For` hop.
    pub trust_forwarded_for: bool,
    /// Send `Strict-Transport-Security` (for a site served only over https).
    pub hsts: bool,
    /// Where `/metrics` (and `/healthz`) are served apart from the pages.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The bearer token that opens `/metrics` on the public listener.
    pub metrics_token: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceSettings {
    pub name: String,
    pub kind: SourceKind,
    pub poll_interval: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    Folder {
        path: PathBuf,
        base_url: url::Url,
    },
    Feed {
        url: url::Url,
        timeout: Duration,
        max_bytes: u64,
        max_items: usize,
        trust_ids: bool,
        /// Follow redirects to loopback, private or link-local addresses.
        allow_private_redirects: bool,
        /// Read a new item's page for its picture (`og:image`) when the feed gives none.
        page_images: bool,
    },
}

#[derive(Debug, Clone)]
pub struct ListSettings {
    pub name: String,
    pub title: String,
    pub seed: Option<PathBuf>,
    /// Whether the web interface offers a sign-up form.
    pub signup: bool,
    /// Whether the web interface shows the list's editions in a public archive.
    pub archive: bool,
    /// The consent wording on the sign-up form.
    pub consent: String,
}

impl ListSettings {
    /// A short version tag of the consent wording: changes whenever the wording does.
    pub fn consent_version(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.consent.as_bytes());
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A social account, its platform and its posting rules.
#[derive(Clone)]
pub struct AccountSettings {
    pub name: String,
    pub kind: AccountKind,
    /// The API's base URL (or, for chat webhooks, the webhook URL).
    pub base_url: url::Url,
    /// The post template; `None`: the default teaser.
    pub template: Option<String>,
    pub max_hashtags: usize,
    pub min_spacing: Duration,
    pub daily_cap: u32,
    /// Post the articles that existed before the account was added, instead of recording them as skipped.
    pub backfill: bool,
    /// Articles published longer ago than this are recorded as skipped, not posted.
    pub lookback: chrono::Duration,
    pub timeout: Duration,
    /// When the access token expires, as the operator set it (`token_expires_at`);
    /// a platform's own answer (a refresh) takes over once there is one.
    pub token_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl fmt::Debug for AccountSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountSettings")
            .field("name", &self.name)
            .field("kind", &self.kind.name())
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

/// The platform of an account, with its secrets (never printed).
#[derive(Clone)]
pub enum AccountKind {
    X {
        consumer_key: String,
        consumer_secret: String,
        access_token: String,
        access_token_secret: String,
    },
    Mastodon {
        access_token: String,
        visibility: String,
    },
    Bluesky {
        handle: String,
        app_password: String,
        /// Fetch card pictures from internal addresses too.
        allow_private_images: bool,
    },
    Slack,
    Discord,
    Telegram {
        bot_token: String,
        chat_id: String,
    },
    Webhook {
        secret: Option<String>,
        max_chars: Option<usize>,
    },
    Threads {
        access_token: String,
        user_id: String,
    },
    LinkedIn {
        access_token: String,
        /// `urn:li:person:...` or `urn:li:organization:...`.
        author: String,
        /// The `LinkedIn-Version` header, `YYYYMM`.
        version: String,
        /// Fetch article pictures from internal addresses too.
        allow_private_images: bool,
    },
}

impl AccountKind {
    pub fn name(&self) -> &'static str {
        match self {
            AccountKind::X { .. } => "x",
            AccountKind::Mastodon { .. } => "mastodon",
            AccountKind::Bluesky { .. } => "bluesky",
            AccountKind::Slack => "slack",
            AccountKind::Discord => "discord",
            AccountKind::Telegram { .. } => "telegram",
            AccountKind::Webhook { .. } => "webhook",
            AccountKind::Threads { .. } => "threads",
            AccountKind::LinkedIn { .. } => "linkedin",
        }
    }

    /// The OAuth access token of a platform whose tokens expire, if it is one.
    pub fn oauth_token(&self) -> Option<&str> {
        match self {
            AccountKind::Threads { access_token, .. } | AccountKind::LinkedIn { access_token, .. } => {
                Some(access_token)
            }
            AccountKind::Mastodon { access_token, .. } => Some(access_token),
            _ => None,
        }
    }
}

/// What a job does, with the settings only that kind of job has.
#[derive(Debug, Clone)]
pub enum JobKind {
    Digest(DigestJob),
    Social(SocialJob),
}

impl JobKind {
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::Digest(_) => "digest",
            JobKind::Social(_) => "social",
        }
    }
}

/// A `digest` job: an edition of its list's new articles, by mail.
#[derive(Debug, Clone)]
pub struct DigestJob {
    pub list: String,
    pub template: String,
    pub subject: String,
    pub max_articles: usize,
    /// Fewer new articles than this make no edition: they wait for the next run.
    pub min_articles: usize,
    /// Whether the digest shows each article's picture.
    pub show_images: bool,
    pub send_when_empty: bool,
    /// The cadence subscribers choose this job by (default: the job's name).
    pub cadence: String,
    /// Whether this is its list's first digest job, which also takes
    /// subscribers whose cadence names no other job of the list.
    pub list_default: bool,
    /// The cadences of the list's other digest jobs.
    pub sibling_cadences: Vec<String>,
    /// The names of the list's other digest jobs.
    pub siblings: Vec<String>,
}

impl DigestJob {
    /// Whether `count` new articles make an edition: at least `min_articles`,
    /// or none at all when `send_when_empty` is set. Between the two, the
    /// articles wait for the next run.
    pub fn makes_edition(&self, count: usize) -> bool {
        count >= self.min_articles || (count == 0 && self.send_when_empty)
    }
}

/// A `social` job: a teaser per new article to each of its accounts.
#[derive(Debug, Clone)]
pub struct SocialJob {
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct JobSettings {
    pub name: String,
    pub kind: JobKind,
    pub sources: Vec<String>,
    pub schedule: String,
    pub cron: croner::Cron,
    pub timezone: Tz,
    pub lookback: chrono::Duration,
    pub catch_up: CatchUp,
    pub catch_up_window: chrono::Duration,
}

impl JobSettings {
    /// The digest settings, when this is a digest job.
    pub fn digest(&self) -> Option<&DigestJob> {
        match &self.kind {
            JobKind::Digest(d) => Some(d),
            JobKind::Social(_) => None,
        }
    }

    /// The social settings, when this is a social job.
    pub fn social(&self) -> Option<&SocialJob> {
        match &self.kind {
            JobKind::Social(s) => Some(s),
            JobKind::Digest(_) => None,
        }
    }
}

//! The loaded application: the checked [`Settings`] and what is compiled from
//! them (the templates, the DKIM key, the token keys, the teaser templates).
//! `config` knows nothing of these; their problems are reported here as
//! configuration problems, naming the file and key, before anything runs.
//! A reload builds a new `App` and hands it out whole behind an `Arc`.

use std::path::Path;
use std::sync::Arc;

use crate::config::{self, ConfigError, Problem, Settings, SmtpSettings, TransportSettings};
use crate::mail::{self, Dkim};
use crate::render::TemplateSet;
use crate::social::teaser;
use crate::store::{self, Store, StoreError};
use crate::token::TokenKeys;

/// Everything a command or the daemon needs from the configuration.
#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub templates: TemplateSet,
    /// The link-signing keys as configured (`Store::token_keys` adds the store's own when none are).
    pub tokens: TokenKeys,
    /// Signs every outgoing message when `[mail.dkim]` is set.
    pub dkim: Option<Arc<Dkim>>,
}

/// The store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("opening the store {url}")]
pub struct OpenStoreError {
    url: String,
    #[source]
    source: StoreError,
}

impl App {
    /// Reads, checks and compiles the configuration at `path` with the given
    /// environment. Problems in the settings are reported first; the compiled
    /// parts are checked once the settings they depend on are valid.
    pub fn load(path: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<App, ConfigError> {
        App::compile(config::load(path, env)?)
    }

    /// Compiles what the settings name, collecting every problem.
    pub fn compile(settings: Settings) -> Result<App, ConfigError> {
        let origin = settings.file.display().to_string();
        let mut problems = Vec::new();
        let templates = match TemplateSet::load(&settings.templates_dir, &settings.jobs) {
            Ok(set) => Some(set),
            Err(errors) => {
                problems.extend(errors.into_iter().map(|error| Problem {
                    origin: error.file.unwrap_or_else(|| origin.clone()),
                    key: error.key,
                    message: error.message,
                }));
                None
            }
        };
        let dkim = settings.mail.dkim.as_ref().and_then(|d| {
            let key_file = &d.private_key_file;
            let problem = |message: String| Problem {
                origin: origin.clone(),
                key: "mail.dkim.private_key_file".into(),
                message,
            };
            match std::fs::read_to_string(key_file) {
                Ok(key) => match Dkim::new(&d.selector, &d.domain, d.algorithm, &key) {
                    Ok(dkim) => Some(Arc::new(dkim)),
                    Err(e) => {
                        problems.push(problem(e.to_string()));
                        None
                    }
                },
                Err(e) => {
                    problems.push(problem(format!("cannot read {}: {e}", key_file.display())));
                    None
                }
            }
        });
        let smtp_ca = match &settings.mail.transport {
            TransportSettings::Smtp(SmtpSettings { ca_file, .. }) => ca_file.as_ref(),
            _ => None,
        };
        let imap_ca = settings.bounces.imap.as_ref().and_then(|imap| imap.ca_file.as_ref());
        for (key, file) in [("mail.smtp.ca_file", smtp_ca), ("bounces.imap.ca_file", imap_ca)] {
            let Some(file) = file else { continue };
            let message = match std::fs::read(file) {
                Ok(pem) => mail::check_ca(&pem).err().map(|e| format!("{}: {e}", file.display())),
                Err(e) => Some(format!("cannot read {}: {e}", file.display())),
            };
            problems.extend(message.map(|message| Problem {
                origin: origin.clone(),
                key: key.into(),
                message,
            }));
        }
        for account in &settings.accounts {
            if let Err(e) = teaser::compile(teaser::template_of(account)) {
                problems.push(Problem {
                    origin: origin.clone(),
                    key: format!("accounts.{:?}.template", account.name),
                    message: e.to_string(),
                });
            }
        }
        let tokens = TokenKeys::from_config(
            settings.tokens.secret.as_ref().map(|s| s.expose()),
            settings.tokens.previous.iter().map(|s| s.expose()),
        );
        match templates {
            Some(templates) if problems.is_empty() => Ok(App {
                settings,
                templates,
                tokens,
                dkim,
            }),
            _ => Err(ConfigError { problems }),
        }
    }

    /// Opens the configured store (its schema must be up to date).
    pub async fn open_store(&self) -> Result<Store, OpenStoreError> {
        let url = &self.settings.store_url;
        Store::open(url).await.map_err(|source| OpenStoreError {
            url: store::display_url(url),
            source,
        })
    }
}

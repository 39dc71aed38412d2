//! The `herald` command line: argument parsing ([`args`]) and one module per
//! group of commands, each a thin adapter over the library: it loads the
//! configuration (every command checks the whole of it first), calls the
//! library, and prints (through [`output`]).

/// Prints one line of command output; a closed pipe (`herald ... | head`)
/// ends the command quietly instead of panicking.
macro_rules! say {
    () => { $crate::cli::output::emit(format_args!("")) };
    ($($arg:tt)*) => { $crate::cli::output::emit(format_args!($($arg)*)) };
}

mod admin;
mod args;
mod bounces;
mod check;
mod digest;
mod output;
mod queue;
mod social;
mod subscribers;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;

use crate::app::App;
use crate::config::{DigestJob, JobKind, JobSettings, LogFormat, Settings, SocialJob};

pub use args::*;

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
        return check::cmd_dkim_keygen(selector, domain, out);
    }
    let app = match App::load(&cli.config, std::env::vars()) {
        Ok(app) => app,
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
        _ => app.settings.daemon.log_format,
    };
    let level = if daemon {
        tracing::Level::INFO
    } else {
        tracing::Level::WARN
    };
    init_logs(format, level);
    if let Command::Serve { listen } = cli.command {
        return crate::daemon::serve_only(app, listen).await;
    }
    if daemon {
        return crate::daemon::run(app, &cli.config).await;
    }
    let app = Arc::new(app);
    let settings = &app.settings;
    match cli.command {
        Command::Check { smtp, live } => {
            say!(
                "{}: configuration is valid ({} sources, {} lists, {} jobs)",
                settings.file.display(),
                settings.sources.len(),
                settings.lists.len(),
                settings.jobs.len()
            );
            check::print_tokens(settings);
            let mut code = ExitCode::SUCCESS;
            if live {
                code = check::cmd_check_live(&app).await?;
            }
            if smtp || live {
                let smtp = check::cmd_check_smtp(&app).await?;
                if smtp != ExitCode::SUCCESS {
                    code = smtp;
                }
            }
            Ok(code)
        }
        Command::Ingest => digest::cmd_ingest(&app).await,
        Command::Digest { job, dry_run, to } => digest::cmd_digest(app.clone(), &job, dry_run, to).await,
        Command::Post { job, dry_run } => social::cmd_post(&app, &job, dry_run).await,
        Command::Posts { account, limit } => social::cmd_posts(&app, account, limit).await,
        Command::Preview { job, format, out } => digest::cmd_preview(&app, &job, format, out).await,
        Command::Subscribers { action } => subscribers::cmd_subscribers(&app, action).await,
        Command::Suppressions { action } => subscribers::cmd_suppressions(&app, action).await,
        Command::Bounces { action, kind, limit } => bounces::cmd_bounces(&app, action, kind, limit).await,
        Command::Deliveries { job, state, limit } => queue::cmd_deliveries(&app, job, state, limit).await,
        Command::Resume { editions, .. } => queue::cmd_resume(&app, &editions).await,
        Command::Cancel { edition } => queue::cmd_cancel(&app, edition).await,
        Command::Hold { job: name, reason } => queue::cmd_hold(&app, &name, &reason).await,
        Command::Release { job: name } => queue::cmd_release(&app, &name).await,
        Command::Run { .. } => digest::cmd_run_once(app.clone()).await,
        Command::Serve { .. } => unreachable!("handled above"),
        Command::Schedule { count } => queue::cmd_schedule(&app, count).await,
        Command::Dkim { .. } => unreachable!("handled before the configuration is loaded"),
        Command::Backup { file } => admin::cmd_backup(&app, &file).await,
        Command::Migrate { from, to } => match from.zip(to) {
            Some((from, to)) => admin::cmd_copy_store(&from, &to).await,
            None => admin::cmd_migrate(&app).await,
        },
    }
}

/// The digest job `name`, with its digest settings.
fn digest_job<'a>(settings: &'a Settings, name: &str) -> anyhow::Result<(&'a JobSettings, &'a DigestJob)> {
    let job = known_job(settings, name)?;
    match &job.kind {
        JobKind::Digest(d) => Ok((job, d)),
        JobKind::Social(_) => bail!("job {name:?} is a social job: use `herald post {name}`"),
    }
}

/// The social job `name`, with its accounts.
fn social_job<'a>(settings: &'a Settings, name: &str) -> anyhow::Result<(&'a JobSettings, &'a SocialJob)> {
    let job = known_job(settings, name)?;
    match &job.kind {
        JobKind::Social(s) => Ok((job, s)),
        JobKind::Digest(_) => bail!("job {name:?} is a digest job: use `herald digest {name}`"),
    }
}

/// Any job by name, digest or social, or an error listing the jobs there are.
fn known_job<'a>(settings: &'a Settings, name: &str) -> anyhow::Result<&'a JobSettings> {
    settings.job(name).ok_or_else(|| {
        let names: Vec<&str> = settings.jobs.iter().map(|j| j.name.as_str()).collect();
        anyhow::anyhow!(
            "no job named {name:?} in {} (jobs: {})",
            settings.file.display(),
            names.join(", ")
        )
    })
}

fn list_name(settings: &Settings, list: Option<String>) -> anyhow::Result<String> {
    match list {
        Some(name) if settings.list(&name).is_some() => Ok(name),
        Some(name) => bail!("no list named {name:?} in {}", settings.file.display()),
        None if settings.lists.len() == 1 => Ok(settings.lists[0].name.clone()),
        None => bail!("there are {} lists: name one with --list", settings.lists.len()),
    }
}

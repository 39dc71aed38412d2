//! `[[jobs]]`: digest and social jobs, their schedules and windows.

use super::*;

pub(super) fn check_jobs(
    c: &mut Checker,
    raw: &RawConfig,
    sources: &[SourceSettings],
    lists: &[ListSettings],
    accounts: &[AccountSettings],
) -> Vec<JobSettings> {
    let mut seen = HashSet::new();
    let mut cadences_taken = HashSet::new();
    let mut out: Vec<JobSettings> = Vec::new();
    for (i, j) in raw.jobs.iter().enumerate() {
        let key = item_key("jobs", i, &j.name);
        let name = check_name(c, &key, &j.name, &mut seen);
        if let Some(mut job) = check_job(c, &key, j, sources, lists, accounts)
            && let Some(name) = name
        {
            if let JobKind::Digest(d) = &mut job.kind {
                if d.cadence.is_empty() {
                    d.cadence = name.clone();
                }
                if !cadences_taken.insert((d.list.clone(), d.cadence.clone())) {
                    c.problem(
                        &format!("{key}.cadence"),
                        format!(
                            "list {:?} already has a digest job with cadence {:?}; each digest job of a list needs its own cadence",
                            d.list, d.cadence
                        ),
                    );
                }
            }
            out.push(JobSettings { name, ..job });
        }
    }
    // A list's first digest job is its default; each job knows the others' cadences.
    let digest: Vec<(String, String, String)> = out
        .iter()
        .filter_map(|j| j.digest().map(|d| (j.name.clone(), d.list.clone(), d.cadence.clone())))
        .collect();
    for job in &mut out {
        let name = job.name.clone();
        let JobKind::Digest(d) = &mut job.kind else { continue };
        let same_list = || digest.iter().filter(|(_, list, _)| *list == d.list);
        let others = || same_list().filter(|(other, _, _)| *other != name);
        d.list_default = same_list().next().is_some_and(|(first, _, _)| *first == name);
        d.sibling_cadences = others().map(|(_, _, cadence)| cadence.clone()).collect();
        d.siblings = others().map(|(other, _, _)| other.clone()).collect();
    }
    out
}

pub(super) fn check_job(
    c: &mut Checker,
    key: &str,
    j: &RawJob,
    sources: &[SourceSettings],
    lists: &[ListSettings],
    accounts: &[AccountSettings],
) -> Option<JobSettings> {
    let k = |field: &str| format!("{key}.{field}");
    let digest = match j.kind.as_deref() {
        Some("digest") => true,
        Some("social") => false,
        Some(other) => {
            c.problem(
                &k("kind"),
                format!("{other:?} is not a job kind this version knows (digest, social)"),
            );
            return None;
        }
        None => {
            c.problem(&k("kind"), "is required (digest or social)");
            return None;
        }
    };
    let list = match digest {
        true => {
            let list = c.required(&k("list"), &j.list);
            if let Some(list) = &list
                && !lists.iter().any(|l| &l.name == list)
            {
                c.problem(&k("list"), format!("no list named {list:?} in [[lists]]"));
            }
            list
        }
        false => {
            if j.list.is_some() {
                c.problem(&k("list"), "a social job posts to accounts, not to a list");
            }
            Some(String::new())
        }
    };
    let job_accounts = match (digest, &j.accounts) {
        (false, Some(names)) if !names.is_empty() => {
            for name in names {
                if !accounts.iter().any(|a| &a.name == name) {
                    c.problem(&k("accounts"), format!("no account named {name:?} in [[accounts]]"));
                }
            }
            names.clone()
        }
        (false, _) => {
            c.problem(&k("accounts"), "a social job needs at least one account");
            Vec::new()
        }
        (true, Some(_)) => {
            c.problem(
                &k("accounts"),
                "a digest job sends to a list; accounts belong to social jobs",
            );
            Vec::new()
        }
        (true, None) => Vec::new(),
    };
    let job_sources = match &j.sources {
        Some(names) => {
            for name in names {
                if !sources.iter().any(|s| &s.name == name) {
                    c.problem(&k("sources"), format!("no source named {name:?} in [[sources]]"));
                }
            }
            if names.is_empty() {
                c.problem(
                    &k("sources"),
                    "must name at least one source (or be left out to take all)",
                );
            }
            names.clone()
        }
        None => sources.iter().map(|s| s.name.clone()).collect(),
    };
    let schedule = c.required(&k("schedule"), &j.schedule);
    let cron = schedule.as_deref().and_then(|line| match parse_cron(line) {
        Ok(cron) => Some(cron),
        Err(e) => {
            c.problem(&k("schedule"), format!("{line:?} is not a valid cron line: {e}"));
            None
        }
    });
    let timezone = c
        .required(&k("timezone"), &j.timezone)
        .and_then(|tz| match Tz::from_str(&tz) {
            Ok(tz) => Some(tz),
            Err(_) => {
                c.problem(
                    &k("timezone"),
                    format!("{tz:?} is not an IANA time zone (e.g. Europe/London)"),
                );
                None
            }
        });
    let max_articles = c.positive(&k("max_articles"), j.max_articles, 20, 500) as usize;
    let min_articles = c.positive(&k("min_articles"), j.min_articles, 1, 500) as usize;
    if min_articles > max_articles {
        c.problem(
            &k("min_articles"),
            format!("{min_articles} is more than max_articles ({max_articles}): no edition could ever be made"),
        );
    }
    let lookback_hours = c.positive(&k("lookback_hours"), j.lookback_hours, 24, 24 * 366);
    let catch_up = match j.catch_up.as_deref().unwrap_or("latest") {
        "latest" => CatchUp::Latest,
        "skip" => CatchUp::Skip,
        other => {
            c.problem(&k("catch_up"), format!("{other:?} is not one of latest, skip"));
            CatchUp::Skip
        }
    };
    let catch_up_window_hours = c.positive(&k("catch_up_window_hours"), j.catch_up_window_hours, 6, 24 * 31);
    let cadence = match (digest, &j.cadence) {
        (true, Some(cadence)) if cadence.trim().is_empty() => {
            c.problem(&k("cadence"), "must not be empty (leave it out to use the job's name)");
            String::new()
        }
        (true, Some(cadence)) => cadence.trim().to_string(),
        (false, Some(_)) => {
            c.problem(&k("cadence"), "a social job has no subscribers to choose a cadence");
            String::new()
        }
        (_, None) => String::new(),
    };
    let kind = if digest {
        JobKind::Digest(DigestJob {
            list: list?,
            template: j.template.clone().unwrap_or_else(|| "digest".into()),
            subject: j.subject.clone().unwrap_or_else(|| {
                "{{site.name}}: {{edition.count}} new {{#if edition.single}}story{{else}}stories{{/if}}".into()
            }),
            max_articles,
            min_articles,
            show_images: j.show_images.unwrap_or(true),
            send_when_empty: j.send_when_empty.unwrap_or(false),
            cadence,
            list_default: false,
            sibling_cadences: Vec::new(),
            siblings: Vec::new(),
        })
    } else {
        list?;
        JobKind::Social(SocialJob { accounts: job_accounts })
    };
    Some(JobSettings {
        name: String::new(),
        kind,
        sources: job_sources,
        schedule: schedule?,
        cron: cron?,
        timezone: timezone?,
        lookback: chrono::Duration::hours(lookback_hours),
        catch_up,
        catch_up_window: chrono::Duration::hours(catch_up_window_hours),
    })
}

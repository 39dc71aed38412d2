//! `.env`: read at start into the environment (a variable already set keeps
//! its value), and read again at each reload, so that a secret replaced in
//! the file (a renewed social token, say) reaches a running daemon on SIGHUP.
//! Only the variables the file set at start follow it; one set by the
//! process's own environment keeps winning, as it did at start.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The file read at start and the variables it set.
static READ: OnceLock<(PathBuf, HashSet<String>)> = OnceLock::new();

/// Reads `.env` from the working folder (or the nearest parent that has
/// one) into the environment, if there is one. A line that cannot be read
/// refuses the start, naming the file and the line: a file read halfway
/// would drop every setting below the bad line without a word.
pub fn read() -> Result<(), String> {
    let Some(path) = std::env::current_dir()
        .ok()
        .and_then(|dir| dir.ancestors().map(|d| d.join(".env")).find(|p| p.is_file()))
    else {
        return Ok(());
    };
    let before: HashSet<String> = std::env::vars().map(|(k, _)| k).collect();
    dotenvy::from_path(&path).map_err(|e| describe(&path, e))?;
    let set: HashSet<String> = entries(&path)?.into_keys().filter(|k| !before.contains(k)).collect();
    let _ = READ.set((path, set));
    Ok(())
}

/// The environment as of now for loading the configuration: the process's,
/// with the variables `.env` set at start taken from the file as it is now
/// (one removed from the file is gone). When the file cannot be read, the
/// process's environment as it is, and why.
pub fn environment() -> (Vec<(String, String)>, Option<String>) {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let Some((path, from_file)) = READ.get() else {
        return (vars, None);
    };
    match entries(path) {
        Ok(now) => (overlay(vars, from_file, &now), None),
        Err(why) => (vars, Some(why)),
    }
}

/// `vars` with each of `from_file` replaced by its value in `now`, or dropped.
fn overlay(
    vars: Vec<(String, String)>,
    from_file: &HashSet<String>,
    now: &HashMap<String, String>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vars.into_iter().filter(|(k, _)| !from_file.contains(k)).collect();
    out.extend(
        now.iter()
            .filter(|(k, _)| from_file.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    out
}

fn entries(path: &Path) -> Result<HashMap<String, String>, String> {
    dotenvy::from_path_iter(path)
        .map_err(|e| describe(path, e))?
        .map(|item| item.map_err(|e| describe(path, e)))
        .collect()
}

fn describe(path: &Path, e: dotenvy::Error) -> String {
    match e {
        dotenvy::Error::LineParse(snippet, _) => {
            // dotenvy names the part of the line it could not read: find the whole line.
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let found = text.lines().enumerate().find(|(_, l)| {
                let l = l.trim();
                !l.starts_with('#') && l.contains(snippet.trim())
            });
            let (number, line) = found.map_or((0, snippet.as_str()), |(n, l)| (n + 1, l));
            format!(
                "{} line {number}: cannot read `{}`: quote a value that has spaces or special characters, \
                 e.g. KEY=\"two words\"",
                path.display(),
                line.trim_end()
            )
        }
        other => format!("{}: {other}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_file_set_follows_the_file() {
        let vars = vec![
            ("PATH".to_string(), "/bin".to_string()),
            ("HERALD_SECRET_LI_ACCESS_TOKEN".to_string(), "old".to_string()),
            ("HERALD_SECRET_GONE_BOT_TOKEN".to_string(), "x".to_string()),
            ("HERALD_LOG".to_string(), "info".to_string()),
        ];
        let from_file: HashSet<String> = ["HERALD_SECRET_LI_ACCESS_TOKEN", "HERALD_SECRET_GONE_BOT_TOKEN"]
            .map(String::from)
            .into();
        let now: HashMap<String, String> = [
            ("HERALD_SECRET_LI_ACCESS_TOKEN", "renewed"),
            // Set by the process at start, so the file does not override it.
            ("HERALD_LOG", "debug"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        let mut got = overlay(vars, &from_file, &now);
        got.sort();
        assert_eq!(
            got,
            [
                ("HERALD_LOG".to_string(), "info".to_string()),
                ("HERALD_SECRET_LI_ACCESS_TOKEN".to_string(), "renewed".to_string()),
                ("PATH".to_string(), "/bin".to_string()),
            ]
        );
    }
}

//! Importing subscribers from CSV: streamed, validated row by row (invalid
//! rows reported by line number), duplicates skipped, written in batches.

use std::collections::VecDeque;
use std::io::Read;

use chrono::{DateTime, Utc};

use crate::store::{NewSubscriber, Store, StoreError};

const BATCH: usize = 10_000;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: u64,
    pub added: u64,
    /// Already on the list (whatever their status there: an import never
    /// makes an unsubscribed address active), or repeated in the file.
    pub duplicates: u64,
    /// On the suppression list (a hard bounce, a complaint, an erasure): not imported.
    pub suppressed: u64,
    /// `(line, reason)` for each row that was not imported.
    pub invalid: Vec<(u64, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the CSV has no `email` column in its header row (is it saved as UTF-8, with a header row?)")]
    NoEmailColumn,
    #[error("cannot read the CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Passes the input through, noting where its line feeds are, so a row's
/// line number comes from the bytes themselves (the csv crate counts one
/// line short for every row after the first in a file with CRLF line ends).
struct Lines<R> {
    inner: R,
    read: u64,
    /// Offsets of line feeds read ahead of the rows asked about so far.
    ahead: VecDeque<u64>,
    /// Line feeds before the last row asked about.
    passed: u64,
}

impl<R> Lines<R> {
    fn new(inner: R) -> Lines<R> {
        Lines {
            inner,
            read: 0,
            ahead: VecDeque::new(),
            passed: 0,
        }
    }

    /// The 1-based line of the row that starts at byte `offset` (a row
    /// "starting" on the line feed of a CRLF belongs to the next line).
    fn line_at(&mut self, offset: u64) -> u64 {
        while self.ahead.front().is_some_and(|feed| *feed <= offset) {
            self.ahead.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

impl<R: Read> Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, byte) in buf[..n].iter().enumerate() {
            if *byte == b'\n' {
                self.ahead.push_back(self.read + i as u64);
            }
        }
        self.read += n as u64;
        Ok(n)
    }
}

/// Checks an address the way Herald will send to it: a plain `local@domain`
/// with a dotted domain, no display name, no control characters.
pub fn validate_email(raw: &str) -> Result<String, EmailError> {
    let email = raw.trim();
    if email.is_empty() {
        return Err(EmailError::Empty);
    }
    if email.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(EmailError::Spaces(email.into()));
    }
    let parsed: email_address::EmailAddress = email.parse().map_err(|reason| EmailError::Invalid {
        email: email.into(),
        reason,
    })?;
    if email.contains('<') || !parsed.domain().contains('.') || email.parse::<lettre::Address>().is_err() {
        return Err(EmailError::Undeliverable(email.into()));
    }
    Ok(email.to_string())
}

/// Why an address is not one Herald sends to.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("the email is empty")]
    Empty,
    #[error("{0:?} contains spaces or control characters")]
    Spaces(String),
    #[error("{email:?} is not a valid address: {reason}")]
    Invalid {
        email: String,
        reason: email_address::Error,
    },
    #[error("{0:?} is not a deliverable address")]
    Undeliverable(String),
}

/// A status name no import knows.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a status Herald imports (active or unsubscribed)")]
pub struct UnknownStatus(String);

/// The status a row is imported with: from its `status` column, else the
/// import's default (`--status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportStatus {
    #[default]
    Active,
    /// Left at the previous provider: kept as history, never sent to.
    Unsubscribed,
}

impl std::str::FromStr for ImportStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        match s.trim().to_ascii_lowercase().as_str() {
            "active" | "subscribed" | "confirmed" => Ok(ImportStatus::Active),
            "unsubscribed" | "inactive" | "blocklisted" | "cleaned" => Ok(ImportStatus::Unsubscribed),
            other => Err(UnknownStatus(other.into())),
        }
    }
}

/// Imports the CSV read from `input` into `list`. `progress` is called with
/// the number of bytes read so far after each batch. Recognised columns:
/// `email` (required), `name`, `status` (active or unsubscribed; default
/// `status`), `cadence`; any other column becomes an attribute.
pub async fn import_csv(
    store: &Store,
    list: &str,
    input: impl Read,
    status: ImportStatus,
    now: DateTime<Utc>,
    mut progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(Lines::new(input));
    let headers: Vec<String> = reader
        .byte_headers()?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_lowercase())
        .collect();
    let email_col = headers
        .iter()
        .position(|h| h == "email")
        .ok_or(ImportError::NoEmailColumn)?;
    let name_col = headers.iter().position(|h| h == "name");
    let status_col = headers.iter().position(|h| h == "status");
    let cadence_col = headers.iter().position(|h| h == "cadence");
    let known = [Some(email_col), name_col, status_col, cadence_col];
    let mut report = ImportReport::default();
    let mut batch = Vec::with_capacity(BATCH);
    // Bytes first, then UTF-8 per row: a row in another encoding is one invalid row.
    let mut bytes = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut bytes) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| reader.get_mut().line_at(p.byte()));
                report.rows += 1;
                report.invalid.push((line, format!("unreadable row: {e}")));
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(e.into());
                }
                continue;
            }
        }
        report.rows += 1;
        let line = bytes.position().map_or(0, |p| reader.get_mut().line_at(p.byte()));
        if bytes.iter().any(|field| std::str::from_utf8(field).is_err()) {
            report.invalid.push((
                line,
                "not valid UTF-8: save the file as UTF-8 and import it again".into(),
            ));
            continue;
        }
        let field = |i: usize| bytes.get(i).and_then(|f| std::str::from_utf8(f).ok());
        let email = match validate_email(field(email_col).unwrap_or("")) {
            Ok(email) => email,
            Err(reason) => {
                report.invalid.push((line, reason.to_string()));
                continue;
            }
        };
        let name = name_col
            .and_then(field)
            .map(crate::clean::one_line)
            .filter(|n| !n.is_empty());
        let row_status = match status_col.and_then(field).filter(|v| !v.is_empty()) {
            Some(value) => match value.parse::<ImportStatus>() {
                Ok(s) => s,
                Err(reason) => {
                    report.invalid.push((line, reason.to_string()));
                    continue;
                }
            },
            None => status,
        };
        let cadence = cadence_col.and_then(field).unwrap_or("").trim().to_lowercase();
        let attributes = headers
            .iter()
            .enumerate()
            .filter(|(i, _)| !known.contains(&Some(*i)))
            .filter_map(|(i, h)| {
                field(i)
                    .filter(|v| !v.is_empty())
                    .map(|v| (h.clone(), serde_json::Value::String(v.to_string())))
            })
            .collect();
        batch.push(NewSubscriber {
            email,
            name,
            attributes,
            unsubscribed: row_status == ImportStatus::Unsubscribed,
            cadence,
        });
        if batch.len() == BATCH {
            flush(store, list, &mut batch, &mut report, now).await?;
            progress(reader.position().byte());
        }
    }
    flush(store, list, &mut batch, &mut report, now).await?;
    progress(reader.position().byte());
    Ok(report)
}

async fn flush(
    store: &Store,
    list: &str,
    batch: &mut Vec<NewSubscriber>,
    report: &mut ImportReport,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let emails: Vec<&str> = batch.iter().map(|s| s.email.as_str()).collect();
    let suppressed = store.suppressed_among(&emails).await?;
    if !suppressed.is_empty() {
        let before = batch.len();
        batch.retain(|s| !suppressed.contains(&crate::store::email_key(&s.email)));
        report.suppressed += (before - batch.len()) as u64;
    }
    let added = store.import_subscribers(list, batch, now).await?;
    report.added += added;
    report.duplicates += batch.len() as u64 - added;
    batch.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_email;

    #[test]
    fn addresses() {
        assert!(validate_email("ana@example.org").is_ok());
        assert!(validate_email("not-an-address").is_err());
        assert!(validate_email("ana@localhost").is_err());
        assert!(validate_email("ana@example.org\r\nBcc: x@y.z").is_err());
        assert!(validate_email("Ana <ana@example.org>").is_err());
    }
}

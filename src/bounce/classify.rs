//! One report in, what it says out: a pure function over the message's
//! bytes. The structured parts are read first (a delivery-status report's
//! per-recipient fields, a feedback report's type and recipient), then the
//! text of the bounces that have none (qmail, old Exim and Sendmail,
//! Exchange, Yahoo); auto-replies are told apart and ignored. The returned
//! message's Message-IDs and the addresses the report was sent to (where a
//! VERP token is) are kept for matching.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use super::fields::{self, Fields};
use super::status::{Kind, Status, find_basic_code, words_kind};

/// What one report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The report's own identity: its Message-ID, else a hash of its bytes.
    pub id: String,
    pub verdict: Verdict,
    /// The addresses the report was delivered to (`Delivered-To`,
    /// `X-Original-To`, `Envelope-To`, `To`): where a VERP address shows.
    pub sent_to: Vec<String>,
    /// The Message-IDs of the returned message, without angle brackets.
    pub returned_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Failures or complaints, one per address (never empty).
    Failures(Vec<Finding>),
    /// An out-of-office or other automatic reply: not a failure.
    AutoReply,
    /// A report about no failure: a delivery notice, a "not spam" report.
    NoFailure,
    /// Not a report Herald can read.
    Unrecognised,
}

/// One address's failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The address that failed, when the report names it.
    pub address: Option<String>,
    pub kind: Kind,
    /// `5.1.1`, or a basic code such as `550`, or empty.
    pub status: String,
    pub diagnostic: String,
}

/// Reads one report.
pub fn classify(raw: &[u8]) -> Report {
    let hash = || format!("sha256:{}", crate::token::hex(&Sha256::digest(raw)[..16]));
    let Some(message) = MessageParser::default().parse(raw) else {
        return Report {
            id: hash(),
            verdict: Verdict::Unrecognised,
            sent_to: Vec::new(),
            returned_ids: Vec::new(),
        };
    };
    let id = message
        .message_id()
        .filter(|id| !id.is_empty())
        .map_or_else(hash, |id| format!("<{id}>"));
    let sent_to = sent_to(&message);
    let mut returned_ids = Vec::new();
    let mut verdict = None;
    for part in &message.parts {
        let Some(ct) = part.content_type() else { continue };
        let subtype = ct.subtype().unwrap_or_default().to_ascii_lowercase();
        match (ct.ctype().to_ascii_lowercase().as_str(), subtype.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") if verdict.is_none() => {
                verdict = Some(delivery_status(&String::from_utf8_lossy(part.contents())));
            }
            ("message", "feedback-report") if verdict.is_none() => {
                verdict = Some(feedback(&String::from_utf8_lossy(part.contents()), &message));
            }
            ("text", "rfc822-headers") | ("message", "rfc822-headers") => {
                let text = String::from_utf8_lossy(part.contents()).into_owned();
                returned_ids.extend(message_ids_in(&text));
            }
            _ => {}
        }
        if let PartType::Message(returned) = &part.body
            && let Some(id) = returned.message_id()
        {
            returned_ids.push(id.to_string());
        }
    }
    let verdict = match verdict {
        Some(verdict) => verdict,
        None if is_auto_reply(&message) && !looks_like_bounce(&message) => Verdict::AutoReply,
        None if looks_like_bounce(&message) => {
            let body = message.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
            let (report, copy) = split_at_copy(&body);
            returned_ids.extend(message_ids_in(copy));
            text_bounce(report, &message, &sent_to)
        }
        None => Verdict::Unrecognised,
    };
    returned_ids.dedup();
    Report {
        id,
        verdict,
        sent_to,
        returned_ids,
    }
}

/// The per-recipient groups of a delivery-status report.
fn delivery_status(text: &str) -> Verdict {
    let findings: Vec<Finding> = fields::groups(text)
        .iter()
        .filter(|g| g.get("final-recipient").is_some() || g.get("original-recipient").is_some())
        .filter_map(recipient)
        .collect();
    if findings.is_empty() {
        Verdict::NoFailure
    } else {
        Verdict::Failures(findings)
    }
}

fn recipient(group: &Fields) -> Option<Finding> {
    let address = group
        .get("original-recipient")
        .and_then(fields::address)
        .or_else(|| group.get("final-recipient").and_then(fields::address));
    let diagnostic = group.get("diagnostic-code").map(fields::diagnostic).unwrap_or_default();
    let status = group
        .get("status")
        .and_then(Status::parse)
        .or_else(|| Status::find(diagnostic));
    let action = group.get("action").unwrap_or("failed").to_ascii_lowercase();
    let kind = match action.split_whitespace().next().unwrap_or_default() {
        "failed" => match status {
            Some(status) => status.kind(diagnostic),
            None => words_kind(diagnostic).unwrap_or(Kind::Soft),
        },
        "delayed" => Kind::Soft,
        // delivered, relayed, expanded: not a failure.
        _ => return None,
    };
    Some(Finding {
        address,
        kind,
        status: status.map(|s| s.to_string()).unwrap_or_default(),
        diagnostic: clip(diagnostic),
    })
}

/// A feedback report (ARF): abuse, fraud, virus and other are complaints;
/// `not-spam` and unknown types are not.
fn feedback(text: &str, message: &Message<'_>) -> Verdict {
    let all: Vec<Fields> = fields::groups(text);
    let get = |name: &str| all.iter().find_map(|g| g.get(name));
    let kind = get("feedback-type").unwrap_or_default().to_ascii_lowercase();
    if !matches!(kind.as_str(), "abuse" | "fraud" | "virus" | "other") {
        return Verdict::NoFailure;
    }
    let address = get("original-rcpt-to")
        .and_then(fields::address)
        .or_else(|| returned_to(message));
    Verdict::Failures(vec![Finding {
        address,
        kind: Kind::Complaint,
        status: String::new(),
        diagnostic: format!("feedback report: {kind}"),
    }])
}

/// The `To` of the returned message's headers, for complaints that name no recipient.
fn returned_to(message: &Message<'_>) -> Option<String> {
    message.parts.iter().find_map(|part| {
        let ct = part.content_type()?;
        if !ct.subtype().unwrap_or_default().eq_ignore_ascii_case("rfc822-headers") {
            return None;
        }
        let text = String::from_utf8_lossy(part.contents()).into_owned();
        let headers = MessageParser::default().parse_headers(text.as_bytes())?;
        headers
            .to()
            .and_then(|to| to.first())
            .and_then(|a| a.address())
            .map(str::to_string)
    })
}

/// A bounce without a delivery-status part: the failed addresses from
/// `X-Failed-Recipients` or the text, each with the code and words that
/// follow it.
fn text_bounce(report: &str, message: &Message<'_>, sent_to: &[String]) -> Verdict {
    let from = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_string();
    let header_failed: Vec<String> = message
        .header_raw("X-Failed-Recipients")
        .map(|v| v.split(',').filter_map(fields::address).collect())
        .unwrap_or_default();
    let found = addresses_in(report);
    let addresses: Vec<String> = if header_failed.is_empty() {
        found
            .iter()
            .map(|(_, a)| a.clone())
            .filter(|a| !a.eq_ignore_ascii_case(&from) && !sent_to.iter().any(|s| s.eq_ignore_ascii_case(a)))
            .fold(Vec::new(), |mut seen, a| {
                if !seen.iter().any(|s: &String| s.eq_ignore_ascii_case(&a)) {
                    seen.push(a);
                }
                seen
            })
    } else {
        header_failed
    };
    if addresses.is_empty() {
        return Verdict::Unrecognised;
    }
    let starts: Vec<usize> = addresses
        .iter()
        .map(|a| {
            found
                .iter()
                .find(|(_, f)| f.eq_ignore_ascii_case(a))
                .map_or(0, |(at, _)| *at)
        })
        .collect();
    let findings = addresses
        .iter()
        .zip(&starts)
        .map(|(address, &start)| {
            let end = starts
                .iter()
                .copied()
                .filter(|&s| s > start)
                .min()
                .unwrap_or(report.len());
            let segment = &report[start..end];
            let (status, kind) = if let Some(status) = Status::find(segment) {
                (status.to_string(), status.kind(segment))
            } else if let Some(code) = find_basic_code(segment) {
                let kind = if code < 500 {
                    Kind::Soft
                } else {
                    words_kind(segment).unwrap_or(Kind::Soft)
                };
                (code.to_string(), kind)
            } else {
                (String::new(), words_kind(segment).unwrap_or(Kind::Soft))
            };
            Finding {
                address: Some(address.clone()),
                kind,
                status,
                diagnostic: one_line(segment, 300),
            }
        })
        .collect();
    Verdict::Failures(findings)
}

/// The report's own text and the copy of the returned message after it.
fn split_at_copy(body: &str) -> (&str, &str) {
    const MARKERS: &[&str] = &[
        "--- below this line is a copy of the message",
        "------ this is a copy of the message",
        "----- original message -----",
        "original message headers:",
        "----- transcript of session follows -----",
    ];
    let lower = body.to_ascii_lowercase();
    let at = MARKERS.iter().filter_map(|m| lower.find(m)).min();
    match at {
        // The transcript still belongs to the report; only copies are cut.
        Some(at) if !lower[at..].starts_with("----- transcript") => (&body[..at], &body[at..]),
        Some(at) => (body, &body[at..]),
        None => (body, ""),
    }
}

/// Every address in `text` with where it starts.
fn addresses_in(text: &str) -> Vec<(usize, String)> {
    let bytes = text.as_bytes();
    let local = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-.".contains(&b);
    let domain = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = memchr::memchr(b'@', &bytes[from..]).map(|i| from + i) {
        let mut start = at;
        while start > 0 && local(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && domain(bytes[end]) {
            end += 1;
        }
        let address = text[start..end].trim_matches('.');
        let start = start + (text[start..end].len() - text[start..end].trim_start_matches('.').len());
        if let Some((l, d)) = address.split_once('@')
            && !l.is_empty()
            && d.contains('.')
        {
            found.push((start, address.to_string()));
        }
        from = end.max(at + 1);
    }
    found
}

/// The `Message-ID` header values in a block of headers or a copy.
fn message_ids_in(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("message-id")
                .then(|| value.trim().trim_start_matches('<').trim_end_matches('>').to_string())
        })
        .filter(|id| !id.is_empty())
        .collect()
}

fn sent_to(message: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in message.headers_raw() {
        if ["Delivered-To", "X-Original-To", "Envelope-To"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
        {
            out.extend(fields::address(value));
        }
    }
    if let Some(to) = message.to() {
        out.extend(to.iter().filter_map(|a| a.address()).map(str::to_string));
    }
    out.dedup();
    out
}

fn looks_like_bounce(message: &Message<'_>) -> bool {
    let from = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let subject = message.subject().unwrap_or_default().to_ascii_lowercase();
    message.header_raw("X-Failed-Recipients").is_some()
        || from.starts_with("mailer-daemon@")
        || from.starts_with("postmaster@")
        || [
            "undeliver",
            "returned mail",
            "delivery status notification",
            "failure notice",
            "mail delivery failed",
            "delivery failure",
            "non-delivery",
        ]
        .iter()
        .any(|s| subject.contains(s))
}

fn is_auto_reply(message: &Message<'_>) -> bool {
    let header = |name: &str| message.header_raw(name).unwrap_or_default().trim().to_ascii_lowercase();
    let subject = message.subject().unwrap_or_default().to_ascii_lowercase();
    header("Auto-Submitted").starts_with("auto-replied")
        || message.header_raw("X-Autoreply").is_some()
        || message.header_raw("X-Autorespond").is_some()
        || header("Precedence") == "auto_reply"
        || [
            "out of office",
            "automatic reply",
            "auto:",
            "autoreply",
            "auto-reply",
            "away from",
        ]
        .iter()
        .any(|s| subject.starts_with(s) || subject.contains(&format!(" {s}")))
}

/// The most of a diagnostic the ledger keeps, in characters.
const MAX_DIAGNOSTIC: usize = 500;

/// A diagnostic as the ledger keeps it: on one line, cut to [`MAX_DIAGNOSTIC`].
pub(super) fn clip(text: &str) -> String {
    one_line(text, MAX_DIAGNOSTIC)
}

fn one_line(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line,
    }
}

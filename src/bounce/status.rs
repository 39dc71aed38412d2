//! Reading a failure: enhanced status codes (RFC 3463, `5.1.1`), basic SMTP
//! codes (`550`) and the words around them, into what the failure means for
//! the address.

pub use crate::store::BounceKind as Kind;

/// An enhanced status code, `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl Status {
    /// Reads `5.1.1` (alone, or at the start of a field value).
    pub fn parse(text: &str) -> Option<Status> {
        let word = text
            .trim()
            .split(|c: char| c.is_whitespace() || c == ';' || c == '(')
            .next()?;
        let mut parts = word.split('.');
        let class: u8 = parts.next()?.parse().ok()?;
        let subject: u16 = parts.next()?.parse().ok()?;
        let detail: u16 = parts.next()?.parse().ok()?;
        (parts.next().is_none() && matches!(class, 2 | 4 | 5) && subject < 1000 && detail < 1000).then_some(Status {
            class,
            subject,
            detail,
        })
    }

    /// The first enhanced status code in `text` (`#5.1.1`, `550-5.1.1`, `(5.2.2)` all count).
    pub fn find(text: &str) -> Option<Status> {
        let bytes = text.as_bytes();
        (0..bytes.len())
            .filter(|&i| matches!(bytes[i], b'2' | b'4' | b'5') && bytes.get(i + 1) == Some(&b'.'))
            .filter(|&i| i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.'))
            .find_map(|i| {
                let end = text[i..]
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .map_or(text.len(), |n| i + n);
                Status::parse(text[i..end].trim_end_matches('.'))
            })
    }

    /// What the code means for the address; `words` (the diagnostic) decide
    /// where the code is vague (`x.0.0`).
    pub fn kind(self, words: &str) -> Kind {
        match (self.class, self.subject, self.detail) {
            (4, ..) => Kind::Soft,
            // Bad mailbox, bad domain, bad syntax, moved, not found (5.1.x);
            // mailbox disabled (5.2.1); no route to the domain (5.4.4).
            (5, 1, _) | (5, 2, 1) | (5, 4, 4) => Kind::Hard,
            (5, 0, 0) | (5, 0, _) => words_kind(words).unwrap_or(Kind::Soft),
            // Full, too large, system or network trouble, policy: may pass later.
            _ => Kind::Soft,
        }
    }
}

/// The first basic SMTP reply code in `text` (`550`, `554:`), 4xx or 5xx.
pub fn find_basic_code(text: &str) -> Option<u16> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(2)).find_map(|i| {
        let code = &bytes[i..i + 3];
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + 3).copied();
        let boundary_before = before.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'.' || b == b'#'));
        let boundary_after = after.is_none_or(|b| matches!(b, b' ' | b'-' | b':' | b'\r' | b'\n'));
        (matches!(code[0], b'4' | b'5') && code[1].is_ascii_digit() && code[2].is_ascii_digit())
            .then(|| std::str::from_utf8(code).ok()?.parse().ok())
            .flatten()
            .filter(|_| boundary_before && boundary_after)
    })
}

/// What the words of a diagnostic say, when they say it plainly.
pub fn words_kind(words: &str) -> Option<Kind> {
    let lower = words.to_lowercase();
    const HARD: &[&str] = &[
        "user unknown",
        "unknown user",
        "no such user",
        "no such mailbox",
        "mailbox unavailable",
        "does not exist",
        "doesn't exist",
        "doesn't have a",
        "address couldn't be found",
        "recipient not found",
        "recipientnotfound",
        "invalid recipient",
        "unrouteable address",
        "account is disabled",
        "account has been disabled",
        "no mailbox here",
        "does not like recipient",
    ];
    const SOFT: &[&str] = &[
        "quota",
        "mailbox full",
        "mailbox is full",
        "out of storage",
        "insufficient storage",
        "too large",
        "size exceeds",
        "greylist",
        "try again later",
        "rate limit",
    ];
    if SOFT.iter().any(|w| lower.contains(w)) {
        Some(Kind::Soft)
    } else if HARD.iter().any(|w| lower.contains(w)) {
        Some(Kind::Hard)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_codes_are_found_wherever_relays_put_them() {
        let s = |t| Status::find(t).map(|s| s.to_string());
        assert_eq!(s("550 5.1.1 <a@b>: User unknown"), Some("5.1.1".into()));
        assert_eq!(s("550-5.1.1 The email account"), Some("5.1.1".into()));
        assert_eq!(s("<mail.oldcorp.example #5.1.1 smtp;550"), Some("5.1.1".into()));
        assert_eq!(
            s("version 1.2.3 of 10.5.1.1"),
            None,
            "not a status class, not inside an IP"
        );
        assert_eq!(s("nothing here"), None);
        assert_eq!(Status::parse("4.7.28").unwrap().detail, 28);
        assert_eq!(Status::parse("5.1.1 (user unknown)").unwrap().subject, 1);
    }

    #[test]
    fn basic_codes_need_word_boundaries() {
        assert_eq!(find_basic_code("554: delivery error"), Some(554));
        assert_eq!(find_basic_code("Remote host said: 550 5.1.1"), Some(550));
        assert_eq!(find_basic_code("ip 192.0.2.550 and id 45501"), None);
        assert_eq!(find_basic_code("250 ok"), None);
    }

    #[test]
    fn codes_and_words_make_kinds() {
        let k = |code: &str, words: &str| Status::parse(code).unwrap().kind(words);
        assert_eq!(k("5.1.1", ""), Kind::Hard);
        assert_eq!(k("5.1.10", ""), Kind::Hard);
        assert_eq!(k("5.2.1", ""), Kind::Hard);
        assert_eq!(k("5.4.4", ""), Kind::Hard);
        assert_eq!(k("5.2.2", "user unknown"), Kind::Soft, "the code is specific: full");
        assert_eq!(k("5.7.1", ""), Kind::Soft);
        assert_eq!(k("5.3.4", ""), Kind::Soft);
        assert_eq!(k("4.2.2", ""), Kind::Soft);
        assert_eq!(k("5.0.0", "mailbox full"), Kind::Soft);
        assert_eq!(k("5.0.0", "No such user here"), Kind::Hard);
        assert_eq!(
            k("5.0.0", "go away"),
            Kind::Soft,
            "vague: counted, not suppressed at once"
        );
    }
}

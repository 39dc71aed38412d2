//! The `Name: value` field blocks of a delivery-status report (RFC 3464)
//! and a feedback report (RFC 5965): groups separated by blank lines,
//! folded lines joined. The MIME around them is mail-parser's.

/// One group of fields, names lower-cased, in order.
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value of `name` (any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the groups of `text`; lines that are not fields are skipped.
pub fn groups(text: &str) -> Vec<Fields> {
    let mut groups = Vec::new();
    let mut current = Fields::default();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.0.is_empty() {
                groups.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.0.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            current
                .0
                .push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !current.0.is_empty() {
        groups.push(current);
    }
    groups
}

/// The address in a typed field (`rfc822; a@b`, `<a@b>`), or `None` for
/// another address type.
pub fn address(value: &str) -> Option<String> {
    let value = match value.split_once(';') {
        Some((kind, rest))
            if kind.trim().eq_ignore_ascii_case("rfc822") || kind.trim().eq_ignore_ascii_case("utf-8") =>
        {
            rest
        }
        Some(_) => return None,
        None => value,
    };
    let address = value.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (address.contains('@') && !address.contains(char::is_whitespace)).then(|| address.to_string())
}

/// A diagnostic without its type (`smtp; 550 ...` is `550 ...`).
pub fn diagnostic(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, rest)) if !kind.contains(' ') => rest.trim(),
        _ => value.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_split_on_blank_lines_and_folds_joined() {
        let g = groups(
            "Reporting-MTA: dns; a\n\nFinal-Recipient: rfc822; x@y.example\nDiagnostic-Code: smtp; 550 5.1.1\n  user unknown\n",
        );
        assert_eq!(g.len(), 2);
        assert_eq!(g[1].get("final-recipient"), Some("rfc822; x@y.example"));
        assert_eq!(g[1].get("Diagnostic-Code"), Some("smtp; 550 5.1.1 user unknown"));
    }

    #[test]
    fn typed_addresses_and_diagnostics() {
        assert_eq!(address("rfc822; <a@b.example>").as_deref(), Some("a@b.example"));
        assert_eq!(address("RFC822;a@b.example").as_deref(), Some("a@b.example"));
        assert_eq!(address("x400; c=gb"), None);
        assert_eq!(diagnostic("smtp; 550 no"), "550 no");
        assert_eq!(
            diagnostic("550 5.1.1 user unknown; try later"),
            "550 5.1.1 user unknown; try later"
        );
    }
}

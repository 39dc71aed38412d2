//! DKIM signing of outgoing mail (RFC 6376, relaxed/relaxed). The signature
//! covers the headers mailbox providers check, including `List-Unsubscribe`
//! and `List-Unsubscribe-Post`, which RFC 8058 requires to be signed.

use std::fmt;

use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::HeaderName;

/// The headers every signature covers.
pub const SIGNED_HEADERS: [&str; 8] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// A signing key with its selector and domain.
pub struct Dkim {
    selector: String,
    domain: String,
    config: DkimConfig,
}

impl fmt::Debug for Dkim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dkim")
            .field("selector", &self.selector)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl Dkim {
    /// `key` is a PKCS#1 PEM RSA key (`-----BEGIN RSA PRIVATE KEY-----`) for
    /// `rsa`, or the base64 of the 32-byte secret for `ed25519`.
    pub fn new(selector: &str, domain: &str, algorithm: &str, key: &str) -> Result<Dkim, String> {
        let algorithm = match algorithm {
            "rsa" => DkimSigningAlgorithm::Rsa,
            "ed25519" => DkimSigningAlgorithm::Ed25519,
            other => return Err(format!("{other:?} is not one of rsa, ed25519")),
        };
        let key = DkimSigningKey::new(key.trim(), algorithm).map_err(|e| format!("not a usable key: {e}"))?;
        let config = DkimConfig::new(
            selector.to_string(),
            domain.to_string(),
            key,
            SIGNED_HEADERS
                .iter()
                .map(|h| HeaderName::new_from_ascii_str(h))
                .collect(),
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        );
        Ok(Dkim {
            selector: selector.to_string(),
            domain: domain.to_string(),
            config,
        })
    }

    pub fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }

    pub fn describe(&self) -> String {
        format!("DKIM d={} s={}", self.domain, self.selector)
    }
}

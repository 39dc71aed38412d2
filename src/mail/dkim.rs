//! DKIM signing of outgoing mail (RFC 6376, relaxed/relaxed). The signature
//! covers the headers mailbox providers check, including `List-Unsubscribe`
//! and `List-Unsubscribe-Post`, which RFC 8058 requires to be signed.

use std::fmt;

use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};

use crate::config::DkimAlgorithm;

/// Why a DKIM key cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("not a usable {algorithm} key: {reason}")]
pub struct DkimError {
    algorithm: &'static str,
    reason: String,
}

/// Why a new key could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot make a DKIM key: {0}")]
pub struct KeygenError(String);

const PKCS8: &str = "-----BEGIN PRIVATE KEY-----";
/// The DER that starts every PKCS#8 Ed25519 key, before its 32-byte secret (RFC 8410).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// lettre's signing key from what an operator has on disk.
fn signing_key(algorithm: DkimAlgorithm, text: &str) -> Result<DkimSigningKey, DkimError> {
    use base64::Engine as _;
    let base64 = base64::engine::general_purpose::STANDARD;
    let (name, lettre_algorithm, lettre_text) = match algorithm {
        DkimAlgorithm::Rsa => {
            let bad = |reason: String| DkimError {
                algorithm: "RSA",
                reason,
            };
            let pkcs1 = if text.starts_with(PKCS8) {
                let key = rsa::RsaPrivateKey::from_pkcs8_pem(text).map_err(|e| bad(format!("PKCS#8: {e}")))?;
                key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
                    .map_err(|e| bad(e.to_string()))?
                    .to_string()
            } else if text.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
                text.to_string()
            } else {
                return Err(bad(
                    "expected a PEM private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)"
                        .into(),
                ));
            };
            ("RSA", DkimSigningAlgorithm::Rsa, pkcs1)
        }
        DkimAlgorithm::Ed25519 => {
            let secret = if text.starts_with(PKCS8) {
                let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
                let der = base64.decode(body.trim()).unwrap_or_default();
                match der.strip_prefix(&ED25519_PKCS8_PREFIX[..]) {
                    Some(secret) if secret.len() == 32 => base64.encode(secret),
                    _ => {
                        return Err(DkimError {
                            algorithm: "Ed25519",
                            reason: "the PKCS#8 key is not an Ed25519 key".into(),
                        });
                    }
                }
            } else {
                text.to_string()
            };
            ("Ed25519", DkimSigningAlgorithm::Ed25519, secret)
        }
    };
    DkimSigningKey::new(&lettre_text, lettre_algorithm).map_err(|e| DkimError {
        algorithm: name,
        reason: e.to_string(),
    })
}

/// A new 2048-bit RSA key for `selector` and `domain`: the PKCS#8 PEM to
/// keep secret, and the DNS TXT record that publishes its public half
/// (split into strings of at most 255 characters, as DNS requires).
pub fn generate(selector: &str, domain: &str) -> Result<(String, String), KeygenError> {
    use base64::Engine as _;
    let fail = |e: &dyn std::fmt::Display| KeygenError(e.to_string());
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|e| fail(&e))?;
    let pem = key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|e| fail(&e))?
        .to_string();
    let public = key.to_public_key().to_public_key_der().map_err(|e| fail(&e))?;
    let value = format!(
        "v=DKIM1; k=rsa; p={}",
        base64::engine::general_purpose::STANDARD.encode(public.as_bytes())
    );
    let strings: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    let record = format!("{selector}._domainkey.{domain}. IN TXT ( {} )", strings.join(" "));
    Ok((pem, record))
}

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
    /// `key` is a PEM private key, PKCS#8 (`-----BEGIN PRIVATE KEY-----`, what
    /// OpenSSL 3 writes by default) or, for `rsa`, PKCS#1 (`-----BEGIN RSA
    /// PRIVATE KEY-----`); for `ed25519` also the base64 of the 32-byte secret.
    pub fn new(selector: &str, domain: &str, algorithm: DkimAlgorithm, key: &str) -> Result<Dkim, DkimError> {
        let key = signing_key(algorithm, key.trim())?;
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

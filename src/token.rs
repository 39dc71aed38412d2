//! Signed tokens for subscriber links (unsubscribe and preferences, sign-up
//! confirmation) and form CSRF fields: `1.<key id>.<subject>.<HMAC>`.
//! The subscriber uid is random (never an address or a sequential id); the key
//! id lets old keys keep verifying while a new one signs.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

const VERSION: &str = "1";

/// What a token may be used for; a token signed for one purpose does not verify for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Unsubscribe and preferences links; the subject is a subscriber uid.
    Unsubscribe,
    /// The link in a sign-up confirmation mail; the subject is a subscriber uid.
    Confirm,
    /// A form's CSRF field; the subject is the nonce in the visitor's cookie.
    Csrf,
    /// A VERP return path; the subject is a delivery id.
    Bounce,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Unsubscribe => "unsubscribe",
            Purpose::Confirm => "confirm",
            Purpose::Csrf => "csrf",
            Purpose::Bounce => "bounce",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token was signed with a key this instance does not have")]
    UnknownKey,
    #[error("the token's signature does not match")]
    BadSignature,
}

#[derive(Clone)]
struct Key {
    id: String,
    secret: Vec<u8>,
}

impl Key {
    fn new(secret: &[u8]) -> Self {
        let digest = Sha256::digest(secret);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Key {
            id,
            secret: secret.to_vec(),
        }
    }

    fn mac(&self, purpose: Purpose, subject: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(format!("herald:{VERSION}:{}:{}:{subject}", purpose.as_str(), self.id).as_bytes());
        mac
    }
}

/// The signing key (first) and the keys that still verify.
#[derive(Clone, Default)]
pub struct TokenKeys {
    keys: Vec<Key>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("TokenKeys").field("key_ids", &ids).finish()
    }
}

impl TokenKeys {
    /// Keys from `tokens.secret` and `tokens.previous_secrets`; empty when no secret is configured.
    pub fn from_config<'a>(secret: Option<&'a str>, previous: impl IntoIterator<Item = &'a str>) -> Self {
        let keys = secret
            .into_iter()
            .chain(previous)
            .filter(|s| !s.is_empty())
            .map(|s| Key::new(s.as_bytes()))
            .collect();
        TokenKeys { keys }
    }

    pub fn is_configured(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Adds `secret` as the signing key when none was configured.
    pub fn or_generated(mut self, secret: &str) -> Self {
        if self.keys.is_empty() {
            self.keys.push(Key::new(secret.as_bytes()));
        }
        self
    }

    /// The signing key's id and its HMAC of `subject` for `purpose`.
    fn signed(&self, purpose: Purpose, subject: &str) -> (&str, Vec<u8>) {
        let key = self
            .keys
            .first()
            .expect("a signing key is configured or generated before signing");
        (&key.id, key.mac(purpose, subject).finalize().into_bytes().to_vec())
    }

    pub fn sign(&self, purpose: Purpose, subject: &str) -> String {
        let (kid, tag) = self.signed(purpose, subject);
        format!("{VERSION}.{kid}.{subject}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Returns the subject (the subscriber uid) of a valid token.
    pub fn verify(&self, purpose: Purpose, token: &str) -> Result<String, TokenError> {
        let mut parts = token.split('.');
        let (Some(VERSION), Some(kid), Some(subject), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        if subject.is_empty() || !subject.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(TokenError::Malformed);
        }
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| TokenError::Malformed)?;
        let key = self.keys.iter().find(|k| k.id == kid).ok_or(TokenError::UnknownKey)?;
        key.mac(purpose, subject)
            .verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        Ok(subject.to_string())
    }
}

/// Bytes of the HMAC a short token keeps: 80 bits, enough that a forger
/// must guess, short enough for a 64-octet local part.
const SHORT_TAG: usize = 10;

impl TokenKeys {
    /// A short token for places with little room (an address's local part):
    /// `<subject>.<key id>.<HMAC, first 10 bytes in hex>`, all lowercase, so
    /// it survives a relay that lowercases addresses.
    pub fn sign_short(&self, purpose: Purpose, subject: &str) -> String {
        let (kid, tag) = self.signed(purpose, subject);
        format!("{subject}.{kid}.{}", hex(&tag[..SHORT_TAG]))
    }

    /// The subject of a valid short token (read case-insensitively).
    pub fn verify_short(&self, purpose: Purpose, token: &str) -> Result<String, TokenError> {
        let token = token.to_ascii_lowercase();
        let mut parts = token.split('.');
        let (Some(subject), Some(kid), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        if subject.is_empty() || !subject.bytes().all(|b| b.is_ascii_alphanumeric()) || tag.len() != SHORT_TAG * 2 {
            return Err(TokenError::Malformed);
        }
        let key = self.keys.iter().find(|k| k.id == kid).ok_or(TokenError::UnknownKey)?;
        key.mac(purpose, subject)
            .verify_truncated_left(&unhex(tag).ok_or(TokenError::Malformed)?)
            .map_err(|_| TokenError::BadSignature)?;
        Ok(subject.to_string())
    }
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex (either case) as bytes; `None` for anything else.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_rotates() {
        let old = TokenKeys::from_config(Some("old-secret"), []);
        let token = old.sign(Purpose::Unsubscribe, "abc123");
        assert_eq!(old.verify(Purpose::Unsubscribe, &token), Ok("abc123".into()));

        let rotated = TokenKeys::from_config(Some("new-secret"), ["old-secret"]);
        assert_eq!(rotated.verify(Purpose::Unsubscribe, &token), Ok("abc123".into()));
        assert_ne!(rotated.sign(Purpose::Unsubscribe, "abc123"), token);

        let other = TokenKeys::from_config(Some("new-secret"), []);
        assert_eq!(other.verify(Purpose::Unsubscribe, &token), Err(TokenError::UnknownKey));
    }

    #[test]
    fn rejects_forged_and_truncated_tokens() {
        let keys = TokenKeys::from_config(Some("s3cret"), []);
        let token = keys.sign(Purpose::Unsubscribe, "abc123");
        let forged = token.replace("abc123", "abc124");
        assert_eq!(
            keys.verify(Purpose::Unsubscribe, &forged),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            keys.verify(Purpose::Unsubscribe, &token[..token.len() - 3]),
            Err(TokenError::BadSignature)
        );
        assert_eq!(keys.verify(Purpose::Unsubscribe, "1.x.y"), Err(TokenError::Malformed));
        assert_eq!(keys.verify(Purpose::Unsubscribe, ""), Err(TokenError::Malformed));
    }

    #[test]
    fn a_token_for_one_purpose_does_not_verify_for_another() {
        let keys = TokenKeys::from_config(Some("s3cret"), []);
        let token = keys.sign(Purpose::Confirm, "abc123");
        assert_eq!(keys.verify(Purpose::Confirm, &token), Ok("abc123".into()));
        assert_eq!(keys.verify(Purpose::Unsubscribe, &token), Err(TokenError::BadSignature));
        assert_eq!(keys.verify(Purpose::Csrf, &token), Err(TokenError::BadSignature));
    }

    #[test]
    fn short_tokens_verify_in_any_case_and_refuse_forgeries() {
        let keys = TokenKeys::from_config(Some("s3cret"), []);
        let token = keys.sign_short(Purpose::Bounce, "4711");
        assert!(token.len() <= 40, "{token}");
        assert_eq!(keys.verify_short(Purpose::Bounce, &token), Ok("4711".into()));
        assert_eq!(
            keys.verify_short(Purpose::Bounce, &token.to_uppercase()),
            Ok("4711".into())
        );
        let forged = token.replacen("4711", "4712", 1);
        assert_eq!(
            keys.verify_short(Purpose::Bounce, &forged),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            keys.verify_short(Purpose::Unsubscribe, &token),
            Err(TokenError::BadSignature)
        );
        assert_eq!(keys.verify_short(Purpose::Bounce, "4711.x"), Err(TokenError::Malformed));
        assert_eq!(
            keys.verify_short(Purpose::Bounce, &format!("{token}zz")),
            Err(TokenError::Malformed)
        );
        let other = TokenKeys::from_config(Some("other"), []);
        assert_eq!(other.verify_short(Purpose::Bounce, &token), Err(TokenError::UnknownKey));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let keys = TokenKeys::from_config(Some("hunter2-secret"), []);
        assert!(!format!("{keys:?}").contains("hunter2"));
    }
}

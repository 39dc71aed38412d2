//! The life of an account's OAuth access token (Threads, LinkedIn,
//! Mastodon): when it expires (the platform's answer to a refresh, else the
//! operator's `token_expires_at`), a warning each day from a week before, a
//! refresh where the platform allows one, and waiting instead of failing
//! once it has expired or the platform refused it. All of it is about the
//! secret the operator gave: a new secret (its fingerprint differs) starts
//! afresh, and the posts that waited go out.
//!
//! A refreshed token is kept in the store sealed (ChaCha20-Poly1305) under
//! a key derived from the operator's secret, so the store alone never holds
//! a usable credential.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::platform;
use crate::config::{AccountSettings, secret_var};
use crate::store::{AccountToken, Store, StoreError};

/// Warnings start this long before the token expires; so do refreshes.
pub const WARN_BEFORE: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// At most one warning (or one failed refresh) in this long.
const EVERY: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// A short, one-way fingerprint of a secret: which secret a state is about.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::new_with_prefix(b"herald account secret\0")
        .chain_update(secret.as_bytes())
        .finalize();
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

fn key(secret: &str) -> LessSafeKey {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(b"herald sealed token v1");
    let bytes = mac.finalize().into_bytes();
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &bytes).expect("a 32-byte key"))
}

/// `token` sealed under a key derived from `secret`: base64 of nonce and ciphertext.
pub fn seal(secret: &str, token: &str) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).expect("the system has randomness");
    let mut sealed = token.as_bytes().to_vec();
    key(secret)
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut sealed)
        .expect("a token fits");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// The token [`seal`] sealed with the same secret; `None` for anything else.
pub fn open(secret: &str, sealed: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(sealed).ok()?;
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let (nonce, rest) = bytes.split_at(NONCE_LEN);
    let mut rest = rest.to_vec();
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let plain = key(secret).open_in_place(nonce, Aad::empty(), &mut rest).ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

/// An account's token as of now.
#[derive(Debug, Clone)]
pub struct Token {
    /// What to send: the operator's secret, or the token a refresh gave.
    pub value: String,
    pub expires_at: Option<DateTime<Utc>>,
    state: AccountToken,
}

impl Token {
    /// When and how the platform refused it, if it did.
    pub fn refused(&self) -> Option<(DateTime<Utc>, &str)> {
        let reply = self.state.refused_reply.as_deref().unwrap_or_default();
        self.state.refused_at.map(|at| (at, reply))
    }

    /// Why posts must wait, if they must: the token expired or was refused.
    pub fn blocked(&self, account: &AccountSettings, now: DateTime<Utc>) -> Option<String> {
        let var = secret_var(&account.name, "access_token");
        if let Some((at, reply)) = self.refused() {
            return Some(format!(
                "the platform refused the access token on {} ({reply}); posts wait until {var} is replaced",
                at.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        match self.expires_at {
            Some(at) if at <= now => Some(format!(
                "the access token expired on {}; posts wait until {var} is replaced",
                at.format("%Y-%m-%d %H:%M UTC")
            )),
            _ => None,
        }
    }
}

/// The account's token state for its current secret (`None` for accounts
/// without an expiring OAuth token). A secret the store has not seen
/// starts afresh: nothing refused, the operator's expiry.
pub async fn current(store: &Store, account: &AccountSettings) -> Result<Option<Token>, StoreError> {
    let Some(secret) = account.kind.oauth_token() else {
        return Ok(None);
    };
    let print = fingerprint(secret);
    let stored = store.account_token(&account.name).await?;
    let state = if stored.fingerprint.as_deref() == Some(print.as_str()) {
        stored
    } else {
        AccountToken {
            fingerprint: Some(print),
            ..AccountToken::default()
        }
    };
    let value = state
        .sealed
        .as_deref()
        .and_then(|sealed| open(secret, sealed))
        .unwrap_or_else(|| secret.to_string());
    Ok(Some(Token {
        value,
        expires_at: state.expires_at.or(account.token_expires_at),
        state,
    }))
}

/// A new token from the platform (a refresh): kept sealed, with its expiry.
async fn refreshed(
    store: &Store,
    account: &AccountSettings,
    token: &Token,
    value: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let secret = account.kind.oauth_token().expect("an OAuth account");
    let state = AccountToken {
        sealed: Some(seal(secret, value)),
        expires_at: Some(expires_at),
        refused_at: None,
        refused_reply: None,
        warned_at: None,
        ..token.state.clone()
    };
    store.save_account_token(&account.name, &state, now).await
}

/// The platform refused the token: the account's posts wait until the
/// secret is replaced. Returns the token as it now stands.
pub async fn refused(
    store: &Store,
    account: &AccountSettings,
    token: &Token,
    reply: &str,
    now: DateTime<Utc>,
) -> Result<Token, StoreError> {
    let state = AccountToken {
        refused_at: Some(now),
        refused_reply: Some(reply.chars().take(300).collect()),
        ..token.state.clone()
    };
    store.save_account_token(&account.name, &state, now).await?;
    Ok(Token { state, ..token.clone() })
}

/// Whether a warning (or a refresh attempt) is due: none in the last day.
fn due(token: &Token, now: DateTime<Utc>) -> bool {
    token.state.warned_at.is_none_or(|at| now - at >= EVERY)
}

/// The account's token before a round of posts (`None` without an OAuth
/// token): refreshed where the platform allows it once it expires within
/// [`WARN_BEFORE`] or its expiry is unknown (a refresh tells it), at most
/// once a day while refreshing fails; and the day's warning logged.
pub async fn prepare(
    store: &Store,
    account: &AccountSettings,
    http: &reqwest::Client,
    now: DateTime<Utc>,
) -> Result<Option<Token>, StoreError> {
    let Some(mut token) = current(store, account).await? else {
        return Ok(None);
    };
    let near = token.expires_at.is_none_or(|at| at > now && at - now <= WARN_BEFORE);
    let mut failed = None;
    if near && token.refused().is_none() && due(&token, now) {
        let client = platform::client(account, store, Some(&token.value));
        match client.refresh(http, now).await {
            Some(Ok((value, expires_at))) => {
                refreshed(store, account, &token, &value, expires_at, now).await?;
                info!(account = %account.name, %expires_at, "access token refreshed");
                token = current(store, account).await?.expect("still an OAuth account");
            }
            Some(Err(why)) => failed = Some(why),
            None => {}
        }
    }
    let warned = warn_if_due(store, account, &token, now).await?;
    if let Some(why) = failed
        && !warned
    {
        refresh_failed(store, account, &token, &why, now).await?;
    }
    Ok(Some(token))
}

/// Logs the day's warning about a token that expires within [`WARN_BEFORE`]
/// (or has expired, or was refused), once a day across runs and instances.
/// Returns whether it logged one.
pub async fn warn_if_due(
    store: &Store,
    account: &AccountSettings,
    token: &Token,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if !due(token, now) {
        return Ok(false);
    }
    let var = secret_var(&account.name, "access_token");
    match (token.blocked(account, now), token.expires_at) {
        (Some(why), _) => warn!(account = %account.name, "{why}"),
        (None, Some(at)) if at - now <= WARN_BEFORE => {
            let days = (at - now).num_hours() as f64 / 24.0;
            warn!(
                account = %account.name,
                expires_at = %at,
                "the access token expires in {days:.1} days; replace {var} before then (posts will wait from then on)"
            );
        }
        _ => return Ok(false),
    }
    let state = AccountToken {
        warned_at: Some(now),
        ..token.state.clone()
    };
    store.save_account_token(&account.name, &state, now).await?;
    Ok(true)
}

/// Notes a refresh that did not work, so it is tried again only tomorrow.
async fn refresh_failed(
    store: &Store,
    account: &AccountSettings,
    token: &Token,
    why: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    info!(account = %account.name, "the token refresh did not work: {why}");
    let state = AccountToken {
        warned_at: Some(now),
        ..token.state.clone()
    };
    store.save_account_token(&account.name, &state, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_only_with_its_secret() {
        let sealed = seal("operator-secret", "refreshed-token-123");
        assert!(!sealed.contains("refreshed-token-123"));
        assert_eq!(open("operator-secret", &sealed).as_deref(), Some("refreshed-token-123"));
        assert_eq!(open("another-secret", &sealed), None);
        assert_ne!(
            seal("operator-secret", "refreshed-token-123"),
            sealed,
            "a fresh nonce each time"
        );
        let mut tampered = base64::engine::general_purpose::STANDARD.decode(&sealed).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let tampered = base64::engine::general_purpose::STANDARD.encode(tampered);
        assert_eq!(open("operator-secret", &tampered), None);
        assert_eq!(open("operator-secret", "short"), None);
    }

    #[test]
    fn fingerprints_tell_secrets_apart_and_show_none() {
        let print = fingerprint("operator-secret");
        assert_eq!(print.len(), 24);
        assert_eq!(print, fingerprint("operator-secret"));
        assert_ne!(print, fingerprint("operator-secret2"));
        assert!(!print.contains("secret"));
    }
}

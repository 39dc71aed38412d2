//! A per-client-IP limit on page requests (sign-up, confirm, unsubscribe,
//! preferences): a fixed one-minute window per address, in memory. It slows
//! token guessing and sign-up floods; `/healthz` and `/metrics` are not limited.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::{WebState, message};
use crate::config::Settings;

/// Whether the proxy warning was logged (once per process).
static PROXY_WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Beyond this many tracked addresses, windows that have ended are dropped.
const PRUNE_AT: usize = 10_000;

pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<IpAddr, (u64, u32)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request from `ip` at `now_secs` (unix seconds); `Err` holds
    /// the seconds until the window ends when the address is over its limit.
    pub fn check(&self, ip: IpAddr, now_secs: u64) -> Result<(), u64> {
        let minute = now_secs / 60;
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > PRUNE_AT {
            windows.retain(|_, (window, _)| *window == minute);
        }
        let entry = windows.entry(ip).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= self.per_minute {
            return Err(60 - now_secs % 60);
        }
        entry.1 += 1;
        Ok(())
    }
}

/// The client's address: the connection's peer, or with
/// `web.trust_forwarded_for` the last `X-Forwarded-For` hop (what the proxy saw).
pub(super) fn client_ip(settings: &Settings, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    let forwarded = settings
        .web
        .trust_forwarded_for
        .then(|| {
            headers
                .get("x-forwarded-for")?
                .to_str()
                .ok()?
                .rsplit(',')
                .next()?
                .trim()
                .parse()
                .ok()
        })
        .flatten();
    forwarded.unwrap_or(peer.ip())
}

pub(super) async fn per_ip(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if !state.app().settings.web.trust_forwarded_for
        && request.headers().contains_key("x-forwarded-for")
        && !PROXY_WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        tracing::warn!(
            %peer,
            "requests come through a proxy (X-Forwarded-For) but web.trust_forwarded_for is false: \
             every reader behind it shares one rate limit (web.rate_limit_per_minute); set it to true"
        );
    }
    let ip = client_ip(&state.app().settings, request.headers(), peer);
    let now = state.clock.now().timestamp().max(0) as u64;
    match state.limiter.check(ip, now) {
        Ok(()) => next.run(request).await,
        Err(retry_after) => {
            tracing::warn!(%ip, "rate limited");
            let mut response = message(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                "Please wait a minute and try again.",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_allowance_per_minute() {
        let limiter = RateLimiter::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(limiter.check(a, 600), Ok(()));
        assert_eq!(limiter.check(a, 610), Ok(()));
        assert_eq!(limiter.check(a, 615), Err(45));
        assert_eq!(limiter.check(b, 615), Ok(()), "another address is not held back");
        assert_eq!(limiter.check(a, 660), Ok(()), "a new minute starts afresh");
    }
}

//! CSRF protection for the forms, by signed double submit: the visitor's
//! browser holds a random nonce in a `SameSite=Strict` cookie, and each form
//! carries a field signed over that nonce. A cross-site page can make the
//! browser send the cookie but cannot read it, so it cannot forge the field.
//! The RFC 8058 one-click POST is exempt: it must work without cookies, and
//! its signed token already proves who may unsubscribe.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use super::{Form, WebState};
use crate::token::Purpose;

const COOKIE: &str = "herald_csrf";

/// The field a form carries, and the cookie to set when the visitor had none.
pub(super) struct Csrf {
    pub field: String,
    set_cookie: Option<HeaderValue>,
}

fn cookie_nonce(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|nonce| nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl Csrf {
    /// The field for a form on a page answering a request with `headers`.
    pub(super) fn issue(state: &WebState, headers: &HeaderMap) -> Csrf {
        let (nonce, set_cookie) = match cookie_nonce(headers) {
            Some(nonce) => (nonce, None),
            None => {
                let nonce = uuid::Uuid::new_v4().simple().to_string();
                let secure = if state.app().settings.site.base_url.scheme() == "https" {
                    "; Secure"
                } else {
                    ""
                };
                let cookie = format!("{COOKIE}={nonce}; Path=/; HttpOnly; SameSite=Strict; Max-Age=86400{secure}");
                (nonce, HeaderValue::from_str(&cookie).ok())
            }
        };
        Csrf {
            field: state.keys.sign(Purpose::Csrf, &nonce),
            set_cookie,
        }
    }

    /// Adds the cookie (if new) to the page carrying the form.
    pub(super) fn attach(self, mut response: Response) -> Response {
        if let Some(cookie) = self.set_cookie {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }

    /// Whether a submitted form's field matches the visitor's cookie.
    pub(super) fn verify(state: &WebState, headers: &HeaderMap, form: &Form) -> bool {
        let (Some(nonce), Some(field)) = (cookie_nonce(headers), form.get("csrf")) else {
            return false;
        };
        state
            .keys
            .verify(Purpose::Csrf, field)
            .is_ok_and(|signed| signed == nonce)
    }
}

//! What the page handlers take from a request, checked once here rather than
//! at the top of each handler: the subscriber a signed link names, and a
//! form POST whose CSRF field matches its cookie. A request that fails a
//! check is answered with the page for it (an invalid link, an expired form,
//! the store unavailable) before the handler runs.

use std::marker::PhantomData;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::csrf::Csrf;
use super::{Form, TokenQuery, WebState, expired, invalid, unavailable};
use crate::store::Subscriber;
use crate::token::Purpose;

/// What a signed link is for, as a type, so a handler states it in its signature.
pub(super) trait LinkPurpose: Send + Sync {
    const PURPOSE: Purpose;
}

/// A confirmation link (double opt-in).
pub(super) struct ToConfirm;

impl LinkPurpose for ToConfirm {
    const PURPOSE: Purpose = Purpose::Confirm;
}

/// An unsubscribe link, which also opens the preferences page.
pub(super) struct ToManage;

impl LinkPurpose for ToManage {
    const PURPOSE: Purpose = Purpose::Unsubscribe;
}

/// The subscriber the `?token=` of the request names, for purpose `P`.
/// Any token that does not verify, or names nobody, gets the one generic
/// invalid-link page; a store failure gets the unavailable page.
pub(super) struct Linked<P> {
    pub subscriber: Subscriber,
    /// The token as given, for the links and forms of the page answering.
    pub token: String,
    purpose: PhantomData<P>,
}

impl<P: LinkPurpose> FromRequestParts<WebState> for Linked<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let token = Query::<TokenQuery>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|Query(q)| q.token)
            .ok_or_else(|| invalid(state))?;
        let uid = state.keys.verify(P::PURPOSE, &token).map_err(|_| invalid(state))?;
        match state.store.subscriber_by_uid(&uid).await {
            Ok(Some(subscriber)) => Ok(Linked {
                subscriber,
                token,
                purpose: PhantomData,
            }),
            Ok(None) => Err(invalid(state)),
            Err(e) => Err(unavailable(state, e)),
        }
    }
}

/// The largest form body read: the pages' forms are a few hundred bytes.
const FORM_LIMIT: usize = 64 * 1024;

/// A form POST whose CSRF field matches the visitor's cookie; otherwise the
/// page says the form expired and nothing changes.
pub(super) struct CheckedForm(pub Form);

impl FromRequest<WebState> for CheckedForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &WebState) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        checked_form(state, &parts.headers, body).await.map(CheckedForm)
    }
}

/// A form POST to a signed link (confirming, saving preferences): the CSRF
/// field is checked first, so a forged post is refused before any lookup,
/// then the link as [`Linked`] checks it.
pub(super) struct LinkedForm<P> {
    pub link: Linked<P>,
    pub form: Form,
}

impl<P: LinkPurpose> FromRequest<WebState> for LinkedForm<P> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &WebState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let form = checked_form(state, &parts.headers, body).await?;
        let link = Linked::from_request_parts(&mut parts, state).await?;
        Ok(LinkedForm { link, form })
    }
}

async fn checked_form(state: &WebState, headers: &HeaderMap, body: Body) -> Result<Form, Response> {
    let body = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE.into_response())?;
    let form = Form::parse(&body);
    if Csrf::verify(state, headers, &form) {
        Ok(form)
    } else {
        Err(expired(state))
    }
}

//! Builds one recipient's RFC 5322 message from an edition's shared parts:
//! headers (List-Id, one-click List-Unsubscribe), a multipart/alternative body
//! with the text part before the HTML part.

use std::borrow::Cow;
use std::time::SystemTime;

use lettre::address::Envelope;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MessageBuilder, MultiPart, SinglePart};
use lettre::{Address, Message};

use crate::config::Site;
use crate::render::merge::{Escape, MergeTemplate, Recipient};
use crate::token::{Purpose, TokenKeys};

macro_rules! text_header {
    ($ty:ident, $name:literal) => {
        #[derive(Debug, Clone)]
        pub struct $ty(pub String);

        impl Header for $ty {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($name)
            }
            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($ty(s.to_string()))
            }
            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

text_header!(ListId, "List-Id");
text_header!(ListUnsubscribe, "List-Unsubscribe");
text_header!(ListUnsubscribePost, "List-Unsubscribe-Post");

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("{0:?} is not a valid recipient address")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
}

/// An edition's shared parts, split at their merge fields once.
#[derive(Debug, Clone)]
pub struct EditionParts {
    pub edition_id: i64,
    pub nonce: String,
    pub list_name: String,
    pub list_title: String,
    subject: MergeTemplate,
    html: MergeTemplate,
    text: MergeTemplate,
}

impl EditionParts {
    pub fn new(
        edition_id: i64,
        nonce: &str,
        list_name: &str,
        list_title: &str,
        subject: &str,
        html: &str,
        text: &str,
    ) -> Self {
        EditionParts {
            edition_id,
            nonce: nonce.to_string(),
            list_name: list_name.to_string(),
            list_title: list_title.to_string(),
            subject: MergeTemplate::parse(subject),
            html: MergeTemplate::parse(html),
            text: MergeTemplate::parse(text),
        }
    }
}

/// One recipient of an edition.
#[derive(Debug, Clone)]
pub struct Addressee<'a> {
    pub email: &'a str,
    pub name: Option<&'a str>,
    /// The subscriber's random uid: the token subject.
    pub uid: &'a str,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub unsubscribe_url: String,
    pub preferences_url: String,
    /// The envelope sender for this recipient's message (a VERP address);
    /// `None`: `site.from`'s address.
    pub return_path: Option<Address>,
}

impl Recipient for Addressee<'_> {
    fn field(&self, field: &str) -> Option<Cow<'_, str>> {
        match field {
            "name" => self.name.map(Cow::Borrowed),
            "email" => Some(Cow::Borrowed(self.email)),
            "unsubscribe_url" => Some(Cow::Borrowed(&self.unsubscribe_url)),
            "preferences_url" => Some(Cow::Borrowed(&self.preferences_url)),
            other => {
                let key = other.strip_prefix("attributes.")?;
                match self.attributes.get(key)? {
                    serde_json::Value::String(s) => Some(Cow::Borrowed(s)),
                    serde_json::Value::Null => None,
                    v => Some(Cow::Owned(v.to_string())),
                }
            }
        }
    }
}

impl<'a> Addressee<'a> {
    /// A subscriber as a message addresses them, with their unsubscribe and
    /// preferences links: one signed token serves both.
    pub fn new(
        site: &Site,
        keys: &TokenKeys,
        email: &'a str,
        name: Option<&'a str>,
        uid: &'a str,
        attributes: serde_json::Map<String, serde_json::Value>,
    ) -> Addressee<'a> {
        let token = keys.sign(Purpose::Unsubscribe, uid);
        Addressee {
            email,
            name,
            uid,
            attributes,
            unsubscribe_url: with_token(site.unsubscribe_url.clone(), &token),
            preferences_url: with_token(site.page_url("preferences"), &token),
            return_path: None,
        }
    }
}

fn with_token(mut url: url::Url, token: &str) -> String {
    url.query_pairs_mut().append_pair("token", token);
    url.to_string()
}

/// The `Message-ID` of delivery `delivery_id` of an edition: stable across retries.
pub fn message_id(site: &Site, parts: &EditionParts, delivery_id: i64) -> String {
    format!(
        "<herald.{}.{}.{}@{}>",
        parts.edition_id, delivery_id, parts.nonce, site.domain
    )
}

/// A fresh `Message-ID` for a message outside the ledger: `kind` is
/// `notice`, `test` (a test copy) or `preview`.
pub fn one_off_message_id(site: &Site, kind: &str) -> String {
    format!("<herald.{kind}.{}@{}>", uuid::Uuid::new_v4().simple(), site.domain)
}

/// How the text parts go on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// `8bit` for a part whose lines all fit (the server must offer
    /// 8BITMIME), else as `Safe`. No encoding work per recipient.
    EightBit,
    /// 7bit, quoted-printable or base64, as lettre chooses: any server takes it.
    Safe,
}

/// The longest line (in octets, before CRLF) a part may have to go as 8bit (RFC 5322 allows 998).
const MAX_8BIT_LINE: usize = 990;

/// One text part. As 8bit when allowed and every line fits: the body is then
/// only given CRLF line ends, with no quoted-printable pass over it.
fn text_part(content_type: ContentType, body: String, encoding: BodyEncoding) -> SinglePart {
    let wire = match encoding {
        BodyEncoding::EightBit => eight_bit_wire(body.as_bytes()),
        BodyEncoding::Safe => None,
    };
    match wire {
        Some(wire) => SinglePart::builder()
            .header(content_type)
            .body(Body::dangerous_pre_encoded(wire, ContentTransferEncoding::EightBit)),
        None => SinglePart::builder().header(content_type).body(body),
    }
}

/// `body` with CRLF line ends, if it can go as 8bit: no NUL, no CR, and no
/// line longer than [`MAX_8BIT_LINE`].
fn eight_bit_wire(body: &[u8]) -> Option<Vec<u8>> {
    if memchr::memchr2(0, b'\r', body).is_some() {
        return None;
    }
    let mut wire = Vec::with_capacity(body.len() + body.len() / 16);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len())) {
        if end - start > MAX_8BIT_LINE {
            return None;
        }
        wire.extend_from_slice(&body[start..end]);
        if end < body.len() {
            wire.extend_from_slice(b"\r\n");
        }
        start = end + 1;
    }
    Some(wire)
}

/// `multipart/alternative` with the text part before the HTML part.
fn alternative(text: String, html: String, encoding: BodyEncoding) -> MultiPart {
    MultiPart::alternative()
        .singlepart(text_part(ContentType::TEXT_PLAIN, text, encoding))
        .singlepart(text_part(ContentType::TEXT_HTML, html, encoding))
}

/// The longest display name put in a `To:` header, in characters. lettre
/// folds a header only at spaces, so an unbroken name of any length would
/// make a line longer than the 998 octets RFC 5322 allows.
const MAX_DISPLAY_NAME: usize = 100;

/// A subscriber's name as the `To:` header shows it: on one line, cut to
/// [`MAX_DISPLAY_NAME`] characters; `None` when nothing is left.
fn display_name(name: &str) -> Option<String> {
    let name = crate::clean::one_line(name);
    let name = match name.char_indices().nth(MAX_DISPLAY_NAME) {
        Some((at, _)) => name[..at].trim_end().to_string(),
        None => name,
    };
    (!name.is_empty()).then_some(name)
}

/// `email` with an internationalised domain in its ASCII form
/// (`gina@exämple.net` is `gina@xn--exmple-cua.net`), so it needs no
/// SMTPUTF8. A non-ASCII local part has no ASCII form and is kept: the
/// session sends it with SMTPUTF8 where the server offers it, and refuses
/// the row, saying so, where it does not.
pub fn ascii_address(email: &str) -> Result<String, MessageError> {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(MessageError::Address(email.to_string()));
    };
    if domain.is_ascii() {
        return Ok(email.to_string());
    }
    let domain = idna::domain_to_ascii(domain).map_err(|_| MessageError::Address(email.to_string()))?;
    Ok(format!("{local}@{domain}"))
}

/// Builds the message for one recipient.
pub fn build(
    site: &Site,
    parts: &EditionParts,
    to: &Addressee<'_>,
    message_id: String,
    subject_prefix: &str,
    date: SystemTime,
    encoding: BodyEncoding,
) -> Result<Message, MessageError> {
    let subject = format!("{subject_prefix}{}", parts.subject.fill(to, Escape::Text));
    let builder = addressed(
        site,
        (to.email, to.name),
        to.return_path.as_ref(),
        subject,
        date,
        message_id,
    )?
    .header(ListId(format!(
        "\"{}\" <{}.{}>",
        crate::clean::one_line(&parts.list_title).replace('"', "'"),
        parts.list_name,
        site.domain
    )))
    .header(ListUnsubscribe(format!("<{}>", to.unsubscribe_url)))
    .header(ListUnsubscribePost("List-Unsubscribe=One-Click".into()));
    let body = alternative(
        parts.text.fill(to, Escape::Text),
        parts.html.fill(to, Escape::Html),
        encoding,
    );
    Ok(builder.multipart(body)?)
}

/// What every message from the site carries: the envelope (given, rather
/// than parsed back out of the headers by lettre; its sender the
/// addressee's return path), From, To (its domain as punycode), Subject,
/// Date, Message-ID and Reply-To.
fn addressed(
    site: &Site,
    (email, name): (&str, Option<&str>),
    return_path: Option<&Address>,
    subject: String,
    date: SystemTime,
    message_id: String,
) -> Result<MessageBuilder, MessageError> {
    let address: Address = ascii_address(email)?
        .parse()
        .map_err(|_| MessageError::Address(email.to_string()))?;
    let return_path = return_path.unwrap_or(&site.from.email);
    let builder = Message::builder()
        .envelope(Envelope::new(Some(return_path.clone()), vec![address.clone()])?)
        .from(site.from.clone())
        .to(Mailbox::new(name.and_then(display_name), address))
        .subject(subject)
        .date(date)
        .message_id(Some(message_id));
    Ok(match &site.reply_to {
        Some(reply_to) => builder.reply_to(reply_to.clone()),
        None => builder,
    })
}

/// A one-off message to one address, outside any edition (a sign-up
/// confirmation): a text and an HTML part, no list headers.
#[derive(Clone)]
pub struct Notice<'a> {
    pub to_email: &'a str,
    pub to_name: Option<&'a str>,
    pub subject: &'a str,
    pub text: String,
    pub html: String,
}

/// Builds a [`Notice`] with a fresh `Message-ID`.
pub fn build_notice(
    site: &Site,
    notice: Notice<'_>,
    date: SystemTime,
    encoding: BodyEncoding,
) -> Result<Message, MessageError> {
    let builder = addressed(
        site,
        (notice.to_email, notice.to_name),
        None,
        crate::clean::one_line(notice.subject),
        date,
        one_off_message_id(site, "notice"),
    )?;
    Ok(builder.multipart(alternative(notice.text, notice.html, encoding))?)
}

/// The preferences URL for a subscriber: the same token as the unsubscribe link.
pub fn preferences_url(site: &Site, keys: &TokenKeys, uid: &str) -> String {
    with_token(site.page_url("preferences"), &keys.sign(Purpose::Unsubscribe, uid))
}

impl EditionParts {
    /// The HTML part as one recipient gets it.
    pub fn html_for(&self, to: &Addressee<'_>) -> String {
        self.html.fill(to, Escape::Html)
    }

    /// The text part as one recipient gets it.
    pub fn text_for(&self, to: &Addressee<'_>) -> String {
        self.text.fill(to, Escape::Text)
    }

    /// The subject with merge fields shown by name, for summaries.
    pub fn subject_preview(&self) -> String {
        self.subject.fill(&FieldNames, Escape::Text)
    }
}

/// A stored edition's HTML as the public archive shows it: filled for no one
/// (every name the template's default, no address, no attribute) and with
/// `link` (the list's sign-up page) where each reader's own links were, so
/// no token and nothing personal is in it.
pub fn public_copy(html: &str, link: &str) -> String {
    MergeTemplate::parse(html).fill(&Nobody { link }, Escape::Html)
}

/// A stored edition's subject as the public archive shows it (see [`public_copy`]).
pub fn public_subject(subject: &str) -> String {
    MergeTemplate::parse(subject).fill(&Nobody { link: "" }, Escape::Text)
}

struct Nobody<'a> {
    link: &'a str,
}

impl Recipient for Nobody<'_> {
    fn field(&self, field: &str) -> Option<Cow<'_, str>> {
        match field {
            "unsubscribe_url" | "preferences_url" => Some(Cow::Borrowed(self.link)),
            _ => None,
        }
    }
}

/// The subject of a stored edition with merge fields shown by name.
pub fn subject_preview(subject: &str) -> String {
    MergeTemplate::parse(subject).fill(&FieldNames, Escape::Text)
}

struct FieldNames;

impl Recipient for FieldNames {
    fn field(&self, field: &str) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(format!("[{field}]")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_bit_parts_get_crlf_and_long_lines_fall_back() {
        assert_eq!(
            eight_bit_wire("Caf\u{e9}\nline two\n".as_bytes()).unwrap(),
            "Caf\u{e9}\r\nline two\r\n".as_bytes()
        );
        assert_eq!(eight_bit_wire(b"no newline").unwrap(), b"no newline");
        let long = "x".repeat(MAX_8BIT_LINE + 1);
        assert!(eight_bit_wire(long.as_bytes()).is_none());
        assert!(eight_bit_wire("x".repeat(MAX_8BIT_LINE).as_bytes()).is_some());
        assert!(eight_bit_wire(b"bare\rcr").is_none());
        assert!(eight_bit_wire(b"nul\0").is_none());
    }
}

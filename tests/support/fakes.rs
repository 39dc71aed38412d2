//! Local fakes of the social platforms' APIs that check what the real ones
//! check: X's OAuth 1.0a signature (recomputed here, independently of the
//! client), JSON shapes and length limits, Mastodon's bearer token and
//! Idempotency-Key, Bluesky's sessions, graphemes, bytes and facets. Each can
//! be scripted to answer 429, 5xx or the platform's duplicate reply.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use unicode_segmentation::UnicodeSegmentation;
use wiremock::{Request, Respond, ResponseTemplate};

/// Scripted answers, used before the normal one.
pub type Script = Arc<Mutex<VecDeque<ResponseTemplate>>>;

fn next_scripted(script: &Script) -> Option<ResponseTemplate> {
    script.lock().unwrap().pop_front()
}

fn json(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

// ---- X ------------------------------------------------------------------

/// RFC 3986 percent-encoding, as OAuth 1.0a requires.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn pct_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

pub struct XKeys {
    pub consumer_key: &'static str,
    pub consumer_secret: &'static str,
    pub token: &'static str,
    pub token_secret: &'static str,
}

/// Verifies an OAuth 1.0a HMAC-SHA1 `Authorization` header for a request with no form parameters.
pub fn verify_oauth(req: &Request, keys: &XKeys) -> Result<(), String> {
    let auth = header(req, "authorization").ok_or("no Authorization header")?;
    let params = auth.strip_prefix("OAuth ").ok_or("not an OAuth header")?;
    let mut oauth: HashMap<String, String> = HashMap::new();
    for part in params.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or("malformed parameter")?;
        oauth.insert(pct_decode(k), pct_decode(v.trim_matches('"')));
    }
    if oauth.get("oauth_consumer_key").map(String::as_str) != Some(keys.consumer_key) {
        return Err("wrong consumer key".into());
    }
    if oauth.get("oauth_token").map(String::as_str) != Some(keys.token) {
        return Err("wrong token".into());
    }
    if oauth.get("oauth_signature_method").map(String::as_str) != Some("HMAC-SHA1") {
        return Err("not HMAC-SHA1".into());
    }
    for required in ["oauth_nonce", "oauth_timestamp"] {
        if !oauth.contains_key(required) {
            return Err(format!("{required} missing"));
        }
    }
    if oauth.get("oauth_version").is_some_and(|v| v != "1.0") {
        return Err("oauth_version, when present, must be 1.0".into());
    }
    let signature = oauth.remove("oauth_signature").ok_or("no signature")?;
    let mut pairs: Vec<(String, String)> = oauth.iter().map(|(k, v)| (pct(k), pct(v))).collect();
    for (k, v) in req.url.query_pairs() {
        pairs.push((pct(&k), pct(&v)));
    }
    pairs.sort();
    let param_string = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    // The server knows its own host: the one the client addressed.
    let base_uri = format!(
        "http://{}{}",
        header(req, "host").ok_or("no Host header")?,
        req.url.path()
    );
    let base = format!("{}&{}&{}", req.method.as_str(), pct(&base_uri), pct(&param_string));
    let key = format!("{}&{}", pct(keys.consumer_secret), pct(keys.token_secret));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(base.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if expected != signature {
        Err(format!("bad signature over {base:?}"))
    } else {
        Ok(())
    }
}

/// `POST /2/tweets`.
#[derive(Clone)]
pub struct XFake {
    pub keys: Arc<XKeys>,
    pub script: Script,
    pub tweets: Arc<Mutex<Vec<String>>>,
}

impl Respond for XFake {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if let Err(e) = verify_oauth(req, &self.keys) {
            return json(
                401,
                serde_json::json!({ "title": "Unauthorized", "detail": e, "status": 401 }),
            );
        }
        if req.method.as_str() == "GET" && req.url.path() == "/2/users/me" {
            return json(200, serde_json::json!({ "data": { "id": "1", "username": "courier" } }));
        }
        let body: serde_json::Value = match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => return json(400, serde_json::json!({ "detail": format!("not JSON: {e}") })),
        };
        let Some(text) = body.get("text").and_then(|t| t.as_str()) else {
            return json(400, serde_json::json!({ "detail": "text is required" }));
        };
        if body.as_object().unwrap().len() != 1 {
            return json(400, serde_json::json!({ "detail": "unexpected fields" }));
        }
        let weighted = twitter_text::parse(text, twitter_text_config::config_v3(), true).weighted_length;
        if weighted > 280 {
            return json(
                400,
                serde_json::json!({ "detail": format!("Your Tweet text is too long ({weighted}).") }),
            );
        }
        if let Some(scripted) = next_scripted(&self.script) {
            return scripted;
        }
        let mut tweets = self.tweets.lock().unwrap();
        if tweets.iter().any(|t| t == text) {
            return json(
                403,
                serde_json::json!({ "detail": "You are not allowed to create a Tweet with duplicate content.", "status": 403 }),
            );
        }
        tweets.push(text.to_string());
        json(
            201,
            serde_json::json!({ "data": { "id": format!("{}", 1000 + tweets.len()), "text": text } }),
        )
    }
}

// ---- Mastodon -------------------------------------------------------------

/// `POST /api/v1/statuses`: bearer token, Idempotency-Key (a repeat returns the first post), limit.
#[derive(Clone)]
pub struct MastodonFake {
    pub token: &'static str,
    pub limit: usize,
    pub script: Script,
    pub statuses: Arc<Mutex<Vec<String>>>,
    pub by_key: Arc<Mutex<HashMap<String, serde_json::Value>>>,
    /// How many of the next answers come 30 s late (the status is made first).
    pub slow_answers: Arc<Mutex<usize>>,
}

impl Respond for MastodonFake {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if header(req, "authorization") != Some(&format!("Bearer {}", self.token)) {
            return json(401, serde_json::json!({ "error": "The access token is invalid" }));
        }
        if req.url.path() == "/api/v1/accounts/verify_credentials" {
            return json(
                200,
                serde_json::json!({ "id": "1", "username": "courier", "acct": "courier" }),
            );
        }
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let text = body["status"].as_str().unwrap_or_default().to_string();
        let length = text
            .split_whitespace()
            .filter(|w| w.starts_with("http"))
            .fold(text.chars().count(), |n, url| n - url.chars().count() + 23);
        if length > self.limit {
            return json(
                422,
                serde_json::json!({ "error": "Validation failed: Text character limit of 300 exceeded" }),
            );
        }
        if let Some(scripted) = next_scripted(&self.script) {
            return scripted;
        }
        let key = header(req, "idempotency-key").unwrap_or_default().to_string();
        if key.is_empty() {
            return json(
                400,
                serde_json::json!({ "error": "this fake insists on an Idempotency-Key" }),
            );
        }
        let mut by_key = self.by_key.lock().unwrap();
        let status = by_key
            .entry(key)
            .or_insert_with(|| {
                let mut statuses = self.statuses.lock().unwrap();
                statuses.push(text.clone());
                let id = statuses.len();
                serde_json::json!({ "id": id.to_string(), "url": format!("https://social.example/@courier/{id}"), "content": text })
            })
            .clone();
        let mut slow = self.slow_answers.lock().unwrap();
        if *slow > 0 {
            *slow -= 1;
            return json(200, status).set_delay(std::time::Duration::from_secs(30));
        }
        json(200, status)
    }
}

// ---- Bluesky --------------------------------------------------------------

#[derive(Default)]
pub struct BlueskyState {
    pub sessions_created: usize,
    pub refreshes: usize,
    pub access: String,
    pub refresh: String,
    /// rkey -> record
    pub records: HashMap<String, serde_json::Value>,
    /// The next access token is refused as expired (once).
    pub expire_next: bool,
    /// Uploaded blobs: cid -> (MIME type, bytes).
    pub blobs: HashMap<String, (String, Vec<u8>)>,
}

/// The most bytes Bluesky takes for a blob a card's thumbnail refers to.
pub const BLUESKY_BLOB_LIMIT: usize = 1_000_000;

#[derive(Clone)]
pub struct BlueskyFake {
    pub handle: &'static str,
    pub password: &'static str,
    pub state: Arc<Mutex<BlueskyState>>,
    pub script: Script,
}

pub const DID: &str = "did:plc:courier";

impl BlueskyFake {
    fn tokens(state: &mut BlueskyState) -> serde_json::Value {
        let n = state.sessions_created + state.refreshes;
        state.access = format!("access-{n}");
        state.refresh = format!("refresh-{n}");
        serde_json::json!({ "accessJwt": state.access, "refreshJwt": state.refresh, "did": DID, "handle": "courier.test" })
    }
}

fn check_record(record: &serde_json::Value, blobs: &HashMap<String, (String, Vec<u8>)>) -> Result<(), String> {
    let text = record["text"].as_str().ok_or("no text")?;
    if record["$type"] != "app.bsky.feed.post" || record["createdAt"].as_str().is_none() {
        return Err("not a post record".into());
    }
    if text.graphemes(true).count() > 300 || text.len() > 3000 {
        return Err(format!(
            "text too long: {} graphemes, {} bytes",
            text.graphemes(true).count(),
            text.len()
        ));
    }
    for facet in record["facets"].as_array().ok_or("no facets")? {
        let (start, end) = (
            facet["index"]["byteStart"].as_u64().unwrap() as usize,
            facet["index"]["byteEnd"].as_u64().unwrap() as usize,
        );
        if !text.is_char_boundary(start) || !text.is_char_boundary(end) || end > text.len() {
            return Err(format!("facet {start}..{end} is not on character boundaries"));
        }
        let uri = facet["features"][0]["uri"].as_str().ok_or("facet without uri")?;
        if &text[start..end] != uri {
            return Err(format!(
                "facet {start}..{end} covers {:?}, not {uri:?}",
                &text[start..end]
            ));
        }
    }
    let external = &record["embed"]["external"];
    if record["embed"]["$type"] != "app.bsky.embed.external"
        || external["uri"].as_str().is_none()
        || external["title"].as_str().is_none()
    {
        return Err("no external embed card".into());
    }
    if let Some(thumb) = external.get("thumb") {
        let cid = thumb["ref"]["$link"].as_str().ok_or("a thumb without ref.$link")?;
        let (mime, bytes) = blobs.get(cid).ok_or_else(|| format!("BlobNotFound: {cid}"))?;
        if thumb["$type"] != "blob"
            || thumb["mimeType"].as_str() != Some(mime)
            || thumb["size"].as_u64() != Some(bytes.len() as u64)
            || !mime.starts_with("image/")
        {
            return Err(format!("the thumb does not describe blob {cid}: {thumb}"));
        }
    }
    Ok(())
}

impl Respond for BlueskyFake {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
        let bearer = header(req, "authorization")
            .unwrap_or_default()
            .trim_start_matches("Bearer ")
            .to_string();
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        match req.url.path() {
            "/xrpc/com.atproto.server.createSession" => {
                if body["identifier"] != self.handle || body["password"] != self.password {
                    return json(
                        401,
                        serde_json::json!({ "error": "AuthenticationRequired", "message": "Invalid identifier or password" }),
                    );
                }
                state.sessions_created += 1;
                json(200, Self::tokens(&mut state))
            }
            "/xrpc/com.atproto.server.refreshSession" => {
                if bearer != state.refresh {
                    return json(
                        400,
                        serde_json::json!({ "error": "ExpiredToken", "message": "Token has expired" }),
                    );
                }
                state.refreshes += 1;
                json(200, Self::tokens(&mut state))
            }
            "/xrpc/com.atproto.repo.getRecord" => {
                let rkey = req
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "rkey")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                match state.records.get(&rkey) {
                    Some(record) => json(
                        200,
                        serde_json::json!({ "uri": format!("at://{DID}/app.bsky.feed.post/{rkey}"), "value": record }),
                    ),
                    None => json(
                        400,
                        serde_json::json!({ "error": "RecordNotFound", "message": "Could not locate record" }),
                    ),
                }
            }
            "/xrpc/com.atproto.repo.uploadBlob" => {
                if bearer != state.access {
                    return json(
                        400,
                        serde_json::json!({ "error": "ExpiredToken", "message": "Token has expired" }),
                    );
                }
                let mime = header(req, "content-type").unwrap_or_default().to_string();
                if !mime.starts_with("image/") {
                    return json(
                        400,
                        serde_json::json!({ "error": "InvalidRequest", "message": format!("unexpected type {mime:?}") }),
                    );
                }
                if req.body.len() > BLUESKY_BLOB_LIMIT {
                    return json(
                        400,
                        serde_json::json!({ "error": "BlobTooLarge", "message": "This file is too large" }),
                    );
                }
                let cid = format!("bafkrei{:016x}", fnv(&req.body));
                state.blobs.insert(cid.clone(), (mime.clone(), req.body.clone()));
                json(
                    200,
                    serde_json::json!({ "blob": {
                        "$type": "blob", "ref": { "$link": cid }, "mimeType": mime, "size": req.body.len(),
                    }}),
                )
            }
            "/xrpc/com.atproto.repo.createRecord" => {
                if bearer != state.access || state.expire_next {
                    state.expire_next = false;
                    return json(
                        400,
                        serde_json::json!({ "error": "ExpiredToken", "message": "Token has expired" }),
                    );
                }
                if body["repo"] != DID || body["collection"] != "app.bsky.feed.post" {
                    return json(
                        400,
                        serde_json::json!({ "error": "InvalidRequest", "message": "wrong repo or collection" }),
                    );
                }
                let rkey = body["rkey"].as_str().unwrap_or_default().to_string();
                if rkey.len() != 13 {
                    return json(
                        400,
                        serde_json::json!({ "error": "InvalidRequest", "message": "rkey is not a TID" }),
                    );
                }
                if let Err(e) = check_record(&body["record"], &state.blobs) {
                    return json(400, serde_json::json!({ "error": "InvalidRequest", "message": e }));
                }
                if let Some(scripted) = next_scripted(&self.script) {
                    return scripted;
                }
                if state.records.contains_key(&rkey) {
                    return json(
                        400,
                        serde_json::json!({ "error": "InvalidRequest", "message": "Record already exists" }),
                    );
                }
                state.records.insert(rkey.clone(), body["record"].clone());
                json(
                    200,
                    serde_json::json!({ "uri": format!("at://{DID}/app.bsky.feed.post/{rkey}"), "cid": "bafy" }),
                )
            }
            other => json(404, serde_json::json!({ "error": format!("no route {other}") })),
        }
    }
}

// ---- chat -----------------------------------------------------------------

/// One request a chat endpoint received: its headers and its JSON body.
pub type Received = (Vec<(String, String)>, serde_json::Value);

/// A chat endpoint that records bodies and answers scripted replies, else `ok`.
#[derive(Clone)]
pub struct ChatFake {
    pub script: Script,
    pub bodies: Arc<Mutex<Vec<Received>>>,
    pub ok: serde_json::Value,
}

impl Respond for ChatFake {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let headers = req
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        if let Some(scripted) = next_scripted(&self.script) {
            return scripted;
        }
        self.bodies.lock().unwrap().push((headers, body));
        json(200, self.ok.clone())
    }
}

/// A content hash for the fake's blob ids (FNV-1a).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

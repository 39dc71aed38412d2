//! Local fakes of the OAuth platforms, Threads and LinkedIn, checking what
//! the real APIs check: the access token (unknown, expired or revoked ones
//! are refused in each API's own words), form or JSON bodies of the right
//! shape, versioned headers, length limits counted each platform's way, the
//! publishing quota, duplicates; each can be scripted to answer 429 or to
//! lose the answer to a post it made.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wiremock::{Request, Respond, ResponseTemplate};

fn json(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn form(req: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&req.body).into_owned().collect()
}

fn query(req: &Request) -> HashMap<String, String> {
    req.url.query_pairs().into_owned().collect()
}

fn bearer(req: &Request) -> Option<String> {
    header(req, "authorization")?
        .strip_prefix("Bearer ")
        .map(str::to_string)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

// ---- Threads --------------------------------------------------------------

/// What the Threads fake holds.
#[derive(Default)]
pub struct ThreadsState {
    /// Valid tokens, each with when it expires (Unix seconds).
    pub tokens: HashMap<String, i64>,
    /// Containers made: id -> (text, link).
    pub containers: HashMap<String, (String, String)>,
    /// Published posts, oldest first: (id, text, link, the container's id).
    pub published: Vec<(String, String, String, String)>,
    /// Posts the quota counts as published already (other tools, earlier).
    pub used_elsewhere: i64,
    pub quota_total: i64,
    pub refreshes: usize,
    /// The next publishes whose answers come 30 s late (the post is made first).
    pub slow_publishes: usize,
    /// Scripted answers to the next container requests.
    pub script: VecDeque<ResponseTemplate>,
    /// Every token a request carried, in order.
    pub seen_tokens: Vec<String>,
}

#[derive(Clone)]
pub struct ThreadsFake {
    pub state: Arc<Mutex<ThreadsState>>,
}

/// Threads' length: characters, each emoji as its UTF-8 bytes (counted
/// here independently of Herald's code).
fn threads_length(text: &str) -> usize {
    text.chars()
        .map(|c| {
            let emoji = matches!(u32::from(c), 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x200D | 0xFE0F);
            if emoji { c.len_utf8() } else { 1 }
        })
        .sum()
}

fn graph_error(code: i64, message: &str) -> ResponseTemplate {
    json(
        400,
        serde_json::json!({ "error": { "message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Afake" } }),
    )
}

impl ThreadsFake {
    pub fn new(token: &str, expires_in_days: i64) -> ThreadsFake {
        let mut state = ThreadsState {
            quota_total: 250,
            ..ThreadsState::default()
        };
        state.tokens.insert(token.to_string(), now() + expires_in_days * 86_400);
        ThreadsFake {
            state: Arc::new(Mutex::new(state)),
        }
    }

    pub fn published(&self) -> Vec<(String, String, String, String)> {
        self.state.lock().unwrap().published.clone()
    }
}

impl Respond for ThreadsFake {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
        let body = form(req);
        let query = query(req);
        let token = bearer(req)
            .or_else(|| body.get("access_token").cloned())
            .or_else(|| query.get("access_token").cloned());
        let Some(token) = token else {
            return graph_error(190, "An access token is required to request this resource.");
        };
        state.seen_tokens.push(token.clone());
        match state.tokens.get(&token) {
            None => return graph_error(190, "Error validating access token: The session has been invalidated."),
            Some(expires) if *expires <= now() => {
                return graph_error(190, "Error validating access token: Session has expired.");
            }
            Some(_) => {}
        }
        let path = req.url.path().to_string();
        let post = req.method.as_str() == "POST";
        if path == "/refresh_access_token" {
            if query.get("grant_type").map(String::as_str) != Some("th_refresh_token") {
                return graph_error(100, "grant_type must be th_refresh_token");
            }
            state.refreshes += 1;
            let fresh = format!("th-refreshed-{}", state.refreshes);
            // The old token stops working here, so the test sees which one is sent.
            state.tokens.remove(&token);
            state.tokens.insert(fresh.clone(), now() + 60 * 86_400);
            return json(
                200,
                serde_json::json!({ "access_token": fresh, "token_type": "bearer", "expires_in": 60 * 86_400 }),
            );
        }
        let Some(rest) = path.strip_prefix("/v1.0/") else {
            return graph_error(2500, "Unknown path components");
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let user_ok = |u: &str| u == "me" || u == "1789";
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["me"]) => json(200, serde_json::json!({ "id": "1789", "username": "harbourgazette" })),
            ("GET", [user, "threads_publishing_limit"]) if user_ok(user) => {
                let used = state.used_elsewhere + state.published.len() as i64;
                json(
                    200,
                    serde_json::json!({ "data": [{ "quota_usage": used, "config": { "quota_total": state.quota_total, "quota_duration": 86_400 } }] }),
                )
            }
            ("GET", [user, "threads"]) if user_ok(user) => {
                let data: Vec<serde_json::Value> = state
                    .published
                    .iter()
                    .rev()
                    .map(|(id, text, _, _)| serde_json::json!({ "id": id, "text": text, "permalink": format!("https://www.threads.com/@harbourgazette/post/{id}") }))
                    .collect();
                json(200, serde_json::json!({ "data": data }))
            }
            ("GET", [id]) => match state.published.iter().find(|p| p.0 == *id) {
                Some(_) => json(
                    200,
                    serde_json::json!({ "id": id, "permalink": format!("https://www.threads.com/@harbourgazette/post/{id}") }),
                ),
                None => graph_error(100, "Object does not exist"),
            },
            ("POST", [user, "threads"]) if post && user_ok(user) => {
                if header(req, "content-type") != Some("application/x-www-form-urlencoded") {
                    return graph_error(100, "this fake takes form bodies, as the Graph API documents");
                }
                if body.get("media_type").map(String::as_str) != Some("TEXT") {
                    return graph_error(100, "media_type must be TEXT for a text post");
                }
                let text = body.get("text").cloned().unwrap_or_default();
                if text.is_empty() {
                    return graph_error(100, "text is required for a TEXT container");
                }
                if threads_length(&text) > 500 {
                    return graph_error(100, "The text is too long: 500 characters at most");
                }
                let link = body.get("link_attachment").cloned().unwrap_or_default();
                if !link.starts_with("https://") && !link.starts_with("http://") {
                    return graph_error(100, "link_attachment must be a URL");
                }
                if let Some(scripted) = state.script.pop_front() {
                    return scripted;
                }
                let id = format!("c{}", state.containers.len() + 1);
                state.containers.insert(id.clone(), (text, link));
                json(200, serde_json::json!({ "id": id }))
            }
            ("POST", [user, "threads_publish"]) if post && user_ok(user) => {
                let Some(creation) = body.get("creation_id") else {
                    return graph_error(100, "creation_id is required");
                };
                let Some((text, link)) = state.containers.get(creation).cloned() else {
                    return graph_error(24, "The requested resource does not exist");
                };
                if state.published.iter().any(|p| &p.3 == creation) {
                    return graph_error(10, "This container was published already");
                }
                if state.used_elsewhere + state.published.len() as i64 >= state.quota_total {
                    return graph_error(4, "Application request limit reached: the publishing quota is used up");
                }
                let id = format!("1800{}", state.published.len() + 1);
                state.published.push((id.clone(), text, link, creation.clone()));
                let answer = json(200, serde_json::json!({ "id": id }));
                if state.slow_publishes > 0 {
                    state.slow_publishes -= 1;
                    return answer.set_delay(Duration::from_secs(30));
                }
                answer
            }
            _ => graph_error(2500, "Unsupported request"),
        }
    }
}

// ---- LinkedIn -------------------------------------------------------------

/// The characters LinkedIn's little text format reserves.
const RESERVED: &str = "\\|{}@[]()<>#*_~";

/// The text a little-text commentary shows, or why it is not valid: a
/// reserved character must come escaped.
pub fn little_text_shown(commentary: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = commentary.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next) => out.push(next),
                None => return Err("a lone backslash at the end".into()),
            }
        } else if RESERVED.contains(c) {
            return Err(format!("the reserved character {c:?} is not escaped"));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[derive(Default)]
pub struct LinkedInState {
    /// Valid tokens, each with when it expires (Unix seconds).
    pub tokens: HashMap<String, i64>,
    pub author: String,
    /// Posts made, oldest first: (URN, the body as sent).
    pub posts: Vec<(String, serde_json::Value)>,
    /// Images: URN -> bytes uploaded (empty until the upload).
    pub images: HashMap<String, Vec<u8>>,
    pub script: VecDeque<ResponseTemplate>,
    /// The next posts whose answers come 30 s late (the post is made first).
    pub slow_posts: usize,
}

#[derive(Clone)]
pub struct LinkedInFake {
    pub state: Arc<Mutex<LinkedInState>>,
    /// The fake's own address, for upload URLs.
    pub base: String,
}

fn linkedin_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    json(
        status,
        serde_json::json!({ "status": status, "code": code, "message": message }),
    )
}

impl LinkedInFake {
    pub fn new(base: &str, token: &str, expires_in_days: i64, author: &str) -> LinkedInFake {
        let mut state = LinkedInState {
            author: author.to_string(),
            ..LinkedInState::default()
        };
        state.tokens.insert(token.to_string(), now() + expires_in_days * 86_400);
        LinkedInFake {
            state: Arc::new(Mutex::new(state)),
            base: base.to_string(),
        }
    }

    pub fn posts(&self) -> Vec<(String, serde_json::Value)> {
        self.state.lock().unwrap().posts.clone()
    }

    /// Checks a post body as the Posts API does; `None` when it is valid.
    fn invalid(&self, state: &LinkedInState, body: &serde_json::Value) -> Option<ResponseTemplate> {
        let field = |path: &str| body.pointer(path).and_then(|v| v.as_str());
        if field("/author") != Some(state.author.as_str()) {
            return Some(linkedin_error(
                403,
                "ACCESS_DENIED",
                "Not enough permissions to post as this author",
            ));
        }
        let commentary = field("/commentary").unwrap_or_default();
        if commentary.chars().count() > 3000 {
            return Some(linkedin_error(
                422,
                "UNPROCESSABLE_ENTITY",
                "commentary is longer than 3000 characters",
            ));
        }
        if let Err(why) = little_text_shown(commentary) {
            return Some(linkedin_error(
                422,
                "UNPROCESSABLE_ENTITY",
                &format!("commentary: {why}"),
            ));
        }
        let expected = [
            ("/visibility", "PUBLIC"),
            ("/distribution/feedDistribution", "MAIN_FEED"),
            ("/lifecycleState", "PUBLISHED"),
        ];
        for (path, value) in expected {
            if field(path) != Some(value) {
                return Some(linkedin_error(
                    422,
                    "UNPROCESSABLE_ENTITY",
                    &format!("{path} must be {value}"),
                ));
            }
        }
        let source = field("/content/article/source").unwrap_or_default();
        if !source.starts_with("http") || field("/content/article/title").is_none_or(str::is_empty) {
            return Some(linkedin_error(
                422,
                "UNPROCESSABLE_ENTITY",
                "an article needs its source and title",
            ));
        }
        if let Some(image) = field("/content/article/thumbnail")
            && state.images.get(image).is_none_or(Vec::is_empty)
        {
            return Some(linkedin_error(
                422,
                "UNPROCESSABLE_ENTITY",
                &format!("{image} was never uploaded"),
            ));
        }
        None
    }
}

impl Respond for LinkedInFake {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
        let Some(token) = bearer(req) else {
            return linkedin_error(401, "INVALID_ACCESS_TOKEN", "Empty oauth2 access token");
        };
        match state.tokens.get(&token) {
            None => {
                return linkedin_error(
                    401,
                    "REVOKED_ACCESS_TOKEN",
                    "The token used in the request has been revoked by the user",
                );
            }
            Some(expires) if *expires <= now() => {
                return linkedin_error(401, "EXPIRED_ACCESS_TOKEN", "The token used in the request has expired");
            }
            Some(_) => {}
        }
        let path = req.url.path().to_string();
        if path == "/v2/userinfo" {
            return json(200, serde_json::json!({ "sub": "a1b2", "name": "Harbour Desk" }));
        }
        if let Some(id) = path.strip_prefix("/upload/") {
            let urn = format!("urn:li:image:{id}");
            return match state.images.get_mut(&urn) {
                Some(bytes) if req.method.as_str() == "PUT" => {
                    *bytes = req.body.clone();
                    ResponseTemplate::new(201)
                }
                _ => linkedin_error(404, "NOT_FOUND", "no such upload"),
            };
        }
        // The versioned REST API: its two headers, as the real one insists.
        match header(req, "linkedin-version") {
            Some(v) if v.len() == 6 && v.bytes().all(|b| b.is_ascii_digit()) && v >= "202401" => {}
            Some(v) => {
                return linkedin_error(
                    426,
                    "NONEXISTENT_VERSION",
                    &format!("Requested version {v} is not active"),
                );
            }
            None => {
                return linkedin_error(
                    400,
                    "VERSION_MISSING",
                    "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
                );
            }
        }
        if header(req, "x-restli-protocol-version") != Some("2.0.0") {
            return linkedin_error(400, "ILLEGAL_ARGUMENT", "X-Restli-Protocol-Version 2.0.0 is required");
        }
        let query = query(req);
        match (req.method.as_str(), path.as_str()) {
            ("POST", "/rest/images") if query.get("action").map(String::as_str) == Some("initializeUpload") => {
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
                if body["initializeUploadRequest"]["owner"].as_str() != Some(state.author.as_str()) {
                    return linkedin_error(403, "ACCESS_DENIED", "the owner must be the author");
                }
                let id = format!("D4E10AQ{}", state.images.len() + 1);
                state.images.insert(format!("urn:li:image:{id}"), Vec::new());
                json(
                    200,
                    serde_json::json!({ "value": {
                        "uploadUrlExpiresAt": (now() + 3600) * 1000,
                        "uploadUrl": format!("{}/upload/{id}", self.base),
                        "image": format!("urn:li:image:{id}"),
                    } }),
                )
            }
            ("GET", "/rest/posts") => {
                if query.get("q").map(String::as_str) != Some("author") || query.get("author") != Some(&state.author) {
                    return linkedin_error(400, "ILLEGAL_ARGUMENT", "q=author and the author are required");
                }
                let elements: Vec<serde_json::Value> = state
                    .posts
                    .iter()
                    .rev()
                    .map(|(urn, body)| {
                        let mut post = body.clone();
                        post["id"] = urn.clone().into();
                        post
                    })
                    .collect();
                json(
                    200,
                    serde_json::json!({ "elements": elements, "paging": { "count": 20, "start": 0 } }),
                )
            }
            ("POST", "/rest/posts") => {
                if !header(req, "content-type").is_some_and(|t| t.starts_with("application/json")) {
                    return linkedin_error(415, "UNSUPPORTED_MEDIA_TYPE", "JSON only");
                }
                let body: serde_json::Value = match serde_json::from_slice(&req.body) {
                    Ok(body) => body,
                    Err(e) => return linkedin_error(400, "ILLEGAL_ARGUMENT", &format!("not JSON: {e}")),
                };
                if let Some(refusal) = self.invalid(&state, &body) {
                    return refusal;
                }
                if let Some(scripted) = state.script.pop_front() {
                    return scripted;
                }
                if let Some((urn, _)) = state.posts.iter().find(|(_, b)| b["commentary"] == body["commentary"]) {
                    return linkedin_error(422, "DUPLICATE_POST", &format!("Content is a duplicate of {urn}"));
                }
                let urn = format!("urn:li:share:70{}", state.posts.len() + 1);
                state.posts.push((urn.clone(), body));
                let answer = ResponseTemplate::new(201).insert_header("x-restli-id", urn.as_str());
                if state.slow_posts > 0 {
                    state.slow_posts -= 1;
                    return answer.set_delay(Duration::from_secs(30));
                }
                answer
            }
            _ => linkedin_error(404, "NOT_FOUND", "no such resource"),
        }
    }
}

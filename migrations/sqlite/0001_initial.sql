-- Herald's schema. Times are BIGINT unix milliseconds; flags are 0/1 BIGINT,
-- so the same queries run on SQLite and PostgreSQL through sqlx's Any driver.

CREATE TABLE articles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    identity TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    author TEXT,
    excerpt TEXT NOT NULL,
    content_html TEXT NOT NULL,
    tags TEXT NOT NULL,
    image TEXT,
    published_at BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX articles_by_source_published ON articles (source, published_at);

CREATE TABLE source_state (
    source TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    polled_at BIGINT NOT NULL,
    last_error TEXT
);

CREATE TABLE subscribers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    list_name TEXT NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    name TEXT,
    attributes TEXT NOT NULL,
    status TEXT NOT NULL,
    uid TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (list_name, email_key)
);

CREATE TABLE suppressions (
    email_key TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE editions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    list_name TEXT NOT NULL,
    nonce TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    article_count BIGINT NOT NULL,
    recipient_count BIGINT NOT NULL,
    subject TEXT NOT NULL,
    html TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX editions_by_job ON editions (job, created_at);

CREATE TABLE edition_articles (
    edition_id BIGINT NOT NULL REFERENCES editions (id),
    job TEXT NOT NULL,
    article_id BIGINT NOT NULL REFERENCES articles (id),
    position BIGINT NOT NULL,
    UNIQUE (job, article_id)
);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    edition_id BIGINT NOT NULL REFERENCES editions (id),
    job TEXT NOT NULL,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id),
    email TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    in_doubt BIGINT NOT NULL,
    last_reply TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (edition_id, subscriber_id)
);
CREATE INDEX deliveries_queue ON deliveries (job, state, next_attempt_at);

CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

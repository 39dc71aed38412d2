-- Social posts: one row per (account, article), written before the request
-- and completed after it, so no article is posted twice to one account.

CREATE TABLE posts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    article_id BIGINT NOT NULL REFERENCES articles (id),
    state TEXT NOT NULL,
    text TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    in_doubt BIGINT NOT NULL,
    remote_id TEXT,
    remote_url TEXT,
    last_reply TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    posted_at BIGINT,
    UNIQUE (account, article_id)
);
CREATE INDEX posts_queue ON posts (account, state, next_attempt_at);

CREATE TABLE account_state (
    account TEXT PRIMARY KEY,
    initialized_at BIGINT,
    session TEXT,
    char_limit BIGINT,
    updated_at BIGINT NOT NULL
);

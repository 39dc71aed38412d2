-- Subscribers on the web: the digest cadence each subscriber chose (empty:
-- the list's default job), and the consent record of every sign-up,
-- confirmation, preference change and unsubscribe made through the web.

ALTER TABLE subscribers ADD COLUMN cadence TEXT NOT NULL DEFAULT '';
ALTER TABLE subscribers ADD COLUMN confirmed_at BIGINT;

CREATE TABLE consents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id),
    action TEXT NOT NULL,
    page TEXT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    wording_version TEXT NOT NULL,
    wording TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX consents_by_subscriber ON consents (subscriber_id, created_at);

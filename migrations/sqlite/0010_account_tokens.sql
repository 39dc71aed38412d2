-- OAuth token lifecycle per social account: which operator secret the row
-- is about (a fingerprint, never the secret), a refreshed token sealed with
-- a key derived from that secret, when the token in use expires, whether
-- the platform refused it (posts wait until the secret is replaced), and
-- when the last expiry warning was logged.

ALTER TABLE account_state ADD COLUMN token_fingerprint TEXT;
ALTER TABLE account_state ADD COLUMN token_sealed TEXT;
ALTER TABLE account_state ADD COLUMN token_expires_at BIGINT;
ALTER TABLE account_state ADD COLUMN token_refused_at BIGINT;
ALTER TABLE account_state ADD COLUMN token_refused_reply TEXT;
ALTER TABLE account_state ADD COLUMN token_warned_at BIGINT;

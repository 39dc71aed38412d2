-- Scheduled fires, claimed once per (job, scheduled time) across every
-- instance sharing the store, and the instances' heartbeats.

CREATE TABLE job_fires (
    job TEXT NOT NULL,
    scheduled_at BIGINT NOT NULL,
    claimed_by TEXT NOT NULL,
    claimed_at BIGINT NOT NULL,
    finished_at BIGINT,
    outcome TEXT,
    PRIMARY KEY (job, scheduled_at)
);

CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at BIGINT
);

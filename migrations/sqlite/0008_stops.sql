-- Emergency stops. `herald cancel EDITION` stamps the edition: its queued
-- rows become `cancelled` and none of its rows is claimed again.
-- `herald hold JOB` stops a job until `herald release JOB`: its fires are
-- recorded and build nothing, and none of its rows is claimed.

ALTER TABLE editions ADD COLUMN cancelled_at BIGINT;

CREATE TABLE job_holds (
    job TEXT PRIMARY KEY,
    held_at BIGINT NOT NULL,
    reason TEXT NOT NULL
);

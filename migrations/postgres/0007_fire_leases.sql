-- A fire's claim is a lease: the instance that claimed the fire renews
-- `lease_until` while its run goes on. Once the lease has run out (the
-- instance died or lost the store), another live instance takes the fire
-- over, counted in `takeovers`, and carries the run on. `edition_id` is the
-- edition the fire made, written in that edition's own transaction, so a
-- run taken over after it drains the edition instead of making another.

ALTER TABLE job_fires ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE job_fires ADD COLUMN edition_id BIGINT;
ALTER TABLE job_fires ADD COLUMN takeovers BIGINT NOT NULL DEFAULT 0;

-- Fires left unfinished before leases existed: their lease ran out when
-- they were claimed, and the edition each made, if any, is the job's first
-- edition created between its claim and the job's next claimed fire.
UPDATE job_fires SET lease_until = claimed_at,
    edition_id = (
        SELECT MIN(e.id) FROM editions e
        WHERE e.job = job_fires.job AND e.created_at >= job_fires.claimed_at
        AND NOT EXISTS (
            SELECT 1 FROM job_fires later
            WHERE later.job = job_fires.job AND later.claimed_at > job_fires.claimed_at
            AND later.claimed_at <= e.created_at
        )
    )
WHERE finished_at IS NULL;

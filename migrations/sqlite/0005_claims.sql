-- Which instance claimed a delivery or post last: the one sending it, or
-- the one that sent it. Kept after the outcome, so the work of instances
-- sharing a store can be told apart.

ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
ALTER TABLE posts ADD COLUMN claimed_by TEXT;

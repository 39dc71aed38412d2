-- An edition whose send went over the mail error budget is paused: its rows
-- stay queued and are not claimed until `herald resume` clears the pause.
-- `paused` holds why (the failure counts and the last reply).

ALTER TABLE editions ADD COLUMN paused TEXT;
ALTER TABLE editions ADD COLUMN paused_at BIGINT;

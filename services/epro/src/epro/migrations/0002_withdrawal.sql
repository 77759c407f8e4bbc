-- Withdrawal (decision 0014): set once from the participants topic, never cleared.
ALTER TABLE participants ADD COLUMN withdrawn_at timestamptz;

-- An occurrence whose window the withdrawal cut short is closed as 'withdrawn': neither
-- answered nor missed, and never announced as missed.
ALTER TABLE occurrences DROP CONSTRAINT occurrences_status_check;
-- NOT VALID: every existing row passed the old, stricter check, so no scan is needed
-- (one would run under the ACCESS EXCLUSIVE lock DROP CONSTRAINT takes); new rows are checked.
ALTER TABLE occurrences ADD CONSTRAINT occurrences_status_check
    CHECK (status IN ('open', 'completed', 'missed', 'withdrawn')) NOT VALID;

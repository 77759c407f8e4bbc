-- Consent withdrawal (decision 0034), from the participants topic: when the participant
-- withdrew, NULL while enrolled. Sticky: a later `enrolled` record does not clear it.
ALTER TABLE participants ADD COLUMN withdrawn_at timestamptz;

-- 'cancelled': a queued nudge stopped before it went out (suppress_reason says why, e.g.
-- 'participant-withdrew'); the journey has a 'cancelled' step.
ALTER TABLE nudges DROP CONSTRAINT nudges_status_check;
-- NOT VALID: every existing row passed the old, stricter check, so no scan is needed
-- (one would run under the ACCESS EXCLUSIVE lock DROP CONSTRAINT takes); new rows are checked.
ALTER TABLE nudges ADD CONSTRAINT nudges_status_check CHECK (status IN
    ('suppressed', 'escalated', 'queued', 'sent', 'failed', 'cancelled')) NOT VALID;

-- Consent withdrawal (decision 0025), from the participants topic: when the participant
-- withdrew, NULL while enrolled. Set once (the earliest time kept), never cleared.
ALTER TABLE participants ADD COLUMN withdrawn_at timestamptz;

-- Why a visit was closed without taking place ('participant withdrew'); NULL otherwise.
-- A cancelled booking keeps its reason in bookings.reason as before.
ALTER TABLE visits ADD COLUMN cancel_reason text;

-- An alert for a withdrawn participant is recorded (dedupe, history) but proposes nothing.
ALTER TABLE urgent_alerts DROP CONSTRAINT urgent_alerts_outcome_check;
-- NOT VALID: every existing row passed the old, stricter check, so no scan is needed
-- (one would run under the ACCESS EXCLUSIVE lock DROP CONSTRAINT takes); new rows are checked.
ALTER TABLE urgent_alerts ADD CONSTRAINT urgent_alerts_outcome_check CHECK (outcome IN
    ('proposed', 'unknown_participant', 'no_free_slot', 'participant_withdrawn')) NOT VALID;

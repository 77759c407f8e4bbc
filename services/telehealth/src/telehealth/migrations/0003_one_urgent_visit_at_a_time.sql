-- A participant has at most one urgent visit ahead at a time (issue 16): a further
-- high-severity alert while one is proposed or booked is recorded against it.
ALTER TABLE urgent_alerts DROP CONSTRAINT urgent_alerts_outcome_check;
ALTER TABLE urgent_alerts ADD CONSTRAINT urgent_alerts_outcome_check CHECK (outcome IN
    ('proposed', 'unknown_participant', 'no_free_slot', 'participant_withdrawn',
     'already_proposed')) NOT VALID;

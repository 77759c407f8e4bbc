-- Study rules (docs/services/retention.md, "Study rules"): a participant's language and
-- quiet hours are NULL unless someone chose them, so the study's rules (or, for the
-- default study, the service's 21:00-08:00 and "en") apply. Quiet hours stored as
-- 21:00-08:00 cannot be told apart from the API's former default, so they become "not
-- chosen": for the default study that is the same rule; for a declared study its own.
-- A stored language stays (it was shown to staff as the participant's language).
ALTER TABLE preferences ALTER COLUMN language DROP NOT NULL,
                        ALTER COLUMN language DROP DEFAULT,
                        ALTER COLUMN quiet_start DROP NOT NULL,
                        ALTER COLUMN quiet_start DROP DEFAULT,
                        ALTER COLUMN quiet_end DROP NOT NULL,
                        ALTER COLUMN quiet_end DROP DEFAULT,
                        ADD CONSTRAINT quiet_hours_both_or_neither
                            CHECK ((quiet_start IS NULL) = (quiet_end IS NULL));
UPDATE preferences SET quiet_start = NULL, quiet_end = NULL
WHERE quiet_start = '21:00' AND quiet_end = '08:00';

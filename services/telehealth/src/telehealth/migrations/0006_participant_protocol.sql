-- Studies declare their visit schedule (issue 15): the visits a participant of a declared
-- study was planned from, fixed at enrolment (a later study version changes new
-- enrolments only). NULL: planned from TELEHEALTH_PROTOCOL (the default study, and every
-- participant enrolled before this migration). '[]': the study declares no visits.
ALTER TABLE participants ADD COLUMN protocol jsonb;

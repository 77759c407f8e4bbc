-- Participant timeline for the dashboard.

-- 5-minute rollups of the readings stream per participant and metric. sum and n (not the
-- mean) are stored so that a batch folds in with one upsert: n = n + new, sum = sum + new.
CREATE TABLE reading_rollups (
    participant_id text             NOT NULL,
    metric         text             NOT NULL,
    bucket         timestamptz      NOT NULL,  -- start of the 5-minute bucket (UTC, epoch-aligned)
    n              integer          NOT NULL,
    sum            double precision NOT NULL,
    min            double precision NOT NULL,
    max            double precision NOT NULL,
    PRIMARY KEY (participant_id, metric, bucket)
);

-- Readings already folded into a rollup (at-least-once delivery must not count twice).
-- Only the id is kept, and only for `MONITORING_TIMELINE_DEDUPE_DAYS`.
CREATE TABLE reading_rollup_seen (
    event_id uuid        PRIMARY KEY,
    seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reading_rollup_seen_age ON reading_rollup_seen (seen_at);

-- ePRO responses / missed questionnaires and visit changes, one row per event.
CREATE TABLE timeline_events (
    event_id       uuid        PRIMARY KEY,
    participant_id text        NOT NULL,
    at             timestamptz NOT NULL,
    kind           text        NOT NULL,  -- epro-response, epro-missed, visit
    title          text        NOT NULL,
    detail         jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX timeline_events_by_participant ON timeline_events (participant_id, at);

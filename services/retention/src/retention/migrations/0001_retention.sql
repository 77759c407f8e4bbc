-- Site and enrolment timezone, from ingest's compacted enrolment topic.
CREATE TABLE participants (
    participant_id text PRIMARY KEY,
    site_id        text        NOT NULL,
    timezone       text        NOT NULL DEFAULT 'UTC',
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Communication preferences, set through the admin API. The address (if any) is the
-- only contact detail the platform keeps, and it never leaves this table except to the
-- configured delivery gateway.
CREATE TABLE preferences (
    participant_id text PRIMARY KEY,
    language       text        NOT NULL DEFAULT 'en',
    timezone       text,                                  -- overrides the enrolment timezone
    channel        text        NOT NULL DEFAULT 'push' CHECK (channel IN ('push', 'sms', 'email')),
    opted_out      text[]      NOT NULL DEFAULT '{}',
    quiet_start    time        NOT NULL DEFAULT '21:00',
    quiet_end      time        NOT NULL DEFAULT '08:00',
    max_per_day    int,                                   -- NULL: the service default
    address        text,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Engagement counters: escalation, streaks and the dropout-risk features.
CREATE TABLE engagement (
    participant_id      text PRIMARY KEY,
    epro_misses         int              NOT NULL DEFAULT 0,
    visit_misses        int              NOT NULL DEFAULT 0,
    responses           int              NOT NULL DEFAULT 0,
    on_time             int              NOT NULL DEFAULT 0,
    missed_total        int              NOT NULL DEFAULT 0,
    visits_missed_total int              NOT NULL DEFAULT 0,
    latency_hours_sum   double precision NOT NULL DEFAULT 0,
    latency_count       int              NOT NULL DEFAULT 0,
    streak_days         int              NOT NULL DEFAULT 0,
    last_response_day   date,
    updated_at          timestamptz      NOT NULL DEFAULT now()
);

-- When each open questionnaire occurrence fell due (for response latency).
CREATE TABLE open_occurrences (
    occurrence_id  uuid PRIMARY KEY,
    participant_id text        NOT NULL,
    due_at         timestamptz NOT NULL
);

-- Passive data: one row per participant (last reading), and the hours with data
-- (wear time), both written once per consumed batch, not per reading.
CREATE TABLE device_activity (
    participant_id  text PRIMARY KEY,
    last_reading_at timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE active_hours (
    participant_id text        NOT NULL,
    hour           timestamptz NOT NULL,
    PRIMARY KEY (participant_id, hour)
);

-- Every nudge decision. nudge_id is derived from the trigger event and its kind, so a
-- re-read trigger (restart, rebalance, second replica) hits the primary key.
CREATE TABLE nudges (
    nudge_id         uuid PRIMARY KEY,
    participant_id   text        NOT NULL,
    kind             text        NOT NULL,
    trigger_event_id uuid        NOT NULL,
    target           text,
    status           text        NOT NULL CHECK (status IN
                       ('suppressed', 'escalated', 'queued', 'sent', 'failed')),
    suppress_reason  text,
    channel          text,
    language         text        NOT NULL,
    tone             text        NOT NULL,
    body             text        NOT NULL,
    send_at          timestamptz,
    dispatches       int         NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    delivered_at     timestamptz,
    opened_at        timestamptz,
    acted_on_at      timestamptz
);
CREATE INDEX nudges_due ON nudges (next_attempt_at) WHERE status = 'queued';
CREATE INDEX nudges_by_participant ON nudges (participant_id, created_at DESC);
CREATE INDEX nudges_by_target ON nudges (target) WHERE target IS NOT NULL AND acted_on_at IS NULL;

-- The journey of each nudge, append-only: intended, suppressed, escalated, queued,
-- sent, delivered, opened, acted-on, retry, failed.
CREATE TABLE nudge_journey (
    id       bigserial PRIMARY KEY,
    nudge_id uuid        NOT NULL REFERENCES nudges (nudge_id),
    step     text        NOT NULL,
    at       timestamptz NOT NULL DEFAULT now(),
    detail   text        NOT NULL DEFAULT ''
);
CREATE INDEX journey_by_nudge ON nudge_journey (nudge_id, id);

-- Tasks for the site coordinator (escalations); task_id equals the nudge id it replaced.
CREATE TABLE coordinator_tasks (
    task_id          uuid PRIMARY KEY REFERENCES nudges (nudge_id),
    participant_id   text        NOT NULL,
    kind             text        NOT NULL,
    reason           text        NOT NULL,
    status           text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz
);

-- The local (demo) channel's mailbox.
CREATE TABLE local_deliveries (
    nudge_id       uuid PRIMARY KEY REFERENCES nudges (nudge_id),
    participant_id text        NOT NULL,
    channel        text        NOT NULL,
    body           text        NOT NULL,
    delivered_at   timestamptz NOT NULL DEFAULT now()
);

-- Dropout-risk scores; the model version travels with each score.
CREATE TABLE risk_scores (
    participant_id text             NOT NULL,
    scored_at      timestamptz      NOT NULL,
    score          double precision NOT NULL,
    model_version  text             NOT NULL,
    features       jsonb            NOT NULL,
    PRIMARY KEY (participant_id, scored_at)
);

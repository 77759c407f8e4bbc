-- Risk-based monitoring (rbm_*): what the KRIs and discrepancy flags are computed from.
-- Every table written by a consumer is idempotent by its key: a redelivered event or
-- reading changes nothing.

-- Participant state from the participants topic (kept apart from the alert inbox's table).
CREATE TABLE rbm_participants (
    participant_id text PRIMARY KEY,
    site_id        text        NOT NULL,
    timezone       text        NOT NULL DEFAULT 'UTC',
    status         text        NOT NULL DEFAULT 'enrolled',
    enrolled_at    timestamptz NOT NULL,  -- first enrolment event seen
    withdrawn_at   timestamptz
);
CREATE INDEX rbm_participants_by_site ON rbm_participants (site_id);

-- Wear time: slots (e.g. 15 min) in which a participant's devices sent anything.
CREATE TABLE rbm_wear_slots (
    participant_id text        NOT NULL,
    slot_start     timestamptz NOT NULL,
    PRIMARY KEY (participant_id, slot_start)
);

-- Step counts by event id (daily totals for the diary cross-check).
CREATE TABLE rbm_steps (
    event_id       uuid PRIMARY KEY,
    participant_id text             NOT NULL,
    measured_at    timestamptz      NOT NULL,
    steps          double precision NOT NULL
);
CREATE INDEX rbm_steps_by_participant ON rbm_steps (participant_id, measured_at);

-- Which participants each device has sent for, and its newest reading per participant.
CREATE TABLE rbm_devices (
    device_id      text        NOT NULL,
    participant_id text        NOT NULL,
    first_measured timestamptz NOT NULL,
    last_measured  timestamptz NOT NULL,
    PRIMARY KEY (device_id, participant_id)
);
CREATE INDEX rbm_devices_by_participant ON rbm_devices (participant_id);

-- Last reading per device and metric (jumps across batch boundaries), and the jumps seen.
CREATE TABLE rbm_last_readings (
    participant_id text             NOT NULL,
    device_id      text             NOT NULL,
    metric         text             NOT NULL,
    measured_at    timestamptz      NOT NULL,
    value          double precision NOT NULL,
    PRIMARY KEY (participant_id, device_id, metric)
);
CREATE TABLE rbm_jumps (
    participant_id text             NOT NULL,
    device_id      text             NOT NULL,
    metric         text             NOT NULL,
    at             timestamptz      NOT NULL,
    delta          double precision NOT NULL,
    seconds        double precision NOT NULL,
    PRIMARY KEY (participant_id, device_id, metric, at)
);

-- ePRO occurrences and how they ended (due / missed / answered on time or not).
CREATE TABLE rbm_epro_occurrences (
    occurrence_id    uuid PRIMARY KEY,
    participant_id   text        NOT NULL,
    questionnaire_id text        NOT NULL,
    due_at           timestamptz,
    expires_at       timestamptz,
    missed           boolean     NOT NULL DEFAULT false,
    answered_on_time boolean,     -- the first response's on_time; NULL = not answered
    response_id      uuid
);
CREATE INDEX rbm_epro_by_participant ON rbm_epro_occurrences (participant_id, due_at);

-- Diary answers about activity, kept for the diary-vs-wearable cross-check.
CREATE TABLE rbm_diary_activity (
    response_id    uuid PRIMARY KEY,
    participant_id text             NOT NULL,
    local_day      date             NOT NULL,
    activity       double precision NOT NULL,
    version        integer          NOT NULL,  -- a correction (higher version) replaces it
    submitted_at   timestamptz      NOT NULL
);

-- Protocol visits: latest lifecycle step per visit.
CREATE TABLE rbm_visits (
    visit_id       uuid PRIMARY KEY,
    participant_id text        NOT NULL,
    site_id        text        NOT NULL,
    status         text        NOT NULL,
    window_start   timestamptz NOT NULL,
    window_end     timestamptz NOT NULL,
    done_at        timestamptz,  -- when a completed visit took place
    event_at       timestamptz NOT NULL
);
CREATE INDEX rbm_visits_by_participant ON rbm_visits (participant_id, window_end);

-- Discrepancy flags. At most one open flag per episode (dedupe_key): replicas racing to
-- raise the same flag meet on this index, and only one of them inserts (and publishes).
CREATE TABLE rbm_flags (
    flag_id        uuid PRIMARY KEY,
    dedupe_key     text        NOT NULL,
    participant_id text        NOT NULL,
    kind           text        NOT NULL,
    reason         text        NOT NULL,
    evidence       jsonb       NOT NULL,
    evidence_at    timestamptz NOT NULL,
    raised_at      timestamptz NOT NULL DEFAULT now(),
    status         text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    closed_by      text,
    closed_at      timestamptz,
    close_note     text,
    CHECK ((status = 'closed') = (closed_at IS NOT NULL AND close_note IS NOT NULL))
);
CREATE UNIQUE INDEX rbm_flags_one_open_per_episode ON rbm_flags (dedupe_key) WHERE status = 'open';
CREATE INDEX rbm_flags_by_key ON rbm_flags (dedupe_key, closed_at);
CREATE INDEX rbm_flags_by_participant ON rbm_flags (participant_id, raised_at DESC);

-- KRI status per scope; rows are locked while a breach or recovery is decided, so two
-- replicas evaluating together publish one event per episode.
CREATE TABLE rbm_kri_state (
    scope        text        NOT NULL CHECK (scope IN ('site', 'participant')),
    scope_id     text        NOT NULL,
    kri          text        NOT NULL,
    site_id      text        NOT NULL,
    status       text        NOT NULL DEFAULT 'unknown',
    value        double precision,
    breach_open  boolean     NOT NULL DEFAULT false,
    breached_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, scope_id, kri)
);

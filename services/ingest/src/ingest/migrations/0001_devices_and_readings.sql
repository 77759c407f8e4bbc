-- Who may upload: participants (pseudonymous ids only) and their devices.
CREATE TABLE participants (
    participant_id text PRIMARY KEY,
    site_id        text        NOT NULL,
    timezone       text        NOT NULL DEFAULT 'UTC',
    enrolled_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    device_id      text PRIMARY KEY,
    participant_id text        NOT NULL REFERENCES participants (participant_id),
    token_hash     text        NOT NULL UNIQUE,  -- SHA-256 of the bearer token; the token itself is never stored
    enrolled_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);

-- Dedupe ledger: an event_id here was published once; a retried upload is not re-published.
CREATE TABLE accepted_readings (
    event_id       uuid PRIMARY KEY,
    participant_id text        NOT NULL,
    accepted_at    timestamptz NOT NULL DEFAULT now()
);

-- Raw readings archive, written by the archive consumer with COPY.
CREATE TABLE readings (
    event_id       uuid PRIMARY KEY,
    participant_id text             NOT NULL,
    device_id      text             NOT NULL,
    metric         text             NOT NULL,
    value          double precision NOT NULL,
    unit           text             NOT NULL,
    measured_at    timestamptz      NOT NULL,
    received_at    timestamptz      NOT NULL,
    archived_at    timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX readings_by_participant_time ON readings (participant_id, measured_at);

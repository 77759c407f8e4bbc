-- Published questionnaire definitions. A row is never updated: a change is a new version.
CREATE TABLE questionnaires (
    questionnaire_id text        NOT NULL,
    version          integer     NOT NULL,
    digest           text        NOT NULL,  -- SHA-256 of the canonical JSON
    definition       jsonb       NOT NULL,
    published_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (questionnaire_id, version)
);

-- Participants and their timezone, from ingest's enrolment events (compacted topic).
CREATE TABLE participants (
    participant_id text PRIMARY KEY,
    site_id        text        NOT NULL,
    timezone       text        NOT NULL,
    enrolled_at    timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- App credentials issued by this service (decision 0010); only the SHA-256 is kept.
CREATE TABLE app_credentials (
    token_hash     text PRIMARY KEY,
    participant_id text        NOT NULL REFERENCES participants (participant_id),
    issued_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);

-- Site staff credentials for the compliance and export API (decision 0011).
CREATE TABLE staff (
    staff_id   text PRIMARY KEY,
    site_id    text        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('site_staff', 'monitor')),
    token_hash text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Which protocol schedule runs for whom, and how far the scheduler has computed it.
CREATE TABLE assignments (
    participant_id     text        NOT NULL REFERENCES participants (participant_id),
    schedule_id        text        NOT NULL,
    definition         jsonb       NOT NULL,
    scheduled_through  timestamptz NOT NULL,
    PRIMARY KEY (participant_id, schedule_id)
);

-- Completed visits, the anchors of visit-relative schedules.
CREATE TABLE visit_anchors (
    participant_id text        NOT NULL,
    visit_id       uuid        NOT NULL,
    anchored_at    timestamptz NOT NULL,
    PRIMARY KEY (participant_id, visit_id)
);

-- One row per scheduled occurrence; the unique id makes due/missed happen once.
CREATE TABLE occurrences (
    occurrence_id         uuid PRIMARY KEY,
    participant_id        text        NOT NULL,
    schedule_id           text        NOT NULL,
    questionnaire_id      text        NOT NULL,
    questionnaire_version integer     NOT NULL,
    due_at                timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL,
    status                text        NOT NULL DEFAULT 'open'
                          CHECK (status IN ('open', 'completed', 'missed')),
    response_id           uuid,
    answered_outside_window boolean   NOT NULL DEFAULT false,  -- answered, but late or early
    closed_at             timestamptz
);
CREATE INDEX occurrences_open_by_expiry ON occurrences (expires_at) WHERE status = 'open';
CREATE INDEX occurrences_by_participant ON occurrences (participant_id, due_at);

-- Responses, append-only: a correction is a new version with a reason (21 CFR Part 11 style).
CREATE TABLE responses (
    response_id           uuid        NOT NULL,
    version               integer     NOT NULL,
    participant_id        text        NOT NULL,
    questionnaire_id      text        NOT NULL,
    questionnaire_version integer     NOT NULL,
    occurrence_id         uuid,
    language              text        NOT NULL,
    authored_at           timestamptz NOT NULL,
    received_at           timestamptz NOT NULL DEFAULT now(),
    answers               jsonb       NOT NULL,
    scores                jsonb       NOT NULL,
    on_time               boolean     NOT NULL,
    flags                 text[]      NOT NULL,
    author                text        NOT NULL,  -- 'participant' or a staff id
    reason                text,                  -- required for version > 1
    request_digest        text        NOT NULL,  -- to tell a retry from a conflicting reuse of an id
    PRIMARY KEY (response_id, version),
    CHECK (version = 1 OR reason IS NOT NULL)
);
CREATE INDEX responses_by_participant ON responses (participant_id, authored_at);

CREATE FUNCTION responses_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'responses are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER responses_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON responses
    FOR EACH STATEMENT EXECUTE FUNCTION responses_are_append_only();

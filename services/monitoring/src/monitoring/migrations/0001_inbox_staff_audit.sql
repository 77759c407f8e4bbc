-- Which site each participant belongs to, from ingest's enrolment events.
CREATE TABLE participants (
    participant_id text PRIMARY KEY,
    site_id        text        NOT NULL,
    timezone       text        NOT NULL DEFAULT 'UTC',
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- The staff alert inbox. The site is not copied onto the alert: it is joined from
-- participants at query time, so an alert that arrives before its participant's
-- enrolment event still reaches the right site once that event arrives.
CREATE TABLE alerts (
    alert_id        uuid PRIMARY KEY,            -- the AlertRaised event_id: duplicates are dropped
    participant_id  text             NOT NULL,
    kind            text             NOT NULL,
    metric          text             NOT NULL,
    severity        text             NOT NULL,
    rule            text             NOT NULL,
    detected_at     timestamptz      NOT NULL,
    window_start    timestamptz      NOT NULL,
    window_end      timestamptz      NOT NULL,
    observed        jsonb            NOT NULL,  -- the values that fired
    threshold       double precision,
    baseline        double precision,
    model_version   text             NOT NULL,
    explanation     text             NOT NULL,
    status          text             NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged')),
    received_at     timestamptz      NOT NULL DEFAULT now(),
    acknowledged_by text,
    acknowledged_at timestamptz,
    ack_note        text
);
CREATE INDEX alerts_by_participant ON alerts (participant_id, detected_at DESC);
CREATE INDEX alerts_open ON alerts (detected_at DESC) WHERE status = 'open';

-- Staff credentials, pseudonymous ids only; the token is stored as a SHA-256 digest.
CREATE TABLE staff (
    staff_id    text PRIMARY KEY,
    site_id     text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('site_staff', 'monitor')),
    token_hash  text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Append-only audit trail of staff actions.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    entity      text        NOT NULL,
    entity_id   text        NOT NULL,
    old_status  text,
    new_status  text,
    note        text
);
CREATE INDEX audit_by_entity ON audit_log (entity, entity_id, id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

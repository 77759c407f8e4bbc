-- Per-participant scoring state, checkpointed in the transaction that emits its alerts,
-- so a restarted or rebalanced consumer continues where the last one committed.
CREATE TABLE participant_state (
    participant_id text PRIMARY KEY,
    state          jsonb       NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Alerts emitted; the primary key makes emission idempotent (alert ids are derived
-- from the episode, so a re-scored batch yields the same ids).
CREATE TABLE alerts (
    event_id       uuid PRIMARY KEY,
    participant_id text        NOT NULL,
    rule           text        NOT NULL,
    severity       text        NOT NULL,
    detected_at    timestamptz NOT NULL,
    model_version  text        NOT NULL,
    emitted_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_by_participant ON alerts (participant_id, detected_at);

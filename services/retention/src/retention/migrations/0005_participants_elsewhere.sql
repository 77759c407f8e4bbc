-- Participants of studies that do not use retention: their triggers (ePRO, visits) carry
-- no study, so retention must know whom to skip (issue 15).
CREATE TABLE participants_elsewhere (
    participant_id text PRIMARY KEY,
    study_id       text        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

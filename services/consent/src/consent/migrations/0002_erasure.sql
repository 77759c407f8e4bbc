-- Erasure requests (issue 18, decision 0086): one per participant (a new request replaces
-- the earlier one), with its legal basis from a fixed list and who asked; no free text.
CREATE TABLE erasure_requests (
    participant_id      text        PRIMARY KEY,
    request_id          uuid        NOT NULL UNIQUE,
    study_id            text        NOT NULL,
    legal_basis         text        NOT NULL,
    requested_by        text        NOT NULL CHECK (requested_by IN ('participant', 'staff')),
    actor               text        NOT NULL,   -- pseudonymous: staff:<id> or participant:<id>
    keep_collected_data boolean     NOT NULL,
    requested_at        timestamptz NOT NULL DEFAULT now()
);

-- Which service finished erasing whom, as the erasure-status topic reports it.
CREATE TABLE erasure_progress (
    participant_id text        NOT NULL,
    service        text        NOT NULL,
    request_id     uuid        NOT NULL,
    erased         jsonb       NOT NULL,
    done_at        timestamptz NOT NULL,
    PRIMARY KEY (participant_id, service)
);

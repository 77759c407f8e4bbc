-- Consent gating (issue 18, decision 0080): each participant's consent as the consents
-- topic last announced it (highest revision wins), one row per participant, read once per
-- request of a study that enables the consent module (trialstream.consent_gate).
CREATE TABLE consents (
    participant_id text        PRIMARY KEY,
    study_id       text        NOT NULL,
    revision       integer     NOT NULL,
    scopes         jsonb       NOT NULL,   -- {"wearable": {"since": "...", "until": null}}
    withdrawn_at   timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

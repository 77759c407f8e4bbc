-- The consent service's records (issue 18, decisions 0079-0081). Document texts and the
-- names of witnesses or representatives stay here; the consents topic carries only
-- pseudonymous ids, scopes, times, versions and hashes.

-- Participants as the participants topic announces them (study, site, withdrawal).
CREATE TABLE participants (
    participant_id text        PRIMARY KEY,
    study_id       text        NOT NULL,
    site_id        text        NOT NULL,
    withdrawn_at   timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX participants_by_study_site ON participants (study_id, site_id);

-- Consent documents: one row per study, version, site ('*': every site) and language.
-- Immutable once published (no UPDATE in the code; a new text is a new version).
CREATE TABLE documents (
    study_id           text        NOT NULL,
    version            integer     NOT NULL CHECK (version >= 1),
    site_id            text        NOT NULL,
    language           text        NOT NULL,
    body               jsonb       NOT NULL,   -- format, title, sections, scopes, questions
    sha256             text        NOT NULL,   -- of the canonical JSON of `body`
    requires_reconsent boolean     NOT NULL DEFAULT false,
    reconsent_by       date,
    published_by       text        NOT NULL,
    published_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (study_id, version, site_id, language)
);

-- Participant app credentials (SHA-256 of the token; decision 0079).
CREATE TABLE app_credentials (
    token_hash     text        PRIMARY KEY,
    participant_id text        NOT NULL REFERENCES participants,
    issued_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
CREATE INDEX app_credentials_of ON app_credentials (participant_id) WHERE revoked_at IS NULL;

-- Short-lived, single-use re-authentication proofs for signing (decision 0079).
CREATE TABLE reauth_proofs (
    proof_hash     text        PRIMARY KEY,
    participant_id text        NOT NULL REFERENCES participants,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);

CREATE TABLE comprehension_attempts (
    attempt_id     uuid        PRIMARY KEY,
    participant_id text        NOT NULL REFERENCES participants,
    study_id       text        NOT NULL,
    version        integer     NOT NULL,
    language       text        NOT NULL,
    answers        jsonb       NOT NULL,
    wrong          text[]      NOT NULL,   -- question ids answered wrongly
    passed         boolean     NOT NULL,
    attempted_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comprehension_of ON comprehension_attempts (participant_id, version, attempted_at);

CREATE TABLE signatures (
    signature_id        uuid        PRIMARY KEY,
    participant_id      text        NOT NULL REFERENCES participants,
    study_id            text        NOT NULL,
    site_id             text        NOT NULL,
    version             integer     NOT NULL,
    language            text        NOT NULL,
    document_sha256     text        NOT NULL,
    scopes              text[]      NOT NULL,
    meaning             text        NOT NULL,
    signed_at           timestamptz NOT NULL,   -- the server's clock
    representative      jsonb,                  -- witness or legally authorised representative
    countersigned_by    text,
    countersigner_name  text,
    countersign_meaning text,
    countersigned_at    timestamptz
);
CREATE INDEX signatures_of ON signatures (participant_id, signed_at);

-- Each participant's consent as last announced (the ConsentState JSON) and its revision.
CREATE TABLE consent_states (
    participant_id text        PRIMARY KEY REFERENCES participants,
    revision       integer     NOT NULL,
    state          jsonb       NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

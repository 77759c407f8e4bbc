-- Candidates, minimised at the edge (services/intelligence/domain/fhir.py): a pseudonym,
-- age, birth year, sex, coded conditions, measurements and medications, clinical dates as
-- days before the record's date. No name, contact, address or other identifier.
CREATE TABLE candidates (
    candidate_id text PRIMARY KEY,
    site_id      text        NOT NULL,
    record       jsonb       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    uploaded_by  text        NOT NULL
);

-- Each study's criteria as they were when a decision was made (keyed by their digest).
CREATE TABLE criteria (
    study_id   text        NOT NULL,
    digest     text        NOT NULL,
    version    int         NOT NULL,
    criteria   jsonb       NOT NULL,
    first_used timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (study_id, digest)
);

-- One decision per candidate and study, with the criteria it was made under, and the
-- candidate's way from referral to enrolment (status).
CREATE TABLE decisions (
    candidate_id    text        NOT NULL,
    study_id        text        NOT NULL,
    site_id         text        NOT NULL,
    criteria_digest text        NOT NULL,
    criteria_version int        NOT NULL,
    decision        text        NOT NULL CHECK (decision IN ('eligible', 'ineligible', 'needs_review')),
    -- one byte per criterion, in the criteria's order: 0 pass, 1 fail, 2 unknown; the
    -- explanation is re-made from these, the criteria and the record when it is read
    outcomes        bytea       NOT NULL,
    risk            double precision,
    risk_model      text,
    evaluated_at    timestamptz NOT NULL DEFAULT now(),
    status          text        NOT NULL DEFAULT 'evaluated'
        CHECK (status IN ('evaluated', 'referred', 'screened', 'enrolled', 'screen_failed')),
    status_reason   text,
    status_at       timestamptz,
    PRIMARY KEY (candidate_id, study_id)
);
-- No foreign keys to candidates and criteria: an upload writes 100,000 decisions, and the
-- per-row checks cost more than the rest of the insert (docs/benchmarks.md). Both parents
-- are written first in the same transaction (repository.store) and nothing deletes them.
CREATE INDEX decisions_ranked ON decisions (study_id, site_id, decision, risk);

-- Enrolments as the participants topic announces them (the first one per participant):
-- the forecasts' counts, and the conversion of referred candidates.
CREATE TABLE enrolments (
    participant_id text PRIMARY KEY,
    study_id       text        NOT NULL,
    site_id        text        NOT NULL,
    enrolled_at    timestamptz NOT NULL
);
CREATE INDEX enrolments_by_site ON enrolments (study_id, site_id, enrolled_at);

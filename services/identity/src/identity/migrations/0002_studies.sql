-- Study definitions (issue 15, decision 0072): the current version of each study, and every
-- version ever applied. The identity service is the platform's directory of people and
-- studies; the other services read studies from the `studies` topic.
CREATE TABLE studies (
    study_id    text        PRIMARY KEY,
    version     integer     NOT NULL CHECK (version >= 1),
    digest      text        NOT NULL,
    definition  text        NOT NULL,                -- canonical JSON, as hashed
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE study_versions (
    study_id    text        NOT NULL REFERENCES studies,
    version     integer     NOT NULL,
    digest      text        NOT NULL,
    definition  text        NOT NULL,
    applied_by  text        NOT NULL,                -- the audit actor
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (study_id, version)
);

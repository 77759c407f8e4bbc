-- Export jobs of a study's (or one participant's) readings (issue 17, decision 0076).
-- A job is cut into parts, one UTC day of measured_at each; each part writes one file and
-- its completion is committed here, so a job taken over after a crash or a restart goes
-- on with the parts not done (a part's file is replaced, never appended to): no reading
-- is written twice. Only readings received before `as_of` (the request) are exported.
CREATE TABLE exports (
    export_id      uuid PRIMARY KEY,
    study_id       text        NOT NULL,
    participant_id text,                     -- NULL: the whole study
    site_ids       text[],                   -- NULL: every site (the requester's scope)
    format         text        NOT NULL CHECK (format IN ('csv', 'parquet', 'fhir-ndjson')),
    status         text        NOT NULL DEFAULT 'queued'
                               CHECK (status IN ('queued', 'running', 'done', 'failed')),
    requested_by   text        NOT NULL,     -- the audit trail's actor (pseudonymous)
    requested_at   timestamptz NOT NULL DEFAULT now(),
    as_of          timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    parts_total    integer,                  -- known once planned
    worker         text,                     -- the replica running it
    lease_until    timestamptz,              -- after this, another replica may take it over
    attempts       integer     NOT NULL DEFAULT 0,
    error          text
);
CREATE INDEX exports_to_run ON exports (requested_at) WHERE status IN ('queued', 'running');

CREATE TABLE export_parts (
    export_id    uuid        NOT NULL REFERENCES exports (export_id) ON DELETE CASCADE,
    part         integer     NOT NULL,
    day          date        NOT NULL,       -- readings measured on this UTC day
    file_name    text        NOT NULL,
    rows_written bigint,                     -- NULL until the part is done
    bytes        bigint,
    sha256       text,
    done_at      timestamptz,
    PRIMARY KEY (export_id, part),
    UNIQUE (export_id, file_name)
);

-- The latest KRI snapshot monitoring published per (study, site), and the latest
-- dropout-risk summary retention published (compacted topics, decision 0090): the
-- portfolio's early-warning lights. Aggregates only: no participant id in either.
CREATE TABLE site_kri_snapshots (
    study_id     text        NOT NULL,
    site_id      text        NOT NULL,
    evaluated_at timestamptz NOT NULL,
    snapshot     jsonb       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (study_id, site_id)
);

CREATE TABLE site_retention_risk (
    study_id    text        NOT NULL,
    site_id     text        NOT NULL,
    scored_at   timestamptz NOT NULL,
    summary     jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (study_id, site_id)
);

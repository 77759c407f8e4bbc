-- Exports expire (issue 17): a finished job's files are deleted once it is older than
-- INGEST_EXPORT_KEEP_DAYS. The job's row stays, marked, so that a download link of an
-- expired export answers 410 `export_expired` (not a 404 that looks like a wrong link)
-- and the list of a study's exports still shows who exported what.
ALTER TABLE exports ADD COLUMN expired_at timestamptz;
CREATE INDEX exports_to_expire ON exports (finished_at)
    WHERE expired_at IS NULL AND status IN ('done', 'failed');
CREATE INDEX exports_of_study ON exports (study_id, requested_at DESC);

-- An erasure that does not keep collected data also withdraws the exports that hold the
-- participant's readings (issue 18, decision 0086): their files are deleted and the job
-- says why, so a download answers 410 with that reason rather than the keep period.
ALTER TABLE exports ADD COLUMN IF NOT EXISTS expired_reason text;

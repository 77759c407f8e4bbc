-- The KRI tick deletes timeline rollups older than MONITORING_TIMELINE_ROLLUP_DAYS
-- (docs/decisions/0075). Buckets arrive roughly in time order, so a BRIN index finds the
-- old ones for a few pages of index and next to no cost on the hot upsert path.
CREATE INDEX reading_rollups_by_bucket ON reading_rollups USING brin (bucket);

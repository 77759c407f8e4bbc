-- Monitoring reads reading summaries, not each reading (docs/decisions/0093): the diary
-- check sums the timeline's 5-minute step-count rollups, so the per-reading step ledger
-- goes. Its last 9 days are already in reading_rollups (every metric is rolled up there).
DROP TABLE rbm_steps;

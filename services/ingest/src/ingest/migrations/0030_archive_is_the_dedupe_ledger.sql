-- Uploads now write the archive row in the transaction that waits for the broker, and
-- that row is the dedupe ledger (decision 0062), so the separate id ledger goes.
-- Upgrade with the old archive consumer drained (group ingest-archive at lag 0): every id
-- in accepted_readings is then in readings too, and no dedupe memory is lost.
DROP TABLE accepted_readings;

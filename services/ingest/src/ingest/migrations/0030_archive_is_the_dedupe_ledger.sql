-- Uploads now write the archive row in the transaction that waits for the broker, and
-- that row is the dedupe ledger (decision 0062), so the separate id ledger goes.
--
-- The old ingest archived readings later, from the topic. An id accepted but not yet
-- archived when this runs would be lost from the archive and from dedupe, so this refuses
-- until there is none: stop uploads to the old ingest, let its archive consumer reach lag
-- 0, then start the new one. The lock keeps old replicas from accepting more meanwhile.
LOCK TABLE accepted_readings IN ACCESS EXCLUSIVE MODE;
DO $$
DECLARE
    unarchived bigint;
BEGIN
    SELECT count(*) INTO unarchived
    FROM accepted_readings a
    WHERE NOT EXISTS (SELECT 1 FROM readings r WHERE r.event_id = a.event_id);
    IF unarchived > 0 THEN
        RAISE EXCEPTION 'ingest migration 0030: % accepted readings are not archived yet', unarchived
            USING HINT = 'Stop uploads to the old ingest, wait for its ingest-archive consumer '
                         'group to reach lag 0, then start the new ingest (decision 0062).';
    END IF;
END
$$;
DROP TABLE accepted_readings;

-- The archive is partitioned by the UTC day each reading was measured (decision 0074), so
-- an insert touches one day's indexes, not one index over the whole archive. The dedupe
-- key becomes (event_id, measured_on): a retried upload repeats the reading, so its
-- measured_at and therefore its partition. An event_id reused for another reading is
-- still refused when both were measured on the same UTC day, not across days.
--
-- Upgrading copies every archived row into its day's partition in this one transaction
-- (uploads wait on the lock meanwhile): minutes for tens of millions of rows, about as
-- long as writing them the first time (`--prefill-readings`); plan the upgrade for a quiet
-- hour, or copy a huge archive beforehand.
ALTER TABLE readings RENAME TO readings_before_0050;
ALTER INDEX readings_pkey RENAME TO readings_before_0050_pkey;
ALTER INDEX readings_by_participant_time RENAME TO readings_before_0050_by_participant_time;

CREATE TABLE readings (
    event_id       uuid             NOT NULL,
    participant_id text             NOT NULL,
    device_id      text             NOT NULL,
    metric         text             NOT NULL,
    value          double precision NOT NULL,
    unit           text             NOT NULL,
    measured_at    timestamptz      NOT NULL,
    received_at    timestamptz      NOT NULL,
    archived_at    timestamptz      NOT NULL DEFAULT now(),
    -- The partition key: a column of its own because PostgreSQL partitions on neither an
    -- expression in a primary key nor a generated column.
    measured_on    date             NOT NULL
        CONSTRAINT measured_on_is_the_utc_day CHECK (measured_on = (measured_at AT TIME ZONE 'UTC')::date),
    PRIMARY KEY (event_id, measured_on)
) PARTITION BY RANGE (measured_on);
-- Declared once here, built on every partition.
CREATE INDEX readings_by_participant_time ON readings (participant_id, measured_at);

-- Partitions are created by the owner (PostgreSQL lets only a table's owner add a
-- partition to it, and the service's role owns nothing, decision 0070), through these two
-- functions the service's role may call. Partition `readings_YYYYMMDD` holds that day.
CREATE FUNCTION readings_partitions_for(days date[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    day date;
    part text;
    created integer := 0;
    locked boolean := false;
BEGIN
    FOR day IN SELECT DISTINCT d FROM unnest(days) AS d WHERE d IS NOT NULL ORDER BY 1 LOOP
        part := 'readings_' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM pg_inherits
            WHERE inhparent = 'readings'::regclass AND inhrelid = to_regclass(quote_ident(part)));
        -- Replicas may ask for the same days together: one creates them, the others see
        -- them. One lock for every day, taken once: ATTACH holds the archive's SHARE UPDATE
        -- EXCLUSIVE lock to the end of the transaction, so per-day locks taken in turn
        -- would deadlock two callers asking for overlapping days.
        IF NOT locked THEN
            PERFORM pg_advisory_xact_lock(hashtext('ingest.readings partitions'));
            locked := true;
        END IF;
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM pg_inherits
            WHERE inhparent = 'readings'::regclass AND inhrelid = to_regclass(quote_ident(part)));
        -- Created apart, then attached: ATTACH locks the archive in SHARE UPDATE EXCLUSIVE
        -- mode, so uploads and reads go on; CREATE TABLE ... PARTITION OF would lock them
        -- out until this transaction ends. The empty table's indexes are built on attach.
        EXECUTE format('CREATE TABLE %I (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       part);
        EXECUTE format('ALTER TABLE readings ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       part, day, day + 1);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

-- Detaches the partitions of days before `cutoff` and renames each to
-- `readings_YYYYMMDD_detached_<when>` (so a late reading for that day gets a fresh
-- partition instead of colliding with the name), returning the new names. The tables stay
-- in the schema, out of the archive's reads, for tiering to export and drop.
CREATE FUNCTION detach_readings_before(cutoff date) RETURNS text[]
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    part text;
    renamed text;
    detached text[] := '{}';
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('ingest.readings partitions'));  -- as above
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'readings'::regclass AND c.relname ~ '^readings_[0-9]{8}$'
          AND to_date(substr(c.relname, 10), 'YYYYMMDD') < cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE readings DETACH PARTITION %I', part);
        renamed := part || '_detached_' || to_char(clock_timestamp(), 'YYYYMMDD"T"HH24MISSUS');
        EXECUTE format('ALTER TABLE %I RENAME TO %I', part, renamed);
        detached := detached || renamed;
    END LOOP;
    RETURN detached;
END
$$;

DO $$
DECLARE
    service_role text := 'trialstream_' || current_schema();
BEGIN
    -- A definer's function must not resolve names through the caller's temporary schema.
    EXECUTE format('ALTER FUNCTION readings_partitions_for(date[]) SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION detach_readings_before(date) SET search_path = %I, pg_temp',
                   current_schema());
    REVOKE ALL ON FUNCTION readings_partitions_for(date[]) FROM PUBLIC;
    REVOKE ALL ON FUNCTION detach_readings_before(date) FROM PUBLIC;
    EXECUTE format('GRANT EXECUTE ON FUNCTION readings_partitions_for(date[]) TO %I', service_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION detach_readings_before(date) TO %I', service_role);
END
$$;

SELECT readings_partitions_for(ARRAY(
    SELECT DISTINCT (measured_at AT TIME ZONE 'UTC')::date FROM readings_before_0050));
INSERT INTO readings
    (event_id, participant_id, device_id, metric, value, unit, measured_at, received_at,
     archived_at, measured_on)
SELECT event_id, participant_id, device_id, metric, value, unit, measured_at, received_at,
       archived_at, (measured_at AT TIME ZONE 'UTC')::date
FROM readings_before_0050;
DROP TABLE readings_before_0050;

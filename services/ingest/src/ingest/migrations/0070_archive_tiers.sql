-- Tiering of the archive's old days to Parquet files (issue 17, decision 0077).
--
-- A day is tiered once: its partition is detached and recorded here as 'tiering' in one
-- transaction (from then on no partition of that day is created again, so no reading of
-- it is archived twice); its rows are written as Parquet files and verified against the
-- detached table (row counts and an order-independent checksum per file); then, in one
-- more transaction, the files are recorded, the day marked 'tiered' and the table dropped.
-- A replica that stops between the two transactions leaves a 'tiering' row whose lease
-- runs out; the next one writes the day again from the table it left.
CREATE TABLE archive_tiers (
    day           date PRIMARY KEY,
    status        text        NOT NULL CHECK (status IN ('tiering', 'tiered')),
    source_tables text[]      NOT NULL,  -- the detached tables holding the day until tiered
    buckets       integer     NOT NULL CHECK (buckets >= 1),  -- participant-hash buckets
    url           text        NOT NULL,  -- the root the files were written under (for the record)
    worker        text,
    lease_until   timestamptz,
    attempts      integer     NOT NULL DEFAULT 1,
    started_at    timestamptz NOT NULL DEFAULT now(),
    rows          bigint,                -- known once tiered
    checksum      text,                  -- sum of the rows' hashes mod 2^64, 16 hex digits
    tiered_at     timestamptz
);

CREATE TABLE archive_tier_files (
    day      date    NOT NULL REFERENCES archive_tiers (day),
    study_id text    NOT NULL,
    bucket   integer NOT NULL,
    path     text    NOT NULL,  -- relative to the tier's root
    rows     bigint  NOT NULL,
    bytes    bigint  NOT NULL,
    sha256   text    NOT NULL,
    checksum text    NOT NULL,
    PRIMARY KEY (day, study_id, bucket)
);

-- Partitions are no longer made for a day that is being or has been tiered: a late
-- reading of it is refused (`day_archived`) instead of archived next to the files, where a
-- retry of a reading already in the files could not be told from a new one.
CREATE OR REPLACE FUNCTION readings_partitions_for(days date[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    one_day date;
    part text;
    created integer := 0;
    locked boolean := false;
BEGIN
    FOR one_day IN SELECT DISTINCT d FROM unnest(days) AS d WHERE d IS NOT NULL ORDER BY 1 LOOP
        part := 'readings_' || to_char(one_day, 'YYYYMMDD');
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM pg_inherits
            WHERE inhparent = 'readings'::regclass AND inhrelid = to_regclass(quote_ident(part)));
        IF NOT locked THEN  -- see migration 0050
            PERFORM pg_advisory_xact_lock(hashtext('ingest.readings partitions'));
            locked := true;
        END IF;
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM pg_inherits
            WHERE inhparent = 'readings'::regclass AND inhrelid = to_regclass(quote_ident(part)));
        CONTINUE WHEN EXISTS (SELECT 1 FROM archive_tiers t WHERE t.day = one_day);
        EXECUTE format('CREATE TABLE %I (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       part);
        EXECUTE format('ALTER TABLE readings ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       part, one_day, one_day + 1);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

-- Detaches the partition of `day` (if attached) as `readings_YYYYMMDD_detached_<when>`
-- and returns every detached table of that day (this one and any that
-- detach_readings_before left), under the partitions' lock, in the caller's transaction:
-- the caller records the day as 'tiering' in that same transaction.
CREATE FUNCTION detach_readings_day(day date) RETURNS text[]
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    part text := 'readings_' || to_char(day, 'YYYYMMDD');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('ingest.readings partitions'));
    IF EXISTS (SELECT 1 FROM pg_inherits
               WHERE inhparent = 'readings'::regclass AND inhrelid = to_regclass(quote_ident(part)))
    THEN
        EXECUTE format('ALTER TABLE readings DETACH PARTITION %I', part);
        EXECUTE format('ALTER TABLE %I RENAME TO %I', part,
                       part || '_detached_' || to_char(clock_timestamp(), 'YYYYMMDD"T"HH24MISSUS'));
    END IF;
    RETURN ARRAY(
        SELECT c.relname::text FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
          AND c.relname LIKE part || '\_detached\_%'
          AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
        ORDER BY 1);
END
$$;

-- Drops the detached tables of a day, only once the day is recorded 'tiered' (in the
-- caller's transaction, with its files), and only tables that are detached tables of it.
CREATE FUNCTION drop_tiered_readings(day date, tables text[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    part text;
    dropped integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM archive_tiers t
                   WHERE t.day = drop_tiered_readings.day AND t.status = 'tiered') THEN
        RAISE EXCEPTION 'day % is not recorded as tiered', day USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    FOREACH part IN ARRAY tables LOOP
        IF part NOT LIKE 'readings_' || to_char(day, 'YYYYMMDD') || '\_detached\_%' THEN
            RAISE EXCEPTION 'table % is not a detached table of day %', part, day
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        CONTINUE WHEN to_regclass(quote_ident(part)) IS NULL;
        IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(quote_ident(part))) THEN
            RAISE EXCEPTION 'table % is attached', part USING ERRCODE = 'invalid_parameter_value';
        END IF;
        EXECUTE format('DROP TABLE %I', part);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$;

DO $$
DECLARE
    service_role text := 'trialstream_' || current_schema();
BEGIN
    EXECUTE format('ALTER FUNCTION readings_partitions_for(date[]) SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION detach_readings_day(date) SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION drop_tiered_readings(date, text[]) SET search_path = %I, pg_temp',
                   current_schema());
    REVOKE ALL ON FUNCTION detach_readings_day(date) FROM PUBLIC;
    REVOKE ALL ON FUNCTION drop_tiered_readings(date, text[]) FROM PUBLIC;
    EXECUTE format('GRANT EXECUTE ON FUNCTION detach_readings_day(date) TO %I', service_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION drop_tiered_readings(date, text[]) TO %I', service_role);
END
$$;

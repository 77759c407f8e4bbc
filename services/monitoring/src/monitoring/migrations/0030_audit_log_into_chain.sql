-- Monitoring's first audit log (0001: audit_log, append-only but not chained) moves into the
-- shared hash-chained audit_trail (shared migration 0002), in its original order and with its
-- original times, actors and notes; then audit_log is dropped so there is one trail to verify.
-- Rows are chained here with audit_trail_hash(), the SQL twin of trialstream.audit.entry_hash.
-- The chain vouches for these rows from this migration on: before it, the old table had
-- only its trigger to protect it (decision 0051).
DO $$
DECLARE
    r    record;
    n    bigint;
    prev text;
BEGIN
    -- The lock record() takes (trialstream.audit.LOCK_CLASS), in case a replica appends now.
    PERFORM pg_advisory_xact_lock(1635083369, hashtext(current_schema()));
    SELECT seq, hash INTO n, prev FROM audit_trail ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        n := 0;
        prev := repeat('0', 64);
    END IF;
    FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
        n := n + 1;
        INSERT INTO audit_trail (seq, occurred_at, actor, action, entity, entity_id, old, new,
                                 reason, prev_hash, hash)
        VALUES (n, r.occurred_at, r.actor, r.action, r.entity,
                r.entity_id, to_json(r.old_status)::text, to_json(r.new_status)::text, r.note, prev,
                audit_trail_hash(n, r.occurred_at, r.actor, r.action, r.entity, r.entity_id,
                                 to_json(r.old_status)::text, to_json(r.new_status)::text, r.note,
                                 prev))
        RETURNING hash INTO prev;
    END LOOP;
END;
$$;

DROP TABLE audit_log;
DROP FUNCTION audit_log_is_append_only();

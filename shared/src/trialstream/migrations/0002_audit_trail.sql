-- The hash-chained audit trail every service gets in its own schema (one chain per schema).
-- Rows are appended by trialstream.audit.record() inside the transaction of the change they
-- describe; `trialstream audit verify` walks the chain. See docs/audit.md.
CREATE TABLE audit_trail (
    seq         bigint      PRIMARY KEY CHECK (seq >= 1),  -- 1, 2, 3, ... without gaps
    occurred_at timestamptz NOT NULL,                      -- the database clock at append time
    actor       text        NOT NULL,  -- staff id, 'admin', 'participant:<id>', 'device:<id>', 'system:<service>'
    action      text        NOT NULL,  -- e.g. 'alert.acknowledged'
    entity      text        NOT NULL,  -- e.g. 'alert'
    entity_id   text        NOT NULL,
    old         text,                  -- canonical JSON of the state before (NULL: none)
    new         text,                  -- canonical JSON of the state after (NULL: none)
    reason      text,                  -- why, as given by the actor
    prev_hash   text        NOT NULL UNIQUE CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash        text        NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX audit_trail_by_entity ON audit_trail (entity, entity_id, seq);

CREATE FUNCTION audit_trail_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_trail is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_trail_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_trail
    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_is_append_only();

-- The same hash as trialstream.audit.entry_hash (SHA-256 of sorted-key compact JSON, UTC
-- timestamp with microseconds), for migrations that chain rows in SQL. A test holds the two
-- to agreement on awkward text (quotes, control characters, non-ASCII).
CREATE FUNCTION audit_trail_hash(
    bigint, timestamptz, text, text, text, text, text, text, text, text
) RETURNS text LANGUAGE sql STABLE AS $$
SELECT encode(sha256(convert_to(
    '{"action":' || to_json($4)::text
    || ',"actor":' || to_json($3)::text
    || ',"entity":' || to_json($5)::text
    || ',"entity_id":' || to_json($6)::text
    || ',"new":' || coalesce(to_json($8)::text, 'null')
    || ',"occurred_at":'
    || to_json(to_char($2 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text
    || ',"old":' || coalesce(to_json($7)::text, 'null')
    || ',"prev_hash":' || to_json($10)::text
    || ',"reason":' || coalesce(to_json($9)::text, 'null')
    || ',"seq":' || $1::text
    || '}', 'UTF8')), 'hex')
$$;

-- Least privilege (docs/decisions/0070): the running service acts as its own role,
-- trialstream_<schema>, which can read and write the rows of this schema and nothing else.
-- It owns nothing, so it cannot alter a table, drop a trigger or grant itself more; the
-- migrations (this file included) run as the owner. The audit trail is INSERT and SELECT
-- only, so its append-only trigger is a second wall, not the only one.
DO $$
DECLARE
    service_role text := 'trialstream_' || current_schema();
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = service_role) THEN
        BEGIN
            -- LOGIN without a password: it signs in only where the server trusts it (the
            -- embedded PostgreSQL) or after an operator sets one; otherwise services reach it
            -- with SET ROLE from the owner's connection (trialstream.db.create_pool).
            EXECUTE format('CREATE ROLE %I LOGIN', service_role);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database on this server created it a moment ago
        END;
    END IF;
    BEGIN
        -- The owner must be able to SET ROLE to it (automatic for a superuser).
        EXECUTE format('GRANT %I TO CURRENT_USER', service_role);
    EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation OR duplicate_object THEN
        NULL;
    END;
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', current_schema());
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), service_role);
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I',
        current_schema(), service_role);
    EXECUTE format(
        'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), service_role);
    -- Tables and sequences the owner creates in later migrations get the same.
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
        current_schema(), service_role);
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO %I',
        current_schema(), service_role);
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_trail FROM %I', service_role);
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM %I',
        service_role);
END;
$$;

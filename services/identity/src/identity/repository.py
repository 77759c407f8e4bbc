"""The issuer's SQL: people, grants, sessions, signing keys (migrations/0001_people.sql)."""

from __future__ import annotations

KEY = "SELECT private_pem FROM signing_keys ORDER BY created_at DESC, kid LIMIT 1"
ADD_KEY = "INSERT INTO signing_keys (kid, private_pem) VALUES ($1, $2) ON CONFLICT DO NOTHING"
INSERT_PERSON = """
INSERT INTO people (subject, display_name, password_hash) VALUES ($1, $2, $3)
ON CONFLICT (subject) DO NOTHING RETURNING subject
"""
PERSON = """
SELECT subject, display_name, password_hash, revoked_at, failed_sign_ins, locked_until
FROM people WHERE subject = $1
"""
GRANTS = (
    "SELECT role, study_id, site_id FROM grants WHERE subject = $1 ORDER BY role, study_id, site_id"
)
DELETE_GRANTS = "DELETE FROM grants WHERE subject = $1"
INSERT_GRANTS = """
INSERT INTO grants (subject, role, study_id, site_id)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING
"""
FAILED = """
UPDATE people SET failed_sign_ins = failed_sign_ins + 1,
    locked_until = CASE WHEN failed_sign_ins + 1 >= $2 THEN now() + make_interval(secs => $3)
                        ELSE locked_until END
WHERE subject = $1 RETURNING failed_sign_ins
"""
SUCCEEDED = "UPDATE people SET failed_sign_ins = 0, locked_until = NULL WHERE subject = $1"
OPEN_SESSION = """
INSERT INTO sessions (session_id, subject, auth_time, expires_at, refresh_hash)
VALUES ($1, $2, now(), now() + make_interval(secs => $3), $4) RETURNING auth_time
"""
REFRESH = """
UPDATE sessions SET refresh_hash = $2
WHERE refresh_hash = $1 AND ended_at IS NULL AND expires_at > now()
RETURNING session_id, subject, auth_time
"""
END_SESSION = """
UPDATE sessions SET ended_at = now() WHERE session_id = $1 AND ended_at IS NULL
RETURNING subject, ended_at
"""
END_ALL = """
UPDATE sessions SET ended_at = now() WHERE subject = $1 AND ended_at IS NULL
RETURNING session_id
"""
REVOKE = """
UPDATE people SET revoked_at = now() WHERE subject = $1 AND revoked_at IS NULL
RETURNING revoked_at
"""
PEOPLE = """
SELECT p.subject, p.display_name, p.revoked_at IS NOT NULL AS revoked,
       coalesce(json_agg(json_build_object('role', g.role, 'study', g.study_id, 'site', g.site_id))
                FILTER (WHERE g.role IS NOT NULL), '[]') AS grants
FROM people p LEFT JOIN grants g USING (subject)
GROUP BY p.subject ORDER BY p.subject
"""
STUDY = "SELECT study_id, version, digest, definition, updated_at FROM studies WHERE study_id = $1"
STUDY_FOR_UPDATE = STUDY + " FOR UPDATE"
STUDIES = "SELECT study_id, version, digest, definition, updated_at FROM studies ORDER BY study_id"
UPSERT_STUDY = """
INSERT INTO studies (study_id, version, digest, definition) VALUES ($1, $2, $3, $4)
ON CONFLICT (study_id) DO UPDATE
SET version = EXCLUDED.version, digest = EXCLUDED.digest, definition = EXCLUDED.definition,
    updated_at = now()
"""
INSERT_STUDY_VERSION = """
INSERT INTO study_versions (study_id, version, digest, definition, applied_by)
VALUES ($1, $2, $3, $4, $5)
"""
STUDY_VERSIONS = """
SELECT version, digest, applied_by, applied_at FROM study_versions WHERE study_id = $1
ORDER BY version DESC
"""

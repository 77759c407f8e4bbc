-- The embedded issuer's directory: people, their role grants per study and site, their
-- sessions, and the signing key (issue 15, decision 0071). Only this service reads it; the
-- others verify tokens with the published keys.
CREATE TABLE people (
    subject        text        PRIMARY KEY,          -- the token's `sub`, also the sign-in name
    display_name   text        NOT NULL,
    password_hash  text        NOT NULL,              -- scrypt, see identity/passwords.py
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,                       -- access revoked: no sign-in, tokens void
    failed_sign_ins integer    NOT NULL DEFAULT 0,
    locked_until   timestamptz
);

CREATE TABLE grants (
    subject   text NOT NULL REFERENCES people ON DELETE CASCADE,
    role      text NOT NULL,
    study_id  text,                                   -- NULL: every study (platform_admin)
    site_id   text,                                   -- NULL: every site of the study
    UNIQUE NULLS NOT DISTINCT (subject, role, study_id, site_id)
);

CREATE TABLE sessions (
    session_id   uuid        PRIMARY KEY,
    subject      text        NOT NULL REFERENCES people ON DELETE CASCADE,
    auth_time    timestamptz NOT NULL,                -- when the password was last given
    expires_at   timestamptz NOT NULL,                -- no refresh after this
    refresh_hash text        NOT NULL UNIQUE,         -- SHA-256 of the current refresh token
    ended_at     timestamptz                          -- logged out or ended by an admin
);
CREATE INDEX sessions_open_by_subject ON sessions (subject) WHERE ended_at IS NULL;

CREATE TABLE signing_keys (
    kid         text        PRIMARY KEY,              -- RFC 7638 thumbprint
    private_pem text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Free text that could identify a participant (a withdrawal's reason) stays out of the
-- chained audit row (issue 18, decision 0087): the row's `reason` holds only
-- 'sha256:<hex of salt || text>', the text and its random salt live here, keyed by the
-- entry. Erasure deletes these rows; the chain is untouched, so `trialstream audit verify`
-- still passes, and without the salt the digest cannot be matched against guesses.
-- Rows written before this migration are not changed (their hashes would break).
CREATE TABLE audit_erasable_text (
    seq        bigint      PRIMARY KEY,
    subject    text        NOT NULL,   -- the participant whose erasure removes it
    salt       text        NOT NULL,
    text       text        NOT NULL
);
CREATE INDEX audit_erasable_text_of ON audit_erasable_text (subject);

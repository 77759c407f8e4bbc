-- Erasure (issue 18, decision 0086): responses stay append-only, except for the one
-- transaction that erases a participant's free text (or, when the study keeps no collected
-- data, their responses): it sets `trialstream.erasing` locally, and the audit trail
-- records the erasure in the same transaction (trialstream.erasure).
CREATE OR REPLACE FUNCTION responses_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'TRUNCATE' AND current_setting('trialstream.erasing', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'responses are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- A participant who withdrew stays (their data collected before withdrawal is kept), with
-- when and why. The reason is free text for the site: it never leaves ingest's database.
ALTER TABLE participants
    ADD COLUMN status text NOT NULL DEFAULT 'enrolled' CHECK (status IN ('enrolled', 'withdrawn')),
    ADD COLUMN withdrawn_at timestamptz,
    ADD COLUMN withdrawal_reason text,
    ADD CONSTRAINT withdrawn_has_time CHECK ((status = 'withdrawn') = (withdrawn_at IS NOT NULL));

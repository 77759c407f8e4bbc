-- When a participant's readings last arrived (ingest's receive time), for the wall-clock
-- dropout check: participants silent for longer than the dropout limit are found by index.
ALTER TABLE participant_state ADD COLUMN last_received_at timestamptz;
CREATE INDEX participant_state_by_last_received ON participant_state (last_received_at);

-- Fencing (issue 16): each checkpoint carries a version, and a write succeeds only over the
-- version its writer loaded. A replica that paused past its session timeout, lost its
-- partitions and then wakes up with a batch scored from an old checkpoint cannot overwrite
-- what the new owner wrote meanwhile (anomaly.repository.LostRace).
ALTER TABLE participant_state ADD COLUMN version bigint NOT NULL DEFAULT 0;

-- Set when the scorer saw the readings behind an alert return to normal (AlertEpisodeEnded):
-- shown as auto-resolved; the alert still wants acknowledgement by staff.
ALTER TABLE alerts ADD COLUMN episode_ended_at timestamptz;
ALTER TABLE alerts ADD COLUMN episode_end_note text;

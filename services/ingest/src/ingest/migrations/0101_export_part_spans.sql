-- A part may span several days (issue 17): a participant's export is one part, one file,
-- from its first day to `last_day`, instead of a small file per day. NULL: `day` alone
-- (every part of a study's export, and every part written before this).
ALTER TABLE export_parts ADD COLUMN last_day date;

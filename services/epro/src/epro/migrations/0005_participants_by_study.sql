-- A new study version's schedules go to the study's participants (epro.assignments):
-- found by study, every few seconds, without reading the whole table.
CREATE INDEX participants_by_study ON participants (study_id);

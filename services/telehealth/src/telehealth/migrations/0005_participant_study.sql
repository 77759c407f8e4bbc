-- Studies are first-class (issue 15, decision 0072): each participant's study, from the
-- participants topic; everyone known before is in the implicit study 'default'.
ALTER TABLE participants ADD COLUMN study_id text NOT NULL DEFAULT 'default';

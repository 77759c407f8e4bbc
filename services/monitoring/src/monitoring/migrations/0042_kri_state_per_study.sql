-- KRIs are evaluated per study (each with its own thresholds from the study file): a
-- site's breach episode is its study's, so two studies with a site of the same id keep
-- separate episodes. Rows from before were all pooled under the default study.
ALTER TABLE rbm_kri_state ADD COLUMN study_id text NOT NULL DEFAULT 'default';
ALTER TABLE rbm_kri_state ALTER COLUMN study_id DROP DEFAULT;
ALTER TABLE rbm_kri_state DROP CONSTRAINT rbm_kri_state_pkey;
ALTER TABLE rbm_kri_state ADD PRIMARY KEY (study_id, scope, scope_id, kri);

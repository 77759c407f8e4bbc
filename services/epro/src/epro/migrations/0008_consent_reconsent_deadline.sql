-- A re-consent an amendment asks for (decision 0088): the version and the day it is due,
-- as the consents topic last announced them, so a study that pauses after the deadline
-- is judged by the same one-row lookup as the scopes (trialstream.consent_gate).
ALTER TABLE consents ADD COLUMN reconsent_version integer, ADD COLUMN reconsent_by date;

-- Alerts from ePRO safety signals carry no wearable metric.
ALTER TABLE alerts ALTER COLUMN metric DROP NOT NULL;

-- Who acted, in the words of their access token (issue 15): the display name and the role
-- they acted in, as canonical JSON {"name": ..., "role": ...}, next to the pseudonymous
-- `actor` ('staff:<subject>'). Part 11 wants the signer's printed name with the record.
-- The hash covers it when present; rows without it hash as before, so existing chains
-- still verify (trialstream.audit.AuditEntry.document).
ALTER TABLE audit_trail ADD COLUMN actor_detail text;

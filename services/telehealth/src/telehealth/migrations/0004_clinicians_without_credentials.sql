-- Staff sign in at the identity issuer (issue 15, decision 0071): telehealth keeps its
-- clinicians only as what it schedules (site, availability, bookings), keyed by the subject
-- of their access token, and no credential.
ALTER TABLE staff DROP COLUMN token_hash;

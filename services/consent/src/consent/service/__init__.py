"""Consent use cases: documents (publishing, reading), the participant's credential,
re-authentication and comprehension, signatures and withdrawals, and the site's views
(outstanding re-consent, FHIR export)."""

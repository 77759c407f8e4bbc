"""eConsent (issue 18): documents, signatures, scopes, withdrawal, FHIR export."""

"""The consent domain, pure: documents and their hashes, comprehension, scopes over
time, the signed copy and the FHIR Consent resource."""

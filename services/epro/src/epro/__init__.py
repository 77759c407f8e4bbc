"""ePRO service: questionnaires, schedules, responses, compliance, FHIR export."""

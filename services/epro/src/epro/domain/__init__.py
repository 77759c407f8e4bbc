"""ePRO's pure rules: questionnaire definitions and their versions, schedules and the
occurrences they give in each participant's timezone, answer checks and scores, safety
signals, what withdrawal stops, and the FHIR shapes. No database, broker or HTTP here."""

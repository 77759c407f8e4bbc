"""trialstream ingest service."""

"""trialstream telehealth service."""

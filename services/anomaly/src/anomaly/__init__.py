"""trialstream anomaly service."""

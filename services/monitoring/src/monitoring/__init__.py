"""trialstream monitoring service."""

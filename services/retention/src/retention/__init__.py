"""trialstream retention service."""

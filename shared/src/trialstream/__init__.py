"""trialstream shared library: contracts and plumbing every service imports."""

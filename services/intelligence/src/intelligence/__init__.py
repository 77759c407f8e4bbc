"""Trial intelligence: pre-screening and matching, screen-failure risk, enrollment forecasts."""

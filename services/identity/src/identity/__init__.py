"""The embedded issuer of staff access tokens (issue 15, decision 0071)."""
